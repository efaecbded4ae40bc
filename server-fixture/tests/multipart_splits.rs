//! A whole multipart body is read whole however the transport splits it. Over HTTP/2 through
//! the emulated link a body arrives in DATA frames of any size, cut anywhere, with waits in
//! between; a parser that lost its place at a piece boundary would answer a browser's correct
//! chunk with a permanent 400. The body here is built as Chromium builds a `FormData` of the
//! protocol fields and a `Blob` (its boundary form, field order and part headers), with random
//! file bytes, and is fed through the fixture's own body watch into the parser as `/upload`
//! opens it (axum's `Multipart`) in thousands of random splits and waits, then through the
//! whole `/upload` route. One of those arrivals is the whole body at once right after the
//! parser's first "not yet": multer 3.1.0 alone refuses it as an incomplete stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use common::*;
use futures_util::Stream;
use server_fixture::body::watch_for_cut;
use server_fixture::random::Rng;
use server_fixture::upload::open_multipart;

/// Chromium's `FormData` boundary: `----WebKitFormBoundary` and 16 characters of this alphabet.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789AB";

fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn chromium_boundary(rng: &mut Rng) -> String {
    let mut b = "----WebKitFormBoundary".to_owned();
    for _ in 0..16 {
        b.push(ALPHABET[below(rng, ALPHABET.len())] as char);
    }
    b
}

/// The body Chromium sends for `FormData` `fields` then `file` as a `Blob` named "blob".
fn chromium_body(boundary: &str, fields: &[(String, String)], file: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

/// File bytes with many carriage returns and line feeds, and now and then a near miss of the
/// boundary (its start with one byte changed), so that the parser's partial-boundary handling
/// is exercised, not just its fast path.
fn tricky_bytes(rng: &mut Rng, len: usize, boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let near = format!("\r\n--{boundary}");
    while out.len() < len {
        match below(rng, 40) {
            0 => {
                let mut miss = near.as_bytes()[..1 + below(rng, near.len() - 1)].to_vec();
                let last = miss.len() - 1;
                miss[last] ^= 0x20;
                out.extend_from_slice(&miss);
            }
            1..=4 => out.extend_from_slice(b"\r\n"),
            5..=6 => out.push(b'\r'),
            7 => out.push(b'-'),
            _ => out.push(rng.next_u64() as u8),
        }
    }
    out.truncate(len);
    out
}

/// The points where the body is split: some random, some inside every `\r\n--boundary`.
fn split_points(rng: &mut Rng, body: &[u8], boundary: &str) -> Vec<usize> {
    let mut cuts = Vec::new();
    match below(rng, 4) {
        // Small pieces of random size (1 byte to a few KiB).
        0 => {
            let most = [1, 3, 17, 200, 4096][below(rng, 5)];
            let mut at = 0;
            while at < body.len() {
                at += 1 + below(rng, most);
                cuts.push(at);
            }
        }
        // A few cuts anywhere.
        1 => {
            for _ in 0..1 + below(rng, 40) {
                cuts.push(1 + below(rng, body.len() - 1));
            }
        }
        // Cuts inside and around every delimiter, one to three each.
        _ => {
            let delim = format!("--{boundary}");
            let mut from = 0;
            while let Some(i) = find(&body[from..], delim.as_bytes()) {
                let at = from + i;
                for _ in 0..1 + below(rng, 3) {
                    let lo = at.saturating_sub(4);
                    cuts.push(lo + below(rng, delim.len() + 10));
                }
                from = at + 1;
            }
        }
    }
    cuts.retain(|&c| c > 0 && c < body.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A body stream that yields `pieces` in order and, before those whose `waits` is true,
/// reports "not yet" once (waking itself), as a connection does between frames.
struct Pieces {
    pieces: VecDeque<Bytes>,
    waits: VecDeque<bool>,
}

impl Stream for Pieces {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.waits.pop_front() == Some(true) {
            self.waits.push_front(false);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.pieces.pop_front().map(Ok))
    }
}

fn split_body(rng: &mut Rng, body: &[u8], cuts: &[usize]) -> Body {
    let mut pieces = VecDeque::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        pieces.push_back(Bytes::copy_from_slice(&body[from..c]));
        from = c;
    }
    let waits = match below(rng, 3) {
        // Everything at once, after a wait: the body arrives whole while the parser waits
        // for its first bytes (on a server, between two of its polls).
        0 => pieces.iter().enumerate().map(|(i, _)| i == 0).collect(),
        1 => pieces.iter().map(|_| below(rng, 2) == 0).collect(),
        _ => VecDeque::new(),
    };
    Body::from_stream(Pieces { pieces, waits })
}

/// The fields resumable-wasm sends with chunk `n` of e2e 15's file, in its order.
fn fields(n: u64) -> Vec<(String, String)> {
    vec![
        ("resumableChunkNumber".into(), n.to_string()),
        ("resumableChunkSize".into(), "65536".into()),
        ("resumableCurrentChunkSize".into(), "65536".into()),
        ("resumableTotalSize".into(), "8388707".into()),
        ("resumableType".into(), String::new()),
        (
            "resumableIdentifier".into(),
            "8388707-auto-h2-full-bufferbin".into(),
        ),
        ("resumableFilename".into(), "auto-h2-full-buffer.bin".into()),
        (
            "resumableRelativePath".into(),
            "auto-h2-full-buffer.bin".into(),
        ),
        ("resumableTotalChunks".into(), "128".into()),
    ]
}

/// Reads every part of `body` as `/upload` does, behind the fixture's body watch.
async fn parse(
    boundary: &str,
    body: Body,
    declared: u64,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let (body, _watch) = watch_for_cut(body, Some(declared));
    let req = Request::post("/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .unwrap();
    let mut mp = open_multipart(req).await.map_err(|e| e.message)?;
    let mut parts = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_owned();
        let mut value = Vec::new();
        while let Some(piece) = field.chunk().await.map_err(|e| e.body_text())? {
            value.extend_from_slice(&piece);
        }
        parts.push((name, value));
    }
    Ok(parts)
}

#[tokio::test]
async fn a_chromium_form_body_parses_whole_however_it_is_split() {
    let mut rng = Rng::new(27);
    for round in 0..3000 {
        let boundary = chromium_boundary(&mut rng);
        let len = [0, 1, 2, 100, 4096, 64 * 1024][below(&mut rng, 6)];
        let file = tricky_bytes(&mut rng, len, &boundary);
        let fields = fields(1 + below(&mut rng, 128) as u64);
        let body = chromium_body(&boundary, &fields, &file);
        let cuts = split_points(&mut rng, &body, &boundary);
        let split = split_body(&mut rng, &body, &cuts);
        let parts = parse(&boundary, split, body.len() as u64)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}; cut at {cuts:?} of {}", body.len()));
        let mut expected: Vec<(String, Vec<u8>)> = fields
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        expected.push(("file".to_owned(), file));
        assert!(
            parts == expected,
            "round {round}: the parts differ from what was sent; cut at {cuts:?}"
        );
    }
}

