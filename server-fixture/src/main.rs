//! The `server-fixture` binary: parses the flags, starts the fixture, prints one JSON line with
//! the bound URLs to stdout, logs to stderr, and exits on SIGINT/SIGTERM or `--max-lifetime`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use server_fixture::{Config, CorsMode, Mount, Runtime};

/// A strict Resumable.js/Flow.js protocol server with two origins, every CORS mode and fault
/// injection. See server-fixture/README.md.
#[derive(Debug, Parser)]
#[command(name = "server-fixture", version)]
struct Args {
    /// Page listener address (static files), HOST:PORT; port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    page_listen: String,
    /// API listener address, HOST:PORT; `localhost` binds 127.0.0.1.
    #[arg(long, default_value = "localhost:8081")]
    api_listen: String,
    /// Directory served at `/` on the page listener.
    #[arg(long)]
    www: Option<PathBuf>,
    /// More static directories on the page listener, PREFIX=DIR (repeatable).
    #[arg(long = "mount", value_name = "PREFIX=DIR")]
    mounts: Vec<Mount>,
    /// Run only the API listener.
    #[arg(long)]
    no_page: bool,
    /// Also serve the API routes on the page origin.
    #[arg(long)]
    api_on_page: bool,
    /// Data directory (default: a fresh temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Name of the multipart file field.
    #[arg(long, default_value = "file")]
    file_param: String,
    /// Enable /__fixture/* (the default).
    #[arg(long, overrides_with = "no_control")]
    control: bool,
    /// Disable /__fixture/*.
    #[arg(long)]
    no_control: bool,
    /// Exit after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    max_lifetime: u64,
    /// Secret that authorises /__fixture/* callers other than the page origin, sent as the
    /// x-fixture-token header (default: a random one; printed in the start line either way).
    #[arg(long, value_name = "TOKEN")]
    control_token: Option<String>,
    /// Open connections per listener before new ones get 503 (16 more serve /__fixture/* only).
    #[arg(long, default_value_t = server_fixture::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds a request body may take in total before the request gets 408.
    #[arg(long, default_value_t = server_fixture::config::DEFAULT_BODY_TIMEOUT_SECS)]
    body_timeout: u64,
    /// CORS mode: strict, reflect, wildcard, none, wildcard-credentials, no-allow-methods,
    /// no-allow-headers, no-allow-credentials, preflight-404, preflight-500.
    #[arg(long, default_value = "strict")]
    cors: CorsMode,
    /// Allowed origin for the strict-based modes (repeatable; default: the page origin).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Request header allowed by preflights (repeatable; default: authorization,
    /// x-upload-token, content-type).
    #[arg(long = "allow-header", value_name = "NAME")]
    allow_headers: Vec<String>,
    /// Access-Control-Max-Age of preflights, seconds.
    #[arg(long, default_value_t = 600)]
    max_age: u64,
    /// Answer /upload with 401 unless the session cookie from /login is sent.
    #[arg(long)]
    require_session: bool,
    /// Delay before every API request (OPTIONS included), milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Probability (0..1) that an /upload request fails with --fail-status.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Status of injected failures (503 adds Retry-After: 1).
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
    /// Seed of the fault generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Probability (0..1) that an /upload request's connection is dropped without answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Never answer /upload requests until switched off via /__fixture/config.
    #[arg(long)]
    stall: bool,
    /// Probability (0..1) that a chunk body gets one bit flipped as it arrives, before its
    /// checksum is verified.
    #[arg(long, default_value_t = 0.0)]
    corrupt_rate: f64,
    /// The next POST of chunk N fails once with --fail-status.
    #[arg(long, value_name = "N")]
    fail_chunk_once: Option<u64>,
    /// Largest chunk body in bytes (413 beyond).
    #[arg(long)]
    max_chunk_bytes: Option<u64>,
    /// Largest total file size in bytes (413 beyond).
    #[arg(long)]
    max_file_bytes: Option<u64>,
    /// Serve both origins over HTTPS (HTTP/2 and HTTP/1.1) with a certificate made at start;
    /// the start line gives its PEM path and public-key hash.
    #[arg(long)]
    tls: bool,
    /// Emulate a link in front of the API listener: rtt=MS,up=MBIT,down=MBIT (each optional).
    #[arg(long, value_name = "rtt=MS,up=MBIT,down=MBIT")]
    link: Option<server_fixture::LinkSpec>,
    /// The S3 signing role: the store's base URL (e.g. http://127.0.0.1:9000); enables /s3/*.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The store's base URL as pages reach it, for the URLs the S3 role hands out (default:
    /// --s3-endpoint, which stays the address of the role's own calls).
    #[arg(long, value_name = "URL")]
    s3_public_endpoint: Option<String>,
    /// The bucket of the S3 role.
    #[arg(long, default_value = "uploads")]
    s3_bucket: String,
    /// The region the S3 role signs for.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// The S3 role's access key (test credentials only).
    #[arg(long, default_value = "test")]
    s3_access_key: String,
    /// The S3 role's secret key (test credentials only).
    #[arg(long, default_value = "test")]
    s3_secret_key: String,
}

impl Args {
    fn into_config(self) -> Config {
        let defaults = Runtime::default();
        Config {
            page_listen: self.page_listen,
            api_listen: self.api_listen,
            www: self.www,
            mounts: self.mounts,
            no_page: self.no_page,
            api_on_page: self.api_on_page,
            data_dir: self.data_dir,
            file_param: self.file_param,
            control: !self.no_control || self.control,
            max_lifetime_secs: self.max_lifetime,
            control_token: self.control_token,
            max_connections: self.max_connections,
            body_timeout_secs: self.body_timeout,
            tls: self.tls,
            idle_timeout_secs: server_fixture::config::DEFAULT_IDLE_TIMEOUT_SECS,
            s3: self
                .s3_endpoint
                .map(|endpoint| server_fixture::s3::S3Settings {
                    endpoint,
                    public_endpoint: self.s3_public_endpoint,
                    bucket: self.s3_bucket,
                    region: self.s3_region,
                    access_key: self.s3_access_key,
                    secret_key: self.s3_secret_key,
                }),
            runtime: Runtime {
                cors: self.cors,
                allow_origins: self.allow_origins,
                allow_headers: if self.allow_headers.is_empty() {
                    defaults.allow_headers
                } else {
                    self.allow_headers
                },
                max_age: self.max_age,
                delay_ms: self.delay_ms,
                fail_rate: self.fail_rate,
                fail_status: self.fail_status,
                seed: self.seed,
                drop_rate: self.drop_rate,
                stall: self.stall,
                corrupt_rate: self.corrupt_rate,
                fail_chunk_once: self.fail_chunk_once,
                require_session: self.require_session,
                max_chunk_bytes: self.max_chunk_bytes.unwrap_or(defaults.max_chunk_bytes),
                max_file_bytes: self.max_file_bytes.unwrap_or(defaults.max_file_bytes),
                link: self.link,
                timing_allow_origin: defaults.timing_allow_origin,
            },
        }
    }
}

async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let handle = match server_fixture::spawn(args.into_config()).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("server-fixture: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", handle.ready_line())
            .and_then(|()| out.flush())
            .is_err()
        {
            eprintln!("server-fixture: cannot write to stdout");
        }
    }
    tokio::select! {
        () = terminate_signal() => tracing::info!("signal received, shutting down"),
        () = handle.stopping() => {}
    }
    handle.shutdown().await;
    std::process::ExitCode::SUCCESS
}
