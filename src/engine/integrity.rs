//! Per-chunk checksums and the whole-file digest (`checksum` option; docs/protocol.md,
//! "Integrity").
//!
//! This module owns the algorithms' names and wire encoding, the CRC-32C of a chunk, the
//! record of every chunk's checksum per file (which tells a re-read that hashes differently:
//! the file changed), the whole-file digest made from the chunk checksums alone, and what a
//! server's answer says about integrity. It reads no bytes (the driver hashes what it read)
//! and decides nothing about retries (the scheduler does, with these answers).
//!
//! The whole-file digest needs no second pass over the file and no order: every chunk's
//! checksum is recorded when its bytes are read, whatever order chunks are read, sent or
//! retried in, and the digest is formed once every one is known:
//! - `crc32c`: the CRC-32C of the whole file, folded from the chunk CRCs with the CRC
//!   combination (the same value a server gets by hashing the assembled file, or by combining
//!   its stored chunk CRCs);
//! - `sha256`: the SHA-256 of the concatenated 32-byte chunk digests in chunk order (a
//!   digest of the chunk digests; it depends on the chunk size, so it is not `sha256sum`).

use crate::engine::plan::ChunkPlan;

/// A checksum algorithm (`checksum` option, `*ChecksumAlgorithm` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// CRC-32C (Castagnoli), computed in the wasm; 4 bytes, big-endian on the wire.
    Crc32c,
    /// SHA-256, computed by WebCrypto (`crypto.subtle`); 32 bytes.
    Sha256,
}

impl Algorithm {
    /// The wire and option name: `crc32c` or `sha256`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Crc32c => "crc32c",
            Algorithm::Sha256 => "sha256",
        }
    }
}

/// The status a server answers for a chunk whose bytes do not match its checksum (as tus's
/// checksum extension does). A 400 whose body holds [`CHUNK_MISMATCH`] means the same.
pub const MISMATCH_STATUS: u16 = 460;
/// The body token of a chunk checksum mismatch.
pub const CHUNK_MISMATCH: &str = "chunk_checksum_mismatch";
/// The body token of a completed file whose digest does not match.
pub const FILE_MISMATCH: &str = "file_checksum_mismatch";

/// CRC-32C (CRC-32/ISCSI) with the byte-wise table: 1 KiB in the wasm.
static CASTAGNOLI: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISCSI);

/// A CRC-32C computed piece by piece, as the driver copies a chunk into wasm memory.
pub struct Crc32c(crc::Digest<'static, u32, crc::Table<1>>);

impl Crc32c {
    /// A fresh CRC.
    #[must_use]
    pub fn new() -> Crc32c {
        Crc32c(CASTAGNOLI.digest())
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC-32C of everything fed.
    #[must_use]
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

impl Default for Crc32c {
    fn default() -> Crc32c {
        Crc32c::new()
    }
}

/// The CRC-32C of `bytes`.
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI.checksum(bytes)
}

/// The checksum bytes of a CRC-32C value (big-endian, so the hex reads like the number).
#[must_use]
pub fn crc32c_bytes(crc: u32) -> Vec<u8> {
    crc.to_be_bytes().to_vec()
}

/// Lowercase hex of `bytes`: the wire encoding of every checksum (no URL escaping needed).
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The bytes of lowercase (or uppercase) hex `text`; `None` for anything else.
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let b = text.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(digit(*p.first()?)? << 4 | digit(*p.get(1)?)?))
        .collect()
}

/// How a chunk's checksum is kept in a durable resume record: `algorithm:hex`, so that a
/// record written under another algorithm is never taken for this one.
#[must_use]
pub fn kept_text(algorithm: Algorithm, sum: &[u8]) -> String {
    let mut s = String::from(algorithm.as_str());
    s.push(':');
    s.push_str(&hex(sum));
    s
}

/// The checksum a record keeps as `text` ([`kept_text`]) when it is one of `algorithm` and of
/// its length; `None` otherwise (the chunk is then hashed from the file again).
#[must_use]
pub fn from_kept_text(algorithm: Algorithm, text: &str) -> Option<Vec<u8>> {
    let (name, hex) = text.split_once(':')?;
    let len = match algorithm {
        Algorithm::Crc32c => 4,
        Algorithm::Sha256 => 32,
    };
    let sum = unhex(hex).filter(|s| s.len() == len)?;
    (name == algorithm.as_str()).then_some(sum)
}

