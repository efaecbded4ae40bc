//! HTTP/2 under abuse and its settings: at most `H2_MAX_STREAMS` streams per connection (more
//! are refused, the fixture keeps serving), and the large windows that let a body cross a long
//! link in a few round trips. Checked on the frames and settings, not on timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use server_fixture::server::{H2_MAX_STREAMS, H2_STREAM_WINDOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK integer with a 7-bit prefix (RFC 7541 §5.1).
fn hpack_len(out: &mut Vec<u8>, n: usize) {
    if n < 127 {
        out.push(u8::try_from(n).unwrap());
        return;
    }
    out.push(127);
    let mut rest = n - 127;
    while rest >= 128 {
        out.push(u8::try_from(rest % 128).unwrap() | 0x80);
        rest /= 128;
    }
    out.push(u8::try_from(rest).unwrap());
}

/// A header block of literals without indexing (RFC 7541 §6.2.2): no table, no Huffman.
fn header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0);
        hpack_len(&mut out, name.len());
        out.extend(name.as_bytes());
        hpack_len(&mut out, value.len());
        out.extend(value.as_bytes());
    }
    out
}

/// The frames the server sent, as (type, stream, payload), read until `done` says so or the
/// server goes quiet for a second.
async fn read_frames(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut done: impl FnMut(&[(u8, u32, Vec<u8>)]) -> bool,
) -> Vec<(u8, u32, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            frames.push((buf[3], stream, buf[9..9 + len].to_vec()));
            buf.drain(..9 + len);
        }
        if done(&frames) {
            return frames;
        }
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return frames,
        }
    }
}

/// Opens an HTTP/2 connection (prior knowledge) and settles the settings exchange.
async fn h2_connection(api: &str) -> (TcpStream, Vec<u8>) {
    let addr = api
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    s.write_all(&hello).await.unwrap();
    let mut buf = Vec::new();
    let frames = read_frames(&mut s, &mut buf, |f| {
        f.iter()
            .any(|(kind, _, p)| *kind == SETTINGS && !p.is_empty())
    })
    .await;
    assert!(frames.iter().any(|(k, _, _)| *k == SETTINGS), "{frames:?}");
    s.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
    (s, buf)
}

