//! Slow and abusive clients: a body trickled at 1 byte/s gets 408 within the body timeout;
//! connections beyond the cap get 503 while the control endpoints keep answering; statistics
//! stay bounded whatever the requests look like; a storage error answers 500 instead of spinning.
//! Loopback only, bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(url: &str) -> TcpStream {
    let port = url.rsplit(':').next().unwrap();
    TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap()
}

/// The status line of the first answer on `s`, if one arrives within `within`.
async fn status_line(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !got.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    text.split("\r\n")
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

const SLOW_UPLOAD: &str = "/upload?resumableChunkNumber=1&resumableChunkSize=1000&resumableTotalSize=1000&resumableIdentifier=slow&resumableFilename=slow.bin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_at_one_byte_per_second_gets_408_within_the_body_timeout() {
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.body_timeout_secs = 2;
    })
    .await;
    let api = handle.api_url().to_owned();
    let boundary = "XyZ";
    let cases = [
        ("octet chunk", format!("POST {SLOW_UPLOAD} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n")),
        (
            "multipart chunk",
            format!(
                "POST {SLOW_UPLOAD} HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary={boundary}\r\n\
                 content-length: 2000\r\n\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\n"
            ),
        ),
        (
            "control config",
            format!(
                "POST /__fixture/config HTTP/1.1\r\nhost: x\r\nx-fixture-token: {TOKEN}\r\n\
                 content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            ),
        ),
    ];
    let mut tasks = Vec::new();
    for (what, head) in cases {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&api).await;
            s.write_all(head.as_bytes()).await.unwrap();
            // One byte per second, at most 15 of the body's 1000 or 2000: the answer comes
            // while the body is still far from whole.
            for sent in 1..=15 {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
                if let Some(line) = status_line(&mut s, Duration::from_secs(1)).await {
                    return (what, Some(line), sent);
                }
            }
            (what, None, 15)
        }));
    }
    for t in tasks {
        let (what, line, sent) = t.await.unwrap();
        assert_eq!(
            line.as_deref(),
            Some("HTTP/1.1 408 Request Timeout"),
            "{what}: answer to a 1 byte/s body (after {sent} bytes)"
        );
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503_and_control_keeps_answering() {
    const CAP: usize = 8;
    const CLIENTS: usize = 300;
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.max_connections = CAP;
        c.body_timeout_secs = 5;
    })
    .await;
    let api = handle.api_url().to_owned();
    // Slow clients: a chunk POST whose body never comes.
    let head = format!("POST {SLOW_UPLOAD} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = connect(&api).await;
        let _ = s.write_all(head.as_bytes()).await; // a refused connection may be closed already
        clients.push(tokio::spawn(async move {
            status_line(&mut s, Duration::from_secs(30)).await
        }));
    }
    // Every client beyond the cap is refused at once.
    let mut answers = Vec::new();
    let mut waiting = Vec::new();
    for c in clients {
        if c.is_finished() {
            answers.push(c.await.unwrap());
        } else {
            waiting.push(c);
        }
    }
    // Polled (at most 1000 times) until only the clients holding a slot still wait.
    for _ in 0..1000 {
        if waiting.len() <= CAP {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (done, still): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|c| c.is_finished());
        waiting = still;
        for c in done {
            answers.push(c.await.unwrap());
        }
    }
    assert_eq!(waiting.len(), CAP, "clients holding a regular connection");
    assert_eq!(answers.len(), CLIENTS - CAP);
    for a in &answers {
        assert_eq!(a.as_deref(), Some("HTTP/1.1 503 Service Unavailable"));
    }

    // Under that load the control endpoints answer; the API refuses readably (CORS headers).
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{api}/__fixture/stats"))
        .header("x-fixture-token", TOKEN)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("\"requests\""));
    let page = handle.page_url().unwrap().to_owned();
    let probe = format!("{api}/upload?resumableChunkNumber=1&resumableChunkSize=10&resumableTotalSize=5&resumableIdentifier=p&resumableFilename=p.bin");
    let probe_from_page = || client.get(&probe).header("origin", &page).send();
    let r = probe_from_page().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["access-control-allow-origin"], page.as_str());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("too many connections (the cap is 8)"));

    // The slow clients get 408 at the body timeout, and the API serves again.
    for c in waiting {
        assert_eq!(
            c.await.unwrap().as_deref(),
            Some("HTTP/1.1 408 Request Timeout")
        );
    }
    let r = probe_from_page().await.unwrap();
    assert_eq!(r.status(), 204);
    handle.shutdown().await;
}

