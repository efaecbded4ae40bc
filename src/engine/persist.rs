//! Durable resume (`persist`): the record kept for each unfinished upload, and its rules.
//!
//! With `persist: true` the browser keeps one [`Record`] per unfinished file (the driver
//! stores it; the engine decides what it holds and when it changes). After a reload or a
//! browser restart the page gets its records back (`pending()`), re-adds the kept files
//! (`resumePending()`) or the user picks the same files again, and the upload continues with
//! the chunks the record says are on the server:
//!
//! - **Scope.** A record belongs to the options that shape the wire ([`scope`]): target,
//!   protocol, chunk size and rounding, parameter names, identifier rule. Another
//!   configuration neither sees nor resumes it (its chunk numbers would mean other bytes).
//! - **Matching** ([`Record::matches`]): a re-added file is looked up by identifier; its name
//!   must be the record's, and then its size and `lastModified` too, or it is [`Match::Changed`]
//!   (the bytes on the server are of another version: the file is refused, rule `changed`).
//! - **Verify, then skip.** Under `testChunks: 'auto'` the first kept chunk is probed once; if
//!   the server has it every kept chunk counts as done without a request, else the server lost
//!   the upload and every chunk is probed ([`resume_probing`]). `true` probes every chunk as
//!   always; `false` trusts the record.
//! - **Checksums** (`checksum`): the record keeps the checksum each confirmed chunk was accepted
//!   with ([`Record::checksums`], `algorithm:hex`), and a resumed file's whole-file digest is
//!   formed from them and the chunks it sends. `checksum` is deliberately not in the
//!   [`scope`]: a record without them (written with `checksum` off, or under the other
//!   algorithm) does not break the digest, because its kept chunks are then read and hashed
//!   locally (never sent) before the file's last chunk goes (`Scheduler::kept_to_hash`). Only
//!   a confirmed chunk's checksum is ever used.
//! - **Kept bytes.** A file up to `persistBlobMaxBytes` is kept whole with its record
//!   ([`keeps_blob`]); a larger one needs the user to pick it again, or a file handle.
//! - **Other protocols** keep their own per-file state in the record: [`Record::state`]
//!   (opaque name → value pairs, e.g. an object store's upload id and key), written with the
//!   scheduler's `set_file_state` (and per chunk `set_chunk_checksum`), read back with
//!   `Scheduler::file_state`.
//!
//! The record travels as text ([`Record::encode`] / [`Record::decode`]): the engine owns its
//! shape, the storage only keeps the string, and a record it cannot read is ignored.

use crate::engine::config::{Config, IdentifierMode, Protocol, TestChunks};
use crate::engine::params::FileMeta;

/// Sorted, disjoint, non-adjacent inclusive runs of chunk numbers: the confirmed chunks of a
/// file in a few pairs however many chunks it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs(Vec<(u32, u32)>);

impl Runs {
    /// Adds chunk `n`, merging runs it touches.
    pub fn insert(&mut self, n: u32) {
        let v = &mut self.0;
        // The first run that does not end before `n - 1`.
        let i = v.partition_point(|&(_, hi)| hi.saturating_add(1) < n);
        match v.get(i).copied() {
            Some((lo, hi)) if lo <= n && n <= hi => {}
            Some((lo, hi)) if hi.saturating_add(1) == n => {
                if let Some(r) = v.get_mut(i) {
                    r.1 = n;
                }
                // Joins the next run when it starts right after `n`.
                if let Some(&(nlo, nhi)) = v.get(i + 1) {
                    if nlo == n.saturating_add(1) {
                        v.remove(i + 1);
                        if let Some(r) = v.get_mut(i) {
                            *r = (lo, nhi);
                        }
                    }
                }
            }
            Some((lo, hi)) if n.saturating_add(1) == lo => {
                if let Some(r) = v.get_mut(i) {
                    *r = (n, hi);
                }
            }
            _ => v.insert(i, (n, n)),
        }
    }

