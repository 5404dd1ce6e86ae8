//! The CLI against `aim serve --tls-cert --tls-key`: it reaches aim only when told to trust
//! the private CA the certificate is from (`--ca-cert` or `AIM_CA_CERT`).

use aim_testkit::pki::Pki;

use crate::process::Serve;

#[test]
fn the_cli_talks_to_aim_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let cert = pki.cert_file.to_str().unwrap();
    let key = pki.key_file.to_str().unwrap();
    let serve = Serve::start_with(dir.path(), &["--tls-cert", cert, "--tls-key", key]);
    assert!(serve.addr.starts_with("https://"), "{}", serve.addr);
    let admin = serve.token();
    let t = Some(admin.as_str());
    let ca = pki.ca_file.to_str().unwrap();
    let (code, out, err) = serve.aim(t, &["--ca-cert", ca, "human", "list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("admin"), "{out}");
    // Without the CA, the server's certificate is not trusted: aim is unreachable (7).
    let (code, _, err) = serve.aim(t, &["human", "list"]);
    assert_eq!(code, 7, "{err}");
    // A CA file that holds no certificate is an error before anything is sent.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let (code, _, err) = serve.aim(t, &["--ca-cert", bogus.to_str().unwrap(), "human", "list"]);
    assert_ne!(code, 0, "{err}");
}
