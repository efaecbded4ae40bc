//! [`Identifiers`]: which files have an identifier, found without a search over every file.

use crate::engine::params::FileId;

/// The files of each identifier (usually one; more while a re-added file waits beside a
/// cancelled or finished one), sorted by identifier: found by a binary search.
#[derive(Debug, Default)]
pub(crate) struct Identifiers(Vec<(String, Vec<FileId>)>);

impl Identifiers {
    fn find(&self, identifier: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(identifier))
    }

    /// Records that file `id` has `identifier`.
    pub(crate) fn insert(&mut self, identifier: &str, id: FileId) {
        match self.find(identifier) {
            Ok(i) => {
                if let Some((_, ids)) = self.0.get_mut(i) {
                    ids.push(id);
                }
            }
            Err(i) => self.0.insert(i, (identifier.to_owned(), vec![id])),
        }
    }

    /// Forgets file `id`, which has `identifier`.
    pub(crate) fn remove(&mut self, identifier: &str, id: FileId) {
        if let Ok(i) = self.find(identifier) {
            if let Some((_, ids)) = self.0.get_mut(i) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    self.0.remove(i);
                }
            }
        }
    }

    /// The files that have `identifier`, in no particular order.
    pub(crate) fn candidates(&self, identifier: &str) -> impl Iterator<Item = FileId> + '_ {
        let ids = self.find(identifier).ok().and_then(|i| self.0.get(i));
        ids.map_or(&[][..], |(_, ids)| ids.as_slice())
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

    // proptest is a native dev-dependency (the wasm32 tests run these modules too).
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Any order of additions and removals finds exactly what a plain map of sets would.
        #[test]
        fn agrees_with_a_map_of_sets(ops in proptest::collection::vec((0u8..2, 0u8..12, 0u32..20), 0..300)) {
            let mut ids = Identifiers::default();
            let mut model = std::collections::BTreeMap::<String, Vec<u32>>::new();
            for (op, name, file) in ops {
                let name = format!("id-{name}");
                if op == 0 {
                    ids.insert(&name, FileId(file));
                    model.entry(name).or_default().push(file);
                } else {
                    ids.remove(&name, FileId(file));
                    if let Some(v) = model.get_mut(&name) {
                        v.retain(|x| *x != file);
                    }
                }
            }
            for n in 0u8..12 {
                let name = format!("id-{n}");
                let mut got: Vec<u32> = ids.candidates(&name).map(|f| f.0).collect();
                let mut want = model.get(&name).cloned().unwrap_or_default();
                got.sort_unstable();
                want.sort_unstable();
                proptest::prop_assert_eq!(got, want, "{}", name);
            }
            proptest::prop_assert!(ids.0.iter().all(|(_, v)| !v.is_empty()), "no empty entry is kept");
            proptest::prop_assert!(ids.0.windows(2).all(|w| w[0].0 < w[1].0), "sorted, one entry per identifier");
        }
    }
}
