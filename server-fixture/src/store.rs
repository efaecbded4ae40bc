//! On-disk storage: streaming request bodies into temporary files, the per-upload directories
//! (named by the SHA-256 of the identifier, never by client text), chunks written in place into
//! one preallocated file with a durable record of which chunks are in, crash-safe completion
//! under a per-upload lock, and the list of completed files.
//!
//! Layout under the data directory:
//!
//! ```text
//! tmp/                                    bodies being received (emptied at startup)
//! uploads/<sha256(identifier)>/meta.json  identifier, file name, sizes; written last when an upload starts
//! uploads/<h>/data                        the file, preallocated to totalSize; chunk n at (n-1)*chunkSize
//! uploads/<h>/chunks.log                  one JSON line per stored chunk {"n","size","sha256"}
//! uploads/<h>/finishing.json              the file's record, written before `data` moves to files/
//! uploads/<h>/complete.json               the same record, renamed from finishing.json once moved
//! files/<sanitised name>                  completed files
//! ```
//!
//! **Durability.** A chunk's bytes are written at their offset in `data` and fsynced *before*
//! its line is appended to `chunks.log` (and fsynced); only then is the chunk answered 200, so an
//! acknowledged chunk survives a crash at any point. When the recorded chunks tile the file, the
//! completion is: `finishing.json` (with the chosen name and the SHA-256, hashed incrementally
//! as chunks arrive in order) → rename `data` into `files/` → fsync `files/` → rename
//! `finishing.json` to `complete.json`. A crash anywhere in between is finished by the next start
//! (every upload is checked before the listeners serve) or by the next request touching the
//! upload; a probe or a re-sent chunk of an upload whose chunks are all in first finishes it, so
//! nothing answers "present" for a file that is not complete in `files/`.
//!
//! All disk work on an upload runs on the blocking thread pool under that upload's lock.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::checksum::{Checksum, ChecksumAlgorithm, FILE_MISMATCH, MISMATCH_STATUS};
use crate::error::Rejection;
use crate::random::random_u64;
use crate::sync::lock;

/// Test-only hook: `SERVER_FIXTURE_TEST_PAUSE_AT=<point>` (or `<point>@<chunk number>`) makes
/// the fixture stop at that point of the storage code, print `server-fixture: test pause at
/// <point>` to stderr and wait forever, so that a test can SIGKILL it exactly there. The points
/// are `mid-chunk-write` (half of a chunk's bytes written into `data`), `chunk-synced` (the
/// chunk's bytes fsynced, not yet recorded), `chunk-recorded` (recorded, not yet answered),
/// `finish-start` (every chunk in, completion not begun), `finish-intent` (`finishing.json`
/// written, `data` not yet moved) and `finish-renamed` (moved, `complete.json` not yet there).
pub const TEST_PAUSE_ENV: &str = "SERVER_FIXTURE_TEST_PAUSE_AT";

fn test_pause(point: &str, chunk: Option<u64>) {
    static SPEC: OnceLock<Option<(String, Option<u64>)>> = OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        let v = std::env::var(TEST_PAUSE_ENV).ok()?;
        Some(match v.split_once('@') {
            Some((p, n)) => (p.to_owned(), n.parse().ok()),
            None => (v, None),
        })
    });
    let Some((want, want_chunk)) = spec else {
        return;
    };
    if want != point || (want_chunk.is_some() && *want_chunk != chunk) {
        return;
    }
    eprintln!("server-fixture: test pause at {point}");
    loop {
        std::thread::park();
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Which upload a request is about and where its chunk lies, as validated by the handler.
#[derive(Debug, Clone)]
pub struct ChunkAt {
    /// The upload's identifier (stored as data, never used as a path).
    pub identifier: String,
    /// Client file name.
    pub filename: String,
    /// Client relative path.
    pub relative_path: Option<String>,
    /// Total size in bytes.
    pub total_size: u64,
    /// Configured chunk size.
    pub chunk_size: u64,
    /// 1-based chunk number.
    pub chunk_number: u64,
    /// Byte offset of the chunk in the file.
    pub start: u64,
    /// The chunk's size, when the request says it (a probe then matches it).
    pub current_chunk_size: Option<u64>,
    /// The chunk's checksum (and the file's, once the client knows it), when the client sent one.
    pub checksum: Option<Checksum>,
}

/// The upload's metadata, written once with its first chunk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    /// Client identifier (stored as data, never used as a path).
    pub identifier: String,
    /// Client file name.
    pub filename: String,
    /// Client relative path.
    pub relative_path: Option<String>,
    /// Total size in bytes.
    pub total_size: u64,
    /// Configured chunk size.
    pub chunk_size: u64,
}

/// One stored chunk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Bytes in the chunk.
    pub size: u64,
    /// Hex SHA-256 of the chunk.
    pub sha256: String,
    /// Hex CRC-32C of the chunk (empty in journals written before it was kept).
    #[serde(default)]
    pub crc32c: String,
}