    /// Appends the run `lo..=hi` above every run held and not touching the last; `None` (and
    /// nothing changed) otherwise, or for chunk 0.
    pub fn push_run(&mut self, lo: u32, hi: u32) -> Option<()> {
        let above = self
            .0
            .last()
            .is_none_or(|&(_, top)| top.checked_add(1).is_some_and(|t| t < lo));
        (lo >= 1 && lo <= hi && above).then(|| self.0.push((lo, hi)))
    }

    /// Whether chunk `n` is in a run.
    #[must_use]
    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < n);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= n)
    }

    /// How many chunks the runs hold.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(lo, hi)| u64::from(hi - lo) + 1).sum()
    }

    /// The lowest chunk, if any.
    #[must_use]
    pub fn first(&self) -> Option<u32> {
        self.0.first().map(|r| r.0)
    }

    /// Whether no chunk is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The runs, lowest first.
    #[must_use]
    pub fn runs(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// Every chunk, lowest first.
    pub fn chunks(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// Removes the lowest chunk and returns it.
    pub fn pop_first(&mut self) -> Option<u32> {
        let (lo, hi) = *self.0.first()?;
        if lo == hi {
            self.0.remove(0);
        } else if let Some(r) = self.0.first_mut() {
            r.0 = lo + 1;
        }
        Some(lo)
    }
}

/// What the browser keeps of one unfinished upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The wire options it was made under ([`scope`]).
    pub scope: String,
    /// The identifier sent to the server.
    pub identifier: String,
    /// `file.name`.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// `file.lastModified`, when the file had one.
    pub last_modified: Option<u64>,
    /// The relative path, when the file came from a folder.
    pub relative_path: Option<String>,
    /// `file.type`.
    pub mime_type: String,
    /// Chunks the server confirmed.
    pub confirmed: Runs,
    /// Opaque per-file protocol state (name → value, names unique), e.g. an object store's
    /// multipart upload id and key. The engine keeps and returns it; it does not read it.
    pub state: Vec<(String, String)>,
    /// Per-chunk checksums (chunk → text), lowest chunk first: with `checksum`, each
    /// confirmed chunk's as `algorithm:hex` ([`crate::engine::integrity::kept_text`]), so the
    /// whole-file digest survives a reload.
    pub checksums: Vec<(u32, String)>,
    /// `background`: what a Background Fetch job's chunks got (chunk, HTTP status; 0 = no
    /// answer), appended by the worker part as `o` lines; folded into `confirmed` by
    /// [`crate::engine::background::settle`] when read, never written back.
    pub outcomes: Vec<(u32, u32)>,
}

/// How a re-added file compares with a kept record of the same identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The same file: resume it.
    Same,
    /// Another file under the same identifier (another name): the record is not about it.
    Other,
    /// The same name but another size or `lastModified`: it changed since the upload began.
    Changed,
}

const VERSION: &str = "rw1";

impl Record {
    /// A fresh record of a file being added under `config`.
    #[must_use]
    pub fn new(config: &Config, identifier: &str, meta: &FileMeta) -> Record {
        Record {
            scope: scope(config),
            identifier: identifier.to_owned(),
            name: meta.name.clone(),
            size: meta.size,
            last_modified: meta.last_modified,
            relative_path: meta.relative_path.clone(),
            mime_type: meta.mime_type.clone(),
            ..Record::default()
        }
    }

    /// The file the record describes, to add it again (identifier included).
    #[must_use]
    pub fn meta(&self) -> FileMeta {
        FileMeta {
            name: self.name.clone(),
            size: self.size,
            mime_type: self.mime_type.clone(),
            relative_path: self.relative_path.clone(),
            last_modified: self.last_modified,
            identifier: Some(self.identifier.clone()),
        }
    }