fn counts_sum(v: &serde_json::Value) -> u64 {
    v.as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn statistics_stay_bounded_and_reset_frees_them() {
    let f = fixture();
    let long_query = format!("a={}", "q".repeat(60 * 1024));
    let long_host = "o".repeat(8 * 1024);
    const N: usize = 1000;
    for i in 0..N {
        let method = if i % 2 == 0 {
            Method::GET
        } else {
            Method::from_bytes(format!("M{i}").as_bytes()).unwrap()
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("/path-{i}?{long_query}"))
            .header("origin", format!("http://{i}.{long_host}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&f.router, req).await.status, StatusCode::NOT_FOUND);
    }
    let s = f.state.stats_json();
    let size = s.to_string().len();
    assert!(
        size < 2 * 1024 * 1024,
        "{N} requests with 60 KiB queries made {size} bytes of statistics"
    );
    for key in ["requests", "by_path", "by_origin"] {
        let map = s[key].as_object().unwrap();
        assert!(map.len() <= 65, "{key} has {} keys", map.len());
        assert!(map.contains_key("other"), "{key} has no \"other\" bucket");
        assert_eq!(
            counts_sum(&s[key]),
            N as u64,
            "{key} still counts every request"
        );
        assert!(
            map.keys().all(|k| k.len() <= 1024),
            "{key} keys are truncated"
        );
    }
    let log = s["log"].as_array().unwrap();
    assert_eq!(log.len(), N);
    for e in log {
        assert!(
            e["query"].as_str().unwrap().len() <= 1024 + 8,
            "{}",
            e["query"]
        );
        assert!(e["origin"].as_str().unwrap().len() <= 256 + 8);
        assert!(e["query"].as_str().unwrap().starts_with("a=qqq"));
    }
    let r = send(
        &f.router,
        control(Method::POST, "/__fixture/reset", Some("{}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = f.state.stats_json();
    assert!(s.to_string().len() < 256, "after reset: {s}");
}

#[tokio::test]
async fn probing_made_up_identifiers_keeps_nothing() {
    let f = fixture();
    for i in 0..500 {
        let r = send(
            &f.router,
            Request::get(format!("/upload?flowChunkNumber=1&flowChunkSize=10&flowTotalSize=5&flowIdentifier=made-up-{i}&flowFilename=a.txt"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(f.state.store().uploads_in_memory(), 0);
    assert!(std::fs::read_dir(f.data_dir().join("uploads"))
        .unwrap()
        .next()
        .is_none());
}

#[tokio::test]
async fn a_persistent_storage_error_answers_500_instead_of_spinning() {
    let f = fixture();
    let data = pattern(300, 4);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "enotdir",
        name: "enotdir.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    for i in 1..u.total_chunks() {
        assert_eq!(
            send(&f.router, u.post_req(i, Format::Octet)).await.status,
            StatusCode::OK
        );
    }
    // files/ becomes a regular file: every lookup below it fails (ENOTDIR), persistently.
    let files = f.data_dir().join("files");
    std::fs::remove_dir_all(&files).unwrap();
    std::fs::write(&files, b"not a directory").unwrap();
    let last = u.total_chunks();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        send(&f.router, u.post_req(last, Format::Octet)),
    )
    .await
    .expect("the final chunk must be answered, not spin on the storage error");
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert!(r.body.contains("storage error"), "{}", r.body);
    // Once the error is gone, re-sending the final chunk completes the file.
    std::fs::remove_file(&files).unwrap();
    std::fs::create_dir(&files).unwrap();
    let r = send(&f.router, u.post_req(last, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = files_json(&f.router).await;
    assert_eq!(listed[0]["sha256"], sha256_hex(&data));
    assert_eq!(
        std::fs::read(listed[0]["path"].as_str().unwrap()).unwrap(),
        data
    );
}

/// A connection admitted into the control reserve that switches to HTTP/2 (the h2c preface;
/// over TLS, ALPN h2) is not bound by the HTTP/1 header timeout nor by one request: idle, it
/// would hold its reserve slot forever, and 16 of them would shut the control plane out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_cannot_squat_the_control_reserve() {
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.max_connections = 1;
    })
    .await;
    let api = handle.api_url().to_owned();
    // The one regular connection: a chunk POST whose body never comes (held for 30 s).
    let mut slow = connect(&api).await;
    let head = format!("POST {SLOW_UPLOAD} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every reserve slot: the HTTP/2 preface and an empty SETTINGS frame, then silence.
    let mut squatters = Vec::new();
    for _ in 0..server_fixture::server::CONTROL_RESERVE {
        let mut s = connect(&api).await;
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .unwrap();
        squatters.push(s);
    }
    // The squatters are closed at the end of their lifetime: a control call gets through then
    // (polled, so a loaded machine's late timers cannot fail it; the slow upload holds the one
    // regular slot all along, so only a freed reserve slot can answer).
    let give_up = tokio::time::Instant::now()
        + server_fixture::server::RESERVE_LIFETIME
        + server_fixture::server::SHUTDOWN_GRACE
        + Duration::from_secs(20);
    let answered = loop {
        let r = reqwest::Client::new()
            .get(format!("{api}/__fixture/stats"))
            .header("x-fixture-token", TOKEN)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 200 {
                break true;
            }
        }
        if tokio::time::Instant::now() > give_up {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        answered,
        "no control call got through after the reserve's lifetime"
    );
    drop((slow, squatters));
    handle.shutdown().await;
}

/// An HTTP/2 connection (here h2c by its preface) with no request in flight is closed after
/// the idle timeout, as HTTP/1's header timeout closes an idle keep-alive connection: idle
/// HTTP/2 connections cannot hold the regular slots for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_gives_its_slot_back() {
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.max_connections = 1;
        c.idle_timeout_secs = 2;
    })
    .await;
    let api = handle.api_url().to_owned();
    let mut idle = connect(&api).await;
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = || async {
        reqwest::Client::new()
            .get(format!("{api}/__probe"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(probe().await, 503, "the idle connection holds the one slot");
    // Polled until the slot comes back, so late timers on a loaded machine cannot fail it.
    let mut statuses = Vec::new();
    for _ in 0..120 {
        let status = probe().await;
        statuses.push(status.as_u16());
        if status == 204 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        statuses.last(),
        Some(&204),
        "the idle connection never gave its slot back: {statuses:?}"
    );
    drop(idle);
    handle.shutdown().await;
}

/// A reserve connection is shut down at the end of its lifetime, but a request it is serving
/// then is not cut: a control call whose body is still arriving when the lifetime ends is
/// answered (it used to be closed `SHUTDOWN_GRACE` later, mid-body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_reserve_connection_does_not_cut_its_request() {
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.max_connections = 1;
        c.body_timeout_secs = 60;
    })
    .await;
    let api = handle.api_url().to_owned();
    // The one regular connection: a chunk POST whose body never comes.
    let mut slow = connect(&api).await;
    let head = format!("POST {SLOW_UPLOAD} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A reserve connection: a control call whose body is sent a byte at a time, over longer
    // than the connection's lifetime and the grace after it.
    let body = format!("{:width$}{{}}", "", width = 30);
    let mut s = connect(&api).await;
    let head = format!(
        "POST /__fixture/config HTTP/1.1\r\nhost: x\r\nx-fixture-token: {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let pace = (server_fixture::server::RESERVE_LIFETIME + server_fixture::server::SHUTDOWN_GRACE)
        .mul_f64(1.5)
        / u32::try_from(body.len()).unwrap();
    for b in body.bytes() {
        tokio::time::sleep(pace).await;
        if s.write_all(&[b]).await.is_err() {
            break;
        }
    }
    let line = status_line(&mut s, Duration::from_secs(30)).await;
    assert_eq!(
        line.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the control call in flight when its reserve connection's lifetime ended"
    );
    drop(slow);
    handle.shutdown().await;
}
