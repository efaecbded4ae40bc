//! The emulated link (`--link`, `link` in `/__fixture/config`) on the API listener: every
//! connection's bytes cross it, kept-alive ones too, a change applies to open connections, and
//! bodies arrive whole. Counted in bytes (the link's own counters and the fixture's
//! statistics); its timing (the rate never exceeded in any window, the delay, re-timing on a
//! change, the shared cap) is tested on the link's own clock in `src/link.rs`, and measured in
//! `make bench`. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use server_fixture::link::Direction;
use server_fixture::{Handle, LinkSpec};

async fn start(link: Option<&str>) -> (tempfile::TempDir, Handle) {
    spawn_tweaked(|c| c.runtime.link = link.map(|l| l.parse::<LinkSpec>().unwrap())).await
}

/// A body sink on the API: `/upload` without parameters reads the whole body, then says 400.
async fn post_body(client: &reqwest::Client, api: &str, len: usize) {
    let r = client
        .post(format!("{api}/upload"))
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; len])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    r.bytes().await.unwrap();
}

/// Each request, the 2nd and 3rd on a kept-alive connection, crosses the link both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_crosses_the_link_both_ways() {
    let (_tmp, fx) = start(Some("rtt=100")).await;
    let link = fx.state().link();
    let client = reqwest::Client::new();
    let probe = format!("{}/__probe", fx.api_url());
    let mut seen = (0, 0);
    for (i, method) in ["GET", "OPTIONS", "GET"].into_iter().enumerate() {
        let r = client
            .request(method.parse().unwrap(), &probe)
            .header("origin", PAGE)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{method} → {}", r.status());
        let now = (
            link.delivered(Direction::Up),
            link.delivered(Direction::Down),
        );
        assert!(
            now.0 > seen.0 && now.1 > seen.1,
            "request {i} ({method}) did not cross the link: {seen:?} → {now:?}"
        );
        seen = now;
    }
}

/// A change through `/__fixture/config` reaches a connection opened before it: with a 3 s
/// round trip, the reused connection's request is seen held in the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_switches_at_run_time_for_open_connections() {
    let (_tmp, fx) = start(None).await;
    let link = fx.state().link();
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
        set(r#"{"link":"rtt=3000,up=50"}"#).await.unwrap().status(),
        200
    );
    let cfg = control_json(&client, &format!("{api}/__fixture/config")).await;
    assert_eq!(
        cfg["link"],
        serde_json::json!({"rtt_ms":3000,"up_mbit":50.0,"down_mbit":null})
    );
    // Same client, so the connection opened before the switch is reused.
    let request = tokio::spawn({
        let client = client.clone();
        let url = format!("{api}/__probe");
        async move { client.get(url).send().await.unwrap().status() }
    });
    let mut held = false;
    while !request.is_finished() {
        held |= link.queued(Direction::Up) > 0 || link.queued(Direction::Down) > 0;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(request.await.unwrap(), 204);
    assert!(
        held,
        "the reused connection's request was never held in the link"
    );
    assert_eq!(
        set(r#"{"link":"rtt=1,up=-3"}"#).await.unwrap().status(),
        400,
        "a bad link is refused"
    );
    assert_eq!(set(r#"{"link":null}"#).await.unwrap().status(), 200);
    assert_eq!(fx.state().runtime().link, None);
}

/// Bodies on parallel connections cross the one link whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_on_parallel_connections_cross_the_link_whole() {
    let (_tmp, fx) = start(Some("up=400")).await;
    let api = fx.api_url().to_owned();
    // Two clients, so two connections.
    let (one, two) = (reqwest::Client::new(), reqwest::Client::new());
    let mib = 1024 * 1024;
    tokio::join!(
        post_body(&one, &api, 4 * mib),
        post_body(&two, &api, 4 * mib)
    );
    let stats = fx.stats();
    assert_eq!(stats["requests"]["POST"], 2);
    assert_eq!(stats["bytes_received"], 8 * mib);
    let up = fx.state().link().delivered(Direction::Up);
    assert!(up >= 8 * mib as u64, "{up} bytes crossed the link");
}
