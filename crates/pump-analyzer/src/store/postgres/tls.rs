//! TLS to PostgreSQL, chosen by `DATABASE_URL` the way libpq users expect: `sslmode=require`
//! encrypts without checking the certificate (unless `sslrootcert` names a CA, as in libpq),
//! `verify-ca` also checks that a trusted CA signed it, `verify-full` also checks the host name.
//! The trusted CAs are `sslrootcert` (a PEM file) or else the system's. Without `sslmode` (or
//! with `disable` / `prefer`) the connection stays as before, in plain text. rustls with the ring
//! provider, which the HTTPS server already uses.

use std::sync::Arc;

use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::store::StoreError;

/// How the connections to PostgreSQL are made.
pub enum Tls {
    Off,
    On(MakeRustlsConnect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Require,
    VerifyCa,
    VerifyFull,
}

fn bad(message: String) -> StoreError {
    StoreError::Unavailable(format!("DATABASE_URL: {message}"))
}

/// The URL for `tokio_postgres` (our own `sslrootcert` removed, `verify-*` told as `require`)
/// and how to connect.
pub fn from_url(url: &str) -> Result<(String, Tls), StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = Mode::Plain;
    let mut root: Option<String> = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sslmode" => {
                mode = match value {
                    "disable" | "allow" | "prefer" => Mode::Plain,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(bad(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        )));
                    }
                };
                if mode != Mode::Plain {
                    kept.push("sslmode=require".to_string());
                }
            }
            "sslrootcert" => root = Some(percent_decoded(value)),
            _ => kept.push(pair.to_string()),
        }
    }
    // libpq: `require` with a root certificate checks the chain as `verify-ca` does.
    if mode == Mode::Require && root.is_some() {
        mode = Mode::VerifyCa;
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    if mode == Mode::Plain {
        return Ok((url, Tls::Off));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let config = match mode {
        Mode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        _ => {
            let roots = Arc::new(roots(root.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| bad(format!("TLS: {e}")))?;
            if mode == Mode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(webpki))).with_no_client_auth()
            }
        }
    };
    Ok((url, Tls::On(MakeRustlsConnect::new(config))))
}

fn percent_decoded(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The CAs `sslrootcert` names, or the system's.
fn roots(file: Option<&str>) -> Result<rustls::RootCertStore, StoreError> {
    let mut store = rustls::RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read sslrootcert {path}: {e}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("sslrootcert {path} is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad(format!("sslrootcert {path} holds no certificate")));
            }
            for cert in certs {
                store.add(cert).map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
    }
    Ok(store)
}

/// `sslmode=require`: the connection is encrypted, the certificate not checked (libpq's meaning).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
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

/// `sslmode=verify-ca`: a trusted CA must have signed the certificate, whatever name it is for.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_kept_from_tokio_postgres() {
        let (url, tls) = from_url("postgres://u@h/db").unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert!(matches!(tls, Tls::Off));
        let (url, tls) = from_url("postgres://u@h/db?sslmode=prefer&application_name=x").unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert!(matches!(tls, Tls::Off));
        let (url, tls) = from_url("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=require");
        assert!(matches!(tls, Tls::On(_)));
        let (url, _) = from_url("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=require");
        assert!(from_url("postgres://u@h/db?sslmode=sometimes").is_err());
        let missing = from_url("postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Fnonexistent%2Fca.pem");
        assert!(matches!(missing, Err(StoreError::Unavailable(m)) if m.contains("/nonexistent/ca.pem")));
    }
}
