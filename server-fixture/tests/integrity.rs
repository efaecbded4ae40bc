//! Integrity: chunks carrying a checksum are verified before they are stored (460 and nothing
//! stored on a mismatch), probes with a checksum answer 200 only for the same bytes, the
//! whole-file digest is checked at completion and listed, and `corrupt_rate` corrupts bodies
//! before that verification (and is stored as is without a checksum).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use sha2::{Digest, Sha256};

fn crc_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32c::crc32c(bytes))
}

/// The integrity parameters of chunk `n` of `u` under `alg`; `file`: the file digest to add.
fn checksum_params(
    u: &Upload<'_>,
    n: u64,
    alg: &str,
    file: Option<String>,
) -> Vec<(String, String)> {
    let chunk = match alg {
        "crc32c" => crc_hex(u.bytes(n)),
        _ => sha256_hex(u.bytes(n)),
    };
    let d = u.dialect;
    let mut v = vec![
        (d.p("ChecksumAlgorithm"), alg.to_owned()),
        (d.p("ChunkChecksum"), chunk),
    ];
    if let Some(f) = file {
        v.push((d.p("FileChecksum"), f));
    }
    v
}

fn probe(u: &Upload<'_>, n: u64, extra: &[(String, String)]) -> Request<Body> {
    let mut params = u.params(n);
    params.extend_from_slice(extra);
    Request::get(format!("/upload?{}", query(&params)))
        .header("origin", PAGE)
        .body(Body::empty())
        .unwrap()
}

fn post(
    u: &Upload<'_>,
    n: u64,
    format: Format,
    extra: &[(String, String)],
    bytes: &[u8],
) -> Request<Body> {
    let mut params = u.params(n);
    params.extend_from_slice(extra);
    match format {
        Format::Multipart => Request::post("/upload")
            .header("origin", PAGE)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(multipart(&params, Some(("file", bytes)))))
            .unwrap(),
        Format::Octet => Request::post(format!("/upload?{}", query(&params)))
            .header("origin", PAGE)
            .body(Body::from(bytes.to_vec()))
            .unwrap(),
    }
}

async fn stats(f: &Fixture) -> serde_json::Value {
    f.state.stats_json()
}

#[tokio::test]
async fn checked_chunks_are_stored_and_the_file_digest_is_verified_and_listed() {
    for dialect in [Dialect::Resumable, Dialect::Flow] {
        for format in [Format::Multipart, Format::Octet] {
            for alg in ["crc32c", "sha256"] {
                let f = fixture();
                let data = pattern(3_500, 9);
                let u = Upload {
                    dialect,
                    id: "3500-a",
                    name: "a.bin",
                    data: &data,
                    cs: 1000,
                    force: false,
                };
                let digest = match alg {
                    "crc32c" => crc_hex(&data),
                    _ => {
                        let mut h = Sha256::new();
                        for n in 1..=u.total_chunks() {
                            h.update(Sha256::digest(u.bytes(n)));
                        }
                        format!("{:x}", h.finalize())
                    }
                };
                // Chunks out of order; the digest comes with the last one read (chunk 1 here).
                for n in [3, 2, 1] {
                    let file = (n == 1).then(|| digest.clone());
                    let extra = checksum_params(&u, n, alg, file);
                    let r = send(&f.router, probe(&u, n, &extra)).await;
                    assert_eq!(r.status, StatusCode::NO_CONTENT);
                    let r = send(&f.router, post(&u, n, format, &extra, u.bytes(n))).await;
                    assert_eq!(
                        r.status,
                        StatusCode::OK,
                        "{dialect:?} {format:?} {alg} chunk {n}: {}",
                        r.body
                    );
                    let r = send(&f.router, probe(&u, n, &extra)).await;
                    assert_eq!(r.status, StatusCode::OK, "stored with this checksum");
                }
                let files = files_json(&f.router).await;
                let rec = &files.as_array().unwrap()[0];
                assert_eq!(rec["sha256"], sha256_hex(&data));
                assert_eq!(
                    rec["crc32c"],
                    crc_hex(&data),
                    "the file's CRC-32C, combined from the chunks'"
                );
                assert_eq!(rec["checksum"]["algorithm"], alg);
                assert_eq!(rec["checksum"]["value"], digest);
            }
        }
    }
}

