//! Runtime tests: fault injection (fail rate with seed, fail chunk once, delay, stall, dropped
//! connections), sessions, statistics, reset, config, static files, and real sockets: `spawn`
//! and the binary printing its JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use server_fixture::{AppState, Config, Mount};

fn config_post(json: serde_json::Value) -> Request<Body> {
    control(Method::POST, "/__fixture/config", Some(&json.to_string()))
}

fn probe_uri(id: &str) -> String {
    format!("/upload?flowChunkNumber=1&flowChunkSize=10&flowTotalSize=5&flowIdentifier={id}&flowFilename=a.txt")
}

#[tokio::test]
async fn fail_rate_is_seeded_and_deterministic() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let f = fixture_with(|c| {
            c.runtime.fail_rate = 0.5;
            c.runtime.seed = 42;
        });
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = send(
                &f.router,
                Request::get(probe_uri("x")).body(Body::empty()).unwrap(),
            )
            .await;
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(r.header("retry-after"), Some("1"));
            }
            statuses.push(r.status.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&503) && runs[0].contains(&204),
        "{:?}",
        runs[0]
    );
    // Other routes are not failed.
    let f = fixture_with(|c| c.runtime.fail_rate = 1.0);
    let r = send(
        &f.router,
        Request::get("/__probe").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn fail_chunk_once_fails_exactly_once() {
    let f = fixture_with(|c| {
        c.runtime.fail_chunk_once = Some(2);
        c.runtime.fail_status = 500;
    });
    let data = pattern(300, 2);
    let u = Upload {
        dialect: Dialect::Resumable,
        id: "once",
        name: "once.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    assert_eq!(
        send(&f.router, u.post_req(1, Format::Multipart))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&f.router, u.post_req(2, Format::Multipart))
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send(&f.router, u.probe_req(2)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&f.router, u.post_req(2, Format::Multipart))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&f.router, u.post_req(3, Format::Multipart))
            .await
            .status,
        StatusCode::OK
    );
    let cfg = send(&f.router, control(Method::GET, "/__fixture/config", None)).await;
    let cfg: serde_json::Value = serde_json::from_str(&cfg.body).unwrap();
    assert!(cfg["fail_chunk_once"].is_null());
    assert_eq!(files_json(&f.router).await[0]["sha256"], sha256_hex(&data));
}

