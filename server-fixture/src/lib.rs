//! # server-fixture
//!
//! A strict, native [Resumable.js]/[Flow.js] chunk-protocol server for resumable-wasm's tests
//! and demo, and a reference server for implementers. It runs two listeners (two origins): a
//! page listener for static files and an API listener with `/upload`, every CORS mode, fault
//! injection and introspection under `/__fixture/`. It is an independent implementation of the
//! protocol and does not depend on the client crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), server_fixture::Error> {
//! let handle = server_fixture::spawn(server_fixture::Config::ephemeral()).await?;
//! println!("upload to {}/upload", handle.api_url());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules, each importing only modules listed after it (checked by `tests/layers.rs`):
//! - the [`server`] (sockets, HTTP/1.1 and HTTP/2, the connection cap, shutdown), used by this
//!   file's routers and [`spawn`];
//! - handlers: [`upload`] (the protocol's routes), [`control`] (`/__fixture/*` and the request
//!   statistics), [`statics`] (page files);
//! - middleware: [`cors`], [`faults`], [`limits`] (the connection cap as routes see it);
//! - [`s3_routes`] (the S3 signing role's JSON routes and test controls), then the shared [`state`];
//! - leaves: [`config`] (flags and runtime settings), [`params`] (parameter parsing and chunk
//!   plan), [`store`] (disk layout and completion), [`link`] (the emulated link), [`tls`];
//! - helpers: [`body`] (reading request bodies), then [`checksum`] (the integrity parameters'
//!   vocabulary), [`error`], [`random`], [`s3`] (the S3 role's presigning and store calls),
//!   [`sync`].
//!
//! See `README.md` for the flags, endpoints and CORS modes.
//!
//! [Resumable.js]: https://github.com/23/resumable.js
//! [Flow.js]: https://github.com/flowjs/flow.js

pub mod body;
pub mod checksum;
pub mod config;
pub mod control;
pub mod cors;
pub mod error;
pub mod faults;
pub mod limits;
pub mod link;
pub mod params;
pub mod random;
pub mod s3;
pub mod s3_routes;
pub mod server;
pub mod state;
pub mod statics;
pub mod store;
pub mod sync;
pub mod tls;
pub mod upload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, CorsMode, LinkSpec, Mount, Runtime};
pub use control::ControlState;
pub use error::Error;
pub use state::AppState;
pub use store::FileRecord;

/// The API listener's router: `/upload`, `/login`, `/__probe`, `OPTIONS *`, and (if enabled)
/// `/__fixture/*`. Usable in-process with `tower::ServiceExt::oneshot`; give it an
/// [`AppState`] (fresh statistics) or a [`ControlState`] whose statistics it should share.
pub fn api_router(control: impl Into<ControlState>) -> Router {
    let control = control.into();
    let mut r = api_routes(&control, "api", true);
    if control.control_enabled() {
        r = r.merge(control::control_router(control));
    }
    r
}

/// The page listener's router: static files, `/__fixture/*` (if enabled), and the API routes
/// too when `api_on_page` is set.
pub fn page_router(control: impl Into<ControlState>, config: &Config) -> Router {
    let control = control.into();
    let mut r = statics::static_router(config.www.as_deref(), &config.mounts);
    if config.api_on_page {
        r = r.merge(api_routes(&control, "page", false));
    }
    if control.control_enabled() {
        r = r.merge(control::control_router(control));
    }
    r
}

