//! `--tls`: a self-signed certificate made at start (for `localhost`, `127.0.0.1`, `::1` and the
//! listeners' hosts), written as PEM into the data directory, and the rustls server settings
//! with ALPN `h2` then `http/1.1`. A client trusts it by the PEM file or, in Chromium, by the
//! SHA-256 of its public key (`--ignore-certificate-errors-spki-list`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// A generated certificate and the acceptor that serves it.
#[derive(Clone)]
pub struct Tls {
    /// Accepts TLS connections with the certificate, offering `h2` and `http/1.1`.
    pub acceptor: TlsAcceptor,
    /// Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes).
    pub spki_sha256: String,
    /// Where the certificate is written, PEM.
    pub cert_pem_path: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("spki_sha256", &self.spki_sha256)
            .field("cert_pem_path", &self.cert_pem_path)
            .finish_non_exhaustive()
    }
}

/// Makes the certificate for `hosts` (plus the loopback names), writes `tls/cert.pem` under
/// `dir`, and builds the acceptor.
pub fn generate(dir: &Path, hosts: &[String]) -> Result<Tls, Error> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        let h = h.trim_start_matches('[').trim_end_matches(']');
        if !h.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(h)) {
            names.push(h.to_owned());
        }
    }
    let tls_err = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_err("generating the TLS certificate", &e))?;
    let spki = Sha256::digest(certified.key_pair.public_key_der());
    let spki_sha256 = base64::engine::general_purpose::STANDARD.encode(spki);
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir)
        .map_err(|e| Error::Io(format!("creating {}", tls_dir.display()), e))?;
    let cert_pem_path = tls_dir.join("cert.pem");
    std::fs::write(&cert_pem_path, certified.cert.pem())
        .map_err(|e| Error::Io(format!("writing {}", cert_pem_path.display()), e))?;

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| tls_err("TLS certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        spki_sha256,
        cert_pem_path,
    })
}