/// On tokio's paused clock (the router runs in-process), so a loaded machine cannot change
/// what is measured: the delay is the only thing that takes time.
#[tokio::test(start_paused = true)]
async fn delay_applies_to_options_too() {
    let f = fixture_with(|c| c.runtime.delay_ms = 150);
    let t = tokio::time::Instant::now();
    let r = send(
        &f.router,
        Request::options("/upload")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.elapsed(), Duration::from_millis(150));
    // Control routes are not delayed.
    let t = tokio::time::Instant::now();
    send(&f.router, control(Method::GET, "/__fixture/stats", None)).await;
    assert_eq!(t.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn stall_holds_uploads_until_switched_off() {
    let f = fixture_with(|c| c.runtime.stall = true);
    let router = f.router.clone();
    let pending = tokio::spawn(async move {
        send(
            &router,
            Request::get(probe_uri("s")).body(Body::empty()).unwrap(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    // Other API routes still answer.
    let r = send(
        &f.router,
        Request::get("/__probe").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &f.router,
        config_post(serde_json::json!({ "stall": false })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn session_required_after_login() {
    let f = fixture_with(|c| c.runtime.require_session = true);
    let r = send(
        &f.router,
        Request::get(probe_uri("l")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("fixture_session"));
    let r = send(
        &f.router,
        Request::post("/login")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("fixture_session="));
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Lax; Path=/"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = send(
        &f.router,
        Request::get(probe_uri("l"))
            .header("cookie", format!("other=1; {pair}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &f.router,
        Request::get(probe_uri("l"))
            .header("cookie", "fixture_session=forged")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Preflights never need the cookie.
    let r = send(
        &f.router,
        Request::options("/upload")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn stats_count_every_api_request() {
    let f = fixture();
    let data = pattern(30, 1);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "st",
        name: "st.bin",
        data: &data,
        cs: 100,
        force: false,
    };
    send(
        &f.router,
        Request::options("/upload")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    send(&f.router, u.probe_req(1)).await;
    send(&f.router, u.post_req(1, Format::Multipart)).await; // Flow: chunk only in the body
    send(
        &f.router,
        Request::get("/__probe")
            .header("origin", FOREIGN)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    send(
        &f.router,
        Request::get("/login").body(Body::empty()).unwrap(),
    )
    .await;
    send(&f.router, control(Method::GET, "/__fixture/files", None)).await;
    let r = send(&f.router, control(Method::GET, "/__fixture/stats", None)).await;
    let s: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(s["requests"]["OPTIONS"], 1);
    assert_eq!(s["requests"]["GET"], 3);
    assert_eq!(s["requests"]["POST"], 1);
    assert_eq!(s["by_path"]["/upload"], 3);
    assert_eq!(s["by_path"]["/__probe"], 1);
    assert_eq!(s["by_path"]["/login"], 1);
    assert!(s["by_path"].get("/__fixture/files").is_none());
    assert_eq!(s["by_origin"][PAGE], 3);
    assert_eq!(s["by_origin"][FOREIGN], 1);
    assert!(s["bytes_received"].as_u64().unwrap() > 30);
    let log = s["log"].as_array().unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0]["method"], "OPTIONS");
    assert_eq!(log[0]["status"], 204);
    assert_eq!(log[1]["chunk"], 1);
    assert_eq!(log[2]["method"], "POST");
    assert_eq!(log[2]["chunk"], 1);
    assert!(log[2]["query"].is_null());
    assert_eq!(log[2]["listener"], "api");
    assert_eq!(log[3]["chunk"], serde_json::Value::Null);
    assert_eq!(log[3]["seq"], 3);

    // reset clears stats; ?data=1 also clears files.
    let r = send(&f.router, control(Method::POST, "/__fixture/reset", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let s = f.state.stats_json();
    assert_eq!(s["log"].as_array().unwrap().len(), 0);
    assert_eq!(files_json(&f.router).await.as_array().unwrap().len(), 1);
    send(
        &f.router,
        control(Method::POST, "/__fixture/reset?data=1", None),
    )
    .await;
    assert_eq!(files_json(&f.router).await.as_array().unwrap().len(), 0);
    assert_eq!(
        send(&f.router, u.probe_req(1)).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn config_get_and_partial_update() {
    let f = fixture();
    let r = send(&f.router, control(Method::GET, "/__fixture/config", None)).await;
    let c: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    for key in [
        "cors",
        "allow_origins",
        "allow_headers",
        "max_age",
        "delay_ms",
        "fail_rate",
        "fail_status",
        "seed",
        "drop_rate",
        "stall",
        "fail_chunk_once",
        "require_session",
        "max_chunk_bytes",
        "max_file_bytes",
        "timing_allow_origin",
    ] {
        assert!(c.get(key).is_some(), "{key}");
    }
    assert_eq!(c["cors"], "strict");
    assert_eq!(c["allow_origins"], serde_json::json!([PAGE]));
    let r = send(
        &f.router,
        config_post(serde_json::json!({ "delay_ms": 5, "fail_chunk_once": 3 })),
    )
    .await;
    let c: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(c["delay_ms"], 5);
    assert_eq!(c["fail_chunk_once"], 3);
    assert_eq!(c["cors"], "strict");
    let r = send(
        &f.router,
        config_post(serde_json::json!({ "fail_chunk_once": null })),
    )
    .await;
    let c: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(c["fail_chunk_once"].is_null());
    assert_eq!(c["delay_ms"], 5);
    for bad in [
        serde_json::json!({ "cors": "lax" }),
        serde_json::json!({ "fail_rate": 2.0 }),
        serde_json::json!({ "fail_status": 42 }),
        serde_json::json!({ "unknown": 1 }),
        serde_json::json!({ "allow_headers": ["bad header"] }),
    ] {
        let r = send(&f.router, config_post(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = send(&f.router, control(Method::GET, "/__fixture/config", None)).await;
    let c: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(c["fail_rate"], 0.0);
}

#[tokio::test]
async fn control_can_be_disabled() {
    let f = fixture_with(|c| c.control = false);
    let r = send(&f.router, control(Method::GET, "/__fixture/stats", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn static_files_and_api_on_page() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(www.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(www.join("sub/index.html"), "<p>sub</p>").unwrap();
    std::fs::write(www.join("app.mjs"), "export {}").unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
    std::fs::write(pkg.join("x_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(pkg.join("x.js"), "export default 1").unwrap();
    let mut cfg = config_in(tmp.path());
    cfg.www = Some(www);
    cfg.mounts = vec![Mount {
        prefix: "/pkg".into(),
        dir: pkg,
    }];
    cfg.api_on_page = true;
    let state = AppState::new(&cfg, Some(PAGE.to_owned())).unwrap();
    let page = server_fixture::page_router(state, &cfg);
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    let r = send(&page, get("/")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("hi"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = send(&page, get("/sub/")).await;
    assert!(r.body.contains("sub"));
    let r = send(&page, get("/app.mjs")).await;
    assert_eq!(r.header("content-type"), Some("text/javascript"));
    let r = send(&page, get("/pkg/x_bg.wasm")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = send(&page, get("/pkg/x.js")).await;
    assert_eq!(r.header("content-type"), Some("text/javascript"));
    for evil in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/pkg/../../secret.txt",
        "/pkg/%2e%2e/secret.txt",
    ] {
        let r = send(&page, get(evil)).await;
        assert!(
            !r.body.contains("secret"),
            "{evil}: {} {}",
            r.status,
            r.body
        );
        assert_ne!(r.status, StatusCode::OK, "{evil}");
    }
    // API on the page origin, logged with listener "page".
    let r = send(&page, get("/__probe")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &page,
        Request::options("/upload")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    let r = send(&page, control(Method::GET, "/__fixture/stats", None)).await;
    let s: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(s["log"][0]["listener"], "page");
}

#[tokio::test]
async fn spawn_serves_on_real_sockets_and_drops_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_in(tmp.path());
    let handle = server_fixture::spawn(cfg).await.unwrap();
    let page = handle.page_url().unwrap().to_owned();
    let api = handle.api_url().to_owned();
    assert!(page.starts_with("http://127.0.0.1:"), "{page}");
    assert!(api.starts_with("http://localhost:"), "{api}");
    let line: serde_json::Value = serde_json::from_str(&handle.ready_line()).unwrap();
    assert_eq!(line["page"], page.as_str());
    assert_eq!(line["api"], api.as_str());
    assert!(handle.ready_line().starts_with("{\"page\":"));

    let client = reqwest::Client::new();
    let data = pattern(5000, 3);
    for (i, part) in data.chunks(2000).enumerate() {
        // Default plan with 2000-byte chunks: 2000 + 3000.
        if i == 2 {
            break;
        }
        let bytes = if i == 1 {
            data[2000..].to_vec()
        } else {
            part.to_vec()
        };
        let form = reqwest::multipart::Form::new()
            .text("resumableChunkNumber", (i + 1).to_string())
            .text("resumableChunkSize", "2000")
            .text("resumableCurrentChunkSize", bytes.len().to_string())
            .text("resumableTotalSize", "5000")
            .text("resumableType", "")
            .text("resumableIdentifier", "5000-realbin")
            .text("resumableFilename", "real.bin")
            .text("resumableRelativePath", "real.bin")
            .text("resumableTotalChunks", "2")
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("real.bin"),
            );
        let r = client
            .post(format!("{api}/upload"))
            .header("origin", &page)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], page.as_str());
    }
    // The control endpoints answer the page origin...
    let files: serde_json::Value = client
        .get(format!("{page}/__fixture/files"))
        .header("origin", &page)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files[0]["sha256"], sha256_hex(&data));

    // ...and a caller with the token (JSON for state changes).
    let token = handle.control_token().to_owned();
    // drop_rate 1: the connection closes without an answer, and the log says status null.
    let r = client
        .post(format!("{api}/__fixture/config"))
        .header("x-fixture-token", &token)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "drop_rate": 1.0 }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let err = client.get(format!("{api}{}", probe_uri("d"))).send().await;
    assert!(err.is_err(), "{err:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = handle.stats();
    let last = stats["log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["path"], "/upload");
    assert!(last["status"].is_null(), "{last}");
    // A stalled request does not block shutdown for long.
    client
        .post(format!("{api}/__fixture/config"))
        .header("x-fixture-token", &token)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "drop_rate": 0.0, "stall": true }).to_string())
        .send()
        .await
        .unwrap();
    let stalled = tokio::spawn({
        let client = client.clone();
        let url = format!("{api}{}", probe_uri("st"));
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shutdown ends the stalled request (the deadline only keeps a regression from hanging).
    tokio::time::timeout(Duration::from_secs(120), handle.shutdown())
        .await
        .expect("shutdown waited for a stalled request");
    assert!(stalled.await.unwrap().is_err());
}

#[test]
fn binary_prints_one_json_line_and_exits_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, v) = spawn_binary(
        &[
            "--page-listen",
            "127.0.0.1:0",
            "--api-listen",
            "localhost:0",
            "--max-lifetime",
            "60",
            "--cors",
            "reflect",
            "--max-connections",
            "64",
            "--body-timeout",
            "30",
            "--control-token",
            TOKEN,
        ],
        &tmp.path().join("d"),
    );
    assert!(v["page"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let api = v["api"].as_str().unwrap().to_owned();
    assert!(api.starts_with("http://localhost:"));
    let dd = std::path::PathBuf::from(v["data_dir"].as_str().unwrap());
    assert!(dd.is_absolute() && dd.ends_with("d"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("{api}/__probe"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 204);
    assert_eq!(v["control_token"], TOKEN);
    let control = |token: Option<&str>| {
        let mut req = reqwest::Client::new().get(format!("{api}/__fixture/config"));
        if let Some(t) = token {
            req = req.header("x-fixture-token", t);
        }
        rt.block_on(async { req.send().await.unwrap().status() })
    };
    assert_eq!(control(Some(TOKEN)), 200);
    assert_eq!(control(None), 403);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let s = exit_within(
        &mut child,
        Duration::from_secs(60),
        "did not exit on SIGTERM",
    );
    assert!(s.success(), "{s:?}");
}

#[test]
fn binary_no_page_prints_null_page() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, v) = spawn_binary(
        &[
            "--no-page",
            "--api-listen",
            "127.0.0.1:0",
            "--max-lifetime",
            "1",
            "--allow-origin",
            "http://x.test",
        ],
        tmp.path(),
    );
    assert!(v["page"].is_null());
    // A random control token when none is given.
    let token = v["control_token"].as_str().unwrap();
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    assert!(v["api"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    // --max-lifetime 1: exits by itself.
    let s = exit_within(
        &mut child,
        Duration::from_secs(60),
        "did not exit after --max-lifetime",
    );
    assert!(s.success(), "{s:?}");
    let _ = Config::default();
}

#[tokio::test]
async fn early_errors_reach_a_client_still_sending() {
    let (_tmp, handle) = spawn_tweaked(|c| {
        c.runtime.max_chunk_bytes = 1024;
        c.runtime.cors = server_fixture::CorsMode::Reflect;
    })
    .await;
    let api = handle.api_url().to_owned();
    let client = reqwest::Client::new();
    let big = vec![7u8; 8 * 1024 * 1024];
    let q = "resumableChunkNumber=1&resumableChunkSize=8388608&resumableTotalSize=8388608&resumableIdentifier=big&resumableFilename=big.bin";
    // 413 from Content-Length, before reading a byte.
    let r = client
        .post(format!("{api}/upload?{q}"))
        .header("origin", "http://x.test")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://x.test");
    // 413 while streaming a multipart body.
    let form = reqwest::multipart::Form::new()
        .text("resumableChunkNumber", "1")
        .text("resumableChunkSize", "8388608")
        .text("resumableTotalSize", "8388608")
        .text("resumableIdentifier", "big2")
        .text("resumableFilename", "big.bin")
        .part(
            "file",
            reqwest::multipart::Part::bytes(big.clone()).file_name("big.bin"),
        );
    let r = client
        .post(format!("{api}/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // 400 before reading the body (missing parameters).
    let r = client
        .post(format!("{api}/upload"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    handle.shutdown().await;
}

#[tokio::test]
async fn error_answers_drain_the_unread_body() {
    let f = fixture_with(|c| c.runtime.require_session = true);
    let r = send(
        &f.router,
        Request::post("/upload")
            .body(Body::from(vec![1u8; 5000]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.state.stats_json()["bytes_received"], 5000);
}

#[test]
fn binary_refuses_bad_limits_and_a_weak_token() {
    for bad in [
        &["--control-token", "short"][..],
        &["--max-connections", "0"],
        &["--body-timeout", "0"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_server-fixture"))
            .args(["--no-page", "--api-listen", "127.0.0.1:0"])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&bad[0][2..]), "{bad:?}: {err}");
    }
}

/// The log records a request when it arrives: a stalled request is there, `in_flight` with no
/// status, while it is served, and ends with no status when its client goes away. (A check
/// that "nothing was sent" reads this log; an entry made only at the end would miss it.)
#[tokio::test]
async fn the_log_shows_a_request_on_arrival_and_ends_it_in_place() {
    let f = fixture_with(|c| c.runtime.stall = true);
    let router = f.router.clone();
    let stalled = tokio::spawn(async move {
        send(
            &router,
            Request::get(probe_uri("stalled"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    });
    let logged = |f: &Fixture| -> Vec<serde_json::Value> {
        let s = f.state.stats_json();
        s["log"].as_array().unwrap().clone()
    };
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = logged(&f);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.len(), 1, "the stalled request is logged while served");
    assert_eq!(seen[0]["path"], "/upload");
    assert_eq!(seen[0]["in_flight"], true, "{}", seen[0]);
    assert!(seen[0]["status"].is_null(), "{}", seen[0]);
    assert!(!stalled.is_finished(), "the request is still stalled");
    stalled.abort();
    assert!(stalled.await.is_err_and(|e| e.is_cancelled()));
    let ended = logged(&f);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["seq"], seen[0]["seq"]);
    assert_eq!(ended[0]["in_flight"], false, "{}", ended[0]);
    assert!(ended[0]["status"].is_null(), "never answered: {}", ended[0]);
}
