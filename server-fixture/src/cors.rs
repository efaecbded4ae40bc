//! CORS for the API routes, one function per decision: which origin headers a mode sends,
//! what a preflight answers, and what an actual response gets. Also the guard of
//! `/__fixture/*` (page origin or control token, JSON for state changes). The exact headers of
//! each mode are tabulated in the README.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, CONTENT_TYPE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{CorsMode, Runtime};
use crate::state::AppState;

/// Methods listed by the preflight of every mode except `no-allow-methods`.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, OPTIONS";
/// Methods listed by the `no-allow-methods` misconfiguration (POST, PUT, PATCH missing).
pub const ALLOW_METHODS_BROKEN: &str = "GET, OPTIONS";
/// Lets the allowed origin read an actual response's Resource Timing details (not in `http`).
const TIMING_ALLOW_ORIGIN: HeaderName = HeaderName::from_static("timing-allow-origin");
/// Response headers exposed to script on actual responses.
pub const EXPOSE_HEADERS: &str = "Retry-After";

fn hv(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// Sets the origin-dependent headers of `mode`; returns whether CORS was granted
/// (an `Access-Control-Allow-Origin` was sent).
fn origin_headers(rt: &Runtime, origin: Option<&str>, h: &mut HeaderMap) -> bool {
    let allowed = |o: &str| rt.allow_origins.iter().any(|a| a == o);
    let (acao, creds) = match rt.cors {
        CorsMode::None => return false,
        CorsMode::Wildcard => (Some(HeaderValue::from_static("*")), false),
        CorsMode::WildcardCredentials => (Some(HeaderValue::from_static("*")), true),
        CorsMode::Reflect => {
            h.insert(VARY, HeaderValue::from_static("Origin"));
            (origin.and_then(hv), true)
        }
        CorsMode::Strict
        | CorsMode::NoAllowMethods
        | CorsMode::NoAllowHeaders
        | CorsMode::NoAllowCredentials
        | CorsMode::Preflight404
        | CorsMode::Preflight500 => {
            h.insert(VARY, HeaderValue::from_static("Origin"));
            let acao = origin.filter(|o| allowed(o)).and_then(hv);
            (acao, rt.cors != CorsMode::NoAllowCredentials)
        }
    };
    let Some(acao) = acao else { return false };
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, acao);
    if creds {
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    true
}

/// The answer to an `OPTIONS` request on an API route under `rt`.
pub fn preflight(rt: &Runtime, origin: Option<&str>, request_headers: Option<&str>) -> Response {
    let status = match rt.cors {
        CorsMode::Preflight404 => StatusCode::NOT_FOUND,
        CorsMode::Preflight500 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NO_CONTENT,
    };
    let mut resp = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (
            status,
            format!("preflight refused on purpose (cors mode {})\n", rt.cors),
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if !origin_headers(rt, origin, h) {
        return resp;
    }
    let methods = if rt.cors == CorsMode::NoAllowMethods {
        ALLOW_METHODS_BROKEN
    } else {
        ALLOW_METHODS
    };
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    let listed = rt.allow_headers.join(", ");
    let allow_headers = match rt.cors {
        CorsMode::NoAllowHeaders => None,
        CorsMode::Reflect => {
            h.insert(
                VARY,
                HeaderValue::from_static("Origin, Access-Control-Request-Headers"),
            );
            request_headers
                .filter(|s| !s.trim().is_empty())
                .map_or(Some(listed), |r| Some(r.to_owned()))
        }
        _ => Some(listed),
    };
    if let Some(v) = allow_headers.filter(|s| !s.is_empty()).and_then(|s| hv(&s)) {
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(v) = hv(&rt.max_age.to_string()) {
        h.insert(ACCESS_CONTROL_MAX_AGE, v);
    }
    resp
}

/// Adds the CORS headers of an actual (non-preflight) response under `rt`, and
/// `Timing-Allow-Origin` (the allowed origin again) unless switched off.
pub fn decorate_actual(rt: &Runtime, origin: Option<&str>, h: &mut HeaderMap) {
    if origin_headers(rt, origin, h) {
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if rt.timing_allow_origin {
            if let Some(allowed) = h.get(ACCESS_CONTROL_ALLOW_ORIGIN).cloned() {
                h.insert(TIMING_ALLOW_ORIGIN, allowed);
            }
        }
    }
}

fn header_str<'a>(req: &'a Request, name: &axum::http::HeaderName) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Middleware of the API routes: answers `OPTIONS` itself, decorates every other response
/// (errors and injected faults included).
pub async fn api_cors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let rt = st.runtime();
    let origin = header_str(&req, &ORIGIN).map(str::to_owned);
    if req.method() == Method::OPTIONS {
        return preflight(
            &rt,
            origin.as_deref(),
            header_str(&req, &ACCESS_CONTROL_REQUEST_HEADERS),
        );
    }
    let mut resp = next.run(req).await;
    decorate_actual(&rt, origin.as_deref(), resp.headers_mut());
    resp
}

/// The request header that carries the control token.
pub const CONTROL_TOKEN_HEADER: &str = "x-fixture-token";
/// Request headers a `/__fixture/*` preflight allows.
pub const CONTROL_ALLOW_HEADERS: &str = "content-type, x-fixture-token";

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

/// Middleware of `/__fixture/*`, whatever the CORS mode of the API:
/// - a request is served when its `Origin` is the fixture's page origin, or when it carries the
///   control token in `x-fixture-token`; anything else gets 403 and no CORS headers, so a
///   foreign page can neither read nor change anything;
/// - a state-changing call (POST) must be `Content-Type: application/json`, which a page can
///   only send cross-origin after a preflight, else 415;
/// - a preflight passes for the page origin, and for another origin only if it announces the
///   token header (whose value the actual request must then prove);
/// - an authorised cross-origin caller gets `Access-Control-Allow-Origin: <its origin>`, never
///   `Access-Control-Allow-Credentials` (no control call needs cookies).
pub async fn control_guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let origin = header_str(&req, &ORIGIN).map(str::to_owned);
    let from_page = origin.is_some() && origin.as_deref() == st.page_origin();
    let who = || match st.page_origin() {
        Some(p) => format!("the page origin {p} or a caller"),
        None => "a caller".to_owned(),
    };
    let (mut resp, authorised) = if req.method() == Method::OPTIONS {
        let announces_token = header_str(&req, &ACCESS_CONTROL_REQUEST_HEADERS).is_some_and(|h| {
            h.split(',')
                .any(|n| n.trim().eq_ignore_ascii_case(CONTROL_TOKEN_HEADER))
        });
        if origin.is_some() && (from_page || announces_token) {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(CONTROL_ALLOW_HEADERS),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            (r, true)
        } else {
            let msg = format!(
                "/__fixture/* preflights pass only for {} sending {CONTROL_TOKEN_HEADER}\n",
                who()
            );
            (refuse(StatusCode::FORBIDDEN, msg), false)
        }
    } else {
        let token_ok = req
            .headers()
            .get(CONTROL_TOKEN_HEADER)
            .is_some_and(|v| same_secret(v.as_bytes(), st.control_token().as_bytes()));
        if !(from_page || token_ok) {
            let msg = format!(
                "/__fixture/* answers only {} with the {CONTROL_TOKEN_HEADER} header printed in \
                 the fixture's start line\n",
                who()
            );
            (refuse(StatusCode::FORBIDDEN, msg), false)
        } else if req.method() == Method::POST && !is_json(header_str(&req, &CONTENT_TYPE)) {
            let msg = "state-changing /__fixture/* calls need Content-Type: application/json\n";
            (
                refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg.to_owned()),
                true,
            )
        } else {
            (next.run(req).await, true)
        }
    };
    let h = resp.headers_mut();
    h.insert(VARY, HeaderValue::from_static("Origin"));
    if authorised {
        if let Some(o) = origin.as_deref().and_then(hv) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
    }
    resp
}
