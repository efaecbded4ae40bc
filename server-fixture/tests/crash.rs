//! Crash safety, against the real binary: the fixture runs as a child process, is SIGKILLed at
//! each stage of storing and completing an upload — mid-chunk write, chunk synced but not
//! recorded, recorded but not answered, between chunks, every chunk in but completion not
//! begun, mid-completion, after the rename, after completion — and is restarted on the same
//! `--data-dir`. The test-only pause hook (`SERVER_FIXTURE_TEST_PAUSE_AT`) stops the fixture at
//! exactly that point of the real code path so the kill lands there. Each time: no chunk the
//! client was told is stored is lost, nothing is reported complete (a final 200, or every probe
//! 200) before the file is in `files/` byte-identical, and the upload completes byte-identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{control_json, pattern, sha256_hex, start_line, TOKEN};
use tokio::sync::mpsc;

const CS: usize = 64 * 1024;
/// Four chunks under the default rounding rule, the last one 64 KiB + 1000 bytes.
const TOTAL: usize = 4 * CS + 1000;
const CHUNKS: u64 = 4;

struct Fixture {
    child: Child,
    api: String,
    stderr: mpsc::UnboundedReceiver<String>,
}

impl Fixture {
    fn start(dir: &Path, pause_at: Option<&str>) -> Fixture {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server-fixture"));
        cmd.args([
            "--no-page",
            "--api-listen",
            "127.0.0.1:0",
            "--max-lifetime",
            "120",
        ])
        .args(["--control-token", TOKEN])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("SERVER_FIXTURE_TEST_PAUSE_AT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(p) = pause_at {
            cmd.env("SERVER_FIXTURE_TEST_PAUSE_AT", p);
        }
        let mut child = cmd.spawn().unwrap();
        let v = start_line(&mut child);
        let (tx, stderr) = mpsc::unbounded_channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Fixture {
            child,
            api: v["api"].as_str().unwrap().to_owned(),
            stderr,
        }
    }

    async fn paused_at(&mut self, point: &str) {
        let want = format!("test pause at {point}");
        let wait = async {
            while let Some(l) = self.stderr.recv().await {
                if l.contains(&want) {
                    return true;
                }
            }
            false
        };
        let seen = tokio::time::timeout(Duration::from_secs(30), wait).await;
        assert_eq!(seen, Ok(true), "the fixture never paused at {point}");
    }

    fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

fn chunk_url(api: &str, n: u64) -> String {
    let len = if n == CHUNKS { TOTAL - 3 * CS } else { CS };
    format!(
        "{api}/upload?resumableChunkNumber={n}&resumableChunkSize={CS}&resumableCurrentChunkSize={len}\
         &resumableTotalSize={TOTAL}&resumableIdentifier=crash-test&resumableFilename=crash.bin"
    )
}

fn chunk_bytes(data: &[u8], n: u64) -> Vec<u8> {
    let start = (n as usize - 1) * CS;
    let end = if n == CHUNKS { TOTAL } else { start + CS };
    data[start..end].to_vec()
}

/// The client's view: which chunks it was told are stored, and whether it was told the file
/// is complete.
#[derive(Default, Debug)]
struct Told {
    stored: Vec<u64>,
    complete: bool,
}

async fn post(
    c: &reqwest::Client,
    api: &str,
    data: &[u8],
    n: u64,
) -> reqwest::Result<(u16, String)> {
    let r = c
        .post(chunk_url(api, n))
        .body(chunk_bytes(data, n))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.text().await?))
}

async fn files(c: &reqwest::Client, api: &str) -> Vec<serde_json::Value> {
    let v = control_json(c, &format!("{api}/__fixture/files")).await;
    v.as_array().unwrap().clone()
}

