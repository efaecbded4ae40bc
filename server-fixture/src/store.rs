//! On-disk storage: streaming request bodies into temporary files, the per-upload chunk
//! directories (named by the SHA-256 of the identifier, never by client text), idempotent
//! assembly under a per-upload lock, and the list of completed files.
//!
//! Layout under the data directory:
//!
//! ```text
//! tmp/                                   bodies being received (emptied at startup)
//! uploads/<sha256(identifier)>/meta.json identifier, file name, sizes
//! uploads/<h>/chunks/<n>.part            chunk bytes (deleted once the file is assembled)
//! uploads/<h>/chunks/<n>.json            {"size","sha256"}: written last, marks chunk n stored
//! uploads/<h>/complete.json              the assembled file's record
//! files/<sanitised name>                 assembled files
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::params::{ChunkParams, Rejection};

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
}

/// A completed, assembled file (also an element of `GET /__fixture/files`).
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
    /// Number of chunks it was assembled from.
    pub chunks: u64,
    /// Absolute path of the file.
    pub path: PathBuf,
}

#[derive(Debug, Default)]
struct UploadState {
    meta: Option<Meta>,
    chunks: BTreeMap<u64, ChunkInfo>,
    complete: Option<FileRecord>,
}

/// A body received into `tmp/`, with its length and digest.
#[derive(Debug)]
pub struct TmpBody {
    /// The temporary file (removed when dropped unless committed).
    pub path: PathBuf,
    /// Bytes received.
    pub len: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    committed: bool,
}

impl Drop for TmpBody {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What storing a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// New chunk stored; the file is not complete yet.
    Stored,
    /// The same bytes were already stored.
    Duplicate,
    /// This chunk completed the file, which was assembled now.
    Completed(FileRecord),
}

type Slot = Arc<Mutex<Option<UploadState>>>;

/// The storage of one data directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    uploads: StdMutex<HashMap<String, Slot>>,
    files_lock: Mutex<()>,
    tmp_counter: AtomicU64,
    nonce: u64,
}

/// An I/O failure, mapped to a 500.
fn io_err(what: &str, e: &std::io::Error) -> Rejection {
    tracing::error!("{what}: {e}");
    Rejection::with(500, format!("storage error while {what}: {e}"))
}

