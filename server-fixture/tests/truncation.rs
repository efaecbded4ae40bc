//! A request body that the transport cuts short (an HTTP/2 stream reset mid-body, a connection
//! closed mid-body behind the emulated link) is the transport's fault, not the client's: the
//! fixture answers it with a retryable 408 (which the client may never read), stores nothing,
//! and the client's retry of the same chunk succeeds. HTTP/2 reports a `RST_STREAM(NO_ERROR)`
//! as a clean end of the body (RFC 9113 §8.1, as hyper does), so without the body's declared
//! length a parser would take the cut body for a whole, malformed one and answer a permanent
//! 400. Every wait here is for an event (bytes read, a status logged), bounded by a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use server_fixture::{Handle, LinkSpec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const CS: usize = 64 * 1024;

/// A one-chunk upload whose first half is sent before the cut.
fn upload<'a>(id: &'a str, data: &'a [u8]) -> Upload<'a> {
    Upload {
        dialect: Dialect::Resumable,
        id,
        name: "cut.bin",
        data,
        cs: CS as u64,
        force: false,
    }
}

/// The chunk POST as the parts a raw client sends: path and query, headers, body.
async fn chunk_post(up: &Upload<'_>, format: Format) -> (String, Vec<(String, String)>, Bytes) {
    let req: Request<Body> = up.post_req(1, format);
    let target = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    (target, headers, body)
}

/// Waits until the fixture has read `bytes` request-body bytes in all.
async fn wait_until_read(fx: &Handle, bytes: u64) {
    for _ in 0..500 {
        if fx.stats()["bytes_received"].as_u64().unwrap() >= bytes {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fixture never read {bytes} body bytes: {}", fx.stats());
}

/// Waits until the log holds `n` answered `/upload` POSTs; returns their statuses.
async fn posts_answered(fx: &Handle, n: usize) -> Vec<u64> {
    for _ in 0..500 {
        let stats = fx.stats();
        let statuses: Vec<u64> = stats["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "POST" && e["path"] == "/upload")
            .filter_map(|e| e["status"].as_u64())
            .collect();
        if statuses.len() >= n {
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} POSTs were never answered: {}", fx.stats());
}

/// Nothing of the cut chunk is stored; a whole retry stores it and completes the file.
async fn nothing_stored_then_the_retry_succeeds(fx: &Handle, up: &Upload<'_>, format: Format) {
    let client = reqwest::Client::new();
    let api = fx.api_url();
    let probe = format!("{api}/upload?{}", query(&up.params(1)));
    let r = client.get(&probe).send().await.unwrap();
    assert_eq!(r.status(), 204, "the cut chunk must not be stored");
    let (target, headers, body) = chunk_post(up, format).await;
    let mut retry = client.post(format!("{api}{target}"));
    for (k, v) in &headers {
        retry = retry.header(k, v);
    }
    let r = retry.body(body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let files = control_json(&client, &format!("{api}/__fixture/files")).await;
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    assert_eq!(files[0]["sha256"], sha256_hex(up.data));
}

/// A raw HTTP/2 client (prior knowledge, no TLS) sends half of the body, then resets the
/// stream with `reason`.
async fn reset_mid_body(fx: &Handle, up: &Upload<'_>, format: Format, reason: h2::Reason) {
    let (target, headers, body) = chunk_post(up, format).await;
    let addr = fx.api_url().trim_start_matches("http://").to_owned();
    let tcp = TcpStream::connect(addr.replace("localhost", "127.0.0.1"))
        .await
        .unwrap();
    let (mut sender, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::post(format!("http://{addr}{target}"));
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .header("content-length", body.len().to_string())
        .body(())
        .unwrap();
    let before = fx.stats()["bytes_received"].as_u64().unwrap();
    let (_response, mut stream) = sender.send_request(req, false).unwrap();
    let half = body.slice(..body.len() / 2);
    stream.send_data(half.clone(), false).unwrap();
    wait_until_read(fx, before + half.len() as u64).await;
    stream.send_reset(reason);
    let statuses = posts_answered(fx, 1).await;
    assert_eq!(
        statuses,
        [408],
        "a {format:?} body cut by RST_STREAM({reason:?}) is answered a retryable 408: {}",
        fx.stats()["log"]
    );
    drop(sender);
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_stream_reset_mid_body_is_retryable_and_stores_nothing() {
    for format in [Format::Multipart, Format::Octet] {
        for reason in [h2::Reason::NO_ERROR, h2::Reason::CANCEL] {
            let (_tmp, fx) = spawn_tweaked(|_| {}).await;
            let data = pattern(CS, 3);
            let up = upload("h2-reset", &data);
            reset_mid_body(&fx, &up, format, reason).await;
            nothing_stored_then_the_retry_succeeds(&fx, &up, format).await;
        }
    }
}

/// Through the emulated link, an HTTP/1.1 client sends half of the body and closes its
/// connection: what the link held is delivered, then the connection ends mid-body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_mid_body_is_retryable_and_stores_nothing() {
    for format in [Format::Multipart, Format::Octet] {
        let (_tmp, fx) =
            spawn_tweaked(|c| c.runtime.link = Some("rtt=20,up=50".parse::<LinkSpec>().unwrap()))
                .await;
        let data = pattern(CS, 5);
        let up = upload("link-cut", &data);
        let (target, headers, body) = chunk_post(&up, format).await;
        let addr = fx.api_url().trim_start_matches("http://").to_owned();
        let mut tcp = TcpStream::connect(addr.replace("localhost", "127.0.0.1"))
            .await
            .unwrap();
        let mut head = format!("POST {target} HTTP/1.1\r\nhost: {addr}\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        tcp.write_all(head.as_bytes()).await.unwrap();
        let half = &body[..body.len() / 2];
        tcp.write_all(half).await.unwrap();
        wait_until_read(&fx, half.len() as u64).await;
        drop(tcp);
        let statuses = posts_answered(&fx, 1).await;
        assert_eq!(
            statuses,
            [408],
            "a {format:?} body cut with its connection is answered a retryable 408: {}",
            fx.stats()["log"]
        );
        nothing_stored_then_the_retry_succeeds(&fx, &up, format).await;
    }
}
