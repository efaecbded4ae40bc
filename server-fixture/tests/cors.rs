//! CORS tests: every mode's exact headers for a preflight and an actual request, with and
//! without credentials (cookies), from the allowed and from a foreign origin; CORS headers on
//! errors and injected faults; the guard of `/__fixture/*` (page origin or control token, JSON
//! for state changes, no credentials).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use server_fixture::{CorsMode, Runtime};

const CORS_HEADERS: [&str; 9] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
    "timing-allow-origin",
    "vary",
    "retry-after",
];

fn cors_of(r: &Resp) -> BTreeMap<&'static str, String> {
    CORS_HEADERS
        .iter()
        .filter_map(|h| r.header(h).map(|v| (*h, v.to_owned())))
        .collect()
}

fn map(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn preflight_req(origin: &str, cookie: bool) -> Request<Body> {
    let mut b = Request::options("/upload")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,x-custom");
    if cookie {
        b = b.header("cookie", "fixture_session=whatever");
    }
    b.body(Body::empty()).unwrap()
}

fn actual_req(origin: &str, cookie: bool) -> Request<Body> {
    let mut b = Request::get("/upload?resumableChunkNumber=1&resumableChunkSize=10&resumableTotalSize=5&resumableIdentifier=c&resumableFilename=c.txt")
        .header("origin", origin);
    if cookie {
        b = b.header("cookie", "fixture_session=whatever");
    }
    b.body(Body::empty()).unwrap()
}

const M: &str = "GET, POST, PUT, PATCH, OPTIONS";
const H: &str = "authorization, x-upload-token, content-type";

struct Expect {
    preflight_status: u16,
    pre_allowed: BTreeMap<&'static str, String>,
    pre_foreign: BTreeMap<&'static str, String>,
    act_allowed: BTreeMap<&'static str, String>,
    act_foreign: BTreeMap<&'static str, String>,
}

fn expect(mode: CorsMode) -> Expect {
    let strict_pre = |methods: &str, headers: Option<&str>, creds: bool| {
        let mut m = map(&[
            ("access-control-allow-origin", PAGE),
            ("access-control-allow-methods", methods),
            ("access-control-max-age", "600"),
            ("vary", "Origin"),
        ]);
        if creds {
            m.insert("access-control-allow-credentials", "true".into());
        }
        if let Some(h) = headers {
            m.insert("access-control-allow-headers", h.into());
        }
        m
    };
    let strict_act = |creds: bool| {
        let mut m = map(&[
            ("access-control-allow-origin", PAGE),
            ("access-control-expose-headers", "Retry-After"),
            ("timing-allow-origin", PAGE),
            ("vary", "Origin"),
        ]);
        if creds {
            m.insert("access-control-allow-credentials", "true".into());
        }
        m
    };
    let vary_only = map(&[("vary", "Origin")]);
    match mode {
        CorsMode::Strict | CorsMode::Preflight404 | CorsMode::Preflight500 => Expect {
            preflight_status: match mode {
                CorsMode::Preflight404 => 404,
                CorsMode::Preflight500 => 500,
                _ => 204,
            },
            pre_allowed: strict_pre(M, Some(H), true),
            pre_foreign: vary_only.clone(),
            act_allowed: strict_act(true),
            act_foreign: vary_only,
        },
        CorsMode::NoAllowMethods => Expect {
            preflight_status: 204,
            pre_allowed: strict_pre("GET, OPTIONS", Some(H), true),
            pre_foreign: vary_only.clone(),
            act_allowed: strict_act(true),
            act_foreign: vary_only,
        },
        CorsMode::NoAllowHeaders => Expect {
            preflight_status: 204,
            pre_allowed: strict_pre(M, None, true),
            pre_foreign: vary_only.clone(),
            act_allowed: strict_act(true),
            act_foreign: vary_only,
        },
        CorsMode::NoAllowCredentials => Expect {
            preflight_status: 204,
            pre_allowed: strict_pre(M, Some(H), false),
            pre_foreign: vary_only.clone(),
            act_allowed: strict_act(false),
            act_foreign: vary_only,
        },
        CorsMode::Reflect => {
            let pre = |o: &str| {
                map(&[
                    ("access-control-allow-origin", o),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-allow-methods", M),
                    ("access-control-allow-headers", "authorization,x-custom"),
                    ("access-control-max-age", "600"),
                    ("vary", "Origin, Access-Control-Request-Headers"),
                ])
            };
            let act = |o: &str| {
                map(&[
                    ("access-control-allow-origin", o),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-expose-headers", "Retry-After"),
                    ("timing-allow-origin", o),
                    ("vary", "Origin"),
                ])
            };
            Expect {
                preflight_status: 204,
                pre_allowed: pre(PAGE),
                pre_foreign: pre(FOREIGN),
                act_allowed: act(PAGE),
                act_foreign: act(FOREIGN),
            }
        }
        CorsMode::Wildcard | CorsMode::WildcardCredentials => {
            let mut pre = map(&[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", M),
                ("access-control-allow-headers", H),
                ("access-control-max-age", "600"),
            ]);
            let mut act = map(&[
                ("access-control-allow-origin", "*"),
                ("access-control-expose-headers", "Retry-After"),
                ("timing-allow-origin", "*"),
            ]);
            if mode == CorsMode::WildcardCredentials {
                pre.insert("access-control-allow-credentials", "true".into());
                act.insert("access-control-allow-credentials", "true".into());
            }
            Expect {
                preflight_status: 204,
                pre_allowed: pre.clone(),
                pre_foreign: pre,
                act_allowed: act.clone(),
                act_foreign: act,
            }
        }
        CorsMode::None => Expect {
            preflight_status: 204,
            pre_allowed: BTreeMap::new(),
            pre_foreign: BTreeMap::new(),
            act_allowed: BTreeMap::new(),
            act_foreign: BTreeMap::new(),
        },
    }
}

#[tokio::test]
async fn every_mode_exact_headers() {
    for mode in CorsMode::ALL {
        let f = fixture_with(|c| c.runtime.cors = mode);
        let e = expect(mode);
        for cookie in [false, true] {
            let ctx = format!("mode {mode}, cookie {cookie}");
            let r = send(&f.router, preflight_req(PAGE, cookie)).await;
            assert_eq!(
                r.status.as_u16(),
                e.preflight_status,
                "{ctx} preflight status"
            );
            assert_eq!(
                cors_of(&r),
                e.pre_allowed,
                "{ctx} preflight, allowed origin"
            );
            let r = send(&f.router, preflight_req(FOREIGN, cookie)).await;
            assert_eq!(
                r.status.as_u16(),
                e.preflight_status,
                "{ctx} preflight status"
            );
            assert_eq!(
                cors_of(&r),
                e.pre_foreign,
                "{ctx} preflight, foreign origin"
            );
            let r = send(&f.router, actual_req(PAGE, cookie)).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{ctx} probe: {}", r.body);
            assert_eq!(cors_of(&r), e.act_allowed, "{ctx} actual, allowed origin");
            let r = send(&f.router, actual_req(FOREIGN, cookie)).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{ctx}");
            assert_eq!(cors_of(&r), e.act_foreign, "{ctx} actual, foreign origin");
        }
    }
}

#[tokio::test]
async fn modes_switch_at_runtime_and_other_routes_are_covered() {
    let f = fixture();
    for mode in CorsMode::ALL {
        let body = serde_json::json!({ "cors": mode.as_str() }).to_string();
        let r = send(
            &f.router,
            control(Method::POST, "/__fixture/config", Some(&body)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let rt: Runtime = serde_json::from_str(&r.body).unwrap();
        assert_eq!(rt.cors, mode);
        let e = expect(mode);
        // OPTIONS on any API path, e.g. /login.
        let r = send(
            &f.router,
            Request::options("/login")
                .header("origin", PAGE)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization,x-custom")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status.as_u16(), e.preflight_status, "{mode}");
        assert_eq!(cors_of(&r), e.pre_allowed, "{mode} /login preflight");
        for path in ["/__probe", "/login", "/nope"] {
            let r = send(
                &f.router,
                Request::get(path)
                    .header("origin", PAGE)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(cors_of(&r), e.act_allowed, "{mode} {path}");
        }
    }
}

#[tokio::test]
async fn cors_headers_on_errors_and_injected_faults() {
    let f = fixture_with(|c| {
        c.runtime.fail_chunk_once = Some(1);
        c.runtime.require_session = false;
    });
    let want = expect(CorsMode::Strict).act_allowed;
    // 400
    let r = send(
        &f.router,
        Request::post("/upload")
            .header("origin", PAGE)
            .body(Body::from("x"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(cors_of(&r), want);
    // injected 503 with Retry-After
    let data = pattern(10, 1);
    let u = Upload {
        dialect: Dialect::Flow,
        id: "f",
        name: "f.txt",
        data: &data,
        cs: 100,
        force: false,
    };
    let r = send(&f.router, u.post_req(1, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let mut with_retry = want.clone();
    with_retry.insert("retry-after", "1".into());
    assert_eq!(cors_of(&r), with_retry);
    // 401
    let body = serde_json::json!({ "require_session": true }).to_string();
    send(
        &f.router,
        control(Method::POST, "/__fixture/config", Some(&body)),
    )
    .await;
    let r = send(&f.router, u.post_req(1, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(cors_of(&r), want);
    // 413 and 415
    let body =
        serde_json::json!({ "require_session": false, "fail_rate": 1.0, "fail_status": 500 })
            .to_string();
    send(
        &f.router,
        control(Method::POST, "/__fixture/config", Some(&body)),
    )
    .await;
    let r = send(&f.router, u.post_req(1, Format::Octet)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(cors_of(&r), want);
}

#[tokio::test]
async fn allow_origin_list_and_headers_are_configurable() {
    let f = fixture_with(|c| {
        c.runtime.allow_origins = vec!["http://localhost:5173".into(), "http://a.test".into()];
        c.runtime.allow_headers = vec!["x-one".into()];
        c.runtime.max_age = 7;
    });
    let r = send(&f.router, preflight_req("http://a.test", false)).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-headers"), Some("x-one"));
    assert_eq!(r.header("access-control-max-age"), Some("7"));
    // The page origin is not implied once a list is given.
    let r = send(&f.router, preflight_req(PAGE, false)).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // No Origin header: no CORS headers in strict mode.
    let r = send(
        &f.router,
        Request::get("/__probe").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("content-type"), None);
}

/// A control request with chosen headers (no token unless given).
fn control_with(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn control_routes_answer_only_the_page_origin_or_the_token() {
    let switch = r#"{"cors":"reflect","allow_origins":["http://evil.example"]}"#;
    let wrong_token = "x".repeat(TOKEN.len());
    for mode in [
        CorsMode::None,
        CorsMode::Strict,
        CorsMode::Reflect,
        CorsMode::Preflight500,
    ] {
        let f = fixture_with(|c| c.runtime.cors = mode);
        let data = pattern(50, 1);
        let u = Upload {
            dialect: Dialect::Flow,
            id: "keep",
            name: "keep.bin",
            data: &data,
            cs: 100,
            force: false,
        };
        assert_eq!(
            send(&f.router, u.post_req(1, Format::Octet)).await.status,
            StatusCode::OK
        );
        let before = f.state.runtime();
        let denied = |r: &Resp, what: &str| {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{mode} {what}: {}", r.body);
            assert_eq!(cors_of(r), map(&[("vary", "Origin")]), "{mode} {what}");
        };
        let preflight = |origin: &str, headers: &str| {
            Request::options("/__fixture/config")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", headers)
                .body(Body::empty())
                .unwrap()
        };

        // Preflights: the page origin passes; a foreign one only when it announces the token.
        denied(
            &send(&f.router, preflight(FOREIGN, "content-type")).await,
            "foreign preflight",
        );
        let granted = |origin: &str| {
            map(&[
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", "GET, POST, OPTIONS"),
                (
                    "access-control-allow-headers",
                    "content-type, x-fixture-token",
                ),
                ("access-control-max-age", "600"),
                ("vary", "Origin"),
            ])
        };
        let r = send(&f.router, preflight(PAGE, "content-type")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{mode}");
        assert_eq!(cors_of(&r), granted(PAGE), "{mode} page preflight");
        let r = send(
            &f.router,
            preflight(FOREIGN, "content-type,x-fixture-token"),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{mode}");
        assert_eq!(cors_of(&r), granted(FOREIGN), "{mode} token preflight");

        // Reads: nothing for a foreign origin, with or without cookies, or without any Origin.
        for (what, headers) in [
            ("foreign", vec![("origin", FOREIGN)]),
            (
                "foreign with a cookie",
                vec![("origin", FOREIGN), ("cookie", "fixture_session=x")],
            ),
            ("no Origin", vec![]),
            (
                "foreign with a wrong token",
                vec![
                    ("origin", FOREIGN),
                    ("x-fixture-token", wrong_token.as_str()),
                ],
            ),
            ("null origin", vec![("origin", "null")]),
        ] {
            for path in ["/__fixture/stats", "/__fixture/files", "/__fixture/config"] {
                let r = send(&f.router, control_with(Method::GET, path, &headers, "")).await;
                denied(&r, &format!("GET {path} {what}"));
                assert!(!r.body.contains("keep"), "{mode} {path} {what}: {}", r.body);
                assert!(r.body.contains("x-fixture-token"), "{}", r.body);
            }
        }
        let allowed =
            |origin: &str| map(&[("access-control-allow-origin", origin), ("vary", "Origin")]);
        let r = send(
            &f.router,
            control_with(Method::GET, "/__fixture/files", &[("origin", PAGE)], ""),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{mode}");
        assert!(r.body.contains("keep.bin"));
        assert_eq!(cors_of(&r), allowed(PAGE), "{mode}: no credentials, ever");
        let r = send(
            &f.router,
            control_with(
                Method::GET,
                "/__fixture/stats",
                &[("origin", FOREIGN), ("x-fixture-token", TOKEN)],
                "",
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{mode}");
        assert_eq!(cors_of(&r), allowed(FOREIGN), "{mode}");

        // State changes: never from a foreign origin, never as a simple request.
        for (what, path, headers, want) in [
            (
                "foreign text/plain",
                "/__fixture/config",
                vec![("origin", FOREIGN), ("content-type", "text/plain")],
                403,
            ),
            (
                "foreign JSON",
                "/__fixture/config",
                vec![("origin", FOREIGN), ("content-type", "application/json")],
                403,
            ),
            (
                "foreign no-cors reset",
                "/__fixture/reset?data=1",
                vec![("origin", FOREIGN)],
                403,
            ),
            (
                "page text/plain",
                "/__fixture/config",
                vec![("origin", PAGE), ("content-type", "text/plain")],
                415,
            ),
            (
                "page no-cors reset",
                "/__fixture/reset?data=1",
                vec![("origin", PAGE)],
                415,
            ),
            (
                "token, form-encoded",
                "/__fixture/config",
                vec![
                    ("x-fixture-token", TOKEN),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                415,
            ),
            (
                "token, no Content-Type",
                "/__fixture/reset?data=1",
                vec![("x-fixture-token", TOKEN)],
                415,
            ),
        ] {
            let r = send(
                &f.router,
                control_with(Method::POST, path, &headers, switch),
            )
            .await;
            assert_eq!(r.status.as_u16(), want, "{mode} {what}: {}", r.body);
            assert_eq!(
                f.state.runtime(),
                before,
                "{mode} {what} changed the settings"
            );
            assert_eq!(
                files_json(&f.router).await.as_array().unwrap().len(),
                1,
                "{mode} {what}"
            );
        }
        let r = send(
            &f.router,
            control_with(
                Method::POST,
                "/__fixture/config",
                &[
                    ("origin", PAGE),
                    ("content-type", "application/json; charset=utf-8"),
                ],
                r#"{"delay_ms":3}"#,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{mode}: {}", r.body);
        assert_eq!(cors_of(&r), allowed(PAGE));
        assert_eq!(f.state.runtime().delay_ms, 3);
    }
}

#[tokio::test]
async fn without_a_page_listener_only_the_token_opens_the_control_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_in(tmp.path());
    let state = server_fixture::AppState::new(&cfg, None).unwrap();
    let router = server_fixture::api_router(state);
    let r = send(
        &router,
        control_with(Method::GET, "/__fixture/stats", &[("origin", PAGE)], ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&router, control(Method::GET, "/__fixture/stats", None)).await;
    assert_eq!(r.status, StatusCode::OK);
}
