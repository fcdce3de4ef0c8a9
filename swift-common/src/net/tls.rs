//! TLS for the listening socket, from `cert_file` and `key_file` (rustls).
//!
//! Swift calls in-process TLS "for testing purposes" and prints a warning;
//! we print the same warning, but the TLS itself is a modern rustls server
//! (TLS 1.2 and 1.3, no client certificates).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

use crate::config::Conf;

/// Swift's warning, printed and logged when TLS is enabled.
pub const SSL_WARNING: &str = "WARNING: SSL should only be enabled for testing purposes. Use external SSL termination for a production deployment.";

/// Why TLS could not be set up. Each names the option and file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{conf}: cert_file is set but key_file is not")]
    MissingKey { conf: PathBuf },
    #[error("cannot read {option} {path}: {reason}")]
    Read {
        option: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cert_file {cert} and key_file {key} do not make a TLS server: {reason}")]
    Build {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A loaded server TLS config, shared by every connection.
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// Load TLS from `cert_file`/`key_file` when `cert_file` is set (Swift's
/// test is `'cert_file' in conf`).
pub fn from_conf(conf: &Conf) -> Result<Option<TlsConfig>, TlsError> {
    let Some(cert) = conf.get("cert_file") else {
        return Ok(None);
    };
    let key = conf
        .get_nonempty("key_file")
        .ok_or_else(|| TlsError::MissingKey {
            conf: conf.source().to_path_buf(),
        })?;
    load(Path::new(cert.trim()), Path::new(key)).map(Some)
}

/// Build a server config from PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
    let read_err = |option: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls_pki_types::pem::Error| TlsError::Read {
            option,
            path,
            reason: pem_error(e),
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(read_err("cert_file", cert))?
        .collect::<Result<_, _>>()
        .map_err(read_err("cert_file", cert))?;
    if certs.is_empty() {
        return Err(TlsError::Read {
            option: "cert_file",
            path: cert.to_path_buf(),
            reason: "no certificate found".into(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(read_err("key_file", key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let build_err = |reason: String| TlsError::Build {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| build_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| build_err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM item of the expected kind found".into()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_pair_and_rejects_a_missing_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_path = dir.path().join("c.pem");
        let key_path = dir.path().join("k.pem");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        assert!(load(&cert_path, &key_path).is_ok());
        let missing = dir.path().join("nope.pem");
        let err = load(&cert_path, &missing).unwrap_err().to_string();
        assert!(
            err.contains("key_file") && err.contains("nope.pem"),
            "{err}"
        );
        // A certificate given as the key is rejected with both names.
        let err = load(&cert_path, &cert_path).unwrap_err().to_string();
        assert!(err.contains("key_file"), "{err}");
    }
}
