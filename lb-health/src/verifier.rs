//! [`AcceptAnyServerCert`]: the certificate verifier behind relayd's unverified TLS
//! checks.
//!
//! relayd's `check tls`, `check https` and `send ... tls` complete a handshake but do
//! not verify the server's certificate (`check_tls.c` sets up libtls with
//! `tls_config_insecure_noverifycert` and `tls_config_insecure_noverifyname`): a
//! health check asks "does the service answer", not "is it who it claims to be", and
//! backends commonly carry self-signed or internal certificates. rustls has no such
//! switch, so this verifier provides it. It still checks the handshake signatures with
//! the provider's algorithms, so the server must hold the key of the certificate it
//! sends; it does not check who issued the certificate, its names or its dates.
//!
//! Do not use it for traffic: it is for health checks only. Give a check a CA
//! ([`TlsOptions::verify_with_ca_pem`](crate::TlsOptions::verify_with_ca_pem)) to
//! verify certificates.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A [`ServerCertVerifier`] that accepts any certificate: the default of TLS checks,
/// as in relayd. **Performs no certificate verification**; see the module docs.
pub struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    /// A verifier that checks handshake signatures with `provider`'s algorithms and
    /// accepts any certificate.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        AcceptAnyServerCert { provider }
    }
}

impl fmt::Debug for AcceptAnyServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnyServerCert")
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
