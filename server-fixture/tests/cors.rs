//! CORS tests: every mode's exact headers for a preflight and an actual request, with and
//! without credentials (cookies), from the allowed and from a foreign origin; CORS headers on
//! errors and injected faults; the fixed permissive policy of `/__fixture/*`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use server_fixture::{CorsMode, Runtime};

const CORS_HEADERS: [&str; 8] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
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
            Request::post("/__fixture/config")
                .body(Body::from(body))
                .unwrap(),
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
        Request::post("/__fixture/config")
            .body(Body::from(body))
            .unwrap(),
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
        Request::post("/__fixture/config")
            .body(Body::from(body))
            .unwrap(),
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

#[tokio::test]
async fn control_routes_always_reflect_with_credentials() {
    for mode in [CorsMode::None, CorsMode::Strict, CorsMode::Preflight500] {
        let f = fixture_with(|c| c.runtime.cors = mode);
        let r = send(
            &f.router,
            Request::options("/__fixture/config")
                .header("origin", FOREIGN)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            cors_of(&r),
            map(&[
                ("access-control-allow-origin", FOREIGN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET, POST, OPTIONS"),
                ("access-control-allow-headers", "content-type"),
                ("access-control-max-age", "600"),
                ("vary", "Origin"),
            ])
        );
        let r = send(
            &f.router,
            Request::get("/__fixture/stats")
                .header("origin", FOREIGN)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.header("access-control-allow-origin"), Some(FOREIGN));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    }
}
