//! The page listener's static files: `--www` at `/` and every `--mount PREFIX=DIR`, served by
//! tower-http's `ServeDir` (which refuses `..` and serves `index.html` for directories), with
//! the right Content-Type for `.wasm`/`.js`/`.mjs` and `Cache-Control: no-store`.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

use crate::config::Mount;

/// The Content-Type for a path's extension, for the types browsers are strict about.
pub fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

async fn static_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if resp.status().is_success() {
        if let Some(ct) = content_type(&path) {
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
    }
    resp
}

/// A router serving `www` at `/` (as the fallback) and each mount under its prefix.
pub fn static_router(www: Option<&std::path::Path>, mounts: &[Mount]) -> Router {
    let mut r = Router::new();
    for m in mounts {
        r = r.nest_service(
            &m.prefix,
            ServeDir::new(&m.dir).append_index_html_on_directories(true),
        );
    }
    if let Some(dir) = www {
        r = r.fallback_service(ServeDir::new(dir).append_index_html_on_directories(true));
    }
    r.layer(axum::middleware::from_fn(
        crate::limits::refuse_when_over_cap,
    ))
    .layer(axum::middleware::from_fn(static_headers))
}
