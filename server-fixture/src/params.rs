//! The protocol's parameters: collecting them from the query string and the multipart body,
//! recognising the dialect (`resumable*` or `flow*`), strict validation, and the chunk-plan
//! arithmetic that checks each chunk's byte range under both rounding rules. Pure: no I/O.

use std::collections::HashMap;

use crate::error::Rejection;

/// Largest accepted identifier, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 1024;
/// Largest accepted file name, in bytes.
pub const MAX_FILENAME_LEN: usize = 1024;
/// Largest accepted relative path, in bytes.
pub const MAX_RELATIVE_PATH_LEN: usize = 4096;

/// The wire dialect, recognised by the chunk-number parameter's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `resumableChunkNumber`, ...
    Resumable,
    /// `flowChunkNumber`, ...
    Flow,
}

impl Dialect {
    /// The parameter prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::Resumable => "resumable",
            Dialect::Flow => "flow",
        }
    }
}

/// The chunk number a handler parsed, attached to its response for the request log.
#[derive(Debug, Clone, Copy)]
pub struct ChunkNumber(pub u64);

/// Raw parameters from one source (query string or multipart body). Duplicates are an error.
#[derive(Debug, Default, Clone)]
pub struct RawParams {
    values: HashMap<String, String>,
}

impl RawParams {
    /// Parses an `application/x-www-form-urlencoded` query string.
    pub fn from_query(query: Option<&str>) -> Result<Self, Rejection> {
        let mut p = RawParams::default();
        if let Some(q) = query {
            let pairs: Vec<(String, String)> = serde_urlencoded_pairs(q)?;
            for (k, v) in pairs {
                p.insert(k, v, "query string")?;
            }
        }
        Ok(p)
    }

    /// Adds one value; a second value for the same name is rejected.
    pub fn insert(&mut self, name: String, value: String, source: &str) -> Result<(), Rejection> {
        if self.values.contains_key(&name) {
            return Err(Rejection::bad(format!(
                "parameter {name} appears more than once in the {source}"
            )));
        }
        self.values.insert(name, value);
        Ok(())
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, Rejection> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, Rejection> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Rejection::bad("malformed percent-encoding in the query string")
                    })?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Rejection::bad("query string is not valid UTF-8"))
}

/// Validated chunk parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkParams {
    /// Dialect of the request.
    pub dialect: Dialect,
    /// 1-based chunk number.
    pub chunk_number: u64,
    /// Configured chunk size.
    pub chunk_size: u64,
    /// `currentChunkSize` if sent.
    pub current_chunk_size: Option<u64>,
    /// Total file size.
    pub total_size: u64,
    /// The upload's identifier (any text without control characters).
    pub identifier: String,
    /// The file name (no path separators, no control characters).
    pub filename: String,
    /// The relative path, if sent (relative, no `..`, no control characters).
    pub relative_path: Option<String>,
    /// Byte offset of this chunk.
    pub start: u64,
    /// The byte lengths this chunk may have under the two rounding rules.
    pub allowed_lengths: Vec<u64>,
    /// The chunk's checksum (and the file's, once the client knows it), when the client sent one.
    pub checksum: Option<Checksum>,
}

pub use crate::checksum::{
    Checksum, ChecksumAlgorithm, CHUNK_MISMATCH, FILE_MISMATCH, MISMATCH_STATUS,
    UNSUPPORTED_ALGORITHM,
};

fn checksum_params(l: &Lookup<'_>) -> Result<Option<Checksum>, Rejection> {
    let (alg_name, alg) = l.get("ChecksumAlgorithm");
    let (chunk_name, chunk) = l.get("ChunkChecksum");
    let (file_name, file) = l.get("FileChecksum");
    let Some(alg) = alg else {
        if chunk.is_some() || file.is_some() {
            return Err(Rejection::bad(format!(
                "parameter {chunk_name} or {file_name} without {alg_name}"
            )));
        }
        return Ok(None);
    };
    let algorithm = match alg {
        "crc32c" => ChecksumAlgorithm::Crc32c,
        "sha256" => ChecksumAlgorithm::Sha256,
        other => {
            return Err(Rejection::bad(format!(
                "{UNSUPPORTED_ALGORITHM}: parameter {alg_name}={other:?} is not crc32c or sha256"
            )))
        }
    };
    let hex = |name: &str, v: &str| -> Result<String, Rejection> {
        let ok = v.len() == algorithm.hex_len()
            && v.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(v.to_owned())
        } else {
            Err(Rejection::bad(format!(
                "parameter {name}={v:?} is not {} lowercase hex digits ({})",
                algorithm.hex_len(),
                algorithm.as_str()
            )))
        }
    };
    let Some(chunk) = chunk else {
        return Err(Rejection::bad(format!(
            "missing parameter {chunk_name} (given {alg_name})"
        )));
    };
    Ok(Some(Checksum {
        algorithm,
        chunk: hex(&chunk_name, chunk)?,
        file: file.map(|v| hex(&file_name, v)).transpose()?,
    }))
}

