//! `--tls` on the simulators: a generated CA whose path is printed, HTTPS
//! reached with `curl --cacert`, mutual TLS with the generated client
//! certificate, and SMPP over TLS (the SMSC's handshake, then a bind).

use std::path::Path;
use std::process::Command;

use crate::Sim;

/// `curl` over HTTPS; the status, or `None` when the TLS connection failed.
fn curl(url: &str, ca: &Path, client: Option<&Path>) -> Option<u16> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("--cacert")
    .arg(ca)
    .arg(url);
    if let Some(dir) = client {
        cmd.arg("--cert")
            .arg(dir.join("client.pem"))
            .arg("--key")
            .arg(dir.join("client-key.pem"));
    }
    let out = cmd.output().expect("curl runs (Debian package curl)");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn the_sink_serves_https_with_a_generated_ca() {
    let sim = Sim::start(
        &["sink", "--listen", "127.0.0.1:0", "--secret", "s", "--tls"],
        &["sink"],
    );
    let ca = sim.tls_ca.clone().expect("tls-ca line");
    let url = format!("https://{}/stats", sim.addr("sink"));
    assert_eq!(curl(&url, &ca, None), Some(200));
    // Any other CA: refused (the system roots do not know this one).
    assert_eq!(
        curl(&url, Path::new("/etc/ssl/certs/ca-certificates.crt"), None),
        None
    );
}

#[test]
fn the_provider_with_client_auth_serves_only_the_generated_client_certificate() {
    let sim = Sim::start(
        &[
            "provider",
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--tls-client-auth",
        ],
        &["provider"],
    );
    let ca = sim.tls_ca.clone().expect("tls-ca line");
    let dir = ca.parent().expect("tls dir");
    let url = format!("https://{}/stats", sim.addr("provider"));
    assert_eq!(curl(&url, &ca, Some(dir)), Some(200));
    assert_eq!(curl(&url, &ca, None), None);
}
