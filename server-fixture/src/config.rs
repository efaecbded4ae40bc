//! Configuration: the startup [`Config`] (every command-line flag) and the [`Runtime`] subset
//! that `/__fixture/config` can switch while the fixture runs, the [`CorsMode`] names and the
//! [`LinkSpec`] of the emulated link.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The CORS behaviour of the API routes. See the README for the exact headers of each mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CorsMode {
    /// Exact-origin allowlist, credentials, explicit methods and headers, `Vary: Origin`.
    #[default]
    Strict,
    /// Any origin is echoed with credentials; requested headers are echoed too.
    Reflect,
    /// `Access-Control-Allow-Origin: *`, no credentials.
    Wildcard,
    /// No CORS headers at all.
    None,
    /// Misconfiguration: `*` together with `Access-Control-Allow-Credentials: true`.
    WildcardCredentials,
    /// Misconfiguration: strict, but the preflight's method list lacks POST, PUT and PATCH.
    NoAllowMethods,
    /// Misconfiguration: strict, but the preflight has no `Access-Control-Allow-Headers`.
    NoAllowHeaders,
    /// Misconfiguration: strict, but never `Access-Control-Allow-Credentials`.
    NoAllowCredentials,
    /// Misconfiguration: strict, but preflights answer 404.
    #[serde(rename = "preflight-404")]
    Preflight404,
    /// Misconfiguration: strict, but preflights answer 500.
    #[serde(rename = "preflight-500")]
    Preflight500,
}

impl CorsMode {
    /// Every mode, in documentation order.
    pub const ALL: [CorsMode; 10] = [
        CorsMode::Strict,
        CorsMode::Reflect,
        CorsMode::Wildcard,
        CorsMode::None,
        CorsMode::WildcardCredentials,
        CorsMode::NoAllowMethods,
        CorsMode::NoAllowHeaders,
        CorsMode::NoAllowCredentials,
        CorsMode::Preflight404,
        CorsMode::Preflight500,
    ];

    /// The flag spelling, e.g. `no-allow-methods`.
    pub fn as_str(self) -> &'static str {
        match self {
            CorsMode::Strict => "strict",
            CorsMode::Reflect => "reflect",
            CorsMode::Wildcard => "wildcard",
            CorsMode::None => "none",
            CorsMode::WildcardCredentials => "wildcard-credentials",
            CorsMode::NoAllowMethods => "no-allow-methods",
            CorsMode::NoAllowHeaders => "no-allow-headers",
            CorsMode::NoAllowCredentials => "no-allow-credentials",
            CorsMode::Preflight404 => "preflight-404",
            CorsMode::Preflight500 => "preflight-500",
        }
    }
}

impl fmt::Display for CorsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CorsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CorsMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = CorsMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown CORS mode {s:?}; one of {}", names.join(", "))
            })
    }
}

/// The settings that can change at run time through `POST /__fixture/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// CORS mode of the API routes.
    pub cors: CorsMode,
    /// Origins allowed in the strict-based modes. Empty at startup means "the page origin".
    pub allow_origins: Vec<String>,
    /// Request headers listed in `Access-Control-Allow-Headers` (strict-based modes, wildcard).
    pub allow_headers: Vec<String>,
    /// `Access-Control-Max-Age` of preflight answers, in seconds.
    pub max_age: u64,
    /// Delay before every API request (OPTIONS included), in milliseconds.
    pub delay_ms: u64,
    /// Probability in [0, 1] that an `/upload` request answers `fail_status` instead.
    pub fail_rate: f64,
    /// Status of injected failures (503 adds `Retry-After: 1`).
    pub fail_status: u16,
    /// Seed of the deterministic generator behind `fail_rate` and `drop_rate`.
    pub seed: u64,
    /// Probability in [0, 1] that an `/upload` request's connection is dropped without answer.
    pub drop_rate: f64,
    /// While true, `/upload` requests wait without answering.
    pub stall: bool,
    /// Probability in [0, 1] that a chunk body gets one bit flipped as it arrives (before its
    /// checksum is verified), as a broken proxy would.
    #[serde(default)]
    pub corrupt_rate: f64,
    /// The next POST of this chunk number fails once with `fail_status`.
    pub fail_chunk_once: Option<u64>,
    /// `/upload` answers 401 without a session cookie from `/login`.
    pub require_session: bool,
    /// Largest accepted chunk body, in bytes (413 beyond).
    pub max_chunk_bytes: u64,
    /// Largest accepted `totalSize`, in bytes (413 beyond).
    pub max_file_bytes: u64,
    /// The emulated link in front of the API listener; `None` passes bytes through at once.
    pub link: Option<LinkSpec>,
    /// Actual responses that grant CORS also send `Timing-Allow-Origin` with the same value,
    /// so the page can read their Resource Timing details (the protocol, `nextHopProtocol`).
    pub timing_allow_origin: bool,
}