/// The same through the whole `/upload` route (record, CORS, faults, drain, body watch,
/// store): every chunk of a file, each body split at random, is stored, and the file is whole.
#[tokio::test]
async fn every_chunk_of_a_file_is_stored_however_its_body_is_split() {
    let fx = fixture();
    let mut rng = Rng::new(105);
    let cs = 4096usize;
    let data: Vec<u8> = (0..40 * cs + 99).map(|_| rng.next_u64() as u8).collect();
    let up = Upload {
        dialect: Dialect::Resumable,
        id: "split-file",
        name: "split.bin",
        data: &data,
        cs: cs as u64,
        force: false,
    };
    for n in 1..=up.total_chunks() {
        let boundary = chromium_boundary(&mut rng);
        let body = chromium_body(&boundary, &up.params(n), up.bytes(n));
        let cuts = split_points(&mut rng, &body, &boundary);
        let req = Request::post(format!("/upload?{}", query(&up.params(n))))
            .header("origin", PAGE)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("content-length", body.len().to_string())
            .body(split_body(&mut rng, &body, &cuts))
            .unwrap();
        let resp = send(&fx.router, req).await;
        assert_eq!(
            resp.status,
            StatusCode::OK,
            "chunk {n}: {}; cut at {cuts:?}",
            resp.body
        );
    }
    let files = files_json(&fx.router).await;
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    let stored = std::fs::read(files[0]["path"].as_str().unwrap()).unwrap();
    assert!(stored == data, "the stored file differs from the one sent");
}
