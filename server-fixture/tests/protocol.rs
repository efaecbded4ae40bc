//! Protocol tests: both dialects and both body formats end to end, probes, strict rejection of
//! bad input without writing outside the data directory, concurrency and restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use server_fixture::AppState;

async fn upload_all(f: &Fixture, u: &Upload<'_>, format: Format) {
    let n = u.total_chunks();
    for i in 1..=n {
        let r = send(&f.router, u.probe_req(i)).await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "probe before, chunk {i}: {}",
            r.body
        );
        let r = send(&f.router, u.post_req(i, format)).await;
        assert_eq!(r.status, StatusCode::OK, "post chunk {i}: {}", r.body);
        let r = send(&f.router, u.probe_req(i)).await;
        assert_eq!(r.status, StatusCode::OK, "probe after, chunk {i}");
    }
}

#[tokio::test]
async fn both_dialects_both_formats_end_to_end() {
    for dialect in [Dialect::Resumable, Dialect::Flow] {
        for format in [Format::Multipart, Format::Octet] {
            for force in [false, true] {
                let f = fixture();
                let data = pattern(2_459, 3);
                let u = Upload {
                    dialect,
                    id: "2459-photojpg",
                    name: "photo.jpg",
                    data: &data,
                    cs: 1000,
                    force,
                };
                assert_eq!(u.total_chunks(), if force { 3 } else { 2 });
                upload_all(&f, &u, format).await;
                let files = files_json(&f.router).await;
                let files = files.as_array().unwrap();
                assert_eq!(files.len(), 1, "{dialect:?} {format:?} force={force}");
                let rec = &files[0];
                assert_eq!(rec["name"], "photo.jpg");
                assert_eq!(rec["identifier"], "2459-photojpg");
                assert_eq!(rec["size"], 2459);
                assert_eq!(rec["chunks"], u.total_chunks());
                assert_eq!(rec["sha256"], sha256_hex(&data));
                let path = std::path::PathBuf::from(rec["path"].as_str().unwrap());
                assert_eq!(std::fs::read(&path).unwrap(), data);
                assert!(path.starts_with(f.data_dir().canonicalize().unwrap()));
                // Re-sending a stored chunk with the same bytes is fine, even after completion.
                let r = send(&f.router, u.post_req(1, format)).await;
                assert_eq!(r.status, StatusCode::OK);
                assert_eq!(files_json(&f.router).await.as_array().unwrap().len(), 1);
            }
        }
    }
}

#[tokio::test]
async fn empty_and_small_files() {
    let f = fixture();
    let empty = Upload {
        dialect: Dialect::Flow,
        id: "0-empty",
        name: "empty.bin",
        data: &[],
        cs: 1024,
        force: false,
    };
    upload_all(&f, &empty, Format::Octet).await;
    let small_data = pattern(100, 1);
    let small = Upload {
        dialect: Dialect::Resumable,
        id: "100-small",
        name: "empty.bin",
        data: &small_data,
        cs: 1024,
        force: false,
    };
    upload_all(&f, &small, Format::Multipart).await;
    let files = files_json(&f.router).await;
    let files = files.as_array().unwrap();
    assert_eq!(files.len(), 2);
    // Same sanitised name twice: the second gets a unique name.
    let names: Vec<&str> = files.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"empty.bin") && names.contains(&"empty-1.bin"),
        "{names:?}"
    );
    let e = files.iter().find(|r| r["size"] == 0).unwrap();
    assert_eq!(e["sha256"], sha256_hex(&[]));
}