impl ChunkInfo {
    /// This chunk's checksum under `algorithm`, as the integrity parameters write it.
    fn checksum(&self, algorithm: ChecksumAlgorithm) -> &str {
        match algorithm {
            ChecksumAlgorithm::Crc32c => &self.crc32c,
            ChecksumAlgorithm::Sha256 => &self.sha256,
        }
    }
}

/// One line of `chunks.log`.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkLine {
    n: u64,
    size: u64,
    sha256: String,
    #[serde(default)]
    crc32c: String,
}

/// The whole-file checksum a client sent (`checksum.json` in the upload's directory), and
/// whether the completed file matched it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileChecksum {
    /// `crc32c` or `sha256`.
    pub algorithm: ChecksumAlgorithm,
    /// The client's value, lowercase hex.
    pub value: String,
}

/// The whole-file checksum of the chunks `order`, from their stored checksums alone (no pass
/// over the file): CRC-32C combined chunk by chunk, or SHA-256 over the chunks' SHA-256
/// digests (32 bytes each) in order. `None` when a chunk's checksum is not known.
pub fn file_checksum(
    chunks: &BTreeMap<u64, ChunkInfo>,
    order: &[u64],
    algorithm: ChecksumAlgorithm,
) -> Option<String> {
    match algorithm {
        ChecksumAlgorithm::Crc32c => {
            let mut crc = 0u32;
            for n in order {
                let c = chunks.get(n)?;
                let part = u32::from_str_radix(&c.crc32c, 16).ok()?;
                crc = crc32c::crc32c_combine(crc, part, usize::try_from(c.size).ok()?);
            }
            Some(format!("{crc:08x}"))
        }
        ChecksumAlgorithm::Sha256 => {
            let mut h = Sha256::new();
            for n in order {
                let c = chunks.get(n)?;
                let hex = c.sha256.as_bytes();
                if hex.len() != 64 {
                    return None;
                }
                for pair in hex.chunks(2) {
                    let byte = std::str::from_utf8(pair).ok()?;
                    h.update([u8::from_str_radix(byte, 16).ok()?]);
                }
            }
            Some(hex(&h.finalize()))
        }
    }
}

/// A completed file (also an element of `GET /__fixture/files`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    /// Name in `files/` (sanitised, made unique).
    pub name: String,
    /// The upload's identifier.
    pub identifier: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the whole file.
    pub sha256: String,
    /// Number of chunks it was made of.
    pub chunks: u64,
    /// Hex CRC-32C of the whole file, combined from its chunks' CRCs.
    #[serde(default)]
    pub crc32c: String,
    /// The whole-file checksum the client sent, verified at completion (`None`: none was sent).
    #[serde(default)]
    pub checksum: Option<FileChecksum>,
    /// Absolute path of the file.
    pub path: PathBuf,
}

/// The SHA-256 of the file's first `offset` bytes, made of chunks `1..next`, advanced as chunks
/// arrive in order, so that completion needs no pass over the whole file.
#[derive(Debug, Clone)]
struct PrefixHash {
    next: u64,
    offset: u64,
    hasher: Sha256,
}

impl Default for PrefixHash {
    fn default() -> Self {
        PrefixHash {
            next: 1,
            offset: 0,
            hasher: Sha256::new(),
        }
    }
}

#[derive(Debug, Default)]
struct UploadState {
    meta: Option<Meta>,
    chunks: BTreeMap<u64, ChunkInfo>,
    /// The record of a completion under way (`finishing.json`).
    finishing: Option<FileRecord>,
    complete: Option<FileRecord>,
    hash: PrefixHash,
    /// The whole-file checksum the client sent, checked at completion.
    checksum: Option<FileChecksum>,
}

/// A body received into `tmp/`, with its length and digest. The file is removed when dropped.
#[derive(Debug)]
pub struct TmpBody {
    /// The temporary file.
    pub path: PathBuf,
    /// Bytes received.
    pub len: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Hex CRC-32C of the bytes.
    pub crc32c: String,
}

impl TmpBody {
    /// The body's checksum under `algorithm`, as the integrity parameters write it.
    pub fn checksum(&self, algorithm: ChecksumAlgorithm) -> &str {
        match algorithm {
            ChecksumAlgorithm::Crc32c => &self.crc32c,
            ChecksumAlgorithm::Sha256 => &self.sha256,
        }
    }
}

impl Drop for TmpBody {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What storing a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// New chunk stored; the file is not complete yet.
    Stored,
    /// The same bytes were already stored.
    Duplicate,
    /// This request completed the file, which is now in `files/`.
    Completed(FileRecord),
}