/// 8 connections each open 48 chunk POSTs whose bodies never come: each connection gets
/// `H2_MAX_STREAMS` of them served (they wait for their bodies) and the rest refused with
/// `REFUSED_STREAM`, no GOAWAY; the fixture then still answers a new client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_with_many_streams_get_refusals_not_a_crash() {
    const CONNECTIONS: usize = 8;
    const STREAMS: u32 = 48;
    let (_tmp, fx) = spawn_tweaked(|_| {}).await;
    let api = fx.api_url().to_owned();
    let mut conns = Vec::new();
    for c in 0..CONNECTIONS {
        let (mut s, mut buf) = h2_connection(&api).await;
        let mut burst = Vec::new();
        for i in 0..STREAMS {
            let path = format!(
                "/upload?resumableChunkNumber=1&resumableChunkSize=1000&resumableTotalSize=1000\
                 &resumableIdentifier=many-{c}-{i}&resumableFilename=f.bin"
            );
            let block = header_block(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", &path),
                ("content-type", "application/octet-stream"),
                ("content-length", "1000"),
            ]);
            burst.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &block));
        }
        s.write_all(&burst).await.unwrap();
        let refused_wanted = (STREAMS - H2_MAX_STREAMS) as usize;
        let frames = read_frames(&mut s, &mut buf, |f| {
            f.iter().filter(|(k, _, _)| *k == RST_STREAM).count() >= refused_wanted
        })
        .await;
        let refused: Vec<u32> = frames
            .iter()
            .filter(|(k, _, p)| *k == RST_STREAM && p[..4] == REFUSED_STREAM.to_be_bytes())
            .map(|(_, stream, _)| *stream)
            .collect();
        assert_eq!(
            refused.len(),
            refused_wanted,
            "connection {c}: {STREAMS} streams at once, {} refused",
            refused.len()
        );
        // The streams beyond the cap are the ones refused.
        assert!(
            refused.iter().all(|id| *id > 2 * H2_MAX_STREAMS),
            "{refused:?}"
        );
        assert!(
            !frames.iter().any(|(k, _, _)| *k == GOAWAY),
            "connection {c} was closed: {frames:?}"
        );
        conns.push(s);
    }
    // The served streams are handled (each waits for its body).
    let served = (CONNECTIONS * H2_MAX_STREAMS as usize) as u64;
    let mut seen = 0;
    for _ in 0..500 {
        seen = fx.stats()["requests"]["POST"].as_u64().unwrap_or(0);
        if seen >= served {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, served, "requests the fixture handled");
    let r = reqwest::Client::new()
        .get(format!("{api}/__probe"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the fixture still serves");
    drop(conns);
    fx.shutdown().await;
}

/// The settings a client sees: at most `H2_MAX_STREAMS` streams, and a stream may send
/// `H2_STREAM_WINDOW` bytes before the fixture's first window update (HTTP/2's default, 64 KiB
/// per round trip, would take 128 round trips for 8 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_settings_cap_the_streams_and_open_large_windows() {
    let (_tmp, fx) = spawn_tweaked(|_| {}).await;
    let addr = fx
        .api_url()
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let tcp = TcpStream::connect(&addr).await.unwrap();
    // The client's own send buffer must not be the limit.
    let (sender, mut conn) = h2::client::Builder::new()
        .max_send_buffer_size(64 * 1024 * 1024)
        .handshake::<_, axum::body::Bytes>(tcp)
        .await
        .unwrap();
    // The server's settings arrive with its first frames.
    let mut sender = {
        let ready = sender.ready();
        tokio::select! {
            r = ready => r.unwrap(),
            _ = &mut conn => panic!("the connection ended"),
        }
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = axum::http::Request::post(format!("http://{addr}/upload"))
        .header("content-type", "application/octet-stream")
        .body(())
        .unwrap();
    let (_response, mut stream) = sender.send_request(req, false).unwrap();
    stream.reserve_capacity(64 * 1024 * 1024);
    let mut capacity = 0;
    for _ in 0..100 {
        match futures_util::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(c)) => capacity = capacity.max(c),
            _ => break,
        }
        if capacity >= H2_STREAM_WINDOW as usize {
            break;
        }
    }
    assert_eq!(
        capacity, H2_STREAM_WINDOW as usize,
        "the stream's send window"
    );
    driver.abort();
    fx.shutdown().await;
}

/// With the process's open files nearly used up (`ulimit -n 32`), the chunks that cannot open
/// their temporary file are answered a retryable 503, never a 500; once the connection is gone
/// the fixture serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_is_a_retryable_503() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 32 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_server-fixture"))
        .args([
            "--page-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--no-page",
            "--control-token",
            TOKEN,
            "--data-dir",
        ])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line = start_line(&mut child);
    let api = line["api"].as_str().unwrap().to_owned();
    let (mut s, _) = h2_connection(&api).await;
    let mut burst = Vec::new();
    for i in 0..H2_MAX_STREAMS {
        let path = format!(
            "/upload?resumableChunkNumber=1&resumableChunkSize=1000&resumableTotalSize=1000\
             &resumableIdentifier=fd-{i}&resumableFilename=f.bin"
        );
        let block = header_block(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "x"),
            (":path", &path),
            ("content-type", "application/octet-stream"),
            ("content-length", "1000"),
        ]);
        burst.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &block));
    }
    s.write_all(&burst).await.unwrap();
    // Let every stream reach its handler, then cut them all: the fixture's files come back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(s);
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("{api}/__fixture/stats"))
            .header("x-fixture-token", TOKEN)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            let stats: serde_json::Value = r.json().await.unwrap();
            statuses = stats["log"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["status"].as_u64())
                .collect();
            if statuses.len() == H2_MAX_STREAMS as usize {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(statuses.len(), H2_MAX_STREAMS as usize, "{statuses:?}");
    assert!(
        statuses.contains(&503),
        "no chunk ran out of files: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 408),
        "only 503 (out of files) and 408 (cut by the closed connection): {statuses:?}"
    );
}