/// Default request headers allowed by the strict mode.
pub const DEFAULT_ALLOW_HEADERS: [&str; 3] = ["authorization", "x-upload-token", "content-type"];

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            cors: CorsMode::Strict,
            allow_origins: Vec::new(),
            allow_headers: DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_age: 600,
            delay_ms: 0,
            fail_rate: 0.0,
            fail_status: 503,
            seed: 0,
            drop_rate: 0.0,
            stall: false,
            corrupt_rate: 0.0,
            fail_chunk_once: None,
            require_session: false,
            max_chunk_bytes: 64 * 1024 * 1024,
            max_file_bytes: 8 * 1024 * 1024 * 1024,
            link: None,
            timing_allow_origin: true,
        }
    }
}

/// A partial update of [`Runtime`], the body of `POST /__fixture/config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimePatch {
    /// See [`Runtime::cors`].
    pub cors: Option<CorsMode>,
    /// See [`Runtime::allow_origins`].
    pub allow_origins: Option<Vec<String>>,
    /// See [`Runtime::allow_headers`].
    pub allow_headers: Option<Vec<String>>,
    /// See [`Runtime::max_age`].
    pub max_age: Option<u64>,
    /// See [`Runtime::delay_ms`].
    pub delay_ms: Option<u64>,
    /// See [`Runtime::fail_rate`].
    pub fail_rate: Option<f64>,
    /// See [`Runtime::fail_status`].
    pub fail_status: Option<u16>,
    /// See [`Runtime::seed`].
    pub seed: Option<u64>,
    /// See [`Runtime::drop_rate`].
    pub drop_rate: Option<f64>,
    /// See [`Runtime::stall`].
    pub stall: Option<bool>,
    /// See [`Runtime::corrupt_rate`].
    pub corrupt_rate: Option<f64>,
    /// See [`Runtime::fail_chunk_once`]; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub fail_chunk_once: Option<Option<u64>>,
    /// See [`Runtime::require_session`].
    pub require_session: Option<bool>,
    /// See [`Runtime::max_chunk_bytes`].
    pub max_chunk_bytes: Option<u64>,
    /// See [`Runtime::max_file_bytes`].
    pub max_file_bytes: Option<u64>,
    /// See [`Runtime::link`]: `"rtt=MS,up=MBIT,down=MBIT"` or the object form; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub link: Option<Option<LinkSpec>>,
    /// See [`Runtime::timing_allow_origin`].
    pub timing_allow_origin: Option<bool>,
}

/// A field that may be absent (no change), `null` (clear) or a value.
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

impl Runtime {
    /// Checks ranges (rates in [0, 1], a real HTTP status).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("fail_rate", self.fail_rate),
            ("drop_rate", self.drop_rate),
            ("corrupt_rate", self.corrupt_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        if !(100..=599).contains(&self.fail_status) {
            return Err(format!(
                "fail_status must be 100..=599, got {}",
                self.fail_status
            ));
        }
        for h in &self.allow_headers {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("allow_headers: invalid header name {h:?}"));
            }
        }
        if let Some(l) = &self.link {
            l.validate()?;
        }
        for o in &self.allow_origins {
            if axum::http::HeaderValue::from_str(o).is_err() {
                return Err(format!("allow_origins: invalid origin {o:?}"));
            }
        }
        Ok(())
    }

    /// Applies a partial update and validates the result; on error nothing changes.
    pub fn apply(&mut self, patch: RuntimePatch) -> Result<(), String> {
        let mut next = self.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
        }
        set!(
            cors,
            allow_origins,
            allow_headers,
            max_age,
            delay_ms,
            fail_rate,
            fail_status,
            seed,
            drop_rate,
            stall,
            corrupt_rate,
            fail_chunk_once,
            require_session,
            max_chunk_bytes,
            max_file_bytes,
            link,
            timing_allow_origin
        );
        next.validate()?;
        *self = next;
        Ok(())
    }
}

/// A static directory mounted on the page listener: `--mount PREFIX=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// URL prefix, starting with `/` (e.g. `/pkg`).
    pub prefix: String,
    /// Directory served under the prefix.
    pub dir: PathBuf,
}

impl FromStr for Mount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, dir) = s
            .split_once('=')
            .ok_or_else(|| format!("expected PREFIX=DIR, got {s:?}"))?;
        let prefix = prefix.trim_end_matches('/');
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(format!(
                "mount prefix must start with '/' and not be '/': {s:?}"
            ));
        }
        if prefix.split('/').any(|seg| seg == ".." || seg == ".")
            || prefix.starts_with("/__fixture")
        {
            return Err(format!("invalid mount prefix {prefix:?}"));
        }
        if dir.is_empty() {
            return Err(format!("empty mount directory in {s:?}"));
        }
        Ok(Mount {
            prefix: prefix.to_owned(),
            dir: PathBuf::from(dir),
        })
    }
}