/// Looks a parameter up in the body first, then the query: the body wins.
struct Lookup<'a> {
    body: &'a RawParams,
    query: &'a RawParams,
    prefix: &'static str,
}

impl Lookup<'_> {
    fn get(&self, suffix: &str) -> (String, Option<&str>) {
        let name = format!("{}{}", self.prefix, suffix);
        let v = self.body.get(&name).or_else(|| self.query.get(&name));
        (name, v)
    }

    fn required(&self, suffix: &str) -> Result<(String, &str), Rejection> {
        match self.get(suffix) {
            (name, Some(v)) => Ok((name, v)),
            (name, None) => Err(Rejection::bad(format!("missing parameter {name}"))),
        }
    }
}

/// Parses a strictly decimal, non-negative `u64` (no sign, no spaces, no exponent).
pub fn parse_number(name: &str, v: &str) -> Result<u64, Rejection> {
    if v.is_empty() {
        return Err(Rejection::bad(format!("parameter {name} is empty")));
    }
    if v.starts_with('-') && v.len() > 1 && v[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::bad(format!(
            "parameter {name} is negative: {v:?}"
        )));
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::bad(format!(
            "parameter {name} is not a decimal integer: {v:?}"
        )));
    }
    v.parse::<u64>()
        .map_err(|_| Rejection::bad(format!("parameter {name} is out of range: {v:?}")))
}

