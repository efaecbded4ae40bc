//! The S3 signing role: what an app's server does for direct-to-storage multipart uploads. The
//! page uploads every part itself; this role only signs and talks to the store:
//!
//! | Route (POST, JSON in and out) | Does |
//! |---|---|
//! | `/s3/create` `{name}` | CreateMultipartUpload → `{uploadId, key}` |
//! | `/s3/sign-part` `{uploadId, key, partNumber}` | presigns UploadPart → `{url, headers}` |
//! | `/s3/list-parts` `{uploadId, key}` | ListParts (every page) → `[{PartNumber, ETag, Size}]`; 404 `{error: "NoSuchUpload"}` |
//! | `/s3/complete` `{uploadId, key, parts}` | CompleteMultipartUpload → `{location}` |
//! | `/s3/abort` `{uploadId, key}` | AbortMultipartUpload → `{}` |
//! | `/s3/sign-upload` `{name}` | presigns one PutObject → `{url, key, headers}` |
//! | `/s3/sign-request` `{method, key, uploadId?, partNumber?}` | `@uppy/aws-s3` 6.x's `signRequest` (benchmark) → `{url}`; non-PUTs through `/s3/relay` |
//!
//! The POST-policy mode (`protocol: 's3-post'`): each file's chunks are form POSTs under one
//! signed policy, stored as temporary objects `<key>.chunks/<n>`, then composed in the store:
//!
//! | Route (POST, JSON in and out) | Does |
//! |---|---|
//! | `/s3/policy` `{name, chunkSize, keyPrefix?}` | signs a POST policy for the prefix (new, or the one given: only of this role's shape) → `{url, fields, keyPrefix}` |
//! | `/s3/list-chunks` `{keyPrefix}` | ListObjectsV2 of the prefix → `[chunk numbers]` |
//! | `/s3/compose` `{keyPrefix, chunks}` | CreateMultipartUpload, UploadPartCopy of each chunk, CompleteMultipartUpload, DeleteObjects of the chunks → `{location, key}` |
//! | `/s3/discard` `{keyPrefix}` | DeleteObjects of everything under the prefix → `{deleted}` |
//!
//! The routes sit behind the API listener's recording, delay and CORS layers, so the statistics
//! count every callback by path, and the page may call them with a simple request (a
//! `text/plain` body holding JSON: no preflight). Presigning is `rusty-s3`'s SigV4; the store's
//! own calls go out with `reqwest`.
//!
//! Test controls under `/__fixture/s3/` (behind the control guard): `POST bucket`
//! `{cors: "full" | "none" | "no-etag", origins}` creates the bucket and sets (or removes) its
//! CORS rule; `GET object?key=` reads an object back (`{size, sha256}`); `GET uploads` lists the
//! multipart uploads in progress; `GET objects?prefix=` lists objects (`[{key, size}]`); `POST
//! faults` `{expire_part_once: N, expire_policy: M}` makes the next signature of part N a URL
//! that answers 403 `Request has expired`, and the next M POST policies a form URL that answers
//! 403 `Policy expired`, as a store that checks expiry would (moto, the test store, checks no
//! signature and no expiry).

// Handlers return their error answer itself (`Err(Response)`): rare, and off any hot path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use rusty_s3::S3Action;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::s3::{
    failure, store_failure, xml_field, Faults, S3Role, MAX_S3_BODY, PART_URL_LIFETIME,
};
use crate::state::AppState;
use crate::sync::lock;

fn role(st: &AppState) -> Result<Arc<S3Role>, Response> {
    st.s3().ok_or_else(|| {
        failure(
            StatusCode::NOT_FOUND,
            "NoS3Role",
            "this fixture has no S3 role (start it with --s3-endpoint and --s3-bucket)",
        )
    })
}

/// Parses a JSON body whatever its `Content-Type` (the page sends `text/plain` to stay simple).
fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    if body.len() > MAX_S3_BODY {
        return Err(failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooLarge",
            "body too large",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        failure(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("invalid JSON: {e}"),
        )
    })
}

