//! [`Identifiers`]: which files have an identifier, found without a search over every file.
//!
//! A small hash table: file ids in buckets by a hash of the identifier (FNV-1a), resized as
//! files are added so a bucket holds about one file. Std's `HashMap` or `BTreeMap` would cost
//! several KiB of wasm for this one use.

use crate::engine::params::FileId;

/// File ids in buckets by identifier hash (kept to move them when resizing). It knows hashes
/// only: callers compare the identifiers of the files it names.
#[derive(Debug, Default)]
pub(crate) struct Identifiers {
    buckets: Vec<Vec<(u32, FileId)>>,
    len: usize,
}

/// FNV-1a, 32 bits (a bucket entry is 8 bytes: thousands of files are kept).
fn hash(identifier: &str) -> u32 {
    identifier.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Identifiers {
    fn bucket(&self, h: u32) -> usize {
        usize::try_from(h).unwrap_or(0) % self.buckets.len().max(1)
    }

    /// Records that file `id` has `identifier`.
    pub(crate) fn insert(&mut self, identifier: &str, id: FileId) {
        if self.len >= self.buckets.len() {
            let old = core::mem::take(&mut self.buckets);
            for _ in 0..(old.len() * 2).max(16) {
                self.buckets.push(Vec::new());
            }
            for bucket in &old {
                for &(h, id) in bucket {
                    self.push(h, id);
                }
            }
        }
        self.push(hash(identifier), id);
        self.len += 1;
    }

    fn push(&mut self, h: u32, id: FileId) {
        let b = self.bucket(h);
        if let Some(v) = self.buckets.get_mut(b) {
            v.push((h, id));
        }
    }

    /// Forgets file `id`, which has `identifier`.
    pub(crate) fn remove(&mut self, identifier: &str, id: FileId) {
        let b = self.bucket(hash(identifier));
        if let Some(v) = self.buckets.get_mut(b) {
            let before = v.len();
            v.retain(|(_, x)| *x != id);
            self.len -= before - v.len();
        }
    }

    /// The files that may have `identifier` (those of its bucket), in no particular order.
    pub(crate) fn candidates(&self, identifier: &str) -> impl Iterator<Item = FileId> + '_ {
        let bucket = self.buckets.get(self.bucket(hash(identifier)));
        bucket
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|(_, id)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_file_through_resizes_and_removals() {
        let mut ids = Identifiers::default();
        for i in 0..1000u32 {
            ids.insert(&format!("id-{}", i % 700), FileId(i));
        }
        assert!(ids.buckets.len() >= 1000, "resized as files were added");
        let has = |ids: &Identifiers, s: &str, i: u32| ids.candidates(s).any(|x| x == FileId(i));
        assert!(has(&ids, "id-5", 5) && has(&ids, "id-5", 705));
        ids.remove("id-5", FileId(5));
        assert!(!has(&ids, "id-5", 5) && has(&ids, "id-5", 705));
        assert_eq!(ids.len, 999);
        assert_eq!(Identifiers::default().candidates("id-5").count(), 0);
        assert!(
            ids.candidates("id-6").count() < 8,
            "about one file per bucket"
        );
    }
}
