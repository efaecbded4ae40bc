//! `--tls`: both origins over HTTPS with a certificate made at start; HTTP/2 and HTTP/1.1 by
//! ALPN; an upload, the drop fault and the connection cap work over it; the handshake crosses
//! the emulated link; the binary prints what a client needs to trust the certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use server_fixture::link::Direction;
use server_fixture::Handle;

async fn start(tweak: impl FnOnce(&mut server_fixture::Config)) -> (tempfile::TempDir, Handle) {
    spawn_tweaked(|c| {
        c.tls = true;
        tweak(c);
    })
    .await
}

/// A client that trusts only the fixture's certificate.
fn client(fx: &Handle, http1_only: bool) -> reqwest::Client {
    let pem = std::fs::read(&fx.tls().unwrap().cert_pem_path).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(20));
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_origins_speak_h2_and_http1_over_tls() {
    let (_tmp, fx) = start(|_| {}).await;
    let api = fx.api_url().to_owned();
    let page = fx.page_url().unwrap().to_owned();
    assert!(api.starts_with("https://localhost:"), "{api}");
    assert!(page.starts_with("https://127.0.0.1:"), "{page}");
    let line: serde_json::Value = serde_json::from_str(&fx.ready_line()).unwrap();
    let spki = line["tls"]["spki_sha256"].as_str().unwrap();
    assert_eq!(spki.len(), 44, "base64 of 32 bytes: {spki}");
    let pem = std::fs::read_to_string(line["tls"]["cert_pem"].as_str().unwrap()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    for (http1_only, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let c = client(&fx, http1_only);
        for origin in [&api, &page] {
            let r = c
                .get(format!("{origin}/__fixture/stats"))
                .header("x-fixture-token", TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{origin}");
            assert_eq!(r.version(), version, "{origin} http1_only={http1_only}");
        }
    }
    // A plain-HTTP client gets no answer from a TLS listener.
    let plain = reqwest::Client::new()
        .get(api.replace("https://", "http://") + "/__probe")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_over_h2_is_stored_exactly() {
    let (_tmp, fx) = start(|_| {}).await;
    let c = client(&fx, false);
    let data = pattern(3 * 1024 * 1024 + 17, 9);
    let cs = 1024 * 1024;
    let plan = plan(data.len() as u64, cs, false);
    // All chunks at once: parallel streams on one HTTP/2 connection.
    let posts = plan.iter().enumerate().map(|(i, &(start, end))| {
        let url = format!(
            "{}/upload?resumableChunkNumber={}&resumableChunkSize={cs}&resumableTotalSize={}&resumableIdentifier=h2file&resumableFilename=h2.bin",
            fx.api_url(),
            i + 1,
            data.len()
        );
        let body = data[start as usize..end as usize].to_vec();
        let c = c.clone();
        async move {
            let r = c.post(url).header("content-type", "application/octet-stream").body(body).send().await.unwrap();
            (r.version(), r.status())
        }
    });
    for (version, status) in futures_util::future::join_all(posts).await {
        assert_eq!((version, status.as_u16()), (reqwest::Version::HTTP_2, 200));
    }
    let files = control_json(&c, &format!("{}/__fixture/files", fx.api_url())).await;
    assert_eq!(files[0]["name"], "h2.bin");
    assert_eq!(files[0]["sha256"], sha256_hex(&data).as_str());
}

/// The link sits below TLS: the handshake crosses it too. Counted in bytes: the certificate
/// the client receives comes through the link's down direction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_handshake_crosses_the_link() {
    let (_tmp, fx) = start(|c| c.runtime.link = Some("rtt=100".parse().unwrap())).await;
    let link = fx.state().link();
    let c = client(&fx, false);
    let r = c
        .get(format!("{}/__probe", fx.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let pem = std::fs::read_to_string(&fx.tls().unwrap().cert_pem_path).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
    let down = link.delivered(Direction::Down);
    assert!(
        down >= der.len() as u64,
        "{down} bytes came down the link, less than the {}-byte certificate",
        der.len()
    );
    assert!(link.delivered(Direction::Up) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_fault_and_connection_cap_work_over_tls() {
    let (_tmp, fx) = start(|c| {
        c.runtime.drop_rate = 1.0;
        c.max_connections = 1;
    })
    .await;
    let up = format!(
        "{}/upload?resumableChunkNumber=1&resumableChunkSize=10&resumableTotalSize=10&resumableIdentifier=d&resumableFilename=d.bin",
        fx.api_url()
    );
    let holder = client(&fx, false);
    let dropped = holder.post(&up).body(vec![1u8; 10]).send().await;
    assert!(dropped.is_err(), "drop_rate 1 over h2: {dropped:?}");
    // Hold the one regular connection open; the next one is over the cap.
    let r = holder
        .get(format!("{}/__probe", fx.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let other = client(&fx, false);
    let r = other
        .get(format!("{}/__probe", fx.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = other
        .get(format!("{}/__fixture/stats", fx.api_url()))
        .header("x-fixture-token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "control answers on a reserve connection");
}

#[test]
fn binary_prints_the_certificate_and_refuses_a_bad_link() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, v) = spawn_binary(
        &[
            "--page-listen",
            "127.0.0.1:0",
            "--api-listen",
            "localhost:0",
            "--max-lifetime",
            "20",
            "--tls",
            "--link",
            "rtt=20,up=50,down=200",
        ],
        &tmp.path().join("d"),
    );
    let _ = child.kill();
    let _ = child.wait();
    let line = v.to_string();
    assert!(
        v["api"].as_str().unwrap().starts_with("https://localhost:"),
        "{line}"
    );
    assert!(
        v["page"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{line}"
    );
    assert_eq!(
        v["tls"]["spki_sha256"].as_str().unwrap().len(),
        44,
        "{line}"
    );
    assert!(
        v["tls"]["cert_pem"].as_str().unwrap().ends_with("cert.pem"),
        "{line}"
    );

    for bad in ["rtt=abc", "speed=3", "up=0"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_server-fixture"))
            .args([
                "--page-listen",
                "127.0.0.1:0",
                "--api-listen",
                "localhost:0",
                "--link",
                bad,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--link {bad} accepted");
    }
}

/// An 8 MiB body crosses a long link over HTTP/2 whole (the windows that make it take a few
/// round trips rather than 128 are checked in `h2.rs`; the time it takes in `make bench`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8_mib_h2_body_crosses_a_long_link_whole() {
    let (_tmp, fx) = start(|c| c.runtime.link = Some("rtt=100".parse().unwrap())).await;
    let c = client(&fx, false);
    let body = 8 * 1024 * 1024;
    let r = c
        .post(format!("{}/upload", fx.api_url()))
        .header("content-type", "application/octet-stream")
        .body(vec![5u8; body])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 400)
    );
    assert_eq!(fx.stats()["bytes_received"], body);
    assert!(fx.state().link().delivered(Direction::Up) >= body as u64);
}