/// What a chunk's new checksum says next to the one recorded before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The first read of this chunk.
    First,
    /// The same bytes as every earlier read.
    Same,
    /// Different bytes than an earlier read of the same range: the file changed on disk.
    Changed,
}

/// Every chunk checksum of one file, as they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSums {
    algorithm: Algorithm,
    /// Chunk `n`'s checksum at `n - 1`.
    sums: Vec<Option<Box<[u8]>>>,
    known: u32,
}

impl FileSums {
    /// An empty record for a file of `count` chunks.
    #[must_use]
    pub fn new(algorithm: Algorithm, count: u32) -> FileSums {
        FileSums {
            algorithm,
            sums: vec![None; usize::try_from(count).unwrap_or(0)],
            known: 0,
        }
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Records the checksum of a read of chunk `chunk` (1-based); the first read of a chunk is
    /// kept, and every later one is compared with it.
    pub fn record(&mut self, chunk: u32, sum: &[u8]) -> Reading {
        let Some(slot) = usize::try_from(chunk)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.sums.get_mut(i))
        else {
            return Reading::Changed;
        };
        match slot {
            Some(old) if **old == *sum => Reading::Same,
            Some(_) => Reading::Changed,
            None => {
                *slot = Some(sum.into());
                self.known += 1;
                Reading::First
            }
        }
    }

    /// The checksum recorded for chunk `chunk`.
    #[must_use]
    pub fn get(&self, chunk: u32) -> Option<&[u8]> {
        let i = usize::try_from(chunk).ok()?.checked_sub(1)?;
        self.sums.get(i)?.as_deref()
    }

    /// The whole-file digest (module docs), once every chunk's checksum is known.
    #[must_use]
    pub fn digest(&self, plan: &ChunkPlan) -> Option<FileDigest> {
        if usize::try_from(self.known).ok()? != self.sums.len() {
            return None;
        }
        match self.algorithm {
            Algorithm::Crc32c => {
                let mut crc = 0u32;
                for (i, sum) in self.sums.iter().enumerate() {
                    let bytes: [u8; 4] = sum.as_deref()?.try_into().ok()?;
                    let n = u64::try_from(i).ok()?.checked_add(1)?;
                    let len = usize::try_from(plan.len(n)).ok()?;
                    crc = crc32c::crc32c_combine(crc, u32::from_be_bytes(bytes), len);
                }
                Some(FileDigest::Done(crc32c_bytes(crc)))
            }
            Algorithm::Sha256 => {
                let mut input = Vec::with_capacity(self.sums.len() * 32);
                for sum in &self.sums {
                    input.extend_from_slice(sum.as_deref()?);
                }
                Some(FileDigest::Sha256Of(input))
            }
        }
    }
}

/// The whole-file digest, or what it is the hash of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDigest {
    /// The digest itself (`crc32c`).
    Done(Vec<u8>),
    /// `sha256`: the digest is the SHA-256 of these bytes (the chunk digests in chunk order),
    /// which the driver has WebCrypto compute (the engine carries no SHA-256 of its own).
    Sha256Of(Vec<u8>),
}

/// What an answer to a checksummed chunk upload says about integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing about integrity: classify the status as usual.
    None,
    /// The server refused the chunk's bytes (460, or 400 with [`CHUNK_MISMATCH`]): read the
    /// chunk again, hash it again, send it again (within the retry budget).
    ChunkMismatch,
    /// The server assembled the file and its digest did not match ([`FILE_MISMATCH`]):
    /// no chunk re-sent can fix that; the file fails.
    FileMismatch,
}

/// Reads an answer to a chunk upload that carried a checksum.
#[must_use]
pub fn verdict(status: u16, body: &str) -> Verdict {
    let file = holds(body, FILE_MISMATCH);
    match status {
        MISMATCH_STATUS | 400 if file => Verdict::FileMismatch,
        MISMATCH_STATUS => Verdict::ChunkMismatch,
        400 if holds(body, CHUNK_MISMATCH) => Verdict::ChunkMismatch,
        _ => Verdict::None,
    }
}