/// The API routes: `/upload` (behind its faults and the drain before an error), `/login`,
/// `/__probe`, inside the connection cap, CORS, the delay and the recording of `control`
/// (outermost). `listener` labels the statistics (`api` or `page`); `fallback` adds the 404.
fn api_routes(control: &ControlState, listener: &'static str, fallback: bool) -> Router {
    let st = control.app().clone();
    let faults = axum::middleware::from_fn_with_state(st.clone(), faults::upload_faults);
    let upload = get(upload::probe)
        .post(upload::chunk)
        .put(upload::chunk)
        .patch(upload::chunk)
        .layer(faults)
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            upload::drain_on_error,
        ));
    let mut r = Router::new()
        .route("/upload", upload)
        .route("/login", get(upload::login).post(upload::login))
        .route("/__probe", any(upload::reachability))
        .merge(s3_routes::api_routes());
    if fallback {
        r = r.fallback(upload::not_found);
    }
    r.layer(axum::middleware::from_fn(limits::refuse_when_over_cap))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            cors::api_cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            faults::delay,
        ))
        .layer(axum::middleware::from_fn_with_state(
            control::Recorder {
                st: control.clone(),
                listener,
            },
            control::record,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(st)
}

/// A running fixture. Dropping it (or calling [`Handle::shutdown`]) stops the listeners.
#[derive(Debug)]
pub struct Handle {
    page_url: Option<String>,
    api_url: String,
    control: ControlState,
    tls: Option<tls::Tls>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handle {
    /// With `--tls`: the certificate's public-key hash and PEM path.
    pub fn tls(&self) -> Option<&tls::Tls> {
        self.tls.as_ref()
    }

    /// `http://host:port` (`https://` with `--tls`) of the page listener (`None` with `no_page`).
    pub fn page_url(&self) -> Option<&str> {
        self.page_url.as_deref()
    }

    /// `http://host:port` (`https://` with `--tls`) of the API listener.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The data directory (canonical path).
    pub fn data_dir(&self) -> PathBuf {
        self.control.data_dir()
    }

    /// The statistics, as served by `GET /__fixture/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.control.stats_json()
    }

    /// The shared state (runtime settings, store).
    pub fn state(&self) -> &AppState {
        self.control.app()
    }

    /// The secret that authorises `/__fixture/*` callers other than the page origin (the
    /// `x-fixture-token` header).
    pub fn control_token(&self) -> &str {
        self.control.control_token()
    }

    /// The JSON line the binary prints once listening.
    pub fn ready_line(&self) -> String {
        let q = |v: &str| serde_json::Value::from(v).to_string();
        let tls = self.tls.as_ref().map_or_else(
            || "null".to_owned(),
            |t| {
                format!(
                    "{{\"spki_sha256\":{},\"cert_pem\":{}}}",
                    q(&t.spki_sha256),
                    q(&path_string(&t.cert_pem_path))
                )
            },
        );
        format!(
            "{{\"page\":{},\"api\":{},\"data_dir\":{},\"control_token\":{},\"tls\":{}}}",
            self.page_url
                .as_deref()
                .map_or_else(|| "null".to_owned(), q),
            q(&self.api_url),
            q(&path_string(&self.data_dir())),
            q(self.control_token()),
            tls,
        )
    }

    /// Resolves once a shutdown was requested (e.g. by `max_lifetime_secs`).
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops accepting, lets open requests finish for a bounded grace period, then closes.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Dropping the handle stops the listeners (in the background).
        self.shutdown.send_replace(true);
    }
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Binds both listeners (page unless `no_page`), builds the state and serves in the background.
pub async fn spawn(config: Config) -> Result<Handle, Error> {
    let (api_listener, api_url) = server::bind(&config.api_listen, config.tls).await?;
    let page = if config.no_page {
        None
    } else {
        Some(server::bind(&config.page_listen, config.tls).await?)
    };
    let page_url = page.as_ref().map(|(_, u)| u.clone());
    let state = AppState::new(&config, page_url.clone())?;
    let control = ControlState::new(state.clone());
    let tls = if config.tls {
        let mut hosts = Vec::new();
        for addr in [&config.api_listen, &config.page_listen] {
            hosts.push(config::split_host_port(addr).map_err(Error::Config)?.0);
        }
        Some(tls::generate(&state.data_dir(), &hosts)?)
    } else {
        None
    };
    let (tx, rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(server::serve(
        api_listener,
        api_router(control.clone()),
        rx.clone(),
        server::Listening {
            max_connections: config.max_connections,
            tls: tls.clone(),
            link: Some(state.link()),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            request_limit: Duration::from_secs(config.body_timeout_secs),
        },
    ))];
    if let Some((listener, _)) = page {
        tasks.push(tokio::spawn(server::serve(
            listener,
            page_router(control.clone(), &config),
            rx.clone(),
            server::Listening {
                max_connections: config.max_connections,
                tls: tls.clone(),
                link: None,
                idle_timeout: Duration::from_secs(config.idle_timeout_secs),
                request_limit: Duration::from_secs(config.body_timeout_secs),
            },
        )));
    }
    if config.max_lifetime_secs > 0 {
        let tx = tx.clone();
        let secs = config.max_lifetime_secs;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            tracing::info!("max lifetime of {secs}s reached, shutting down");
            tx.send_replace(true);
        });
    }
    tracing::info!(api = %api_url, page = ?page_url, data_dir = %state.data_dir().display(), "listening");
    Ok(Handle {
        page_url,
        api_url,
        control,
        tls,
        shutdown: tx,
        tasks,
    })
}
