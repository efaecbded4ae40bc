//! The S3 signing role's store side: the `--s3-*` settings, SigV4 presigning (`rusty-s3`) and the
//! store calls an app's server makes (`reqwest`). Its routes are in `s3_routes.rs`. Imports
//! nothing of the crate, so `config` and `state` can hold it.

// Handlers return their error answer itself (`Err(Response)`): rare, and off any hot path.
#![allow(clippy::result_large_err)]

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde::Deserialize;
use serde_json::json;

pub const PART_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Largest JSON body of an S3 route (a complete call lists up to 10,000 parts).
pub const MAX_S3_BODY: usize = 2 * 1024 * 1024;

/// The `--s3-*` flags: which store and bucket, with which test credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `--s3-endpoint`: the store's base URL, e.g. `http://127.0.0.1:9000`, for the role's own
    /// calls to it (create, list, complete, the compose, the relay).
    pub endpoint: String,
    /// `--s3-public-endpoint`: the store's base URL as pages reach it, for the URLs the role
    /// hands out (part and single-PUT URLs, the form URL, Uppy's part URLs, locations);
    /// `None`: `endpoint`. An app server in the store's region reaches it over a shorter path
    /// than its users do.
    pub public_endpoint: Option<String>,
    /// `--s3-bucket`.
    pub bucket: String,
    /// `--s3-region` (default `us-east-1`).
    pub region: String,
    /// `--s3-access-key` (default `test`).
    pub access_key: String,
    /// `--s3-secret-key` (default `test`).
    pub secret_key: String,
}

/// Test faults of the S3 role.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Faults {
    /// The next signature of this part number points at an expired-URL answer.
    pub(crate) expire_part_once: Option<u16>,
    /// The next this many POST policies point at an expired-policy answer.
    pub(crate) expire_policy: Option<u16>,
    /// The next `bad_digest_times` signatures of this part number point at a checking stand-in
    /// that alters the bytes it receives, as a link could, and so answers `400 BadDigest`.
    pub(crate) bad_digest_part: Option<u16>,
    #[serde(default)]
    pub(crate) bad_digest_times: u32,
}

/// What the checking stand-in received (`/s3/bad-digest`): a part and its checksum header.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DigestSeen {
    pub(crate) part_number: u16,
    /// The `x-amz-checksum-*` header's name and value, as the page sent them.
    pub(crate) header: String,
    pub(crate) value: String,
    /// Whether the value is the checksum of the bytes the page sent (before the alteration).
    pub(crate) matches_sent_bytes: bool,
}

