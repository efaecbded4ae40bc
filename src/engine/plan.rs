//! The chunk plan: how a file of `size` bytes is cut into 1-based chunks.
//!
//! This module owns only arithmetic, in `u64` (never `usize`, which is 32-bit on wasm32), and
//! is exact for every size up to 2^53−1 bytes. It knows nothing of requests.
//!
//! The rule is the one of Resumable.js and Flow.js (docs/protocol.md §4):
//! `max(floor(size / chunkSize), 1)` chunks where the last absorbs the remainder (between
//! `chunkSize` and `2·chunkSize−1` bytes); with `forceChunkSize`, `ceil` so no chunk exceeds
//! `chunkSize`. A zero-byte file is one empty chunk.
//!
//! ```
//! use resumable_wasm::engine::plan::ChunkPlan;
//! let p = ChunkPlan::new(2_459_177, 1_048_576, false);
//! assert_eq!(p.count(), 2);
//! assert_eq!(p.range(2), Some((1_048_576, 2_459_177)));
//! ```

/// The largest integer a JS number holds exactly: 2^53−1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The uplink `chunkSize: 'auto'` sizes chunks for: 1 Gbit/s, in bytes per millisecond. The
/// page cannot measure the rate before a byte is sent, only the round trip; a slower link gets
/// larger chunks than it needs, which costs progress granularity and what one failed request
/// resends, never throughput.
pub const AUTO_CHUNK_RATE: u64 = 125_000;

/// The chunk size `chunkSize: 'auto'` picks for a new file: large enough that six requests in
/// flight (what a browser runs toward an HTTP/1.1 origin) carry twice the bandwidth-delay
/// product of an [`AUTO_CHUNK_RATE`] link at round trip `rtt_ms`, in whole multiples of
/// `floor` (the `chunkSize` default), within `floor..=max` (`maxChunkSize`). With no round
/// trip measured yet, `max`.
///
/// ```
/// use resumable_wasm::engine::plan::auto_chunk_size;
/// const MIB: u64 = 1 << 20;
/// assert_eq!(auto_chunk_size(Some(20), MIB, 16 * MIB), MIB);
/// assert_eq!(auto_chunk_size(Some(100), MIB, 16 * MIB), 4 * MIB);
/// assert_eq!(auto_chunk_size(Some(200), MIB, 16 * MIB), 8 * MIB);
/// assert_eq!(auto_chunk_size(Some(900), MIB, 16 * MIB), 16 * MIB);
/// assert_eq!(auto_chunk_size(None, MIB, 16 * MIB), 16 * MIB);
/// ```
#[must_use]
pub fn auto_chunk_size(rtt_ms: Option<u64>, floor: u64, max: u64) -> u64 {
    let floor = floor.max(1);
    let Some(rtt) = rtt_ms else {
        return max.max(floor);
    };
    // 6 × size = 2 × rate × rtt.
    let wanted = rtt.saturating_mul(AUTO_CHUNK_RATE) / 3;
    let units = wanted.div_ceil(floor).max(1);
    units.saturating_mul(floor).min(max).max(floor)
}

/// The chunks of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    size: u64,
    chunk_size: u64,
    force: bool,
    count: u64,
}

impl ChunkPlan {
    /// Plans a file of `size` bytes in chunks of `chunk_size` (a `chunk_size` of 0 is treated
    /// as 1; validated configs never pass 0).
    #[must_use]
    pub fn new(size: u64, chunk_size: u64, force: bool) -> ChunkPlan {
        let cs = chunk_size.max(1);
        let n = if force {
            size / cs + u64::from(size % cs != 0)
        } else {
            size / cs
        };
        ChunkPlan {
            size,
            chunk_size: cs,
            force,
            count: n.max(1),
        }
    }

    /// Number of chunks (at least 1).
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The file size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The configured chunk size (the value of the `chunkSize` parameter).
    #[must_use]
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The byte range `[start, end)` of 1-based chunk `number`, or `None` outside the plan.
    #[must_use]
    pub fn range(&self, number: u64) -> Option<(u64, u64)> {
        if number == 0 || number > self.count {
            return None;
        }
        let offset = number - 1;
        let start = offset.saturating_mul(self.chunk_size).min(self.size);
        let mut end = number.saturating_mul(self.chunk_size).min(self.size);
        if !self.force && (number == self.count || self.size - end < self.chunk_size) {
            end = self.size;
        }
        Some((start, end))
    }

    /// Bytes in chunk `number` (0 outside the plan).
    #[must_use]
    pub fn len(&self, number: u64) -> u64 {
        self.range(number).map_or(0, |(s, e)| e - s)
    }

    /// Whether the file is empty (one empty chunk).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u64 = 1_048_576;

    fn lens(size: u64, force: bool) -> Vec<u64> {
        let p = ChunkPlan::new(size, MIB, force);
        (1..=p.count()).map(|n| p.len(n)).collect()
    }

    #[test]
    fn protocol_table() {
        assert_eq!(lens(0, false), vec![0]);
        assert_eq!(lens(0, true), vec![0]);
        assert_eq!(lens(524_288, false), vec![524_288]);
        assert_eq!(lens(MIB, false), vec![MIB]);
        assert_eq!(lens(MIB, true), vec![MIB]);
        assert_eq!(lens(1_572_864, false), vec![1_572_864]);
        assert_eq!(lens(1_572_864, true), vec![MIB, 524_288]);
        assert_eq!(lens(2_459_177, false), vec![MIB, 1_410_601]);
        assert_eq!(lens(2_459_177, true), vec![MIB, MIB, 362_025]);
        assert_eq!(lens(3 * MIB, false), vec![MIB; 3]);
        assert_eq!(lens(3 * MIB, true), vec![MIB; 3]);
    }

    #[test]
    fn huge_files() {
        let p = ChunkPlan::new(MAX_SAFE_INTEGER, MIB, false);
        assert_eq!(p.count(), MAX_SAFE_INTEGER / MIB);
        let (s, e) = p.range(p.count()).unwrap();
        assert_eq!(e, MAX_SAFE_INTEGER);
        assert_eq!(s, (p.count() - 1) * MIB);
        let five_gib = 5 * 1024 * MIB;
        let p = ChunkPlan::new(five_gib + 7, 4 * 1024 * MIB, true);
        assert_eq!(p.count(), 2);
        assert_eq!(p.range(2), Some((4 * 1024 * MIB, five_gib + 7)));
        assert_eq!(p.range(3), None);
        assert_eq!(p.range(0), None);
    }
}
