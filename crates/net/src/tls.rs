//! Server-side TLS: one loader for every listener (HTTPS, Postgres wire), so both read a
//! certificate and key the same way and fail with the same precise messages.

use std::path::Path;
use std::sync::Arc;

/// A certificate chain and its private key, read from PEM files and checked against each other.
pub struct ServerTls {
    /// The certificate file as read: SCRAM channel binding hashes the server's certificate.
    pub cert_pem: Vec<u8>,
    pub config: rustls::ServerConfig,
    /// When the served (first) certificate stops being valid, in seconds since the epoch: what
    /// an operator's certificate-expiry alert watches.
    pub expires_at: i64,
}

impl ServerTls {
    /// Reads `cert` and `key`; `cert_setting` and `key_setting` name the settings in errors
    /// (e.g. `BURNRATE_TLS_CERT`).
    pub fn load(cert: &Path, key: &Path, cert_setting: &str, key_setting: &str) -> Result<Self, String> {
        let cert_pem =
            std::fs::read(cert).map_err(|e| format!("{cert_setting}: cannot read {}: {e}", cert.display()))?;
        let key_pem = std::fs::read(key).map_err(|e| format!("{key_setting}: cannot read {}: {e}", key.display()))?;
        let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{cert_setting}: not a PEM certificate chain: {e}"))?;
        let Some(leaf) = certs.first() else {
            return Err(format!("{cert_setting}: {} holds no certificate", cert.display()));
        };
        let expires_at = {
            use x509_cert::der::Decode;
            let parsed = x509_cert::Certificate::from_der(leaf.as_ref())
                .map_err(|e| format!("{cert_setting}: {} is not an X.509 certificate: {e}", cert.display()))?;
            let not_after = parsed.tbs_certificate.validity.not_after.to_unix_duration();
            i64::try_from(not_after.as_secs()).unwrap_or(i64::MAX)
        };
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| format!("{key_setting}: not a PEM private key: {e}"))?
            .ok_or_else(|| format!("{key_setting}: {} holds no private key", key.display()))?;
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(|e| format!("{key_setting}: does not match the certificate: {e}"))?;
        Ok(Self { cert_pem, config, expires_at })
    }
}