    /// The matching rule: by identifier (the caller looked the record up by it) and name,
    /// then size and `lastModified`.
    #[must_use]
    pub fn matches(&self, meta: &FileMeta) -> Match {
        if meta.name != self.name {
            Match::Other
        } else if meta.size == self.size && meta.last_modified == self.last_modified {
            Match::Same
        } else {
            Match::Changed
        }
    }

    /// The storage key: scope and identifier (one record per file and configuration).
    #[must_use]
    pub fn key(&self) -> String {
        key(&self.scope, &self.identifier)
    }

    /// Sets protocol state `name` (replacing its value).
    pub fn set_state(&mut self, name: &str, value: &str) {
        match self.state.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => self.state.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Sets the checksum text of chunk `chunk` (replacing it), keeping the chunks in order.
    pub fn set_checksum(&mut self, chunk: u32, sum: &str) {
        match self.checksums.binary_search_by_key(&chunk, |(n, _)| *n) {
            Ok(i) => {
                if let Some(slot) = self.checksums.get_mut(i) {
                    sum.clone_into(&mut slot.1);
                }
            }
            Err(i) => self.checksums.insert(i, (chunk, sum.to_owned())),
        }
    }

    /// The checksum text kept for chunk `chunk`.
    #[must_use]
    pub fn checksum(&self, chunk: u32) -> Option<&str> {
        let i = self
            .checksums
            .binary_search_by_key(&chunk, |(n, _)| *n)
            .ok()?;
        self.checksums.get(i).map(|(_, s)| s.as_str())
    }

    /// Forgets the confirmed chunks and their checksums: nothing of the upload is trusted.
    pub fn clear_chunks(&mut self) {
        self.confirmed = Runs::default();
        self.checksums.clear();
    }

    /// The record as text: a version line, then one `tag value` line per field (values
    /// escaped: `\\`, `\n`, `\t`).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut s = String::from(VERSION);
        let mut line = |tag: &str, value: &str| {
            s.push('\n');
            s.push_str(tag);
            s.push(' ');
            escape(value, &mut s);
        };
        line("k", &self.scope);
        line("i", &self.identifier);
        line("n", &self.name);
        line("s", &self.size.to_string());
        if let Some(m) = self.last_modified {
            line("m", &m.to_string());
        }
        if let Some(p) = &self.relative_path {
            line("p", p);
        }
        line("t", &self.mime_type);
        let runs: Vec<String> = self
            .confirmed
            .runs()
            .iter()
            .map(|(lo, hi)| format!("{lo}-{hi}"))
            .collect();
        line("c", &runs.join(","));
        for (name, value) in &self.state {
            line("x", &format!("{name}\t{value}"));
        }
        for (chunk, sum) in &self.checksums {
            line("h", &format!("{chunk}\t{sum}"));
        }
        s
    }