/// An object key for a new upload: a fresh prefix, then the file name's safe characters.
fn new_key(st: &AppState, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let prefix = (st.random_f64() * 1e12) as u64;
    format!(
        "uploads/{prefix:012x}/{}",
        if safe.is_empty() { "file" } else { &safe }
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    #[serde(default)]
    name: String,
    /// `crc32c` or `sha256`: the upload is created with this checksum algorithm
    /// (`x-amz-checksum-algorithm`), as S3 requires for parts that carry checksums.
    #[serde(default)]
    checksum_algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Upload {
    upload_id: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartRequest {
    upload_id: String,
    key: String,
    part_number: u16,
    /// The part's checksum (S3's base64) the page computed (its `checksum` option).
    #[serde(default)]
    checksum: Option<String>,
    /// `crc32c` (default) or `sha256`: which `x-amz-checksum-*` header `checksum` goes in.
    #[serde(default)]
    checksum_algorithm: Option<String>,
}

/// The header name of S3's checksum under `algorithm` (`crc32c` unless given), if S3 has one.
fn checksum_header(algorithm: Option<&str>) -> Result<&'static str, Response> {
    match algorithm.unwrap_or("crc32c") {
        "crc32c" => Ok("x-amz-checksum-crc32c"),
        "sha256" => Ok("x-amz-checksum-sha256"),
        _ => Err(failure(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "checksumAlgorithm must be crc32c or sha256",
        )),
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DonePart {
    PartNumber: u16,
    ETag: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Completion {
    upload_id: String,
    key: String,
    parts: Vec<DonePart>,
}

async fn create(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let named: Named = parse(&body)?;
        let key = new_key(&st, &named.name);
        let algorithm = match named.checksum_algorithm.as_deref() {
            None => None,
            Some(a) => Some(checksum_header(Some(a))?["x-amz-checksum-".len()..].to_uppercase()),
        };
        let id = create_upload(&s3, &key, algorithm.as_deref()).await?;
        Ok(Json(json!({ "uploadId": id, "key": key })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// CreateMultipartUpload of `key`: the upload id. `checksum_algorithm` (`CRC32C`, `SHA256`):
/// the parts will carry that checksum, which S3 then requires of every part.
async fn create_upload(
    s3: &S3Role,
    key: &str,
    checksum_algorithm: Option<&str>,
) -> Result<String, Response> {
    let headers: Vec<(&str, &str)> = checksum_algorithm
        .map(|a| ("x-amz-checksum-algorithm", a))
        .into_iter()
        .collect();
    // Signed by hand with rusty-s3's SigV4: its CreateMultipartUpload action sends the
    // sub-resource as `uploads=1`, which moto (the test store) answers with 500; S3's own
    // spelling is a bare `uploads`, signed with an empty value.
    let url = s3.sign_object(
        rusty_s3::Method::Post,
        key,
        std::iter::once(("uploads", "")),
        headers.iter().copied(),
    );
    let (status, text) = s3.call(reqwest::Method::POST, url, None, &headers).await?;
    if status != 200 {
        return Err(store_failure(status, &text));
    }
    Ok(xml_field(&text, "UploadId")
        .ok_or_else(|| store_failure(status, &text))?
        .to_owned())
}

async fn sign_part(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let p: PartRequest = parse(&body)?;
        if p.part_number == 0 || p.part_number > 10_000 {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "InvalidPartNumber",
                "partNumber must be 1 to 10000",
            ));
        }
        let signed = match &p.checksum {
            Some(c) => Some((checksum_header(p.checksum_algorithm.as_deref())?, c.clone())),
            None => None,
        };
        let header_json = signed
            .as_ref()
            .map_or_else(|| json!({}), |(name, value)| json!({ *name: value }));
        let (expired, bad_digest) = {
            let mut f = lock(&s3.faults);
            let hit = f.expire_part_once == Some(p.part_number);
            if hit {
                f.expire_part_once = None;
            }
            let bad = f.bad_digest_part == Some(p.part_number) && f.bad_digest_times > 0;
            if bad {
                f.bad_digest_times -= 1;
            }
            (hit, bad)
        };
        if let Some((_, value)) = &signed {
            lock(&s3.signed_checksums).push((p.upload_id.clone(), p.part_number, value.clone()));
        }
        if bad_digest {
            // The checking stand-in on this API origin (moto checks no checksum).
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let url = format!("http://{host}/s3/bad-digest?partNumber={}", p.part_number);
            return Ok(Json(json!({ "url": url, "headers": header_json })).into_response());
        }
        if expired {
            // A URL on this API origin (the one the page called) that answers as a store does
            // to an expired signature.
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let url = format!("http://{host}/s3/expired-url?partNumber={}", p.part_number);
            return Ok(
                Json(json!({ "url": url, "headers": {}, "expiredOnPurpose": true }))
                    .into_response(),
            );
        }
        let mut action = s3
            .public
            .upload_part(s3.creds(), &p.key, p.part_number, &p.upload_id);
        // The checksum header is signed: S3 refuses one that is not, and verifies the bytes.
        if let Some((name, value)) = &signed {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(PART_URL_LIFETIME);
        Ok(Json(json!({ "url": url.as_str(), "headers": header_json })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// Every part of an upload, following `NextPartNumberMarker` across pages.
async fn all_parts(s3: &S3Role, up: &Upload) -> Result<Vec<Value>, Response> {
    let mut parts = Vec::new();
    let mut marker: Option<u16> = None;
    loop {
        let mut action = s3.bucket.list_parts(s3.creds(), &up.key, &up.upload_id);
        if let Some(m) = marker {
            action.set_part_number_marker(m);
        }
        let url = action.sign(PART_URL_LIFETIME);
        let (status, text) = s3.call(reqwest::Method::GET, url, None, &[]).await?;
        if status != 200 {
            return Err(store_failure(status, &text));
        }
        let page = rusty_s3::actions::ListParts::parse_response(&text)
            .map_err(|e| failure(StatusCode::BAD_GATEWAY, "BadListParts", &e.to_string()))?;
        for p in &page.parts {
            parts.push(json!({ "PartNumber": p.number, "ETag": p.etag, "Size": p.size }));
        }
        match page.next_part_number_marker {
            Some(m) if text.contains("<IsTruncated>true</IsTruncated>") => marker = Some(m),
            _ => return Ok(parts),
        }
    }
}

async fn list_parts(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let up: Upload = parse(&body)?;
        Ok(Json(Value::Array(all_parts(&s3, &up).await?)).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

async fn complete(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let mut c: Completion = parse(&body)?;
        c.parts.sort_by_key(|p| p.PartNumber);
        let contiguous = c
            .parts
            .iter()
            .enumerate()
            .all(|(i, p)| usize::from(p.PartNumber) == i + 1);
        if c.parts.is_empty() || !contiguous {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "InvalidPartOrder",
                "parts must be numbered 1, 2, 3, … without gaps",
            ));
        }
        let action = s3.bucket.complete_multipart_upload(
            s3.creds(),
            &c.key,
            &c.upload_id,
            c.parts.iter().map(|p| p.ETag.as_str()),
        );
        let url = action.sign(PART_URL_LIFETIME);
        let (status, text) = s3
            .call(reqwest::Method::POST, url, Some(action.body()), &[])
            .await?;
        if status != 200 || text.contains("<Error>") {
            return Err(store_failure(status, &text));
        }
        let location = s3.public.object_url(&c.key).to_string();
        Ok(Json(json!({ "location": location, "key": c.key })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

async fn abort(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let up: Upload = parse(&body)?;
        let url = s3
            .bucket
            .abort_multipart_upload(s3.creds(), &up.key, &up.upload_id)
            .sign(PART_URL_LIFETIME);
        let (status, text) = s3.call(reqwest::Method::DELETE, url, None, &[]).await?;
        if !(200..300).contains(&status) {
            return Err(store_failure(status, &text));
        }
        Ok(Json(json!({})).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

async fn sign_upload(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let named: Named = parse(&body)?;
        let key = new_key(&st, &named.name);
        let url = s3
            .public
            .put_object(s3.creds(), &key)
            .sign(PART_URL_LIFETIME);
        Ok(Json(json!({ "url": url.as_str(), "key": key, "headers": {} })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// One request `@uppy/aws-s3` 6.x asks its `signRequest` to presign.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UppyRequest {
    method: String,
    key: String,
    #[serde(default)]
    upload_id: Option<String>,
    #[serde(default)]
    part_number: Option<u16>,
}

/// `POST /s3/sign-request`: the server half of `@uppy/aws-s3` 6.x's `signRequest` (the browser
/// then sends each S3 request itself), for the benchmark against it. PUTs (parts, PutObject)
/// are presigned for the store at its public endpoint; the other requests (create, list, complete, abort) go through
/// `/s3/relay` on this origin, because moto answers them without CORS headers (a real bucket's
/// CORS rule would allow them).
async fn sign_request(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let r: UppyRequest = parse(&body)?;
        let key = r.key.as_str();
        let url = match (r.method.as_str(), r.upload_id.as_deref(), r.part_number) {
            ("PUT", Some(id), Some(n)) => {
                let url = s3
                    .public
                    .upload_part(s3.creds(), key, n, id)
                    .sign(PART_URL_LIFETIME);
                return Ok(Json(json!({ "url": url.as_str() })).into_response());
            }
            ("PUT", None, _) => {
                let url = s3
                    .public
                    .put_object(s3.creds(), key)
                    .sign(PART_URL_LIFETIME);
                return Ok(Json(json!({ "url": url.as_str() })).into_response());
            }
            // CreateMultipartUpload, spelled as `create_upload` signs it.
            ("POST", None, _) => s3.sign_object(
                rusty_s3::Method::Post,
                key,
                std::iter::once(("uploads", "")),
                std::iter::empty(),
            ),
            ("POST", Some(id), _) => s3
                .bucket
                .complete_multipart_upload(s3.creds(), key, id, std::iter::empty())
                .sign(PART_URL_LIFETIME),
            ("GET", Some(id), _) => s3
                .bucket
                .list_parts(s3.creds(), key, id)
                .sign(PART_URL_LIFETIME),
            ("DELETE", Some(id), _) => s3
                .bucket
                .abort_multipart_upload(s3.creds(), key, id)
                .sign(PART_URL_LIFETIME),
            ("DELETE", None, _) => s3
                .bucket
                .delete_object(s3.creds(), key)
                .sign(PART_URL_LIFETIME),
            _ => {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "method/uploadId/partNumber do not name an S3 request",
                ))
            }
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let mut relay = url::Url::parse(&format!("http://{host}/s3/relay"))
            .map_err(|_| failure(StatusCode::BAD_REQUEST, "BadHost", "Host header"))?;
        relay.query_pairs_mut().append_pair("to", url.as_str());
        Ok(Json(json!({ "url": relay.as_str() })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
struct RelayQuery {
    to: String,
}

/// `/s3/relay?to=URL`: sends the request (method, body, `Content-Type`) on to `URL`, which must
/// be on this role's store, and answers with the store's status and body: the store's answers
/// to create, list, complete and abort with this origin's CORS headers (see `sign_request`).
async fn relay(
    State(st): State<AppState>,
    method: axum::http::Method,
    Query(q): Query<RelayQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let to = url::Url::parse(&q.to)
            .map_err(|_| failure(StatusCode::BAD_REQUEST, "BadUrl", "to is no URL"))?;
        if to.origin() != s3.bucket.base_url().origin() {
            return Err(failure(
                StatusCode::FORBIDDEN,
                "NotTheStore",
                "to is not on the store",
            ));
        }
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes())
            .map_err(|_| failure(StatusCode::BAD_REQUEST, "BadMethod", "method"))?;
        let mut req = s3.client.request(method, to.as_str()).body(body);
        if let Some(ct) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            req = req.header("content-type", ct);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| failure(StatusCode::BAD_GATEWAY, "StoreUnreachable", &e.to_string()))?;
        let status =
            StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let text = resp.bytes().await.unwrap_or_default();
        Ok((status, [(header::CONTENT_TYPE, "application/xml")], text).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// A stand-in for a store that verifies part checksums (moto does not): the bytes it receives
/// are altered (one byte flipped, as a faulty link or proxy might), checked against the
/// `x-amz-checksum-*` header, and answered `400 BadDigest` as S3 does. What it received is kept
/// for `GET /__fixture/s3/checksums`.
async fn bad_digest(
    State(st): State<AppState>,
    Query(q): Query<PartNumberQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(s3) = st.s3() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sent = ["crc32c", "sha256"].into_iter().find_map(|a| {
        let name = format!("x-amz-checksum-{a}");
        let value = headers.get(&name)?.to_str().ok()?.to_owned();
        Some((a, name, value))
    });
    let (algorithm, header, value) = sent.unwrap_or(("crc32c", String::new(), String::new()));
    let matches_sent_bytes = crate::s3::s3_checksum(algorithm, &body).as_deref() == Some(&value);
    let mut altered = body.to_vec();
    if let Some(b) = altered.first_mut() {
        *b ^= 0xff;
    }
    let verified = crate::s3::s3_checksum(algorithm, &altered).as_deref() == Some(&value);
    lock(&s3.digests_seen).push(crate::s3::DigestSeen {
        part_number: q.part_number,
        header,
        value,
        matches_sent_bytes,
    });
    if verified {
        return (StatusCode::OK, [(header::ETAG, "\"altered\"")]).into_response();
    }
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>BadDigest</Code><Message>The checksum you specified did not match the calculated checksum.</Message></Error>",
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartNumberQuery {
    part_number: u16,
}

/// `s3-post`: a file's chunks are stored under `<final key>` + this, so the prefix names the
/// object they are composed into, and a policy is signed again only for a prefix of this shape.
const CHUNKS_SUFFIX: &str = ".chunks/";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyRequest {
    #[serde(default)]
    name: String,
    chunk_size: u64,
    key_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prefix {
    key_prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Composition {
    key_prefix: String,
    chunks: Vec<u32>,
}

/// The final object key of a chunk prefix this role issued.
fn final_key(prefix: &str) -> Result<&str, Response> {
    prefix
        .strip_prefix("uploads/")
        .and_then(|_| prefix.strip_suffix(CHUNKS_SUFFIX))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            failure(
                StatusCode::BAD_REQUEST,
                "BadPrefix",
                "keyPrefix is not one this server issued (uploads/…/<name>.chunks/)",
            )
        })
}

/// `createUpload`: a POST policy admitting every chunk of one file (`starts-with $key` on its
/// prefix, at most `chunkSize` bytes each), valid for 15 minutes.
async fn post_policy(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let r: PolicyRequest = parse(&body)?;
        if r.chunk_size == 0 || r.chunk_size > 5 << 30 {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "BadChunkSize",
                "chunkSize must be 1 byte to 5 GiB",
            ));
        }
        let prefix = match r.key_prefix {
            Some(p) => {
                final_key(&p)?;
                p
            }
            None => new_key(&st, &r.name) + CHUNKS_SUFFIX,
        };
        let fields = s3
            .post_policy(
                &prefix,
                r.chunk_size,
                jiff::Timestamp::now(),
                PART_URL_LIFETIME,
            )
            .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, "SigningFailed", &e))?;
        let expired = {
            let mut f = lock(&s3.faults);
            let left = f.expire_policy.unwrap_or(0);
            f.expire_policy = left.checked_sub(1).filter(|n| *n > 0);
            left > 0
        };
        let url = if expired {
            // A form URL on this API origin that answers as a store does to an expired policy.
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}/s3/expired-url")
        } else {
            s3.public
                .base_url()
                .as_str()
                .trim_end_matches('/')
                .to_owned()
        };
        let fields: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        Ok(Json(json!({ "url": url, "fields": fields, "keyPrefix": prefix })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// Every object under `prefix` (ListObjectsV2, every page): (key, size).
async fn objects_under(s3: &S3Role, prefix: &str) -> Result<Vec<(String, u64)>, Response> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut action = s3.bucket.list_objects_v2(s3.creds());
        action.with_prefix(prefix);
        if let Some(t) = token.take() {
            action.with_continuation_token(t);
        }
        let url = action.sign(PART_URL_LIFETIME);
        let (status, text) = s3.call(reqwest::Method::GET, url, None, &[]).await?;
        if status != 200 {
            return Err(store_failure(status, &text));
        }
        let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| failure(StatusCode::BAD_GATEWAY, "BadList", &e.to_string()))?;
        out.extend(
            page.contents
                .into_iter()
                .map(|c| (c.key, c.size.unwrap_or(0))),
        );
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// DeleteObjects of `keys`, 1,000 per request (S3's limit).
async fn delete_keys(s3: &S3Role, keys: Vec<String>) -> Result<(), Response> {
    let ids: Vec<rusty_s3::actions::ObjectIdentifier> = keys
        .into_iter()
        .map(rusty_s3::actions::ObjectIdentifier::new)
        .collect();
    for batch in ids.chunks(1000) {
        let action = s3.bucket.delete_objects(s3.creds(), batch.iter());
        let url = action.sign(PART_URL_LIFETIME);
        let (body, md5) = action.body_with_md5();
        let (status, text) = s3
            .call(
                reqwest::Method::POST,
                url,
                Some(body),
                &[("content-md5", &md5)],
            )
            .await?;
        if status != 200 || text.contains("<Error>") {
            return Err(store_failure(status, &text));
        }
    }
    Ok(())
}

/// `listChunks`: the chunk numbers stored under the prefix.
async fn list_chunks(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let p: Prefix = parse(&body)?;
        let mut numbers: Vec<u32> = objects_under(&s3, &p.key_prefix)
            .await?
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(&p.key_prefix)?.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(Json(json!(numbers)).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// `complete`: composes the chunks into the final object inside the store (no byte passes
/// through here): CreateMultipartUpload, one UploadPartCopy per chunk (8 at a time),
/// CompleteMultipartUpload, then DeleteObjects of the chunks.
async fn compose(State(st): State<AppState>, body: Bytes) -> Response {
    use futures_util::{StreamExt, TryStreamExt};
    let run = async {
        let s3 = role(&st)?;
        let mut c: Composition = parse(&body)?;
        let key = final_key(&c.key_prefix)?.to_owned();
        c.chunks.sort_unstable();
        let contiguous = c
            .chunks
            .iter()
            .enumerate()
            .all(|(i, n)| *n as usize == i + 1);
        if c.chunks.is_empty() || !contiguous || c.chunks.len() > 10_000 {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "InvalidPartOrder",
                "chunks must be numbered 1, 2, 3, … without gaps (at most 10,000)",
            ));
        }
        let id = create_upload(&s3, &key, None).await?;
        let chunk_key = |n: u32| format!("{}{n}", c.key_prefix);
        let copy = |n: u32| {
            let (s3, key, id) = (&s3, &key, &id);
            let source = s3.bucket.object_url(&chunk_key(n)).path().to_owned();
            async move {
                let number = n.to_string();
                let url = s3.sign_object(
                    rusty_s3::Method::Put,
                    key,
                    [("partNumber", number.as_str()), ("uploadId", id.as_str())].into_iter(),
                    std::iter::once(("x-amz-copy-source", source.as_str())),
                );
                let (status, text) = s3
                    .call(
                        reqwest::Method::PUT,
                        url,
                        None,
                        &[("x-amz-copy-source", &source)],
                    )
                    .await?;
                match xml_field(&text, "ETag") {
                    Some(etag) if status == 200 => Ok(etag.replace("&quot;", "\"")),
                    _ => Err(store_failure(status, &text)),
                }
            }
        };
        let copies: Vec<_> = c.chunks.iter().map(|n| copy(*n)).collect();
        let etags: Vec<String> = futures_util::stream::iter(copies)
            .buffered(8)
            .try_collect()
            .await?;
        let action = s3.bucket.complete_multipart_upload(
            s3.creds(),
            &key,
            &id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(PART_URL_LIFETIME);
        let (status, text) = s3
            .call(reqwest::Method::POST, url, Some(action.body()), &[])
            .await?;
        if status != 200 || text.contains("<Error>") {
            return Err(store_failure(status, &text));
        }
        delete_keys(&s3, c.chunks.iter().map(|n| chunk_key(*n)).collect()).await?;
        let location = s3.public.object_url(&key).to_string();
        Ok(Json(json!({ "location": location, "key": key })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// `abort`: deletes every chunk stored under the prefix.
async fn discard(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let p: Prefix = parse(&body)?;
        final_key(&p.key_prefix)?;
        let keys: Vec<String> = objects_under(&s3, &p.key_prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let deleted = keys.len();
        delete_keys(&s3, keys).await?;
        Ok(Json(json!({ "deleted": deleted })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// What a store that checks signatures answers to an expired presigned URL (a part's `PUT`), or
/// to a form POST whose policy expired.
async fn expired_url(method: axum::http::Method) -> Response {
    let message = if method == axum::http::Method::POST {
        "Invalid according to Policy: Policy expired."
    } else {
        "Request has expired"
    };
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"),
    )
        .into_response()
}

/// The S3 routes of the API listener (empty without an S3 role), before its layers.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/s3/create", post(create))
        .route("/s3/sign-part", post(sign_part))
        .route("/s3/list-parts", post(list_parts))
        .route("/s3/complete", post(complete))
        .route("/s3/abort", post(abort))
        .route("/s3/sign-upload", post(sign_upload))
        .route("/s3/policy", post(post_policy))
        .route("/s3/list-chunks", post(list_chunks))
        .route("/s3/compose", post(compose))
        .route("/s3/discard", post(discard))
        .route("/s3/expired-url", any(expired_url))
        .route("/s3/bad-digest", any(bad_digest))
        .route("/s3/sign-request", post(sign_request))
        .route("/s3/relay", any(relay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketSetup {
    /// `full` (PUT allowed, ETag exposed), `no-etag` (no `ExposeHeaders`), `post` (POST allowed:
    /// the browser-form uploads of `s3-post`), `all` (one rule allowing PUT and POST, ETag exposed: the demo),
    /// `none` (no rule).
    cors: String,
    /// Origins of the rule (default: the page origin).
    #[serde(default)]
    origins: Vec<String>,
}

/// The bucket CORS configuration (S3's XML) for `origins`: `PUT` with `ExposeHeaders: ETag`
/// unless `etag` is false; `POST` alone when `post` (a simple request: no headers to allow or
/// expose).
fn cors_xml(origins: &[String], etag: bool, post: bool) -> String {
    let mut x = String::from("<CORSConfiguration><CORSRule>");
    for o in origins {
        x.push_str("<AllowedOrigin>");
        x.push_str(o);
        x.push_str("</AllowedOrigin>");
    }
    if post {
        x.push_str("<AllowedMethod>POST</AllowedMethod></CORSRule></CORSConfiguration>");
        return x;
    }
    x.push_str("<AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>");
    if etag {
        x.push_str("<ExposeHeader>ETag</ExposeHeader>");
    }
    x.push_str("<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>");
    x
}

/// `POST /__fixture/s3/bucket`: creates the bucket (if new) and sets its CORS rule. The bucket
/// calls are sent unsigned: rusty-s3 has no bucket-CORS action, and the test store accepts them.
async fn setup_bucket(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let setup: BucketSetup = parse(&body)?;
        let origins = if setup.origins.is_empty() {
            st.page_origin().map(str::to_owned).into_iter().collect()
        } else {
            setup.origins
        };
        let base = s3.bucket.base_url().clone();
        let bucket_url = base.as_str().trim_end_matches('/').to_owned();
        let (status, text) = s3
            .call(
                reqwest::Method::PUT,
                bucket_url.parse().map_err(|_| {
                    failure(StatusCode::INTERNAL_SERVER_ERROR, "BadUrl", "bucket URL")
                })?,
                None,
                &[],
            )
            .await?;
        if !(200..300).contains(&status) && !text.contains("BucketAlreadyOwnedByYou") {
            return Err(store_failure(status, &text));
        }
        let cors_url: url::Url = format!("{bucket_url}?cors")
            .parse()
            .map_err(|_| failure(StatusCode::INTERNAL_SERVER_ERROR, "BadUrl", "bucket URL"))?;
        // The bucket's CORS configuration (PutBucketCors), or none at all (DeleteBucketCors).
        let rule = match setup.cors.as_str() {
            "full" => Some(cors_xml(&origins, true, false)),
            "no-etag" => Some(cors_xml(&origins, false, false)),
            "post" => Some(cors_xml(&origins, false, true)),
            // One rule for both modes (moto applies only the last of several rules to a
            // preflight): PUT and POST, the ETag exposed.
            "all" => Some(cors_xml(&origins, true, false).replace(
                "<AllowedMethod>PUT</AllowedMethod>",
                "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>",
            )),
            "none" => None,
            other => {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("cors must be full, no-etag, post, all or none, got {other:?}"),
                ))
            }
        };
        let method = if rule.is_some() {
            reqwest::Method::PUT
        } else {
            reqwest::Method::DELETE
        };
        let (status, text) = s3.call(method, cors_url, rule, &[]).await?;
        if !(200..300).contains(&status) {
            return Err(store_failure(status, &text));
        }
        Ok(
            Json(json!({ "bucket": s3.bucket.name(), "cors": setup.cors, "origins": origins }))
                .into_response(),
        )
    };
    run.await.unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
    /// With `algorithm`: also S3's checksum of each part of this size (`parts`).
    #[serde(default)]
    part_size: Option<usize>,
    #[serde(default)]
    algorithm: Option<String>,
}

/// `GET /__fixture/s3/object?key=[&part_size=&algorithm=]`: `{size, sha256, parts}` of an
/// object, read back from the store (`parts`: S3's checksum of each part, when asked).
async fn object(State(st): State<AppState>, Query(q): Query<KeyQuery>) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let url = s3
            .bucket
            .get_object(s3.creds(), &q.key)
            .sign(PART_URL_LIFETIME);
        let resp =
            s3.client.get(url.as_str()).send().await.map_err(|e| {
                failure(StatusCode::BAD_GATEWAY, "StoreUnreachable", &e.to_string())
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        if status != 200 {
            return Err(store_failure(status, &String::from_utf8_lossy(&bytes)));
        }
        let sha = Sha256::digest(&bytes);
        let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        let parts: Vec<Option<String>> = match (q.part_size.filter(|n| *n > 0), &q.algorithm) {
            (Some(n), Some(a)) => bytes
                .chunks(n)
                .map(|part| crate::s3::s3_checksum(a, part))
                .collect(),
            _ => Vec::new(),
        };
        Ok(
            Json(json!({ "key": q.key, "size": bytes.len(), "sha256": hex, "parts": parts }))
                .into_response(),
        )
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /__fixture/s3/uploads`: the multipart uploads in progress in the bucket, `[{key, uploadId}]`.
async fn uploads(State(st): State<AppState>) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let base = s3
            .bucket
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let url: url::Url = format!("{base}?uploads")
            .parse()
            .map_err(|_| failure(StatusCode::INTERNAL_SERVER_ERROR, "BadUrl", "bucket URL"))?;
        let (status, text) = s3.call(reqwest::Method::GET, url, None, &[]).await?;
        if status != 200 {
            return Err(store_failure(status, &text));
        }
        let mut out = Vec::new();
        for upload in text.split("<Upload>").skip(1) {
            out.push(json!({
                "key": xml_field(upload, "Key"),
                "uploadId": xml_field(upload, "UploadId"),
            }));
        }
        Ok(Json(Value::Array(out)).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
struct PrefixQuery {
    #[serde(default)]
    prefix: String,
}

/// `GET /__fixture/s3/objects?prefix=`: the objects under `prefix`, `[{key, size}]`.
async fn objects(State(st): State<AppState>, Query(q): Query<PrefixQuery>) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let list: Vec<Value> = objects_under(&s3, &q.prefix)
            .await?
            .into_iter()
            .map(|(key, size)| json!({ "key": key, "size": size }))
            .collect();
        Ok(Json(Value::Array(list)).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// `POST /__fixture/s3/faults`: `{expire_part_once: N | null, expire_policy: M | null}`.
async fn faults(State(st): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let f: Faults = parse(&body)?;
        *lock(&s3.faults) = f;
        Ok(Json(json!({
            "expire_part_once": f.expire_part_once,
            "expire_policy": f.expire_policy,
            "bad_digest_part": f.bad_digest_part,
            "bad_digest_times": f.bad_digest_times,
        }))
        .into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// `GET /__fixture/s3/checksums`: the checksums `sign-part` signed (`[{uploadId, partNumber,
/// value}]`) and what the checking stand-in received (`seen`).
async fn checksums(State(st): State<AppState>) -> Response {
    let run = async {
        let s3 = role(&st)?;
        let signed: Vec<Value> = lock(&s3.signed_checksums)
            .iter()
            .map(|(u, n, v)| json!({ "uploadId": u, "partNumber": n, "value": v }))
            .collect();
        let seen = lock(&s3.digests_seen).clone();
        Ok(Json(json!({ "signed": signed, "seen": seen })).into_response())
    };
    run.await.unwrap_or_else(|e| e)
}

/// The `/__fixture/s3/*` routes, merged under the control guard.
pub fn control_routes() -> Router<AppState> {
    Router::new()
        .route("/__fixture/s3/bucket", post(setup_bucket))
        .route("/__fixture/s3/object", get(object))
        .route("/__fixture/s3/uploads", get(uploads))
        .route("/__fixture/s3/objects", get(objects))
        .route("/__fixture/s3/faults", post(faults))
        .route("/__fixture/s3/checksums", get(checksums))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_field_reads_s3_error_codes() {
        let body = "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
        assert_eq!(xml_field(body, "Code"), Some("NoSuchUpload"));
        assert_eq!(xml_field(body, "Message"), Some("gone"));
        assert_eq!(xml_field(body, "Key"), None);
    }

    #[test]
    fn cors_rule_exposes_etag_only_when_asked() {
        let o = vec!["http://127.0.0.1:1".to_owned()];
        assert!(cors_xml(&o, true, false).contains("<ExposeHeader>ETag</ExposeHeader>"));
        assert!(!cors_xml(&o, false, false).contains("ExposeHeader"));
        assert!(cors_xml(&o, false, false)
            .contains("<AllowedOrigin>http://127.0.0.1:1</AllowedOrigin>"));
        let post = cors_xml(&o, false, true);
        assert!(post.contains("<AllowedMethod>POST</AllowedMethod>") && !post.contains("PUT"));
    }
}