/// Everything the fixture needs to start; one field per command-line flag.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--page-listen`: address of the page listener, `host:port` (port 0 allowed).
    pub page_listen: String,
    /// `--api-listen`: address of the API listener, `host:port` (port 0 allowed).
    pub api_listen: String,
    /// `--www`: directory served at `/` on the page listener.
    pub www: Option<PathBuf>,
    /// `--mount PREFIX=DIR`: more static directories on the page listener.
    pub mounts: Vec<Mount>,
    /// `--no-page`: run only the API listener.
    pub no_page: bool,
    /// `--api-on-page`: also mount the API routes on the page origin.
    pub api_on_page: bool,
    /// `--data-dir`: where chunks and files live; `None` creates a fresh temporary directory.
    pub data_dir: Option<PathBuf>,
    /// `--file-param`: name of the multipart file field.
    pub file_param: String,
    /// `--control` / `--no-control`: enable `/__fixture/*`.
    pub control: bool,
    /// `--max-lifetime`: exit after this many seconds (0 = never).
    pub max_lifetime_secs: u64,
    /// `--control-token`: the secret that authorises `/__fixture/*` callers other than the page
    /// origin; `None` draws a random one (printed in the start line either way).
    pub control_token: Option<String>,
    /// `--max-connections`: open connections per listener before new ones are refused with 503
    /// (plus `server::CONTROL_RESERVE` more that serve only `/__fixture/*`).
    pub max_connections: usize,
    /// `--body-timeout`: seconds a request body may take in total before 408.
    pub body_timeout_secs: u64,
    /// `--tls`: serve both listeners over HTTPS (HTTP/2 and HTTP/1.1) with a certificate made
    /// at start.
    pub tls: bool,
    /// Seconds a connection may stay open with no request in flight (not a flag: HTTP/1's
    /// header timeout is the same 30 s; tests shorten it).
    pub idle_timeout_secs: u64,
    /// The switchable settings.
    pub runtime: Runtime,
    /// `--s3-*`: the S3 signing role ([`crate::s3`]); `None` without `--s3-endpoint`.
    pub s3: Option<crate::s3::S3Settings>,
}

/// Default of [`Config::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default of [`Config::idle_timeout_secs`].
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default of [`Config::body_timeout_secs`].
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 120;

impl Default for Config {
    fn default() -> Self {
        Config {
            page_listen: "127.0.0.1:8080".to_owned(),
            api_listen: "localhost:8081".to_owned(),
            www: None,
            mounts: Vec::new(),
            no_page: false,
            api_on_page: false,
            data_dir: None,
            file_param: "file".to_owned(),
            control: true,
            max_lifetime_secs: 0,
            control_token: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            tls: false,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            runtime: Runtime::default(),
            s3: None,
        }
    }
}

impl Config {
    /// A configuration for tests: both listeners on port 0 (`127.0.0.1` for the page,
    /// `localhost` for the API), everything else default.
    pub fn ephemeral() -> Self {
        Config {
            page_listen: "127.0.0.1:0".to_owned(),
            api_listen: "localhost:0".to_owned(),
            ..Config::default()
        }
    }
}

/// Longest round trip accepted, in milliseconds.
pub const MAX_RTT_MS: u64 = 10_000;
/// Slowest rate accepted, in Mbit/s (1 kbit/s).
pub const MIN_MBIT: f64 = 0.001;
/// Fastest rate accepted, in Mbit/s.
pub const MAX_MBIT: f64 = 100_000.0;

