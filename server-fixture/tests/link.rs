//! The emulated link (`--link`, `link` in `/__fixture/config`): every request pays the round
//! trip, a body crosses at the capped rate, and connections share one cap. Each timing is a
//! strict lower bound (the emulator can never be faster than its link); the one figure with an
//! upper bound is measured up to three times so a loaded machine cannot fail it spuriously.
//! Loopback only, bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use server_fixture::{Handle, LinkSpec};

async fn start(link: Option<&str>) -> (tempfile::TempDir, Handle) {
    spawn_tweaked(|c| c.runtime.link = link.map(|l| l.parse::<LinkSpec>().unwrap())).await
}

/// A body sink on the API: `/upload` without parameters reads the whole body, then says 400.
async fn post_body(client: &reqwest::Client, api: &str, len: usize) -> Duration {
    let t0 = Instant::now();
    let r = client
        .post(format!("{api}/upload"))
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; len])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    r.bytes().await.unwrap();
    t0.elapsed()
}

fn mib_secs_at(mib: usize, mbit: f64) -> f64 {
    (mib * 1024 * 1024 * 8) as f64 / (mbit * 1e6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_pays_the_round_trip() {
    let (_tmp, fx) = start(Some("rtt=100")).await;
    let client = reqwest::Client::new();
    let probe = format!("{}/__probe", fx.api_url());
    for (i, method) in ["GET", "OPTIONS", "GET"].into_iter().enumerate() {
        // The 2nd and 3rd reuse the connection: a kept-alive connection pays too.
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client
                .request(method.parse().unwrap(), &probe)
                .header("origin", PAGE)
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        let took = t0.elapsed();
        assert!(r.status().as_u16() < 500, "{method} → {}", r.status());
        assert!(
            took >= Duration::from_millis(100),
            "request {i} ({method}) took {took:?} through a 100 ms link"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_switches_at_run_time_for_open_connections() {
    let (_tmp, fx) = start(None).await;
    let client = reqwest::Client::new();
    let api = fx.api_url().to_owned();
    let set = |body: &'static str| {
        client
            .post(format!("{api}/__fixture/config"))
            .header("x-fixture-token", TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        set(r#"{"link":"rtt=150,up=50"}"#).await.unwrap().status(),
        200
    );
    let cfg = control_json(&client, &format!("{api}/__fixture/config")).await;
    assert_eq!(
        cfg["link"],
        serde_json::json!({"rtt_ms":150,"up_mbit":50.0,"down_mbit":null})
    );
    // Same client, so the connection opened before the switch is reused: it is delayed too.
    let t0 = Instant::now();
    client.get(format!("{api}/__probe")).send().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        set(r#"{"link":"rtt=1,up=-3"}"#).await.unwrap().status(),
        400,
        "a bad link is refused"
    );
    assert_eq!(set(r#"{"link":null}"#).await.unwrap().status(), 200);
    assert_eq!(fx.state().runtime().link, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_body_through_100_mbit_takes_1_34_s() {
    let (_tmp, fx) = start(Some("up=100")).await;
    let expected = mib_secs_at(16, 100.0); // 1.342 s
    let mut tries = Vec::new();
    for _ in 0..3 {
        // A fresh client each time: connection set-up is part of what the link carries.
        let took = post_body(&reqwest::Client::new(), fx.api_url(), 16 * 1024 * 1024)
            .await
            .as_secs_f64();
        assert!(
            took >= 0.9 * expected,
            "16 MiB crossed 100 Mbit/s in {took:.3} s, faster than the link ({expected:.3} s)"
        );
        tries.push(took);
        if took <= 1.1 * expected {
            return;
        }
    }
    panic!("16 MiB through 100 Mbit/s: expected {expected:.3} s ± 10 %, took {tries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_share_one_cap() {
    let (_tmp, fx) = start(Some("up=100")).await;
    let api = fx.api_url().to_owned();
    // Two clients, so two connections; alone, each 4 MiB body would take 0.34 s.
    let (one, two) = (reqwest::Client::new(), reqwest::Client::new());
    let (a, b) = tokio::join!(
        post_body(&one, &api, 4 * 1024 * 1024),
        post_body(&two, &api, 4 * 1024 * 1024),
    );
    let both = mib_secs_at(8, 100.0);
    let last = a.max(b).as_secs_f64();
    let first = a.min(b).as_secs_f64();
    assert!(
        last >= 0.9 * both,
        "8 MiB over two connections ended after {last:.3} s, faster than one 100 Mbit/s link ({both:.3} s)"
    );
    // Shared fairly: neither got the link to itself for its whole body.
    assert!(
        first >= 0.6 * both,
        "one connection finished after {first:.3} s: it did not share the link"
    );
    let stats = fx.stats();
    assert_eq!(stats["requests"]["POST"], 2);
}
