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
//! Modules: [`config`] (flags and runtime settings), [`params`] (parameter parsing and chunk
//! plan), [`store`] (disk layout and assembly), [`upload`] (API handlers and router), [`cors`],
//! [`faults`], [`control`] (`/__fixture/*` and statistics), [`statics`] (page files),
//! [`server`] (sockets, HTTP/1.1 and HTTP/2, shutdown), [`tls`] (`--tls`), [`link`] (the
//! emulated link), [`s3`] (the S3 signing role). See `README.md` for the flags, endpoints and CORS modes.
//!
//! [Resumable.js]: https://github.com/23/resumable.js
//! [Flow.js]: https://github.com/flowjs/flow.js

pub mod config;
pub mod control;
pub mod cors;
pub mod faults;
pub mod link;
pub mod params;
pub mod s3;
pub mod server;
pub mod state;
pub mod statics;
pub mod store;
pub mod tls;
pub mod upload;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, CorsMode, Mount, Runtime};
pub use link::LinkSpec;
pub use state::AppState;
pub use store::FileRecord;

/// Why the fixture could not start.
#[derive(Debug)]
pub enum Error {
    /// An invalid setting.
    Config(String),
    /// An I/O failure (binding, data directory), with what was being done.
    Io(String, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Io(_, e) => Some(e),
        }
    }
}

/// The API listener's router: `/upload`, `/login`, `/__probe`, `OPTIONS *`, and (if enabled)
/// `/__fixture/*`. Usable in-process with `tower::ServiceExt::oneshot`.
pub fn api_router(st: AppState) -> Router {
    let mut r = upload::api_routes(st.clone(), "api", true);
    if st.control_enabled() {
        r = r.merge(control::control_router(st));
    }
    r
}

/// The page listener's router: static files, `/__fixture/*` (if enabled), and the API routes
/// too when `api_on_page` is set.
pub fn page_router(st: AppState, config: &Config) -> Router {
    let mut r = statics::static_router(config.www.as_deref(), &config.mounts);
    if config.api_on_page {
        r = r.merge(upload::api_routes(st.clone(), "page", false));
    }
    if st.control_enabled() {
        r = r.merge(control::control_router(st));
    }
    r
}

/// A running fixture. Dropping it (or calling [`Handle::shutdown`]) stops the listeners.
#[derive(Debug)]
pub struct Handle {
    page_url: Option<String>,
    api_url: String,
    state: AppState,
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
        self.state.data_dir()
    }

    /// The statistics, as served by `GET /__fixture/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.state.stats_json()
    }

    /// The shared state (runtime settings, store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The secret that authorises `/__fixture/*` callers other than the page origin (the
    /// `x-fixture-token` header).
    pub fn control_token(&self) -> &str {
        self.state.control_token()
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
        api_router(state.clone()),
        rx.clone(),
        server::Listening {
            max_connections: config.max_connections,
            tls: tls.clone(),
            link: Some(state.link()),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        },
    ))];
    if let Some((listener, _)) = page {
        tasks.push(tokio::spawn(server::serve(
            listener,
            page_router(state.clone(), &config),
            rx.clone(),
            server::Listening {
                max_connections: config.max_connections,
                tls: tls.clone(),
                link: None,
                idle_timeout: Duration::from_secs(config.idle_timeout_secs),
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
        state,
        tls,
        shutdown: tx,
        tasks,
    })
}
