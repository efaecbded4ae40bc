//! Helpers shared by the fixture's integration tests: an in-process router over a temporary
//! data directory, request builders for both dialects and both body formats, and an
//! independent implementation of the chunk plan.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use server_fixture::{AppState, Config, ControlState};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub const PAGE: &str = "http://127.0.0.1:8080";
pub const FOREIGN: &str = "http://evil.example";

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    /// The shared state (through `Deref`) and the statistics the router records.
    pub state: ControlState,
    pub router: Router,
}

impl Fixture {
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
}

/// The control token of every test fixture.
pub const TOKEN: &str = "fixture-test-token-0123456789";

/// `GET url` (a `/__fixture/*` endpoint of a fixture on a socket) with the control token, as JSON.
pub async fn control_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    c.get(url)
        .header("x-fixture-token", TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A request to a `/__fixture/*` endpoint as a trusted caller: the control token, and JSON for
/// POSTs.
pub fn control(method: Method, path: &str, body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("x-fixture-token", TOKEN);
    if method == Method::POST {
        b = b.header("content-type", "application/json");
    }
    b.body(body.map_or_else(Body::empty, |s| Body::from(s.to_owned())))
        .unwrap()
}

pub fn config_in(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.join("data")),
        control_token: Some(TOKEN.to_owned()),
        ..Config::ephemeral()
    }
}

/// A fixture whose page origin is `PAGE`; `tweak` edits the config first.
pub fn fixture_with(tweak: impl FnOnce(&mut Config)) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config_in(tmp.path());
    tweak(&mut cfg);
    let state = ControlState::new(AppState::new(&cfg, Some(PAGE.to_owned())).unwrap());
    let router = server_fixture::api_router(state.clone());
    Fixture { tmp, state, router }
}

pub fn fixture() -> Fixture {
    fixture_with(|_| {})
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub const BOUNDARY: &str = "----fixturetestboundary7MA4YWxkTrZu0gW";

/// A multipart body: text fields, then an optional file part named `file_name`.
pub fn multipart(fields: &[(String, String)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, data)) = file {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Resumable,
    Flow,
}

impl Dialect {
    pub fn p(self, suffix: &str) -> String {
        match self {
            Dialect::Resumable => format!("resumable{suffix}"),
            Dialect::Flow => format!("flow{suffix}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Multipart,
    Octet,
}

/// The chunk plan under both rounding rules, implemented independently of the fixture.
pub fn plan(total: u64, cs: u64, force: bool) -> Vec<(u64, u64)> {
    let count = if force {
        total.div_ceil(cs)
    } else {
        total / cs
    }
    .max(1);
    (0..count)
        .map(|i| {
            let start = i * cs;
            let mut end = ((i + 1) * cs).min(total);
            if !force && total - end < cs {
                end = total;
            }
            (start, end)
        })
        .collect()
}

pub struct Upload<'a> {
    pub dialect: Dialect,
    pub id: &'a str,
    pub name: &'a str,
    pub data: &'a [u8],
    pub cs: u64,
    pub force: bool,
}

impl Upload<'_> {
    pub fn total_chunks(&self) -> u64 {
        plan(self.data.len() as u64, self.cs, self.force).len() as u64
    }

    /// All parameters for chunk `n` (1-based).
    pub fn params(&self, n: u64) -> Vec<(String, String)> {
        let plan = plan(self.data.len() as u64, self.cs, self.force);
        let (s, e) = plan[(n - 1) as usize];
        let d = self.dialect;
        let mut v = vec![
            (d.p("ChunkNumber"), n.to_string()),
            (d.p("ChunkSize"), self.cs.to_string()),
            (d.p("CurrentChunkSize"), (e - s).to_string()),
            (d.p("TotalSize"), self.data.len().to_string()),
            (d.p("Identifier"), self.id.to_owned()),
            (d.p("Filename"), self.name.to_owned()),
            (d.p("RelativePath"), self.name.to_owned()),
            (d.p("TotalChunks"), plan.len().to_string()),
        ];
        if d == Dialect::Resumable {
            v.push(("resumableType".to_owned(), String::new()));
        }
        v
    }

    pub fn bytes(&self, n: u64) -> &[u8] {
        let plan = plan(self.data.len() as u64, self.cs, self.force);
        let (s, e) = plan[(n - 1) as usize];
        &self.data[s as usize..e as usize]
    }

    pub fn probe_req(&self, n: u64) -> Request<Body> {
        Request::get(format!("/upload?{}", query(&self.params(n))))
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap()
    }

    pub fn post_req(&self, n: u64, format: Format) -> Request<Body> {
        let params = self.params(n);
        match format {
            Format::Multipart => {
                // Resumable also copies the parameters into the URL; Flow does not.
                let uri = match self.dialect {
                    Dialect::Resumable => format!("/upload?{}", query(&params)),
                    Dialect::Flow => "/upload".to_owned(),
                };
                Request::post(uri)
                    .header("origin", PAGE)
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(Body::from(multipart(
                        &params,
                        Some(("file", self.bytes(n))),
                    )))
                    .unwrap()
            }
            Format::Octet => {
                let mut b =
                    Request::post(format!("/upload?{}", query(&params))).header("origin", PAGE);
                if self.dialect == Dialect::Resumable {
                    b = b.header("content-type", "application/octet-stream");
                }
                b.body(Body::from(self.bytes(n).to_vec())).unwrap()
            }
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic pattern data.
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(salt) * 7) % 251) as u8)
        .collect()
}

/// Every regular file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub async fn files_json(router: &Router) -> serde_json::Value {
    let r = send(router, control(Method::GET, "/__fixture/files", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    serde_json::from_str(&r.body).unwrap()
}

/// The JSON line the server-fixture binary prints once it listens (the first line of stdout).
pub fn start_line(child: &mut std::process::Child) -> serde_json::Value {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

/// Runs the server-fixture binary with `args` on `data_dir` (stderr discarded) and reads its
/// start line.
pub fn spawn_binary(args: &[&str], data_dir: &Path) -> (std::process::Child, serde_json::Value) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server-fixture"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line = start_line(&mut child);
    (child, line)
}

/// Waits for `child` to exit, at most `limit` (then fails with `what`): a guard against a
/// hang, not a timing claim, so `limit` is generous.
pub fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let t = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(t.elapsed() < limit, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A running fixture on a fresh temporary data directory, with `tweak` applied to its config
/// (keep the directory alive as long as the fixture).
pub async fn spawn_tweaked(
    tweak: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, server_fixture::Handle) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config_in(tmp.path());
    tweak(&mut cfg);
    let handle = server_fixture::spawn(cfg).await.unwrap();
    (tmp, handle)
}
