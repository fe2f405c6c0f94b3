//! TLS for the API: rustls on the `ring` provider only, a given certificate or a self-signed
//! one made at start, and the aggregator's front-proxy client certificate verified against
//! the `requestheader` CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wanted.
        what: &'static str,
        /// Why it failed, when a parser said.
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("the front-proxy CA")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A self-signed certificate could not be made.
    #[error("making a self-signed certificate")]
    SelfSigned(#[from] rcgen::Error),
}

/// A certificate made at start, for trials and for `insecureSkipTLSVerify` deployments.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
}

/// The rustls server configuration: the certificate (`cert_key`, or self-signed for
/// `names`), client certificates verified against `client_ca` when given (optional per
/// connection: health probes carry none), and ALPN `h2` first (gRPC clients insist on it).
pub fn server_config(
    cert_key: Option<(&Path, &Path)>,
    client_ca: Option<&Path>,
    names: &[String],
) -> Result<(Arc<ServerConfig>, Option<SelfSigned>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key, self_signed) = match cert_key {
        Some((cert, key)) => (read_certs(cert)?, read_key(key)?, None),
        None => {
            let made = rcgen::generate_simple_self_signed(names.to_vec())?;
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
            let pem = made.cert.pem();
            (
                vec![made.cert.der().clone()],
                key,
                Some(SelfSigned { cert_pem: pem }),
            )
        }
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(chain, key)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), self_signed))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        path: path.to_path_buf(),
        what: "not a readable PEM certificate file",
        source: Some(source),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<_, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "holds no certificate",
            source: None,
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        path: path.to_path_buf(),
        what: "not a readable PEM private key",
        source: Some(source),
    })
}

/// The common name of a certificate's subject.
///
/// Written here over the subject bytes rustls-webpki exposes, rather than with an X.509
/// crate that would add a dozen dependencies for one field: the subject is a DER
/// `SET OF SEQUENCE { OID, value }`, and the common name is OID 2.5.4.3.
pub fn subject_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    /// One DER tag-length-value: (tag, content, rest).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (
                rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize),
                &rest[n..],
            )
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let mut names = ee.subject();
    let mut common_name = None;
    while let Some((0x31, mut set, rest)) = tlv(names) {
        while let Some((0x30, attribute, more)) = tlv(set) {
            let (_, oid, value) = tlv(attribute)?;
            let (tag, text, _) = tlv(value)?;
            // UTF8String or PrintableString; the last common name wins, as in Go.
            if oid == [0x55, 0x04, 0x03] && (tag == 0x0c || tag == 0x13) {
                common_name = Some(String::from_utf8(text.to_vec()).ok()?);
            }
            set = more;
        }
        names = rest;
    }
    common_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_is_read_from_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "front-proxy-client");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_common_name(cert.der()).as_deref(),
            Some("front-proxy-client")
        );
        assert_eq!(
            subject_common_name(&CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }

    #[test]
    fn a_self_signed_configuration_is_made_and_bad_files_are_named() {
        let (config, made) = server_config(None, None, &["localhost".into()]).unwrap();
        assert!(made
            .unwrap()
            .cert_pem
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(config.alpn_protocols[0], b"h2");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let err = server_config(None, Some(&bad), &["localhost".into()]).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