fn check_text(name: &str, v: &str, max: usize) -> Result<(), Rejection> {
    if v.is_empty() {
        return Err(Rejection::bad(format!("parameter {name} is empty")));
    }
    if v.len() > max {
        return Err(Rejection::bad(format!(
            "parameter {name} is longer than {max} bytes"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Rejection::bad(format!(
            "parameter {name} contains a NUL or control character"
        )));
    }
    Ok(())
}

fn check_filename(name: &str, v: &str) -> Result<(), Rejection> {
    check_text(name, v, MAX_FILENAME_LEN)?;
    if v.contains('/') || v.contains('\\') {
        return Err(Rejection::bad(format!(
            "parameter {name} contains a path separator: a file name is not a path"
        )));
    }
    if v == "." || v == ".." {
        return Err(Rejection::bad(format!("parameter {name} is {v:?}")));
    }
    Ok(())
}

fn check_relative_path(name: &str, v: &str) -> Result<(), Rejection> {
    check_text(name, v, MAX_RELATIVE_PATH_LEN)?;
    let b = v.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    if v.starts_with('/') || v.starts_with('\\') || drive {
        return Err(Rejection::bad(format!(
            "parameter {name} is an absolute path"
        )));
    }
    if v.split(['/', '\\']).any(|seg| seg == "..") {
        return Err(Rejection::bad(format!(
            "parameter {name} contains a '..' segment"
        )));
    }
    Ok(())
}

/// Recognises the dialect by the chunk-number parameter (body first, then query).
pub fn dialect(body: &RawParams, query: &RawParams) -> Result<Dialect, Rejection> {
    for d in [Dialect::Resumable, Dialect::Flow] {
        let name = format!("{}ChunkNumber", d.prefix());
        if body.get(&name).is_some() || query.get(&name).is_some() {
            return Ok(d);
        }
    }
    Err(Rejection::bad(
        "missing parameter resumableChunkNumber (or flowChunkNumber)",
    ))
}

/// Validates every parameter and computes the chunk's plan. `max_file_bytes` gives 413.
pub fn validate(
    body: &RawParams,
    query: &RawParams,
    max_file_bytes: u64,
) -> Result<ChunkParams, Rejection> {
    let dialect = dialect(body, query)?;
    let l = Lookup {
        body,
        query,
        prefix: dialect.prefix(),
    };
    let (n_name, n) = l.required("ChunkNumber")?;
    let chunk_number = parse_number(&n_name, n)?;
    if chunk_number == 0 {
        return Err(Rejection::bad(format!(
            "parameter {n_name} must be at least 1 (it is 1-based)"
        )));
    }
    let (cs_name, cs) = l.required("ChunkSize")?;
    let chunk_size = parse_number(&cs_name, cs)?;
    if chunk_size == 0 {
        return Err(Rejection::bad(format!(
            "parameter {cs_name} must be at least 1"
        )));
    }
    let (ts_name, ts) = l.required("TotalSize")?;
    let total_size = parse_number(&ts_name, ts)?;
    if total_size > max_file_bytes {
        return Err(Rejection::with(
            413,
            format!(
                "parameter {ts_name}={total_size} exceeds the file limit of {max_file_bytes} bytes"
            ),
        ));
    }
    let current_chunk_size = match l.get("CurrentChunkSize") {
        (name, Some(v)) => Some((name.clone(), parse_number(&name, v)?)),
        (_, None) => None,
    };
    if let (name, Some(v)) = l.get("TotalChunks") {
        // Parsed for well-formedness only: the count is derived from the sizes (clients round it
        // differently).
        parse_number(&name, v)?;
    }
    let (id_name, identifier) = l.required("Identifier")?;
    check_text(&id_name, identifier, MAX_IDENTIFIER_LEN)?;
    let (fn_name, filename) = l.required("Filename")?;
    check_filename(&fn_name, filename)?;
    let relative_path = match l.get("RelativePath") {
        (name, Some(v)) => {
            check_relative_path(&name, v)?;
            Some(v.to_owned())
        }
        (_, None) => None,
    };

    let checksum = checksum_params(&l)?;
    let plan = plan_chunk(chunk_number, chunk_size, total_size)
        .map_err(|m| Rejection::bad(format!("parameter {n_name}={chunk_number}: {m}")))?;
    if let Some((name, ccs)) = &current_chunk_size {
        if !plan.allowed_lengths.contains(ccs) {
            return Err(Rejection::bad(format!(
                "parameter {name}={ccs} does not fit the chunk plan (chunk {chunk_number} of a \
                 {total_size}-byte file in {chunk_size}-byte chunks must hold {})",
                join(&plan.allowed_lengths)
            )));
        }
    }
    Ok(ChunkParams {
        dialect,
        chunk_number,
        chunk_size,
        current_chunk_size: current_chunk_size.map(|(_, v)| v),
        total_size,
        identifier: identifier.to_owned(),
        filename: filename.to_owned(),
        relative_path,
        start: plan.start,
        allowed_lengths: plan.allowed_lengths,
        checksum,
    })
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Where one chunk lies, under either rounding rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Byte offset: `(n - 1) * chunk_size`.
    pub start: u64,
    /// Possible lengths: the default ("big last chunk") rule and/or `forceChunkSize`.
    pub allowed_lengths: Vec<u64>,
}

/// Number of chunks under the default (`floor`) and `forceChunkSize` (`ceil`) rules.
pub fn chunk_counts(chunk_size: u64, total_size: u64) -> (u64, u64) {
    let floor = (total_size / chunk_size).max(1);
    let ceil = total_size.div_ceil(chunk_size).max(1);
    (floor, ceil)
}

/// The byte range(s) chunk `n` (1-based) may cover under either rounding rule.
pub fn plan_chunk(n: u64, chunk_size: u64, total_size: u64) -> Result<ChunkPlan, String> {
    if n == 0 || chunk_size == 0 {
        return Err("chunk number and chunk size must be at least 1".to_owned());
    }
    let (floor, ceil) = chunk_counts(chunk_size, total_size);
    if n > ceil {
        return Err(format!(
            "beyond the chunk count ({ceil} chunk(s) for {total_size} bytes in {chunk_size}-byte chunks)"
        ));
    }
    let start = (n - 1)
        .checked_mul(chunk_size)
        .ok_or_else(|| "byte offset overflows".to_owned())?;
    let end_force = n
        .checked_mul(chunk_size)
        .map_or(total_size, |e| e.min(total_size));
    let mut allowed = vec![end_force.saturating_sub(start)];
    if n <= floor {
        let default_len = if n == floor {
            total_size.saturating_sub(start)
        } else {
            chunk_size
        };
        if !allowed.contains(&default_len) {
            allowed.push(default_len);
        }
    }
    Ok(ChunkPlan {
        start,
        allowed_lengths: allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1_048_576;

    #[test]
    fn plans_match_protocol_examples() {
        // 2,459,177 bytes: default 2 chunks (1 MiB + 1,410,601), force 3 chunks.
        let t = 2_459_177;
        assert_eq!(chunk_counts(MIB, t), (2, 3));
        assert_eq!(plan_chunk(1, MIB, t).unwrap().allowed_lengths, vec![MIB]);
        let p2 = plan_chunk(2, MIB, t).unwrap();
        assert_eq!(p2.start, MIB);
        assert_eq!(p2.allowed_lengths, vec![MIB, 1_410_601]);
        assert_eq!(
            plan_chunk(3, MIB, t).unwrap().allowed_lengths,
            vec![362_025]
        );
        assert!(plan_chunk(4, MIB, t).is_err());
        // Empty file: one empty chunk.
        assert_eq!(plan_chunk(1, MIB, 0).unwrap().allowed_lengths, vec![0]);
        assert!(plan_chunk(2, MIB, 0).is_err());
        // Small file.
        assert_eq!(
            plan_chunk(1, MIB, 524_288).unwrap().allowed_lengths,
            vec![524_288]
        );
        // Exact multiple.
        assert_eq!(
            plan_chunk(3, MIB, 3 * MIB).unwrap().allowed_lengths,
            vec![MIB]
        );
    }

    #[test]
    fn numbers_are_strict() {
        assert!(parse_number("x", "12").is_ok());
        for bad in [
            "",
            "-1",
            "+1",
            "1e3",
            " 1",
            "0x10",
            "18446744073709551616",
            "1.0",
        ] {
            assert!(parse_number("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_decoding() {
        let q = RawParams::from_query(Some("a=1&b=x%20y+z&c")).unwrap();
        assert_eq!(q.get("b"), Some("x y z"));
        assert_eq!(q.get("c"), Some(""));
        assert!(RawParams::from_query(Some("a=%zz")).is_err());
        assert!(RawParams::from_query(Some("a=1&a=2")).is_err());
    }
}