type Slot = Arc<Mutex<Option<UploadState>>>;

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    uploads: Mutex<HashMap<String, Slot>>,
    files_lock: Mutex<()>,
    tmp_counter: AtomicU64,
    nonce: u64,
    /// Bytes read back from upload files to hash them (chunks that arrived out of order).
    hash_reads: AtomicU64,
}

/// The storage of one data directory (cheap to clone: a shared handle).
#[derive(Debug, Clone)]
pub struct Store(Arc<Inner>);

/// An I/O failure, mapped to a 500; running out of file descriptors (too many requests at
/// once, a passing condition) to a retryable 503.
fn io_err(what: &str, e: &std::io::Error) -> Rejection {
    // EMFILE (per process) and ENFILE (system-wide) on Linux and the BSDs.
    const TOO_MANY_OPEN_FILES: [i32; 2] = [24, 23];
    if e.raw_os_error()
        .is_some_and(|c| TOO_MANY_OPEN_FILES.contains(&c))
    {
        tracing::warn!("{what}: {e}");
        return Rejection::with(503, format!("too many requests at once while {what}: {e}"));
    }
    tracing::error!("{what}: {e}");
    Rejection::with(500, format!("storage error while {what}: {e}"))
}

/// Runs blocking storage work on the blocking pool.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Rejection> + Send + 'static,
) -> Result<R, Rejection> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Rejection::with(500, format!("storage task failed: {e}")))?
}

fn sync_dir(dir: &Path) -> Result<(), Rejection> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing a directory", &e))
}

/// Reads a JSON file; `None` when it does not exist.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>, Rejection> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Rejection::with(500, format!("unreadable {what}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&format!("reading {what}"), &e)),
    }
}

/// Reads `chunks.log`; `None` when it does not exist. A torn last line (a crash while
/// appending: that chunk was never answered) is cut off so the next append starts a clean line.
fn read_journal(path: &Path) -> Result<Option<BTreeMap<u64, ChunkInfo>>, Rejection> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading chunks.log", &e)),
    };
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if end < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_len(end as u64)?;
                f.sync_all()
            })
            .map_err(|e| io_err("cutting a torn line off chunks.log", &e))?;
    }
    let mut chunks = BTreeMap::new();
    for line in bytes[..end].split(|&b| b == b'\n') {
        if let Ok(c) = serde_json::from_slice::<ChunkLine>(line) {
            chunks.insert(
                c.n,
                ChunkInfo {
                    size: c.size,
                    sha256: c.sha256,
                    crc32c: c.crc32c,
                },
            );
        }
    }
    Ok(Some(chunks))
}

impl Store {
    /// Opens (creating) the data directory, empties its `tmp/`, and finishes every upload whose
    /// chunks are all in but whose completion was interrupted (a crash).
    pub fn open(root: &Path) -> std::io::Result<Store> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        for d in ["tmp", "uploads", "files"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let store = Store(Arc::new(Inner {
            root,
            uploads: Mutex::new(HashMap::new()),
            files_lock: Mutex::new(()),
            tmp_counter: AtomicU64::new(0),
            nonce: random_u64(),
            hash_reads: AtomicU64::new(0),
        }));
        store.recover_all()?;
        Ok(store)
    }