/// Whether `body` holds `token`: a byte scan (`str::contains` would bring a substring searcher
/// into the wasm for two short tokens).
fn holds(body: &str, token: &str) -> bool {
    body.as_bytes()
        .windows(token.len())
        .any(|w| w == token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value_and_hex() {
        // The CRC-32C check value of "123456789".
        let crc = crc32c(b"123456789");
        assert_eq!(hex(&crc32c_bytes(crc)), "e3069283");
        let mut split = Crc32c::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.finish(), crc);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn a_changed_read_is_told_from_a_repeated_one() {
        let mut s = FileSums::new(Algorithm::Crc32c, 3);
        assert_eq!(s.record(2, &[1, 2, 3, 4]), Reading::First);
        assert_eq!(s.record(2, &[1, 2, 3, 4]), Reading::Same);
        assert_eq!(s.record(2, &[1, 2, 3, 5]), Reading::Changed);
        assert_eq!(s.get(2), Some(&[1, 2, 3, 4][..]));
        assert_eq!(s.record(4, &[0; 4]), Reading::Changed, "no chunk 4");
        assert_eq!(s.record(0, &[0; 4]), Reading::Changed, "chunks are 1-based");
    }

    #[test]
    fn the_digest_waits_for_every_chunk() {
        let plan = ChunkPlan::new(10, 4, false);
        let mut s = FileSums::new(Algorithm::Crc32c, 2);
        assert_eq!(plan.count(), 2);
        let data = b"0123456789";
        let parts = [&data[..4], &data[4..]];
        assert_eq!(s.record(2, &crc32c_bytes(crc32c(parts[1]))), Reading::First);
        assert_eq!(s.digest(&plan), None);
        assert_eq!(s.record(1, &crc32c_bytes(crc32c(parts[0]))), Reading::First);
        assert_eq!(
            s.digest(&plan),
            Some(FileDigest::Done(crc32c_bytes(crc32c(data))))
        );
    }

    #[test]
    fn sha256_digest_is_of_the_chunk_digests_in_order() {
        let plan = ChunkPlan::new(8, 4, false);
        let (d1, d2) = ([1u8; 32], [2u8; 32]);
        let mut s = FileSums::new(Algorithm::Sha256, 2);
        s.record(2, &d2);
        assert_eq!(s.digest(&plan), None);
        s.record(1, &d1);
        let mut both = d1.to_vec();
        both.extend_from_slice(&d2);
        assert_eq!(s.digest(&plan), Some(FileDigest::Sha256Of(both)));
    }

    #[test]
    fn kept_text_round_trips_for_its_algorithm_only() {
        let sum = crc32c_bytes(0xe306_9283);
        let text = kept_text(Algorithm::Crc32c, &sum);
        assert_eq!(text, "crc32c:e3069283");
        assert_eq!(from_kept_text(Algorithm::Crc32c, &text), Some(sum));
        assert_eq!(from_kept_text(Algorithm::Sha256, &text), None);
        assert_eq!(from_kept_text(Algorithm::Crc32c, "crc32c:e30692"), None);
        assert_eq!(from_kept_text(Algorithm::Crc32c, "crc32c:e306928g"), None);
        assert_eq!(from_kept_text(Algorithm::Crc32c, "e3069283"), None);
        assert_eq!(unhex("00fF"), Some(vec![0, 255]));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(460, ""), Verdict::ChunkMismatch);
        assert_eq!(
            verdict(460, "chunk_checksum_mismatch: x"),
            Verdict::ChunkMismatch
        );
        assert_eq!(
            verdict(400, "chunk_checksum_mismatch"),
            Verdict::ChunkMismatch
        );
        assert_eq!(verdict(400, "missing parameter"), Verdict::None);
        assert_eq!(
            verdict(460, "file_checksum_mismatch: y"),
            Verdict::FileMismatch
        );
        assert_eq!(
            verdict(400, "file_checksum_mismatch"),
            Verdict::FileMismatch
        );
        assert_eq!(verdict(200, "chunk_checksum_mismatch"), Verdict::None);
        assert_eq!(verdict(503, ""), Verdict::None);
    }
}