#[tokio::test]
async fn a_mismatching_chunk_is_refused_with_460_and_nothing_is_stored() {
    for format in [Format::Multipart, Format::Octet] {
        let f = fixture();
        let data = pattern(2_000, 1);
        let u = Upload {
            dialect: Dialect::Resumable,
            id: "2000-b",
            name: "b.bin",
            data: &data,
            cs: 1000,
            force: false,
        };
        let extra = checksum_params(&u, 1, "crc32c", None);
        let mut bad = u.bytes(1).to_vec();
        bad[10] ^= 4;
        let r = send(&f.router, post(&u, 1, format, &extra, &bad)).await;
        assert_eq!(r.status.as_u16(), 460, "{}", r.body);
        assert!(r.body.contains("chunk_checksum_mismatch"), "{}", r.body);
        let r = send(&f.router, probe(&u, 1, &[])).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "nothing stored");
        assert_eq!(stats(&f).await["checksum_mismatches"], 1);
        // The right bytes are then accepted.
        let r = send(&f.router, post(&u, 1, format, &extra, u.bytes(1))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

#[tokio::test]
async fn a_probe_with_another_checksum_is_absent() {
    let f = fixture();
    let data = pattern(2_000, 2);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "2000-c",
        name: "c.bin",
        data: &data,
        cs: 1000,
        force: false,
    };
    let extra = checksum_params(&u, 1, "crc32c", None);
    let r = send(
        &f.router,
        post(&u, 1, Format::Multipart, &extra, u.bytes(1)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let other = vec![
        ("flowChecksumAlgorithm".to_owned(), "crc32c".to_owned()),
        ("flowChunkChecksum".to_owned(), "00000000".to_owned()),
    ];
    assert_eq!(
        send(&f.router, probe(&u, 1, &other)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&f.router, probe(&u, 1, &extra)).await.status,
        StatusCode::OK
    );
    let sha = checksum_params(&u, 1, "sha256", None);
    assert_eq!(
        send(&f.router, probe(&u, 1, &sha)).await.status,
        StatusCode::OK,
        "any algorithm"
    );
}

#[tokio::test]
async fn a_wrong_file_digest_fails_the_completion() {
    let f = fixture();
    let data = pattern(2_000, 3);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "2000-d",
        name: "d.bin",
        data: &data,
        cs: 1000,
        force: false,
    };
    let e1 = checksum_params(&u, 1, "crc32c", Some("12345678".into()));
    assert_eq!(
        send(&f.router, post(&u, 1, Format::Multipart, &e1, u.bytes(1)))
            .await
            .status,
        StatusCode::OK
    );
    let e2 = checksum_params(&u, 2, "crc32c", Some("12345678".into()));
    let r = send(&f.router, post(&u, 2, Format::Multipart, &e2, u.bytes(2))).await;
    assert_eq!(r.status.as_u16(), 460, "{}", r.body);
    assert!(r.body.contains("file_checksum_mismatch"), "{}", r.body);
    assert_eq!(
        files_json(&f.router).await.as_array().unwrap().len(),
        0,
        "not published"
    );
}

#[tokio::test]
async fn bad_integrity_parameters_are_refused() {
    let f = fixture();
    let data = pattern(1_000, 4);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "1000-e",
        name: "e.bin",
        data: &data,
        cs: 1000,
        force: false,
    };
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("resumableChecksumAlgorithm", "md5"),
                ("resumableChunkChecksum", "00"),
            ],
            "checksum_algorithm_unsupported",
        ),
        (
            &[("resumableChecksumAlgorithm", "crc32c")],
            "resumableChunkChecksum",
        ),
        (
            &[
                ("resumableChecksumAlgorithm", "crc32c"),
                ("resumableChunkChecksum", "ABCDEF01"),
            ],
            "lowercase hex",
        ),
        (
            &[("resumableChunkChecksum", "abcdef01")],
            "resumableChecksumAlgorithm",
        ),
    ];
    for (params, says) in cases {
        let extra: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let r = send(
            &f.router,
            post(&u, 1, Format::Multipart, &extra, u.bytes(1)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{params:?}: {}", r.body);
        assert!(r.body.contains(says), "{params:?}: {}", r.body);
    }
}

#[tokio::test]
async fn corrupt_rate_corrupts_before_verification() {
    let f = fixture_with(|c| c.runtime.corrupt_rate = 1.0);
    let data = pattern(2_000, 5);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "2000-f",
        name: "f.bin",
        data: &data,
        cs: 1000,
        force: false,
    };
    // With a checksum: refused, nothing stored.
    let extra = checksum_params(&u, 1, "crc32c", None);
    let r = send(&f.router, post(&u, 1, Format::Octet, &extra, u.bytes(1))).await;
    assert_eq!(r.status.as_u16(), 460, "{}", r.body);
    // Without: stored corrupted, as a proxy that flips bits would make a naive server do.
    for n in 1..=2 {
        let r = send(&f.router, post(&u, n, Format::Multipart, &[], u.bytes(n))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let files = files_json(&f.router).await;
    let rec = &files.as_array().unwrap()[0];
    assert_ne!(rec["sha256"], sha256_hex(&data), "the stored file differs");
    let stored = std::fs::read(rec["path"].as_str().unwrap()).unwrap();
    let flipped: u32 = stored
        .iter()
        .zip(&data)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(flipped, 2, "one bit per chunk body");
    let s = stats(&f).await;
    assert_eq!(s["corrupted"], 3);
    assert_eq!(s["checksum_mismatches"], 1);
}