    fn recover_all(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.0.root.join("uploads"))? {
            let entry = entry?;
            let Ok(key) = entry.file_name().into_string() else {
                continue;
            };
            if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            match self.with_upload(&key, |st, dir| self.finish_if_ready(st, dir)) {
                Ok(Some(r)) => {
                    tracing::info!(name = %r.name, "completed an upload interrupted by a restart")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(upload = %key, "could not finish at startup: {}", e.message)
                }
            }
        }
        Ok(())
    }

    /// The (canonical) data directory.
    pub fn root(&self) -> &Path {
        &self.0.root
    }

    fn upload_dir(&self, key: &str) -> PathBuf {
        self.0.root.join("uploads").join(key)
    }

    /// A fresh path in `tmp/`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.0.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.0
            .root
            .join("tmp")
            .join(format!("{what}-{:016x}-{n}", self.0.nonce))
    }

    /// Creates a temporary file to receive a body.
    pub async fn tmp_writer(&self) -> Result<TmpWriter, Rejection> {
        let path = self.tmp_path("body");
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_err("creating a temporary file", &e))?;
        Ok(TmpWriter {
            body: TmpBody {
                path,
                len: 0,
                sha256: String::new(),
                crc32c: String::new(),
            },
            file: tokio::io::BufWriter::with_capacity(64 * 1024, file),
            hasher: Sha256::new(),
            crc: 0,
        })
    }

    /// Runs `f` on the upload's state under its lock, loading it from disk on first use.
    fn with_upload<R>(
        &self,
        key: &str,
        f: impl FnOnce(&mut UploadState, &Path) -> Result<R, Rejection>,
    ) -> Result<R, Rejection> {
        let slot = lock(&self.0.uploads)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut guard = lock(&slot);
        let dir = self.upload_dir(key);
        if guard.is_none() {
            *guard = Some(load(&dir)?);
        }
        let result = match guard.as_mut() {
            Some(st) => f(st, &dir),
            None => Err(Rejection::with(500, "upload state missing")),
        };
        // An identifier that was only probed leaves nothing behind: probing made-up
        // identifiers must not grow the map.
        let started = guard.as_ref().is_some_and(|st| st.meta.is_some());
        drop(guard);
        if !started {
            let mut map = lock(&self.0.uploads);
            let unshared = map
                .get(key)
                .is_some_and(|s| Arc::ptr_eq(s, &slot) && Arc::strong_count(&slot) == 2);
            if unshared {
                map.remove(key);
            }
        }
        result
    }

    /// Probe: is chunk `n` stored (with the size the request expects, if it says one)? An
    /// upload whose chunks are all in is finished first, so "present" always means on disk.
    pub async fn probe(&self, p: &ChunkAt) -> Result<bool, Rejection> {
        let store = self.clone();
        let p = p.clone();
        blocking(move || {
            let key = sha256_hex(p.identifier.as_bytes());
            store.with_upload(&key, |st, dir| {
                if let Some(meta) = &st.meta {
                    check_meta(meta, &p)?;
                }
                store.remember_file_checksum(st, dir, &p)?;
                store.finish_if_ready(st, dir)?;
                // With a checksum, "present" means stored with those very bytes.
                Ok(match st.chunks.get(&p.chunk_number) {
                    Some(c) => {
                        p.current_chunk_size.is_none_or(|s| s == c.size)
                            && p.checksum
                                .as_ref()
                                .is_none_or(|k| c.checksum(k.algorithm) == k.chunk)
                    }
                    None => false,
                })
            })
        })
        .await
    }

    /// Stores a received chunk body durably; completes the file when it was the last one.
    pub async fn store_chunk(&self, p: &ChunkAt, body: TmpBody) -> Result<StoreOutcome, Rejection> {
        let store = self.clone();
        let p = p.clone();
        blocking(move || {
            let key = sha256_hex(p.identifier.as_bytes());
            store.with_upload(&key, |st, dir| store.store_locked(st, dir, &p, &body))
        })
        .await
    }

    fn store_locked(
        &self,
        st: &mut UploadState,
        dir: &Path,
        p: &ChunkAt,
        body: &TmpBody,
    ) -> Result<StoreOutcome, Rejection> {
        match &st.meta {
            Some(meta) => check_meta(meta, p)?,
            None => {
                let meta = Meta {
                    identifier: p.identifier.clone(),
                    filename: p.filename.clone(),
                    relative_path: p.relative_path.clone(),
                    total_size: p.total_size,
                    chunk_size: p.chunk_size,
                };
                self.create_upload(dir, &meta)?;
                *st = UploadState {
                    meta: Some(meta),
                    ..UploadState::default()
                };
            }
        }
        self.remember_file_checksum(st, dir, p)?;
        // An interrupted completion is finished before anything is answered.
        let finished_now = self.finish_if_ready(st, dir)?;
        let n = p.chunk_number;
        if let Some(existing) = st.chunks.get(&n) {
            if existing.sha256 == body.sha256 && existing.size == body.len {
                return Ok(finished_now.map_or(StoreOutcome::Duplicate, StoreOutcome::Completed));
            }
            return Err(Rejection::with(
                409,
                format!(
                    "chunk {n} is already stored with different bytes ({} bytes, sha256 {})",
                    existing.size, existing.sha256
                ),
            ));
        }
        if st.complete.is_some() {
            // Complete without this chunk: the other rounding rule's extra chunk.
            return Err(Rejection::with(
                409,
                format!("the upload is already complete without chunk {n}"),
            ));
        }
        if n > 1
            && st
                .chunks
                .get(&(n - 1))
                .is_some_and(|c| c.size > p.chunk_size)
        {
            // Chunk n-1 is the big last chunk of the other rounding rule and covers these bytes.
            return Err(Rejection::with(
                409,
                format!(
                    "chunk {} is already stored as the last chunk (the other rounding rule), \
                     so there is no chunk {n}",
                    n - 1
                ),
            ));
        }
        // The chunk that extends the hashed prefix is hashed as it is copied (never read back).
        let in_order = n == st.hash.next
            && p.start == st.hash.offset
            && (st.hash.offset < p.total_size || n == 1);
        let mut hasher = in_order.then(|| st.hash.hasher.clone());
        write_chunk(dir, p.start, body, n, hasher.as_mut())?;
        append_record(dir, n, body)?;
        test_pause("chunk-recorded", Some(n));
        st.chunks.insert(
            n,
            ChunkInfo {
                size: body.len,
                sha256: body.sha256.clone(),
                crc32c: body.crc32c.clone(),
            },
        );
        if let Some(hasher) = hasher {
            st.hash = PrefixHash {
                next: n + 1,
                offset: st.hash.offset + body.len,
                hasher,
            };
        }
        self.advance_hash(st, dir);
        Ok(match self.finish_if_ready(st, dir)? {
            Some(record) => StoreOutcome::Completed(record),
            None => StoreOutcome::Stored,
        })
    }

    /// Keeps the whole-file checksum of request `p` (`checksum.json`, written once), so the
    /// completion checks it whichever request completes the file.
    fn remember_file_checksum(
        &self,
        st: &mut UploadState,
        dir: &Path,
        p: &ChunkAt,
    ) -> Result<(), Rejection> {
        let Some(k) = &p.checksum else { return Ok(()) };
        let Some(value) = &k.file else { return Ok(()) };
        if st.meta.is_none() || st.complete.is_some() {
            return Ok(());
        }
        let given = FileChecksum {
            algorithm: k.algorithm,
            value: value.clone(),
        };
        if st.checksum.as_ref() == Some(&given) {
            return Ok(());
        }
        let json = serde_json::to_vec(&given)
            .map_err(|e| Rejection::with(500, format!("serialising checksum.json: {e}")))?;
        self.write_atomic(&dir.join("checksum.json"), &json)?;
        st.checksum = Some(given);
        Ok(())
    }

    /// A new upload: the preallocated `data`, an empty `chunks.log`, then `meta.json` (its
    /// presence means the other two are durable).
    fn create_upload(&self, dir: &Path, meta: &Meta) -> Result<(), Rejection> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating the upload directory", &e))?;
        sync_dir(&self.0.root.join("uploads"))?;
        for stale in ["finishing.json", "complete.json", "checksum.json"] {
            match std::fs::remove_file(dir.join(stale)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("removing a stale record", &e))
                }
                _ => {}
            }
        }
        File::create(dir.join("data"))
            .and_then(|f| {
                f.set_len(meta.total_size)?;
                f.sync_all()
            })
            .map_err(|e| io_err("preallocating the upload's file", &e))?;
        File::create(dir.join("chunks.log"))
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err("creating chunks.log", &e))?;
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| Rejection::with(500, format!("serialising meta: {e}")))?;
        self.write_atomic(&dir.join("meta.json"), &json)
    }

    /// Writes `data` to a temporary file, fsyncs it, renames it to `path` and fsyncs the
    /// directory.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), Rejection> {
        let tmp = self.tmp_path("record");
        File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(data)?;
                f.sync_all()
            })
            .map_err(|e| io_err("writing a record", &e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err("renaming a record into place", &e))?;
        match path.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Completes the upload if its recorded chunks tile the file, or finishes a completion a
    /// crash interrupted. Returns the record when the file was completed by this call.
    fn finish_if_ready(
        &self,
        st: &mut UploadState,
        dir: &Path,
    ) -> Result<Option<FileRecord>, Rejection> {
        if st.complete.is_some() {
            return Ok(None);
        }
        let Some(meta) = st.meta.clone() else {
            return Ok(None);
        };
        let order = match st.finishing {
            Some(_) => None,
            None => match completion_order(st) {
                Some(order) => Some(order),
                None => return Ok(None),
            },
        };
        let files = self.0.root.join("files");
        let _names = lock(&self.0.files_lock);
        let mut record = match (st.finishing.clone(), order) {
            (Some(r), _) => r,
            (None, Some(order)) => {
                test_pause("finish-start", None);
                let crc32c = file_checksum(&st.chunks, &order, ChecksumAlgorithm::Crc32c)
                    .unwrap_or_default();
                if let Some(expected) = &st.checksum {
                    let got = file_checksum(&st.chunks, &order, expected.algorithm);
                    if got.as_deref() != Some(expected.value.as_str()) {
                        return Err(Rejection::with(
                            MISMATCH_STATUS,
                            format!(
                                "{FILE_MISMATCH}: the chunks make a file whose {} is {}, the client sent {}",
                                expected.algorithm.as_str(),
                                got.as_deref().unwrap_or("unknown"),
                                expected.value
                            ),
                        ));
                    }
                }
                let sha256 = self.file_hash(st, dir, &order)?;
                let name = free_name(&files, &meta.filename)?;
                let record = FileRecord {
                    path: files.join(&name),
                    name,
                    identifier: meta.identifier.clone(),
                    size: meta.total_size,
                    sha256,
                    chunks: order.len() as u64,
                    crc32c,
                    checksum: st.checksum.clone(),
                };
                self.write_record(&dir.join("finishing.json"), &record)?;
                st.finishing = Some(record.clone());
                test_pause("finish-intent", None);
                record
            }
            (None, None) => return Ok(None),
        };
        let data = dir.join("data");
        let data_there = data
            .try_exists()
            .map_err(|e| io_err("looking for the upload's file", &e))?;
        if data_there {
            let taken = record
                .path
                .try_exists()
                .map_err(|e| io_err("looking for a free file name", &e))?;
            if taken {
                // Only if something else took the name since the intent was written.
                record.name = free_name(&files, &meta.filename)?;
                record.path = files.join(&record.name);
                self.write_record(&dir.join("finishing.json"), &record)?;
                st.finishing = Some(record.clone());
            }
            std::fs::rename(&data, &record.path)
                .map_err(|e| io_err("moving the completed file into files/", &e))?;
        } else if !record
            .path
            .try_exists()
            .map_err(|e| io_err("looking for the completed file", &e))?
        {
            return Err(Rejection::with(
                500,
                format!(
                    "storage error: the upload's file is neither in the upload directory nor at {}",
                    record.path.display()
                ),
            ));
        }
        sync_dir(&files)?;
        test_pause("finish-renamed", None);
        std::fs::rename(dir.join("finishing.json"), dir.join("complete.json"))
            .map_err(|e| io_err("recording the completed file", &e))?;
        sync_dir(dir)?;
        tracing::info!(name = %record.name, size = record.size, sha256 = %record.sha256, "file complete");
        st.finishing = None;
        st.complete = Some(record.clone());
        Ok(Some(record))
    }

    /// Feeds the chunks that follow the hashed prefix, in order, from `data` into the prefix
    /// hash. A read error drops the prefix (it is recomputed when needed).
    fn advance_hash(&self, st: &mut UploadState, dir: &Path) {
        let mut read = 0;
        if let Err(e) = advance_hash_to(st, dir, u64::MAX, &mut read) {
            tracing::warn!("hashing the upload's prefix: {e}");
            st.hash = PrefixHash::default();
        }
        self.0.hash_reads.fetch_add(read, Ordering::Relaxed);
    }

    /// The SHA-256 of the file made of the chunks in `order` (1, 2, …, k).
    fn file_hash(
        &self,
        st: &mut UploadState,
        dir: &Path,
        order: &[u64],
    ) -> Result<String, Rejection> {
        let last = order.len() as u64;
        let mut read = 0;
        let advanced = advance_hash_to(st, dir, last, &mut read);
        self.0.hash_reads.fetch_add(read, Ordering::Relaxed);
        advanced.map_err(|e| io_err("hashing the completed file", &e))?;
        if st.hash.next != last + 1 {
            return Err(Rejection::with(
                500,
                "storage error: the file's hash is incomplete",
            ));
        }
        Ok(hex(&st.hash.hasher.clone().finalize()))
    }

    fn write_record(&self, path: &Path, record: &FileRecord) -> Result<(), Rejection> {
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| Rejection::with(500, format!("serialising a file record: {e}")))?;
        self.write_atomic(path, &json)
    }

    /// Every completed file, from the `complete.json` records on disk.
    pub async fn files(&self) -> Vec<FileRecord> {
        let mut out = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(self.0.root.join("uploads")).await {
            while let Ok(Some(entry)) = rd.next_entry().await {
                if let Ok(b) = tokio::fs::read(entry.path().join("complete.json")).await {
                    if let Ok(r) = serde_json::from_slice::<FileRecord>(&b) {
                        out.push(r);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Bytes read back from upload files to hash them since the store opened: a chunk that
    /// arrives in order is hashed while it is copied, so only chunks that came before the ones
    /// preceding them are read again.
    pub fn bytes_read_back_for_hashing(&self) -> u64 {
        self.0.hash_reads.load(Ordering::Relaxed)
    }

    /// How many uploads the store keeps state for in memory.
    pub fn uploads_in_memory(&self) -> usize {
        lock(&self.0.uploads).len()
    }

    /// Deletes every upload, chunk and file. It waits for the disk work under way on every
    /// upload and keeps each upload's lock (emptied) for later requests: a request still running
    /// on a deleted upload must never share its directory with a fresh one of the same
    /// identifier (its chunk would be recorded in the new journal, its bytes in the old file).
    pub async fn clear(&self) -> Result<(), Rejection> {
        let store = self.clone();
        blocking(move || {
            // Locks in the order requests take them: no new upload is looked up meanwhile, each
            // upload's lock is held by at most one request, which takes `files_lock` after it.
            let mut uploads = lock(&store.0.uploads);
            let slots: Vec<Slot> = uploads.values().cloned().collect();
            let mut states: Vec<_> = slots.iter().map(|s| lock(s)).collect();
            let names = lock(&store.0.files_lock);
            let deleted = delete_and_recreate(&store.0.root, &["uploads", "files"]);
            // Reloaded from disk (nothing) by the next request, once these locks are released.
            for st in &mut states {
                **st = None;
            }
            drop((names, states));
            drop(slots);
            uploads.retain(|_, slot| Arc::strong_count(slot) > 1);
            deleted
        })
        .await
    }
}

/// Deletes the directories `dirs` under `root` and makes them again, empty.
fn delete_and_recreate(root: &Path, dirs: &[&str]) -> Result<(), Rejection> {
    for d in dirs {
        let p = root.join(d);
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err("deleting the stored data", &e))
            }
            _ => {}
        }
        std::fs::create_dir_all(&p).map_err(|e| io_err("recreating a directory", &e))?;
    }
    Ok(())
}

/// Loads an upload's state from its directory. An upload without `meta.json` has not started;
/// neither has an unfinished one from an older layout without `chunks.log`: their first chunk
/// starts them afresh.
fn load(dir: &Path) -> Result<UploadState, Rejection> {
    let Some(meta) = read_json::<Meta>(&dir.join("meta.json"), "meta.json")? else {
        return Ok(UploadState::default());
    };
    let complete = read_json(&dir.join("complete.json"), "complete.json")?;
    let chunks = read_journal(&dir.join("chunks.log"))?;
    if chunks.is_none() && complete.is_none() {
        return Ok(UploadState::default());
    }
    Ok(UploadState {
        meta: Some(meta),
        chunks: chunks.unwrap_or_default(),
        finishing: read_json(&dir.join("finishing.json"), "finishing.json")?,
        complete,
        hash: PrefixHash::default(),
        checksum: read_json(&dir.join("checksum.json"), "checksum.json")?,
    })
}

/// Writes to a file and feeds what it wrote to a hasher.
struct HashingWriter<'a> {
    file: &'a mut File,
    hasher: &'a mut Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Copies `src` into `dst` (feeding `hasher` too, if any) with `io::copy`: the kernel copies
/// file to file, and with a hasher the bytes pass through `io::copy`'s stack buffer, so no
/// buffer is allocated per chunk.
fn copy_into(
    src: &mut impl Read,
    dst: &mut File,
    hasher: Option<&mut Sha256>,
) -> std::io::Result<u64> {
    match hasher {
        None => std::io::copy(src, dst),
        Some(hasher) => std::io::copy(src, &mut HashingWriter { file: dst, hasher }),
    }
}

/// Copies a received chunk into `data` at its offset and fsyncs it; feeds its bytes to
/// `hasher` on the way, if any.
fn write_chunk(
    dir: &Path,
    start: u64,
    body: &TmpBody,
    n: u64,
    mut hasher: Option<&mut Sha256>,
) -> Result<(), Rejection> {
    let mut copy = || -> std::io::Result<u64> {
        let mut src = File::open(&body.path)?;
        let mut dst = OpenOptions::new().write(true).open(dir.join("data"))?;
        dst.seek(SeekFrom::Start(start))?;
        let first_half = &mut (&mut src).take(body.len / 2);
        let mut copied = copy_into(first_half, &mut dst, hasher.as_deref_mut())?;
        test_pause("mid-chunk-write", Some(n));
        copied += copy_into(&mut src, &mut dst, hasher.as_deref_mut())?;
        dst.sync_data()?;
        Ok(copied)
    };
    let copied = copy().map_err(|e| io_err("writing a chunk into the upload's file", &e))?;
    if copied != body.len {
        return Err(Rejection::with(
            500,
            format!(
                "storage error: copied {copied} of the chunk's {} bytes",
                body.len
            ),
        ));
    }
    test_pause("chunk-synced", Some(n));
    Ok(())
}

/// Appends chunk `n`'s line to `chunks.log` and fsyncs it: from here on the chunk is stored.
fn append_record(dir: &Path, n: u64, body: &TmpBody) -> Result<(), Rejection> {
    let mut line = serde_json::to_vec(&ChunkLine {
        n,
        size: body.len,
        sha256: body.sha256.clone(),
        crc32c: body.crc32c.clone(),
    })
    .map_err(|e| Rejection::with(500, format!("serialising a chunk record: {e}")))?;
    line.push(b'\n');
    OpenOptions::new()
        .append(true)
        .open(dir.join("chunks.log"))
        .and_then(|mut f| {
            f.write_all(&line)?;
            f.sync_data()
        })
        .map_err(|e| io_err("recording a chunk in chunks.log", &e))
}

/// Advances the prefix hash through chunk `last` at most, stopping at the end of the file (the
/// big last chunk of one rounding rule ends it; the other rule's extra chunk is never hashed).
/// `read` counts the bytes read back from `data`.
fn advance_hash_to(
    st: &mut UploadState,
    dir: &Path,
    last: u64,
    read: &mut u64,
) -> std::io::Result<()> {
    let Some(meta) = &st.meta else { return Ok(()) };
    let mut file: Option<File> = None;
    while st.hash.next <= last && (st.hash.offset < meta.total_size || st.hash.next == 1) {
        let n = st.hash.next;
        let Some(c) = st.chunks.get(&n) else { break };
        let f = match &mut file {
            Some(f) => f,
            None => file.insert(File::open(dir.join("data"))?),
        };
        f.seek(SeekFrom::Start(st.hash.offset))?;
        let mut hasher = st.hash.hasher.clone();
        // The chunk was just written, so this reads it from the page cache.
        let got = std::io::copy(&mut f.take(c.size), &mut hasher)?;
        *read += got;
        if got != c.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("chunk {n}: read {got} of {} bytes", c.size),
            ));
        }
        st.hash = PrefixHash {
            next: n + 1,
            offset: st.hash.offset + c.size,
            hasher,
        };
    }
    Ok(())
}

