//! The connection cap as the routes see it: a connection admitted over the cap (into the
//! control reserve) carries [`OverCap`], and every route but `/__fixture/*` refuses it with a
//! retryable 503.

/// Inserted into the requests of a connection admitted over the cap: every route but
/// `/__fixture/*` answers 503 (see [`refuse_when_over_cap`]).
#[derive(Debug, Clone, Copy)]
pub struct OverCap(pub usize);

/// Middleware of the API and static routes: 503 with `Retry-After: 1` on a connection admitted
/// over the cap. Sits inside the CORS layer of the API routes, so a browser can read it.
pub async fn refuse_when_over_cap(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match req.extensions().get::<OverCap>() {
        Some(OverCap(cap)) => {
            let mut resp = (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                over_cap_message(*cap),
            )
                .into_response();
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            resp
        }
        None => next.run(req).await,
    }
}

/// The refusal text of a connection over the cap, in the reserve's 503 and in the fixed one.
pub fn over_cap_message(cap: usize) -> String {
    format!("too many connections (the cap is {cap}); retry later\n")
}