/// S3's checksum of `bytes` under `algorithm` (`crc32c` or `sha256`): base64 of its
/// big-endian bytes, as the `x-amz-checksum-*` headers carry it.
pub(crate) fn s3_checksum(algorithm: &str, bytes: &[u8]) -> Option<String> {
    use base64::Engine;
    use sha2::Digest;
    let raw = match algorithm {
        "crc32c" => crc32c::crc32c(bytes).to_be_bytes().to_vec(),
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        _ => return None,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// The S3 role of one fixture: the bucket, the credentials and an HTTP client for the store.
#[derive(Debug)]
pub struct S3Role {
    /// The bucket at `--s3-endpoint`: the role's own calls.
    pub(crate) bucket: Bucket,
    /// The bucket at `--s3-public-endpoint`: the URLs handed to pages.
    pub(crate) public: Bucket,
    pub(crate) credentials: Credentials,
    pub(crate) client: reqwest::Client,
    pub(crate) faults: Mutex<Faults>,
    /// Every checksum `sign-part` signed, `(uploadId, partNumber, value)`, oldest first.
    pub(crate) signed_checksums: Mutex<Vec<(String, u16, String)>>,
    /// What the checking stand-in received.
    pub(crate) digests_seen: Mutex<Vec<DigestSeen>>,
}

impl S3Role {
    /// Checks the settings (an `http(s)` endpoint, a bucket name).
    ///
    /// # Errors
    /// A message naming the bad flag.
    pub fn new(s: &S3Settings) -> Result<S3Role, String> {
        if s.bucket.is_empty() {
            return Err("--s3-bucket must not be empty".to_owned());
        }
        let bucket_at = |flag: &str, url: &str| {
            let endpoint = url.parse().map_err(|e| format!("{flag} {url:?}: {e}"))?;
            Bucket::new(endpoint, UrlStyle::Path, s.bucket.clone(), s.region.clone())
                .map_err(|e| format!("{flag}/--s3-bucket: {e}"))
        };
        let bucket = bucket_at("--s3-endpoint", &s.endpoint)?;
        let public = match &s.public_endpoint {
            Some(url) => bucket_at("--s3-public-endpoint", url)?,
            None => bucket.clone(),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client for the store: {e}"))?;
        Ok(S3Role {
            bucket,
            public,
            credentials: Credentials::new(s.access_key.clone(), s.secret_key.clone()),
            client,
            faults: Mutex::new(Faults::default()),
            signed_checksums: Mutex::new(Vec::new()),
            digests_seen: Mutex::new(Vec::new()),
        })
    }

    /// The form fields of a browser-form POST policy (SigV4) admitting any object whose key
    /// starts with `prefix` and whose size is at most `max_bytes`, valid for `lifetime` from
    /// `now`: the base64 policy JSON, the algorithm, the credential scope, the date and the
    /// signature (the hex HMAC of the base64 policy under the day's signing key).
    pub(crate) fn post_policy(
        &self,
        prefix: &str,
        max_bytes: u64,
        now: jiff::Timestamp,
        lifetime: Duration,
    ) -> Result<Vec<(&'static str, String)>, String> {
        use base64::Engine as _;
        let day = now.strftime("%Y%m%d").to_string();
        let date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let secs = i64::try_from(lifetime.as_secs()).map_err(|e| e.to_string())?;
        let expires = jiff::Timestamp::from_second(now.as_second() + secs)
            .map_err(|e| e.to_string())?
            .strftime("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string();
        let region = self.bucket.region();
        let credential = format!("{}/{day}/{region}/s3/aws4_request", self.credentials.key());
        let policy = json!({
            "expiration": expires,
            "conditions": [
                { "bucket": self.bucket.name() },
                ["starts-with", "$key", prefix],
                ["content-length-range", 0, max_bytes],
                { "x-amz-algorithm": "AWS4-HMAC-SHA256" },
                { "x-amz-credential": credential },
                { "x-amz-date": date },
            ],
        });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let mut key = hmac_sha256(
            format!("AWS4{}", self.credentials.secret()).as_bytes(),
            day.as_bytes(),
        )?;
        for part in [region, "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes())?;
        }
        let signature: String = hmac_sha256(&key, policy.as_bytes())?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(vec![
            ("policy", policy),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential", credential),
            ("x-amz-date", date),
            ("x-amz-signature", signature),
        ])
    }

    /// A presigned URL (SigV4, valid [`PART_URL_LIFETIME`]) for `method` on object `key` with
    /// these query parameters and signed headers: for the requests rusty-s3's actions do not
    /// spell as the store wants (see `create_upload`) or do not have (UploadPartCopy).
    pub(crate) fn sign_object<'a>(
        &self,
        method: rusty_s3::Method,
        key: &str,
        query: impl Iterator<Item = (&'a str, &'a str)> + Clone,
        headers: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> url::Url {
        rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            method,
            self.bucket.object_url(key),
            self.credentials.key(),
            self.credentials.secret(),
            None,
            self.bucket.region(),
            PART_URL_LIFETIME.as_secs(),
            query,
            headers,
        )
    }

    pub(crate) fn creds(&self) -> Option<&Credentials> {
        Some(&self.credentials)
    }

    /// Sends a presigned request with `headers` (signed into it) to the store: (status, body
    /// text).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), Response> {
        let mut req = self.client.request(method, url.as_str());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| {
            failure(
                StatusCode::BAD_GATEWAY,
                "StoreUnreachable",
                &format!("the store did not answer: {e}"),
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// A JSON error answer `{error, message}`.
pub(crate) fn failure(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// The store's answer as an error, with S3's error code when the body has one.
pub(crate) fn store_failure(store_status: u16, body: &str) -> Response {
    let code = xml_field(body, "Code").unwrap_or("StoreError");
    let status = if code == "NoSuchUpload" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    failure(
        status,
        code,
        &format!(
            "the store answered HTTP {store_status}: {}",
            body.chars().take(300).collect::<String>()
        ),
    )
}

/// The text of the first `<name>…</name>` in `xml` (S3's error bodies are flat).
pub(crate) fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    xml.get(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED_SIGNATURE: &str =
        "34577cd37f7d14c2936f604fb6a812427c2d9eeef0c2496b1bb3bb3f679eb1ea";

    #[test]
    fn post_policy_signature_matches_sigv4() {
        // The SigV4 signing key of AWS's documented example (secret, 20130524, us-east-1, s3)
        // signing the string "policy" — checked against an independent HMAC chain computed
        // with Python's hmac module.
        let role = S3Role::new(&S3Settings {
            endpoint: "http://127.0.0.1:9".into(),
            public_endpoint: None,
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        })
        .unwrap();
        let now = jiff::Timestamp::from_second(1_369_353_600).unwrap();
        let fields = role
            .post_policy("user/eric/", 5 << 20, now, Duration::from_secs(3600))
            .unwrap();
        let get = |n: &str| fields.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        assert_eq!(get("x-amz-date"), "20130524T000000Z");
        assert_eq!(
            get("x-amz-credential"),
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        );
        use base64::Engine as _;
        let policy = base64::engine::general_purpose::STANDARD
            .decode(get("policy"))
            .unwrap();
        let policy: serde_json::Value = serde_json::from_slice(&policy).unwrap();
        assert_eq!(policy["expiration"], "2013-05-24T01:00:00.000Z");
        assert_eq!(
            policy["conditions"][1],
            json!(["starts-with", "$key", "user/eric/"])
        );
        assert_eq!(
            policy["conditions"][2],
            json!(["content-length-range", 0, 5 << 20])
        );
        assert_eq!(get("x-amz-signature").len(), 64);
        assert_eq!(get("x-amz-signature"), EXPECTED_SIGNATURE);
    }

    #[test]
    fn s3_checksums_are_base64_of_the_big_endian_bytes() {
        // CRC-32C("123456789") = e3069283, as S3 writes it in x-amz-checksum-crc32c.
        assert_eq!(
            s3_checksum("crc32c", b"123456789").as_deref(),
            Some("4waSgw==")
        );
        assert_eq!(
            s3_checksum("sha256", b"").as_deref(),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        );
        assert_eq!(s3_checksum("md5", b""), None);
    }

    #[test]
    fn settings_are_checked() {
        let mut s = S3Settings {
            endpoint: "ftp://x".into(),
            public_endpoint: None,
            bucket: "b1".into(),
            region: "us-east-1".into(),
            access_key: "test".into(),
            secret_key: "test".into(),
        };
        assert!(S3Role::new(&s).is_err());
        s.endpoint = "http://127.0.0.1:9".into();
        assert!(S3Role::new(&s).is_ok());
        s.public_endpoint = Some("not a url".into());
        let e = S3Role::new(&s).unwrap_err();
        assert!(e.contains("--s3-public-endpoint"), "{e}");
        s.public_endpoint = Some("http://127.0.0.1:10".into());
        let role = S3Role::new(&s).unwrap();
        assert_eq!(role.public.base_url().as_str(), "http://127.0.0.1:10/b1/");
        assert_eq!(role.bucket.base_url().as_str(), "http://127.0.0.1:9/b1/");
        s.bucket = String::new();
        assert!(S3Role::new(&s).is_err());
    }
}