    /// A record from [`Record::encode`]'s text; `None` for anything else (another version, a
    /// missing or malformed field).
    #[must_use]
    pub fn decode(text: &str) -> Option<Record> {
        let mut lines = text.split('\n');
        if lines.next()? != VERSION {
            return None;
        }
        let mut r = Record::default();
        let (mut scope, mut ident, mut name, mut size) = (false, false, false, false);
        for l in lines {
            let (tag, raw) = l.split_once(' ')?;
            let v = unescape(raw)?;
            match tag {
                "k" => (r.scope, scope) = (v, true),
                "i" => (r.identifier, ident) = (v, true),
                "n" => (r.name, name) = (v, true),
                "s" => (r.size, size) = (v.parse().ok()?, true),
                "m" => r.last_modified = Some(v.parse().ok()?),
                "p" => r.relative_path = Some(v),
                "t" => r.mime_type = v,
                "c" => {
                    for run in v.split(',').filter(|x| !x.is_empty()) {
                        let (lo, hi) = run.split_once('-')?;
                        r.confirmed.push_run(lo.parse().ok()?, hi.parse().ok()?)?;
                    }
                }
                "x" => {
                    let (n, val) = v.split_once('\t')?;
                    r.set_state(n, val);
                }
                "h" => {
                    let (n, sum) = v.split_once('\t')?;
                    r.set_checksum(n.parse().ok()?, sum);
                }
                "o" => {
                    let (n, status) = v.split_once('\t')?;
                    r.outcomes.push((n.parse().ok()?, status.parse().ok()?));
                }
                _ => return None,
            }
        }
        (scope && ident && name && size).then_some(r)
    }
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

fn unescape(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(match chars.next()? {
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                _ => return None,
            });
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The options that decide what chunk `n` of a file means on the wire, as one string: a record
/// resumes only under the same ones.
#[must_use]
pub fn scope(c: &Config) -> String {
    let protocol = match c.protocol {
        Protocol::Resumable => "resumable",
        Protocol::Flow => "flow",
    };
    let unique = c.identifier == IdentifierMode::Unique;
    // `chunkSize: 'auto'`: each record keeps its file's size ([`Record::state`]).
    let chunk = if c.chunk_auto {
        "auto".to_owned()
    } else {
        c.chunk_size.to_string()
    };
    let mut s = format!(
        "{}|{protocol}|{chunk}|{}|{}|{unique}",
        c.target, c.force_chunk_size, c.parameter_namespace,
    );
    // S3 cuts parts from `chunkSize` (in the scope already); one signed PUT has no parts.
    if let Some(o) = c.s3 {
        s.push_str(if o.sign_upload {
            "|s3put"
        } else if o.post {
            "|s3post"
        } else {
            "|s3"
        });
    }
    for n in &c.param_names {
        s.push('|');
        s.push_str(n.as_deref().unwrap_or("-"));
    }
    s
}

/// The storage key of `identifier`'s record under `scope`.
#[must_use]
pub fn key(scope: &str, identifier: &str) -> String {
    let mut k = String::from(scope);
    k.push('\n');
    k.push_str(identifier);
    k
}

/// Whether a file of `size` bytes is kept whole with its record.
#[must_use]
pub fn keeps_blob(config: &Config, size: u64) -> bool {
    size <= config.persist_blob_max_bytes
}

/// How a file resumed from a record with `kept` confirmed chunks starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Probe this kept chunk first; the rest of the kept chunks count as done if it is there.
    Verify(u32),
    /// Skip every kept chunk without a request (`testChunks: false`).
    Trust,
    /// Start as a fresh file (`testChunks: true` probes every chunk anyway, or nothing kept).
    Fresh,
}

/// The resume rule of `testChunks` for a record whose confirmed chunks are `kept`, of a file of
/// `count` chunks. A record that confirms every chunk (a background job's answers) is trusted
/// whatever `testChunks` says: nothing is left to send or probe.
#[must_use]
pub fn resume_probing(test_chunks: TestChunks, kept: &Runs, count: u32) -> Resume {
    match (test_chunks, kept.first()) {
        (_, None) => Resume::Fresh,
        _ if kept.count() >= u64::from(count) => Resume::Trust,
        (TestChunks::Always, _) => Resume::Fresh,
        (TestChunks::Auto, Some(first)) => Resume::Verify(first),
        (TestChunks::Never, Some(_)) => Resume::Trust,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_answer() {
        let mut r = Runs::default();
        for n in [5, 1, 3, 2, 7, 6, 4] {
            r.insert(n);
        }
        assert_eq!(r.runs(), &[(1, 7)]);
        let mut r = Runs::default();
        for n in [10, 12, 11, 1] {
            r.insert(n);
        }
        assert_eq!(r.runs(), &[(1, 1), (10, 12)]);
        assert!(r.contains(11) && !r.contains(2) && !r.contains(13));
        assert_eq!(r.count(), 4);
    }

    #[test]
    fn record_round_trips_with_odd_text() {
        let mut r = Record {
            scope: "https://u/x|Resumable|1048576|false||false".into(),
            identifier: "12-a\nb".into(),
            name: "a\tb\\c é.bin".into(),
            size: 12,
            last_modified: Some(1_700_000_000_000),
            relative_path: Some("dir/a b".into()),
            mime_type: String::new(),
            ..Record::default()
        };
        r.confirmed.insert(1);
        r.confirmed.insert(3);
        r.set_state("uploadId", "abc\t1");
        r.set_state("uploadId", "abc\t2");
        r.checksums.push((3, "sha256-xyz".into()));
        let text = r.encode();
        assert_eq!(Record::decode(&text), Some(r));
        assert_eq!(Record::decode("rw0\nk x"), None);
        assert_eq!(
            Record::decode("rw1\nk x\ni y\nn z"),
            None,
            "size is required"
        );
        assert_eq!(Record::decode("rw1\nk x\ni y\nn z\ns 1\nc 0-2"), None);
        assert_eq!(
            Record::decode("rw1\nk x\ni y\nn z\ns 1\nc 3-4,5-6"),
            None,
            "touching runs"
        );
        let huge = Record::decode("rw1\nk x\ni y\nn z\ns 1\nc 1-4294967295").unwrap();
        assert_eq!(huge.confirmed.count(), u64::from(u32::MAX));
    }

    #[test]
    fn matching_rule() {
        let meta = FileMeta {
            name: "a.bin".into(),
            size: 10,
            last_modified: Some(5),
            ..FileMeta::default()
        };
        let r = Record::new(&Config::new("https://u/x"), "10-abin", &meta);
        assert_eq!(r.matches(&meta), Match::Same);
        let renamed = FileMeta {
            name: "b.bin".into(),
            ..meta.clone()
        };
        assert_eq!(r.matches(&renamed), Match::Other);
        let touched = FileMeta {
            last_modified: Some(6),
            ..meta.clone()
        };
        assert_eq!(r.matches(&touched), Match::Changed);
    }

    #[test]
    fn scope_follows_wire_options_only() {
        let a = Config::new("https://u/x");
        let mut b = Config::new("https://u/x");
        b.max_chunk_retries = 1;
        b.persist = true;
        assert_eq!(scope(&a), scope(&b));
        b.chunk_size = 5;
        assert_ne!(scope(&a), scope(&b));
        // S3 parts, and one signed PUT of the whole file, are other plans.
        let mut s3 = Config::new("https://u/x");
        s3.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: false,
        });
        assert_ne!(scope(&a), scope(&s3));
        let mut single = s3.clone();
        single.s3 = Some(crate::engine::config::S3Options {
            sign_upload: true,
            post: false,
        });
        assert_ne!(scope(&s3), scope(&single));
        // POST chunks under a prefix are not multipart parts.
        let mut post = s3.clone();
        post.s3 = Some(crate::engine::config::S3Options {
            sign_upload: false,
            post: true,
        });
        assert_ne!(scope(&s3), scope(&post));
    }

    #[test]
    fn resume_rule_per_test_chunks() {
        let mut kept = Runs::default();
        assert_eq!(resume_probing(TestChunks::Auto, &kept, 4), Resume::Fresh);
        kept.insert(4);
        kept.insert(2);
        assert_eq!(
            resume_probing(TestChunks::Auto, &kept, 4),
            Resume::Verify(2)
        );
        assert_eq!(resume_probing(TestChunks::Always, &kept, 4), Resume::Fresh);
        assert_eq!(resume_probing(TestChunks::Never, &kept, 4), Resume::Trust);
        kept.insert(1);
        kept.insert(3);
        for t in [TestChunks::Auto, TestChunks::Always, TestChunks::Never] {
            assert_eq!(
                resume_probing(t, &kept, 4),
                Resume::Trust,
                "complete record"
            );
        }
    }
}
