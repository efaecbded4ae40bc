//! The integrity parameters' vocabulary (docs/protocol.md, "Integrity"): the algorithms, a
//! request's checksums and the mismatch answer. A helper of its own so that both the parameter
//! parser and the store name them without importing each other.

/// A checksum algorithm of the integrity parameters (`{prefix}ChecksumAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// CRC-32C (Castagnoli), 8 lowercase hex digits of the big-endian value.
    Crc32c,
    /// SHA-256, 64 lowercase hex digits.
    Sha256,
}

impl ChecksumAlgorithm {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32c => "crc32c",
            ChecksumAlgorithm::Sha256 => "sha256",
        }
    }

    pub(crate) fn hex_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32c => 8,
            ChecksumAlgorithm::Sha256 => 64,
        }
    }
}

/// The integrity parameters of one request (docs/protocol.md, "Integrity").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm of both values.
    pub algorithm: ChecksumAlgorithm,
    /// Lowercase hex checksum of this chunk's bytes.
    pub chunk: String,
    /// Lowercase hex checksum of the whole file, once the client has hashed every chunk.
    pub file: Option<String>,
}

/// The body token of a 400 for an algorithm the server does not implement.
pub const UNSUPPORTED_ALGORITHM: &str = "checksum_algorithm_unsupported";
/// The body token (and status 460) of a chunk whose bytes do not match its checksum.
pub const CHUNK_MISMATCH: &str = "chunk_checksum_mismatch";
/// The body token (and status 460) of a completed file whose digest does not match.
pub const FILE_MISMATCH: &str = "file_checksum_mismatch";
/// The status of a checksum mismatch (as tus's checksum extension uses).
pub const MISMATCH_STATUS: u16 = 460;
