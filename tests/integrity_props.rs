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
