//! A private CA made in the test, and a certificate from it for `localhost` and
//! `127.0.0.1`: what a deployment with its own CA has, for HTTPS tests with nothing
//! downloaded and nothing trusted by default.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The CA and a server certificate, as PEM files in a directory.
#[derive(Debug)]
pub struct Pki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca: (CertificateParams, String),
}

impl Pki {
    /// Makes a CA and a server certificate in `dir`.
    pub fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "aim test CA");
        let key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&key).expect("CA certificate");
        let pki = Pki {
            ca_pem: ca.pem(),
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
            ca: (params, key.serialize_pem()),
        };
        std::fs::write(&pki.ca_file, &pki.ca_pem).expect("write CA");
        pki.issue_server();
        pki
    }

    /// (Re)issues the server certificate and key files, signed by the CA.
    pub fn issue_server(&self) {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        let ca_key = KeyPair::from_pem(&self.ca.1).expect("CA key");
        let issuer = Issuer::from_params(&self.ca.0, ca_key);
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        std::fs::write(&self.cert_file, cert.pem()).expect("write certificate");
        std::fs::write(&self.key_file, key.serialize_pem()).expect("write key");
    }
}