/// The setting of the emulated link (`--link`): `rtt=MS,up=MBIT,down=MBIT` (each part optional; a missing rate is
/// unlimited). In JSON either that string or `{"rtt_ms":…,"up_mbit":…,"down_mbit":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinkJson")]
pub struct LinkSpec {
    /// Round-trip time added, in milliseconds (half each way).
    pub rtt_ms: u64,
    /// Client→server rate cap in Mbit/s (10^6 bit/s); `None` is unlimited.
    pub up_mbit: Option<f64>,
    /// Server→client rate cap in Mbit/s; `None` is unlimited.
    pub down_mbit: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LinkJson {
    Text(String),
    Fields {
        #[serde(default)]
        rtt_ms: u64,
        #[serde(default)]
        up_mbit: Option<f64>,
        #[serde(default)]
        down_mbit: Option<f64>,
    },
}

impl TryFrom<LinkJson> for LinkSpec {
    type Error = String;
    fn try_from(j: LinkJson) -> Result<Self, String> {
        match j {
            LinkJson::Text(s) => s.parse(),
            LinkJson::Fields {
                rtt_ms,
                up_mbit,
                down_mbit,
            } => {
                let spec = LinkSpec {
                    rtt_ms,
                    up_mbit,
                    down_mbit,
                };
                spec.validate()?;
                Ok(spec)
            }
        }
    }
}

impl LinkSpec {
    /// Checks ranges: rtt ≤ [`MAX_RTT_MS`], rates from [`MIN_MBIT`] to [`MAX_MBIT`] (a slower
    /// rate would overflow the pacing clock).
    pub fn validate(&self) -> Result<(), String> {
        if self.rtt_ms > MAX_RTT_MS {
            return Err(format!(
                "link rtt must be at most {MAX_RTT_MS} ms, got {}",
                self.rtt_ms
            ));
        }
        for (name, rate) in [("up", self.up_mbit), ("down", self.down_mbit)] {
            if let Some(r) = rate {
                if !r.is_finite() || !(MIN_MBIT..=MAX_MBIT).contains(&r) {
                    return Err(format!(
                        "link {name} must be a rate in Mbit/s from {MIN_MBIT} to {MAX_MBIT}, got {r}"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl FromStr for LinkSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = LinkSpec {
            rtt_ms: 0,
            up_mbit: None,
            down_mbit: None,
        };
        let mut seen = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected rtt=MS,up=MBIT,down=MBIT, got {s:?}"))?;
            if seen.contains(&key) {
                return Err(format!("link: {key} given twice in {s:?}"));
            }
            seen.push(key);
            let rate = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("link: {key} must be a number of Mbit/s, got {value:?}"))
            };
            match key {
                "rtt" => {
                    spec.rtt_ms = value.parse().map_err(|_| {
                        format!("link: rtt must be whole milliseconds, got {value:?}")
                    })?;
                }
                "up" => spec.up_mbit = Some(rate()?),
                "down" => spec.down_mbit = Some(rate()?),
                _ => return Err(format!("link: unknown key {key:?} (rtt, up, down)")),
            }
        }
        if seen.is_empty() {
            return Err(format!("expected rtt=MS,up=MBIT,down=MBIT, got {s:?}"));
        }
        spec.validate()?;
        Ok(spec)
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtt={}", self.rtt_ms)?;
        if let Some(up) = self.up_mbit {
            write!(f, ",up={up}")?;
        }
        if let Some(down) = self.down_mbit {
            write!(f, ",down={down}")?;
        }
        Ok(())
    }
}

/// Splits `host:port` (or `[v6]:port`) into the host as written and the port.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, got {addr:?}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port in {addr:?}"))?;
    if host.is_empty() {
        return Err(format!("empty host in {addr:?}"));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_mode_names_agree_between_flag_and_json() {
        for m in CorsMode::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(m.as_str().parse::<CorsMode>().unwrap(), m);
        }
    }

    #[test]
    fn mounts_parse() {
        let m: Mount = "/pkg=pkg".parse().unwrap();
        assert_eq!(m.prefix, "/pkg");
        assert!("pkg=pkg".parse::<Mount>().is_err());
        assert!("/=x".parse::<Mount>().is_err());
        assert!("/a/../b=x".parse::<Mount>().is_err());
    }

    #[test]
    fn parses_and_prints() {
        let l: LinkSpec = "rtt=40,up=200,down=50".parse().unwrap();
        assert_eq!(
            l,
            LinkSpec {
                rtt_ms: 40,
                up_mbit: Some(200.0),
                down_mbit: Some(50.0)
            }
        );
        assert_eq!(l.to_string(), "rtt=40,up=200,down=50");
        let only_rtt: LinkSpec = "rtt=100".parse().unwrap();
        assert_eq!(only_rtt.up_mbit, None);
        for bad in [
            "",
            "rtt",
            "rtt=-1",
            "rtt=1.5",
            "up=0",
            "up=abc",
            "down=inf",
            "rtt=1,rtt=2",
            "speed=3",
            "rtt=20000",
            "up=1e-300",
            "down=0.0000001",
        ] {
            assert!(bad.parse::<LinkSpec>().is_err(), "{bad:?} should not parse");
        }
    }

    /// The slowest accepted link, with every connection's queue full, schedules without
    /// overflowing a duration or an instant (a panic there would kill every connection).
    #[test]
    fn json_takes_the_string_or_the_fields() {
        let a: LinkSpec = serde_json::from_str(r#""rtt=10,up=5""#).unwrap();
        let b: LinkSpec = serde_json::from_str(r#"{"rtt_ms":10,"up_mbit":5}"#).unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<LinkSpec>(r#"{"rtt_ms":10,"up_mbit":-5}"#).is_err());
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::json!({"rtt_ms":10,"up_mbit":5.0,"down_mbit":null})
        );
    }
}