#[tokio::test]
async fn parameters_in_query_only_for_multipart_and_body_wins() {
    let f = fixture();
    let data = pattern(50, 2);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "q-only",
        name: "q.txt",
        data: &data,
        cs: 100,
        force: false,
    };
    // Multipart body with only the file part; parameters in the query.
    let req = Request::post(format!("/upload?{}", query(&u.params(1))))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(multipart(&[], Some(("file", &data)))))
        .unwrap();
    assert_eq!(send(&f.router, req).await.status, StatusCode::OK);

    // Body wins over the query: a wrong identifier in the query is ignored.
    let u2 = Upload { id: "body-id", ..u };
    let mut q = u2.params(1);
    for (k, v) in &mut q {
        if k == "resumableIdentifier" {
            *v = "query-id".to_owned();
        }
    }
    let req = Request::post(format!("/upload?{}", query(&q)))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(multipart(&u2.params(1), Some(("file", &data)))))
        .unwrap();
    assert_eq!(send(&f.router, req).await.status, StatusCode::OK);
    let files = files_json(&f.router).await;
    let ids: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"body-id") && !ids.contains(&"query-id"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn custom_file_param_and_put() {
    let f = fixture_with(|c| c.file_param = "upload".to_owned());
    let data = pattern(10, 9);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "fp",
        name: "fp.txt",
        data: &data,
        cs: 100,
        force: false,
    };
    let req = Request::put("/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(multipart(&u.params(1), Some(("upload", &data)))))
        .unwrap();
    let r = send(&f.router, req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

struct Bad {
    what: &'static str,
    req: Request<Body>,
    status: u16,
    mentions: &'static str,
}

fn octet(params: &[(String, String)], body: &[u8]) -> Request<Body> {
    Request::post(format!("/upload?{}", query(params)))
        .header("content-type", "application/octet-stream")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn with(params: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = params.iter().filter(|(k, _)| k != key).cloned().collect();
    v.push((key.to_owned(), value.to_owned()));
    v
}

fn without(params: &[(String, String)], key: &str) -> Vec<(String, String)> {
    params.iter().filter(|(k, _)| k != key).cloned().collect()
}

#[tokio::test]
async fn bad_inputs_are_rejected_and_nothing_escapes() {
    let f = fixture_with(|c| {
        c.runtime.max_chunk_bytes = 64;
        c.runtime.max_file_bytes = 1000;
    });
    let data = pattern(40, 5);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "40-known",
        name: "known.txt",
        data: &data,
        cs: 20,
        force: false,
    };
    // Store chunk 1 of a known upload for the conflict cases.
    assert_eq!(
        send(&f.router, u.post_req(1, Format::Octet)).await.status,
        StatusCode::OK
    );
    let p1 = u.params(1);
    let p2 = u.params(2);
    let c2 = u.bytes(2).to_vec();
    let fresh = |id: &str| with(&p2, "resumableIdentifier", id);
    let mp = |fields: &[(String, String)], file: Option<(&str, &[u8])>| {
        Request::post("/upload")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(multipart(fields, file)))
            .unwrap()
    };
    let cases = vec![
        Bad {
            what: "NUL in identifier",
            req: octet(&fresh("a\0b"), &c2),
            status: 400,
            mentions: "resumableIdentifier",
        },
        Bad {
            what: "control char in identifier",
            req: octet(&fresh("a\nb"), &c2),
            status: 400,
            mentions: "resumableIdentifier",
        },
        Bad {
            what: "../ in filename",
            req: octet(
                &with(&fresh("n1"), "resumableFilename", "../../evil.txt"),
                &c2,
            ),
            status: 400,
            mentions: "resumableFilename",
        },
        Bad {
            what: "absolute filename",
            req: octet(&with(&fresh("n2"), "resumableFilename", "/etc/passwd"), &c2),
            status: 400,
            mentions: "resumableFilename",
        },
        Bad {
            what: "backslash filename",
            req: octet(
                &with(&fresh("n3"), "resumableFilename", "..\\..\\evil"),
                &c2,
            ),
            status: 400,
            mentions: "resumableFilename",
        },
        Bad {
            what: "NUL in filename",
            req: octet(&with(&fresh("n4"), "resumableFilename", "a\0.txt"), &c2),
            status: 400,
            mentions: "resumableFilename",
        },
        Bad {
            what: "filename ..",
            req: octet(&with(&fresh("n5"), "resumableFilename", ".."), &c2),
            status: 400,
            mentions: "resumableFilename",
        },
        Bad {
            what: "../ in relativePath",
            req: octet(
                &with(&fresh("r1"), "resumableRelativePath", "a/../../x"),
                &c2,
            ),
            status: 400,
            mentions: "resumableRelativePath",
        },
        Bad {
            what: "absolute relativePath",
            req: octet(&with(&fresh("r2"), "resumableRelativePath", "/abs/x"), &c2),
            status: 400,
            mentions: "resumableRelativePath",
        },
        Bad {
            what: "drive relativePath",
            req: octet(&with(&fresh("r3"), "resumableRelativePath", "C:\\x"), &c2),
            status: 400,
            mentions: "resumableRelativePath",
        },
        Bad {
            what: "NUL in relativePath",
            req: octet(&with(&fresh("r4"), "resumableRelativePath", "d/a\0b"), &c2),
            status: 400,
            mentions: "resumableRelativePath",
        },
        Bad {
            what: "chunk number 0",
            req: octet(&with(&fresh("z1"), "resumableChunkNumber", "0"), &c2),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "negative chunk number",
            req: octet(&with(&fresh("z2"), "resumableChunkNumber", "-1"), &c2),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "non-numeric chunk number",
            req: octet(&with(&fresh("z3"), "resumableChunkNumber", "two"), &c2),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "overflowing chunk number",
            req: octet(
                &with(
                    &fresh("z4"),
                    "resumableChunkNumber",
                    "99999999999999999999999",
                ),
                &c2,
            ),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "chunk size 0",
            req: octet(&with(&fresh("z5"), "resumableChunkSize", "0"), &c2),
            status: 400,
            mentions: "resumableChunkSize",
        },
        Bad {
            what: "negative total size",
            req: octet(&with(&fresh("z6"), "resumableTotalSize", "-40"), &c2),
            status: 400,
            mentions: "resumableTotalSize",
        },
        Bad {
            what: "exponent total size",
            req: octet(&with(&fresh("z7"), "resumableTotalSize", "4e1"), &c2),
            status: 400,
            mentions: "resumableTotalSize",
        },
        Bad {
            what: "overflowing total size",
            req: octet(
                &with(&fresh("z8"), "resumableTotalSize", "18446744073709551616"),
                &c2,
            ),
            status: 400,
            mentions: "resumableTotalSize",
        },
        Bad {
            what: "fractional currentChunkSize",
            req: octet(
                &with(&fresh("z9"), "resumableCurrentChunkSize", "20.0"),
                &c2,
            ),
            status: 400,
            mentions: "resumableCurrentChunkSize",
        },
        Bad {
            what: "non-numeric totalChunks",
            req: octet(&with(&fresh("z10"), "resumableTotalChunks", "x"), &c2),
            status: 400,
            mentions: "resumableTotalChunks",
        },
        Bad {
            what: "chunk beyond the count",
            req: octet(&with(&fresh("b1"), "resumableChunkNumber", "3"), &c2),
            status: 400,
            mentions: "beyond the chunk count",
        },
        Bad {
            what: "huge chunk number beyond count",
            req: octet(
                &with(
                    &with(&fresh("b2"), "resumableChunkNumber", "18446744073709551615"),
                    "resumableChunkSize",
                    "18446744073709551615",
                ),
                &c2,
            ),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "currentChunkSize != body",
            req: octet(&fresh("s1"), &c2[..10]),
            status: 400,
            mentions: "resumableCurrentChunkSize",
        },
        Bad {
            what: "body does not fit the plan",
            req: octet(
                &without(&fresh("s2"), "resumableCurrentChunkSize"),
                &c2[..7],
            ),
            status: 400,
            mentions: "must hold",
        },
        Bad {
            what: "currentChunkSize does not fit the plan",
            req: octet(
                &with(&fresh("s3"), "resumableCurrentChunkSize", "7"),
                &c2[..7],
            ),
            status: 400,
            mentions: "resumableCurrentChunkSize",
        },
        Bad {
            what: "oversize body",
            req: octet(
                &[
                    ("resumableChunkNumber".into(), "1".into()),
                    ("resumableChunkSize".into(), "100".into()),
                    ("resumableTotalSize".into(), "100".into()),
                    ("resumableIdentifier".into(), "big".into()),
                    ("resumableFilename".into(), "big.bin".into()),
                ],
                &[0u8; 100],
            ),
            status: 413,
            mentions: "limit",
        },
        Bad {
            what: "oversize multipart file part",
            req: mp(
                &[
                    ("resumableChunkNumber".into(), "1".into()),
                    ("resumableChunkSize".into(), "100".into()),
                    ("resumableTotalSize".into(), "100".into()),
                    ("resumableIdentifier".into(), "big2".into()),
                    ("resumableFilename".into(), "big.bin".into()),
                ],
                Some(("file", &[1u8; 100])),
            ),
            status: 413,
            mentions: "limit",
        },
        Bad {
            what: "total size over the file limit",
            req: octet(&with(&fresh("t1"), "resumableTotalSize", "5000"), &c2),
            status: 413,
            mentions: "resumableTotalSize",
        },
        Bad {
            what: "garbage multipart",
            req: Request::post("/upload")
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from("this is not multipart at all"))
                .unwrap(),
            status: 400,
            mentions: "multipart",
        },
        Bad {
            what: "multipart without boundary",
            req: Request::post("/upload")
                .header("content-type", "multipart/form-data")
                .body(Body::from("x"))
                .unwrap(),
            status: 400,
            mentions: "multipart",
        },
        Bad {
            what: "truncated multipart",
            req: {
                let mut b = multipart(&fresh("tr"), Some(("file", &c2)));
                b.truncate(b.len() - 30);
                Request::post("/upload")
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(Body::from(b))
                    .unwrap()
            },
            status: 400,
            mentions: "multipart",
        },
        Bad {
            what: "missing file part",
            req: mp(&fresh("m1"), None),
            status: 400,
            mentions: "missing file part",
        },
        Bad {
            what: "file part under another name",
            req: mp(&fresh("m2"), Some(("data", &c2))),
            status: 400,
            mentions: "unexpected file part",
        },
        Bad {
            what: "missing identifier",
            req: octet(&without(&fresh("x"), "resumableIdentifier"), &c2),
            status: 400,
            mentions: "missing parameter resumableIdentifier",
        },
        Bad {
            what: "missing filename",
            req: octet(&without(&fresh("mf"), "resumableFilename"), &c2),
            status: 400,
            mentions: "missing parameter resumableFilename",
        },
        Bad {
            what: "no parameters at all",
            req: octet(&[], &c2),
            status: 400,
            mentions: "resumableChunkNumber",
        },
        Bad {
            what: "duplicate query parameter",
            req: Request::post(format!(
                "/upload?{}&resumableChunkNumber=2",
                query(&fresh("dup"))
            ))
            .body(Body::from(c2.clone()))
            .unwrap(),
            status: 400,
            mentions: "more than once",
        },
        Bad {
            what: "different total size for a known identifier",
            req: octet(
                &with(
                    &with(&p1, "resumableTotalSize", "60"),
                    "resumableTotalChunks",
                    "3",
                ),
                u.bytes(1),
            ),
            status: 409,
            mentions: "total size",
        },
        Bad {
            what: "different bytes for a stored chunk",
            req: octet(&p1, &[0xAA; 20]),
            status: 409,
            mentions: "different bytes",
        },
        Bad {
            what: "form-urlencoded POST",
            req: Request::post(format!("/upload?{}", query(&fresh("u1"))))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(c2.clone()))
                .unwrap(),
            status: 415,
            mentions: "Content-Type",
        },
        Bad {
            what: "multipart/mixed POST",
            req: Request::post(format!("/upload?{}", query(&fresh("u2"))))
                .header("content-type", "multipart/mixed; boundary=x")
                .body(Body::from(c2.clone()))
                .unwrap(),
            status: 415,
            mentions: "Content-Type",
        },
        Bad {
            what: "gzip-encoded body",
            req: Request::post(format!("/upload?{}", query(&fresh("u3"))))
                .header("content-encoding", "gzip")
                .body(Body::from(c2.clone()))
                .unwrap(),
            status: 415,
            mentions: "Content-Encoding",
        },
        Bad {
            what: "probe with a bad number",
            req: Request::get(format!(
                "/upload?{}",
                query(&with(&fresh("pr"), "resumableChunkNumber", "-3"))
            ))
            .body(Body::empty())
            .unwrap(),
            status: 400,
            mentions: "negative",
        },
        Bad {
            what: "probe of a known identifier with another total size",
            req: Request::get(format!(
                "/upload?{}",
                query(&with(
                    &with(&p1, "resumableTotalSize", "60"),
                    "resumableTotalChunks",
                    "3"
                ))
            ))
            .body(Body::empty())
            .unwrap(),
            status: 409,
            mentions: "total size",
        },
    ];
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for c in cases {
        let r = send(&f.router, c.req).await;
        if r.status.as_u16() != c.status || !r.body.contains(c.mentions) {
            failures.push(format!(
                "{}: got {} {:?}, want {} mentioning {:?}",
                c.what, r.status, r.body, c.status, c.mentions
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing outside the data directory, no file assembled, no chunk beyond the known one.
    let outside: Vec<_> = std::fs::read_dir(f.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("data")]);
    assert!(files_json(&f.router).await.as_array().unwrap().is_empty());
    let records: Vec<String> = walk(&f.data_dir())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "chunks.log"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        walk(&f.data_dir().join("tmp")).is_empty(),
        "temporary bodies left behind"
    );
    // The known upload still completes.
    assert_eq!(
        send(&f.router, u.post_req(2, Format::Octet)).await.status,
        StatusCode::OK
    );
    assert_eq!(files_json(&f.router).await[0]["sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn hostile_identifier_is_hashed_not_used_as_a_path() {
    let f = fixture();
    let data = pattern(30, 4);
    for id in [
        "../../../../tmp/escape",
        "/etc/passwd",
        "C:\\Windows\\x",
        "..",
        "a/b/c",
    ] {
        let u = Upload {
            dialect: Dialect::Flow,
            id,
            name: "x.txt",
            data: &data,
            cs: 100,
            force: false,
        };
        let r = send(&f.router, u.post_req(1, Format::Multipart)).await;
        assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.body);
    }
    let root = f.data_dir().canonicalize().unwrap();
    for p in walk(&root) {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            !name.contains("passwd") && !name.contains("escape"),
            "{p:?}"
        );
    }
    let outside: Vec<_> = std::fs::read_dir(f.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside.len(), 1);
    assert_eq!(files_json(&f.router).await.as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_chunks_and_duplicate_final_chunks_assemble_once() {
    for round in 0..5u8 {
        let f = fixture();
        let data = pattern(40 * 256 + 77, round);
        let u = Upload {
            dialect: Dialect::Resumable,
            id: "parallel",
            name: "parallel.bin",
            data: &data,
            cs: 256,
            force: round % 2 == 0,
        };
        let n = u.total_chunks();
        // All but the last chunk in parallel.
        let mut tasks = Vec::new();
        for i in 1..n {
            let router = f.router.clone();
            let req = u.post_req(
                i,
                if i % 2 == 0 {
                    Format::Octet
                } else {
                    Format::Multipart
                },
            );
            tasks.push(tokio::spawn(async move { send(&router, req).await.status }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::OK);
        }
        // Two copies of the final chunk at once.
        let (a, b) = (
            u.post_req(n, Format::Octet),
            u.post_req(n, Format::Multipart),
        );
        let (ra, rb) = (f.router.clone(), f.router.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { send(&ra, a).await }),
            tokio::spawn(async move { send(&rb, b).await })
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(
            (x.status, y.status),
            (StatusCode::OK, StatusCode::OK),
            "{} / {}",
            x.body,
            y.body
        );
        assert_eq!(
            [&x.body, &y.body]
                .iter()
                .filter(|b| b.contains("file complete"))
                .count(),
            1,
            "exactly one response reports the assembly"
        );
        let files = files_json(&f.router).await;
        assert_eq!(files.as_array().unwrap().len(), 1);
        assert_eq!(files[0]["sha256"], sha256_hex(&data));
        assert_eq!(walk(&f.data_dir().join("files")).len(), 1);
        assert_eq!(
            std::fs::read(files[0]["path"].as_str().unwrap()).unwrap(),
            data
        );
    }
}

#[tokio::test]
async fn chunks_of_both_rounding_rules_never_overlap_in_the_file() {
    // 250 bytes in 100-byte chunks: default rule 100 + 150, forceChunkSize 100 + 100 + 50.
    let data = pattern(250, 5);
    let default = |id| Upload {
        dialect: Dialect::Resumable,
        id,
        name: "mixed.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    let force = |id| Upload {
        force: true,
        ..default(id)
    };
    // The big last chunk first, then the other rule's chunk 3: refused, it lies inside chunk 2.
    let f = fixture();
    let r = send(&f.router, default("a").post_req(2, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&f.router, force("a").post_req(3, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("chunk 2"), "{}", r.body);
    let r = send(&f.router, default("a").post_req(1, Format::Octet)).await;
    assert!(r.body.contains("file complete"), "{}", r.body);
    // The small chunk 3 first, then the big chunk 2 over it: the file is chunks 1 and 2.
    let r = send(&f.router, force("b").post_req(3, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&f.router, default("b").post_req(2, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&f.router, default("b").post_req(1, Format::Octet)).await;
    assert!(r.body.contains("file complete"), "{}", r.body);
    // After completion, the other rule's chunk is refused.
    let r = send(&f.router, force("b").post_req(2, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let files = files_json(&f.router).await;
    assert_eq!(files.as_array().unwrap().len(), 2);
    for rec in files.as_array().unwrap() {
        assert_eq!(rec["sha256"], sha256_hex(&data), "{rec}");
        assert_eq!(rec["chunks"], 2);
        assert_eq!(std::fs::read(rec["path"].as_str().unwrap()).unwrap(), data);
    }
}

#[tokio::test]
async fn restart_mid_upload_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_in(tmp.path());
    let data = pattern(10 * 100 + 50, 8);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "restart-me",
        name: "restart.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    let n = u.total_chunks();
    {
        let state = AppState::new(&cfg, Some(PAGE.to_owned())).unwrap();
        let router = server_fixture::api_router(state);
        for i in 1..=n / 2 {
            assert_eq!(
                send(&router, u.post_req(i, Format::Multipart)).await.status,
                StatusCode::OK
            );
        }
    }
    // A leftover temporary body from the "crash" is cleaned up at startup.
    std::fs::write(tmp.path().join("data/tmp/body-leftover"), b"junk").unwrap();
    let state = AppState::new(&cfg, Some(PAGE.to_owned())).unwrap();
    assert!(walk(&tmp.path().join("data/tmp")).is_empty());
    let router = server_fixture::api_router(state);
    for i in 1..=n {
        let r = send(&router, u.probe_req(i)).await;
        let want = if i <= n / 2 {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        assert_eq!(r.status, want, "probe {i} after restart");
        if r.status == StatusCode::NO_CONTENT {
            assert_eq!(
                send(&router, u.post_req(i, Format::Multipart)).await.status,
                StatusCode::OK
            );
        }
    }
    let files = files_json(&router).await;
    assert_eq!(files[0]["sha256"], sha256_hex(&data));
    assert_eq!(files[0]["chunks"], n);
}

#[tokio::test]
async fn big_multipart_chunks_pass_axum_default_limit() {
    // Resumable's default plan: 1 MiB chunks, the last one up to 2 MiB - 1 bytes, which with the
    // multipart overhead is above axum's default 2 MB extractor limit.
    let f = fixture();
    let data = pattern(3 * 1024 * 1024 - 1, 6);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "big",
        name: "big.bin",
        data: &data,
        cs: 1024 * 1024,
        force: false,
    };
    assert_eq!(u.total_chunks(), 2);
    for i in 1..=2 {
        let r = send(&f.router, u.post_req(i, Format::Multipart)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(files_json(&f.router).await[0]["sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn parameters_after_the_file_part() {
    let f = fixture();
    let data = pattern(64, 7);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "late-params",
        name: "late.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    // File part first, then the parameters.
    let mut body = multipart(&[], Some(("file", &data)));
    let tail = multipart(&u.params(1), None);
    body.truncate(body.len() - format!("--{BOUNDARY}--\r\n").len());
    body.extend_from_slice(&tail);
    let req = Request::post("/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    let r = send(&f.router, req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(files_json(&f.router).await[0]["sha256"], sha256_hex(&data));
}

/// A reset that lands while a chunk is being written into its upload: that request ends on the
/// upload the reset deleted, never on the one a later request starts in its place. Before, it
/// recorded its chunk in the new upload's `chunks.log` while its bytes had gone into the deleted
/// file, so after a restart the new upload was "complete" with a hole where that chunk belongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_during_a_chunk_write_never_mixes_old_and_new_uploads() {
    use axum::http::Method;
    use std::time::Duration;
    const CS: u64 = 48 * 1024 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_in(tmp.path());
    let data = pattern(CS as usize + 1000, 3);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "reset-race",
        name: "race.bin",
        data: &data,
        cs: CS,
        force: true,
    };
    let meta = tmp
        .path()
        .join("data/uploads")
        .join(sha256_hex(b"reset-race"))
        .join("meta.json");
    {
        let state = AppState::new(&cfg, Some(PAGE.to_owned())).unwrap();
        let router = server_fixture::api_router(state);
        let big = tokio::spawn({
            let router = router.clone();
            let req = u.post_req(1, Format::Octet);
            async move { send(&router, req).await }
        });
        // The upload exists once its first chunk is being written (meta.json is made first).
        let mut polls = 0;
        while !meta.exists() {
            polls += 1;
            assert!(polls < 60_000, "chunk 1 never began");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The race is on only if the reset comes while chunk 1 is still being written: its
        // request holds the upload until the chunk is recorded in chunks.log, which is empty.
        let journal = meta.with_file_name("chunks.log");
        assert_eq!(
            std::fs::metadata(&journal).map(|m| m.len()).ok(),
            Some(0),
            "chunk 1 was recorded before the reset: the race was not exercised"
        );
        assert!(
            !big.is_finished(),
            "chunk 1's request ended before the reset"
        );
        let reset = send(
            &router,
            control(Method::POST, "/__fixture/reset?data=1", None),
        )
        .await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
        let last = send(&router, u.post_req(2, Format::Octet)).await;
        assert_eq!(last.status, StatusCode::OK, "{}", last.body);
        big.await.unwrap();
    }
    // A restart recovers whatever the journals say is complete.
    let router = server_fixture::api_router(AppState::new(&cfg, Some(PAGE.to_owned())).unwrap());
    let files = files_json(&router).await;
    assert_eq!(
        files,
        serde_json::json!([]),
        "since the reset only chunk 2 was sent, nothing is complete"
    );
    assert_eq!(
        send(&router, u.probe_req(1)).await.status,
        StatusCode::NO_CONTENT,
        "chunk 1 was sent before the reset"
    );
}

/// A chunk that arrives in order is hashed while it is copied into the upload's file; only a
/// chunk stored before the ones preceding it is read back, once they are in.
#[tokio::test]
async fn in_order_chunks_are_hashed_while_copied_and_never_read_back() {
    let f = fixture();
    let data = pattern(5 * 1000, 11);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "hash-in-order",
        name: "in-order.bin",
        data: &data,
        cs: 1000,
        force: false,
    };
    upload_all(&f, &u, Format::Octet).await;
    assert_eq!(f.state.store().bytes_read_back_for_hashing(), 0);
    // Out of order: chunk 2 first (read back once chunk 1 is in), then 1, 3, 4, 5.
    let other = pattern(5 * 1000, 12);
    let v = Upload {
        id: "hash-out-of-order",
        name: "out-of-order.bin",
        data: &other,
        ..u
    };
    for n in [2, 1, 3, 4, 5] {
        let r = send(&f.router, v.post_req(n, Format::Octet)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(f.state.store().bytes_read_back_for_hashing(), 1000);
    let files = files_json(&f.router).await;
    let hashes: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 2);
    assert!(hashes.contains(&sha256_hex(&data).as_str()));
    assert!(hashes.contains(&sha256_hex(&other).as_str()));
}