/// The completed file on disk, if `files/` holds one: it must be the whole file.
fn on_disk(dir: &Path, data: &[u8]) -> Option<PathBuf> {
    let entries: Vec<_> = std::fs::read_dir(dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(entries.len() <= 1, "{entries:?}");
    let p = entries.into_iter().next()?;
    assert_eq!(
        std::fs::read(&p).unwrap(),
        data,
        "{p:?} is not the whole file"
    );
    Some(p)
}

struct Stage {
    name: &'static str,
    /// Where the fixture pauses to be killed; `None`: killed after the last answer.
    pause: Option<&'static str>,
    /// Chunks sent (in order); the last one is in flight at the pause.
    send: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_stage_the_upload_completes_byte_identical() {
    let data = pattern(TOTAL, 9);
    let stages = [
        Stage {
            name: "mid-chunk write",
            pause: Some("mid-chunk-write@3"),
            send: 3,
        },
        Stage {
            name: "chunk synced, not recorded",
            pause: Some("chunk-synced@3"),
            send: 3,
        },
        Stage {
            name: "chunk recorded, not answered",
            pause: Some("chunk-recorded@3"),
            send: 3,
        },
        Stage {
            name: "between chunks",
            pause: None,
            send: 2,
        },
        Stage {
            name: "every chunk in, completion not begun",
            pause: Some("finish-start"),
            send: 4,
        },
        Stage {
            name: "mid-completion (record written, not moved)",
            pause: Some("finish-intent"),
            send: 4,
        },
        Stage {
            name: "after the rename",
            pause: Some("finish-renamed"),
            send: 4,
        },
        Stage {
            name: "after completion",
            pause: None,
            send: 4,
        },
    ];
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    for stage in stages {
        let what = stage.name;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut told = Told::default();

        // First life: send the stage's chunks; kill at the pause (or after the last answer).
        let mut fx = Fixture::start(&dir, stage.pause);
        let in_flight = if stage.pause.is_some() { stage.send } else { 0 };
        for n in 1..=stage.send {
            if n == in_flight {
                let pending = tokio::spawn({
                    let (c, api, data) = (c.clone(), fx.api.clone(), data.clone());
                    async move { post(&c, &api, &data, n).await }
                });
                let point = stage.pause.unwrap().split('@').next().unwrap();
                fx.paused_at(point).await;
                fx.kill();
                let answer = pending.await.unwrap();
                assert!(
                    answer.is_err(),
                    "{what}: the killed request was answered: {answer:?}"
                );
                break;
            }
            let (status, text) = post(&c, &fx.api, &data, n).await.unwrap();
            assert_eq!(status, 200, "{what}: chunk {n}: {text}");
            told.stored.push(n);
            if text.contains("file complete") {
                told.complete = true;
                assert!(
                    on_disk(&dir, &data).is_some(),
                    "{what}: complete reported, file not in files/"
                );
            }
        }
        if stage.pause.is_none() {
            fx.kill();
        }
        // Whatever the client was told must be true on disk after the kill.
        if told.complete {
            assert!(
                on_disk(&dir, &data).is_some(),
                "{what}: reported complete, lost in the crash"
            );
        }

        // Second life, same data directory: start-up finishes an upload whose chunks are all in.
        let mut fx = Fixture::start(&dir, None);
        let listed = files(&c, &fx.api).await;
        if stage.send == CHUNKS {
            assert_eq!(
                listed.len(),
                1,
                "{what}: start-up did not finish the upload"
            );
            assert!(on_disk(&dir, &data).is_some());
        } else {
            assert!(listed.is_empty(), "{what}: {listed:?}");
            assert!(on_disk(&dir, &data).is_none(), "{what}");
        }
        // No acknowledged chunk is lost; "every chunk present" only for a file on disk.
        let mut present = Vec::new();
        for n in 1..=CHUNKS {
            let s = c
                .get(chunk_url(&fx.api, n))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            assert!(s == 200 || s == 204, "{what}: probe {n} answered {s}");
            if s == 200 {
                present.push(n);
            }
        }
        for n in &told.stored {
            assert!(
                present.contains(n),
                "{what}: acknowledged chunk {n} lost (present: {present:?})"
            );
        }
        if present.len() == CHUNKS as usize {
            assert!(
                on_disk(&dir, &data).is_some(),
                "{what}: every probe 200, file not in files/"
            );
        }
        // The client resumes: the chunks probed absent, then the last chunk once more (the
        // issue's case: a re-sent final chunk must not answer "stored" for a missing file).
        for n in (1..=CHUNKS)
            .filter(|n| !present.contains(n))
            .chain([CHUNKS])
        {
            let (status, text) = post(&c, &fx.api, &data, n).await.unwrap();
            assert_eq!(status, 200, "{what}: resumed chunk {n}: {text}");
            assert!(
                n != CHUNKS || on_disk(&dir, &data).is_some(),
                "{what}: final chunk answered 200 ({text}) but the file is not in files/"
            );
        }
        let listed = files(&c, &fx.api).await;
        assert_eq!(listed.len(), 1, "{what}: {listed:?}");
        assert_eq!(listed[0]["sha256"], sha256_hex(&data), "{what}");
        assert_eq!(listed[0]["size"], TOTAL, "{what}");
        assert_eq!(listed[0]["chunks"], CHUNKS, "{what}");
        let path = on_disk(&dir, &data).unwrap();
        assert_eq!(
            listed[0]["name"],
            path.file_name().unwrap().to_str().unwrap(),
            "{what}"
        );
        assert!(!dir.join("uploads").read_dir().unwrap().any(|e| e
            .unwrap()
            .path()
            .join("data")
            .exists()));
        fx.kill();
    }
}