/// A name in `files/` derived from the client's file name that is not taken yet.
fn free_name(files: &Path, filename: &str) -> Result<String, Rejection> {
    const MAX_TRIES: u32 = 100_000;
    let base = sanitize_filename(filename);
    let mut name = base.clone();
    for i in 1..=MAX_TRIES {
        let taken = files
            .join(&name)
            .try_exists()
            .map_err(|e| io_err("looking for a free file name", &e))?;
        if !taken {
            return Ok(name);
        }
        name = numbered(&base, i);
    }
    Err(Rejection::with(
        500,
        format!("storage error: no free file name for {base:?} after {MAX_TRIES} tries"),
    ))
}

fn check_meta(meta: &Meta, p: &ChunkAt) -> Result<(), Rejection> {
    if meta.total_size != p.total_size {
        return Err(Rejection::with(
            409,
            format!(
                "identifier already in use with total size {} (this request says {})",
                meta.total_size, p.total_size
            ),
        ));
    }
    if meta.chunk_size != p.chunk_size {
        return Err(Rejection::with(
            409,
            format!(
                "identifier already in use with chunk size {} (this request says {})",
                meta.chunk_size, p.chunk_size
            ),
        ));
    }
    Ok(())
}

/// The chunk numbers that tile `[0, total)` if every needed chunk is present.
fn completion_order(st: &UploadState) -> Option<Vec<u64>> {
    let meta = st.meta.as_ref()?;
    if st.complete.is_some() {
        return None;
    }
    if meta.total_size == 0 {
        return st.chunks.get(&1).filter(|c| c.size == 0).map(|_| vec![1]);
    }
    let mut order = Vec::new();
    let mut offset = 0u64;
    let mut n = 1u64;
    while offset < meta.total_size {
        let c = st.chunks.get(&n)?;
        if c.size == 0 {
            return None;
        }
        offset = offset.checked_add(c.size)?;
        order.push(n);
        n += 1;
    }
    (offset == meta.total_size).then_some(order)
}

