//! TLS to a database source (S24), whichever driver speaks over it: `verify-full` checks the
//! server's certificate against the configured host name — not the address dialled, which the
//! egress guard approved — with the public web's authorities or the source's own CA;
//! `require` and `prefer` take any certificate.

use std::io;
use std::sync::Arc;

use burnrate_core::{DatabaseConfig, DatabaseTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

/// The certificates of a private certificate authority, from PEM.
pub(super) fn certificate_authority(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > 64 * 1024 {
        return Err("more than 64 kB of PEM".into());
    }
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the PEM does not read: {e}"))?;
    if certs.is_empty() {
        return Err("expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_, refused) = roots.add_parsable_certificates(certs.iter().cloned());
    if refused > 0 || roots.is_empty() {
        return Err("a certificate in it is not a usable X.509 certificate".into());
    }
    Ok(certs)
}

/// The TLS side of a source's connection.
#[derive(Clone)]
pub(super) struct SourceTls {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    /// Whether the certificate is checked (verify-full).
    pub(super) verified: bool,
}

impl SourceTls {
    pub(super) fn new(source: &DatabaseConfig) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = match source.tls {
            DatabaseTls::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match &source.ca_pem {
                    Some(pem) => {
                        roots.add_parsable_certificates(certificate_authority(pem)?);
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            DatabaseTls::Require | DatabaseTls::Prefer => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        };
        // The configured name, not the address dialled: that is what the certificate names.
        let host = source.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let name =
            ServerName::try_from(host).map_err(|e| format!("{:?} is not a TLS server name: {e}", source.host))?;
        Ok(Self { config: Arc::new(config), name, verified: source.tls == DatabaseTls::VerifyFull })
    }

    /// TLS over `stream`, the server's certificate checked as the mode says.
    pub(super) async fn connect<S>(self, stream: S) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tokio_rustls::TlsConnector::from(self.config).connect(self.name, stream).await
    }
}

/// `require` and `prefer`: any certificate is taken (the signatures of the handshake are still
/// checked, so the server holds the key of the certificate it shows).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