impl Store {
    /// Opens (creating) the data directory and empties its `tmp/`.
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
        Ok(Store {
            root,
            uploads: StdMutex::new(HashMap::new()),
            files_lock: Mutex::new(()),
            tmp_counter: AtomicU64::new(0),
            nonce: crate::faults::random_u64(),
        })
    }

    /// The (canonical) data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn slot(&self, key: &str) -> Slot {
        let mut map = match self.uploads.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(key.to_owned()).or_default().clone()
    }

    fn upload_dir(&self, key: &str) -> PathBuf {
        self.root.join("uploads").join(key)
    }

    /// A fresh path in `tmp/`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{:016x}-{n}", self.nonce))
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
                committed: false,
            },
            file: tokio::io::BufWriter::with_capacity(64 * 1024, file),
            hasher: Sha256::new(),
        })
    }

    async fn load(&self, key: &str) -> Result<UploadState, Rejection> {
        let dir = self.upload_dir(key);
        let mut st = UploadState::default();
        match tokio::fs::read(dir.join("meta.json")).await {
            Ok(b) => st.meta = serde_json::from_slice(&b).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
            Err(e) => return Err(io_err("reading meta.json", &e)),
        }
        if let Ok(b) = tokio::fs::read(dir.join("complete.json")).await {
            st.complete = serde_json::from_slice(&b).ok();
        }
        let chunks = dir.join("chunks");
        if let Ok(mut rd) = tokio::fs::read_dir(&chunks).await {
            while let Ok(Some(entry)) = rd.next_entry().await {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some(num) = name.strip_suffix(".json") else {
                    continue;
                };
                let Ok(n) = num.parse::<u64>() else { continue };
                if let Ok(b) = tokio::fs::read(entry.path()).await {
                    if let Ok(info) = serde_json::from_slice::<ChunkInfo>(&b) {
                        st.chunks.insert(n, info);
                    }
                }
            }
        }
        Ok(st)
    }

    /// Probe: is chunk `n` stored (with the size the request expects, if it says one)?
    pub async fn probe(&self, p: &ChunkParams) -> Result<bool, Rejection> {
        let key = sha256_hex(p.identifier.as_bytes());
        let slot = self.slot(&key);
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = Some(self.load(&key).await?);
        }
        let Some(st) = guard.as_ref() else {
            return Ok(false);
        };
        if let Some(meta) = &st.meta {
            check_meta(meta, p)?;
        }
        Ok(match st.chunks.get(&p.chunk_number) {
            Some(c) => p.current_chunk_size.is_none_or(|s| s == c.size),
            None => false,
        })
    }

    /// Stores a received chunk body; assembles the file when it is the last missing chunk.
    pub async fn store_chunk(
        &self,
        p: &ChunkParams,
        mut body: TmpBody,
    ) -> Result<StoreOutcome, Rejection> {
        let key = sha256_hex(p.identifier.as_bytes());
        let dir = self.upload_dir(&key);
        let slot = self.slot(&key);
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = Some(self.load(&key).await?);
        }
        let st = guard.get_or_insert_with(UploadState::default);
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
                tokio::fs::create_dir_all(dir.join("chunks"))
                    .await
                    .map_err(|e| io_err("creating the upload directory", &e))?;
                let json = serde_json::to_vec_pretty(&meta)
                    .map_err(|e| Rejection::with(500, format!("serialising meta: {e}")))?;
                self.write_atomic(&dir.join("meta.json"), &json).await?;
                st.meta = Some(meta);
            }
        }
        if let Some(existing) = st.chunks.get(&p.chunk_number) {
            if existing.sha256 == body.sha256 && existing.size == body.len {
                return Ok(StoreOutcome::Duplicate);
            }
            return Err(Rejection::with(
                409,
                format!(
                    "chunk {} is already stored with different bytes ({} bytes, sha256 {})",
                    p.chunk_number, existing.size, existing.sha256
                ),
            ));
        }
        if st.complete.is_some() {
            // Complete without this chunk: the other rounding rule's extra chunk.
            return Err(Rejection::with(
                409,
                format!(
                    "the upload is already complete without chunk {}",
                    p.chunk_number
                ),
            ));
        }
        let part = dir.join("chunks").join(format!("{}.part", p.chunk_number));
        tokio::fs::rename(&body.path, &part)
            .await
            .map_err(|e| io_err("moving a chunk into place", &e))?;
        body.committed = true;
        let info = ChunkInfo {
            size: body.len,
            sha256: body.sha256.clone(),
        };
        let json = serde_json::to_vec(&info)
            .map_err(|e| Rejection::with(500, format!("serialising chunk info: {e}")))?;
        self.write_atomic(
            &dir.join("chunks").join(format!("{}.json", p.chunk_number)),
            &json,
        )
        .await?;
        st.chunks.insert(p.chunk_number, info);

        let Some(order) = completion_order(st) else {
            return Ok(StoreOutcome::Stored);
        };
        let record = self.assemble(&dir, st, &order).await?;
        st.complete = Some(record.clone());
        Ok(StoreOutcome::Completed(record))
    }

    async fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), Rejection> {
        let tmp = self.tmp_path("meta");
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_err("writing metadata", &e))?;
        f.write_all(data)
            .await
            .map_err(|e| io_err("writing metadata", &e))?;
        f.sync_all()
            .await
            .map_err(|e| io_err("syncing metadata", &e))?;
        drop(f);
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| io_err("renaming metadata", &e))
    }

    async fn assemble(
        &self,
        dir: &Path,
        st: &UploadState,
        order: &[u64],
    ) -> Result<FileRecord, Rejection> {
        let Some(meta) = &st.meta else {
            return Err(Rejection::with(500, "assembly without metadata"));
        };
        let tmp = self.tmp_path("assemble");
        let out = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_err("creating the assembled file", &e))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, out);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        for n in order {
            let mut f = tokio::fs::File::open(dir.join("chunks").join(format!("{n}.part")))
                .await
                .map_err(|e| io_err("opening a chunk for assembly", &e))?;
            loop {
                let k = f
                    .read(&mut buf)
                    .await
                    .map_err(|e| io_err("reading a chunk", &e))?;
                if k == 0 {
                    break;
                }
                hasher.update(&buf[..k]);
                out.write_all(&buf[..k])
                    .await
                    .map_err(|e| io_err("writing the assembled file", &e))?;
                size += k as u64;
            }
        }
        out.flush()
            .await
            .map_err(|e| io_err("flushing the assembled file", &e))?;
        let out = out.into_inner();
        out.sync_all()
            .await
            .map_err(|e| io_err("syncing the assembled file", &e))?;
        drop(out);
        if size != meta.total_size {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Rejection::with(
                500,
                format!("assembled {size} bytes, expected {}", meta.total_size),
            ));
        }
        let sha256 = hex(&hasher.finalize());

        let files = self.root.join("files");
        let _names = self.files_lock.lock().await;
        let base = sanitize_filename(&meta.filename);
        let mut name = base.clone();
        let mut i = 1u32;
        while tokio::fs::try_exists(files.join(&name))
            .await
            .unwrap_or(true)
        {
            name = numbered(&base, i);
            i += 1;
        }
        let path = files.join(&name);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_err("moving the assembled file into files/", &e))?;
        if let Ok(d) = tokio::fs::File::open(&files).await {
            let _ = d.sync_all().await;
        }
        let record = FileRecord {
            name,
            identifier: meta.identifier.clone(),
            size,
            sha256,
            chunks: order.len() as u64,
            path,
        };
        let json = serde_json::to_vec_pretty(&record)
            .map_err(|e| Rejection::with(500, format!("serialising file record: {e}")))?;
        self.write_atomic(&dir.join("complete.json"), &json).await?;
        for n in st.chunks.keys() {
            let _ = tokio::fs::remove_file(dir.join("chunks").join(format!("{n}.part"))).await;
        }
        tracing::info!(name = %record.name, size, sha256 = %record.sha256, "file assembled");
        Ok(record)
    }

    /// Every completed file, from the `complete.json` records on disk.
    pub async fn files(&self) -> Vec<FileRecord> {
        let mut out = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(self.root.join("uploads")).await {
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

    /// Deletes every upload, chunk and file.
    pub async fn clear(&self) -> std::io::Result<()> {
        let _names = self.files_lock.lock().await;
        {
            let mut map = match self.uploads.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.clear();
        }
        for d in ["uploads", "files"] {
            let p = self.root.join(d);
            if p.exists() {
                tokio::fs::remove_dir_all(&p).await?;
            }
            tokio::fs::create_dir_all(&p).await?;
        }
        Ok(())
    }
}

fn check_meta(meta: &Meta, p: &ChunkParams) -> Result<(), Rejection> {
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
        self.file
            .write_all(data)
            .await
            .map_err(|e| io_err("writing a chunk", &e))?;
        self.body.len = len;
        Ok(())
    }

    /// Flushes, fsyncs and returns the received body.
    pub async fn finish(mut self) -> Result<TmpBody, Rejection> {
        self.file
            .flush()
            .await
            .map_err(|e| io_err("flushing a chunk", &e))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(|e| io_err("syncing a chunk", &e))?;
        self.body.sha256 = hex(&self.hasher.clone().finalize());
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