/// A file name safe for `files/`: `[A-Za-z0-9._-]` only, no leading dot, at most 128 bytes.
pub fn sanitize_filename(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.len() > 128 {
        s = s[s.len() - 128..].to_owned();
        while s.starts_with('.') {
            s.remove(0);
        }
    }
    if s.is_empty() {
        s = "upload".to_owned();
    }
    s
}

fn numbered(base: &str, i: u32) -> String {
    match base.rfind('.') {
        Some(dot) if dot > 0 => format!("{}-{i}{}", &base[..dot], &base[dot..]),
        _ => format!("{base}-{i}"),
    }
}

/// Writes a body into `tmp/`, hashing and counting as it goes.
#[derive(Debug)]
pub struct TmpWriter {
    body: TmpBody,
    file: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    crc: u32,
}

impl TmpWriter {
    /// Appends bytes; fails with 413 beyond `limit` bytes in total.
    pub async fn write(&mut self, data: &[u8], limit: u64) -> Result<(), Rejection> {
        let len = self.body.len + data.len() as u64;
        if len > limit {
            return Err(Rejection::with(
                413,
                format!("chunk body exceeds the limit of {limit} bytes"),
            ));
        }
        self.hasher.update(data);
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.file
            .write_all(data)
            .await
            .map_err(|e| io_err("writing a chunk", &e))?;
        self.body.len = len;
        Ok(())
    }

    /// Flushes and returns the received body. No fsync: the body is scratch; durability comes
    /// from the upload's file, which is fsynced before a chunk is recorded.
    pub async fn finish(mut self) -> Result<TmpBody, Rejection> {
        self.file
            .flush()
            .await
            .map_err(|e| io_err("flushing a chunk", &e))?;
        self.body.sha256 = hex(&self.hasher.clone().finalize());
        self.body.crc32c = format!("{:08x}", self.crc);
        let TmpWriter { body, .. } = self;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_filename(".hidden"), "hidden");
        assert_eq!(sanitize_filename("a b\u{0}c.txt"), "a_b_c.txt");
        assert_eq!(sanitize_filename(""), "upload");
        assert_eq!(sanitize_filename("..."), "upload");
        assert_eq!(numbered("a.txt", 2), "a-2.txt");
        assert_eq!(numbered("noext", 1), "noext-1");
    }
}
