//! [`Identifiers`]: which files have an identifier, found without a search over every file.

use std::collections::HashMap;

use crate::engine::params::FileId;

/// The files of each identifier (usually one; more while a re-added file waits beside a
/// cancelled or finished one).
#[derive(Debug, Default)]
pub(crate) struct Identifiers(HashMap<String, Vec<FileId>>);

impl Identifiers {
    /// Records that file `id` has `identifier`.
    pub(crate) fn insert(&mut self, identifier: &str, id: FileId) {
        self.0.entry(identifier.to_owned()).or_default().push(id);
    }

    /// Forgets file `id`, which has `identifier`.
    pub(crate) fn remove(&mut self, identifier: &str, id: FileId) {
        if let Some(ids) = self.0.get_mut(identifier) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.0.remove(identifier);
            }
        }
    }

    /// The files that have `identifier`, in no particular order.
    pub(crate) fn candidates(&self, identifier: &str) -> impl Iterator<Item = FileId> + '_ {
        self.0
            .get(identifier)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_file_through_removals() {
        let mut ids = Identifiers::default();
        for i in 0..1000u32 {
            ids.insert(&format!("id-{}", i % 700), FileId(i));
        }
        let has = |ids: &Identifiers, s: &str, i: u32| ids.candidates(s).any(|x| x == FileId(i));
        assert!(has(&ids, "id-5", 5) && has(&ids, "id-5", 705));
        ids.remove("id-5", FileId(5));
        assert!(!has(&ids, "id-5", 5) && has(&ids, "id-5", 705));
        ids.remove("id-6", FileId(6));
        ids.remove("id-6", FileId(706));
        assert_eq!(
            ids.candidates("id-6").count(),
            0,
            "the last file of an identifier removed"
        );
        assert_eq!(Identifiers::default().candidates("id-5").count(), 0);
    }
}
