//! Property tests of the whole-file digest (native only): chunk checksums recorded in any
//! order combine into the checksum of the whole file.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use resumable_wasm::engine::integrity::{crc32c, crc32c_bytes, Algorithm, FileDigest, FileSums};
use resumable_wasm::engine::plan::ChunkPlan;

/// `len` bytes from a seed (a cheap generator: the property is about lengths and order).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// CRC-32C: the digest combined from the chunk CRCs, recorded in a random order, is the
    /// CRC-32C of the whole file, under both rounding rules of the last chunk.
    #[test]
    fn chunk_crcs_in_any_order_combine_into_the_file_crc(
        size in 0usize..20_000,
        chunk in 1u64..4_000,
        force: bool,
        seed: u64,
        order in any::<u64>(),
    ) {
        let data = bytes(size, seed);
        let plan = ChunkPlan::new(size as u64, chunk, force);
        let count = u32::try_from(plan.count()).unwrap();
        // A random permutation of the chunk numbers (Fisher–Yates driven by `order`).
        let mut numbers: Vec<u32> = (1..=count).collect();
        let mut r = order | 1;
        for i in (1..numbers.len()).rev() {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let j = usize::try_from(r % (i as u64 + 1)).unwrap();
            numbers.swap(i, j);
        }
        let mut sums = FileSums::new(Algorithm::Crc32c, count);
        for (k, n) in numbers.iter().enumerate() {
            prop_assert!(sums.digest(&plan).is_none(), "digest before chunk {} of {}", k + 1, count);
            let (s, e) = plan.range(u64::from(*n)).unwrap();
            let crc = crc32c(&data[usize::try_from(s).unwrap()..usize::try_from(e).unwrap()]);
            sums.record(*n, &crc32c_bytes(crc));
        }
        prop_assert_eq!(sums.digest(&plan), Some(FileDigest::Done(crc32c_bytes(crc32c(&data)))));
    }
}

#[path = "support/engine_harness.rs"]
mod harness;

mod resumed {
    use super::*;
    use crate::harness::Harness;
    use resumable_wasm::engine::integrity::{hex, kept_text};
    use resumable_wasm::engine::persist::Record;
    use resumable_wasm::engine::{Config, FileMeta, FileStatus, Input, Phase, TestChunks};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// `persist` + `checksum`: for any set of kept chunks, any of them with or without a
        /// checksum in the record, the resumed upload sends only the other chunks, and the
        /// digest its last request carries is the fresh file's.
        #[test]
        fn a_resumed_file_s_digest_is_the_fresh_file_s(
            size in 1usize..3_000,
            chunk in 100u64..700,
            force: bool,
            seed: u64,
            kept_mask: u16,
            sum_mask: u16,
        ) {
            let data = bytes(size, seed);
            let plan = ChunkPlan::new(size as u64, chunk, force);
            let count = u32::try_from(plan.count()).unwrap();
            let mut c = Config::new("https://up.example/u");
            c.chunk_size = chunk;
            c.force_chunk_size = force;
            c.persist = true;
            c.test_chunks = TestChunks::Never;
            c.checksum = Some(Algorithm::Crc32c);
            c.simultaneous_uploads = Some(2);
            let meta = FileMeta { name: "a.bin".into(), size: size as u64, last_modified: Some(1), ..Default::default() };
            let crc_of = |n: u32| {
                let (s, e) = plan.range(u64::from(n)).unwrap();
                crc32c_bytes(crc32c(&data[usize::try_from(s).unwrap()..usize::try_from(e).unwrap()]))
            };
            let mut h = Harness::new(c.clone(), seed);
            let mut record = Record::new(&c, &h.s.identifier_for(&meta), &meta);
            let bit = |mask: u16, n: u32| mask & (1 << ((n - 1) % 16)) != 0;
            let kept: Vec<u32> = (1..=count).filter(|&n| bit(kept_mask, n)).collect();
            for &n in &kept {
                record.confirmed.insert(n);
                if bit(sum_mask, n) {
                    record.set_checksum(n, &kept_text(Algorithm::Crc32c, &crc_of(n)));
                }
            }
            let f = h.s.add_file_kept(0, meta, Some(record)).unwrap();
            h.drain();
            h.input(Input::Start);
            let mut sent = Vec::new();
            let mut local = Vec::new();
            for _ in 0..1_000 {
                for (_, n, _, _) in h.s.read_ahead() {
                    prop_assert!(!kept.contains(&n), "kept chunk {} read ahead", n);
                }
                if let Some(spec) = h.try_next() {
                    let spec = h.s.hashed(h.now, spec.id, &crc_of(spec.chunk)).unwrap();
                    h.drain();
                    sent.push(spec.clone());
                    h.respond(spec.id, 200);
                } else if let Some((file, n, _, _)) = h.s.kept_to_hash() {
                    local.push(n);
                    h.s.kept_hashed(h.now, file, n, Some(&crc_of(n)));
                    h.drain();
                } else {
                    break;
                }
            }
            prop_assert_eq!(h.s.file(f).unwrap().status, FileStatus::Success);
            let missing: Vec<u32> = (1..=count).filter(|n| !kept.contains(n)).collect();
            let mut uploaded: Vec<u32> = sent.iter().filter(|s| s.phase == Phase::Upload).map(|s| s.chunk).collect();
            uploaded.sort_unstable();
            prop_assert_eq!(&uploaded, &missing, "only the missing chunks are sent");
            let unsummed: Vec<u32> = kept.iter().copied().filter(|&n| !bit(sum_mask, n)).collect();
            if missing.is_empty() {
                prop_assert!(sent.is_empty());
            } else {
                prop_assert_eq!(&local, &unsummed, "kept chunks without a checksum are hashed locally");
                let digest = hex(&crc32c_bytes(crc32c(&data)));
                let last = sent.last().unwrap();
                prop_assert_eq!(last.param("resumableFileChecksum"), Some(digest.clone()));
                for s in &sent {
                    let carried = s.param("resumableFileChecksum");
                    prop_assert!(carried.is_none() || carried.as_ref() == Some(&digest));
                }
            }
        }
    }
}
