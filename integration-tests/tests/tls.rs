//! A distributed exchange of three servers with mutual TLS and a shared secret end to end, in
//! real processes:
//! certificates made by the test (rcgen) and written to files, as a deployment would hold
//! them. Reports and requests cross two servers; a client without a certificate is refused;
//! files that cannot be used stop a process at start with status 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netsvc_integration_tests::{addr_in, Process};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const NODE: &str = env!("CARGO_BIN_EXE_node");

const WAIT: Duration = Duration::from_secs(10);

/// A directory of PEM files, removed when dropped.
struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("netsvc-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("secret"), "a secret of the whole mesh\n").unwrap();
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn ca(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// Writes `name.pem` and `name.key` for 127.0.0.1; their paths.
    fn issue(&self, name: &str) -> (String, String) {
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (
            cert_path.display().to_string(),
            key_path.display().to_string(),
        )
    }

    /// The mutual-TLS arguments of a process named `name`, with the mesh's shared secret.
    fn args(&self, name: &str) -> Vec<String> {
        let (cert, key) = self.issue(name);
        let mut args = vec!["--tls-cert".into(), cert, "--tls-key".into(), key];
        args.extend(["--tls-ca".into(), self.ca(), "--require-client-cert".into()]);
        let secret = self.dir.join("secret").display().to_string();
        args.extend(["--secret-file".into(), secret]);
        args
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(args: &[String]) -> Process {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Process::start(NODE, &args)
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// An exchange server with mutual TLS, connected to `peers`; its address.
fn hub(pki: &Pki, name: &str, peers: &[&str]) -> (Process, String) {
    let mut args = owned(&["--name", name, "--listen", "127.0.0.1:0"]);
    for peer in peers {
        args.extend(owned(&["--connect", peer]));
    }
    args.extend(pki.args(name));
    let mut process = node(&args);
    let line = process.expect_line("listening default", WAIT);
    (process, addr_in(&line).to_string())
}

#[test]
fn a_three_server_exchange_with_mutual_tls_and_a_secret_carries_reports_and_requests() {
    let pki = Pki::new("mesh");
    let (mut c, c_addr) = hub(&pki, "exchange-c", &[]);
    let (mut b, b_addr) = hub(&pki, "exchange-b", &[&c_addr]);
    let (mut a, a_addr) = hub(&pki, "exchange-a", &[&b_addr, &c_addr]);
    a.expect_count("connected default", 2, WAIT);
    b.expect_count("connected default", 2, WAIT);
    c.expect_count("connected default", 2, WAIT);

    let mut args = owned(&["--name", "client-a", "--connect", &a_addr, "--publisher"]);
    args.extend(owned(&["--interval-ms", "200", "--responder"]));
    args.extend(pki.args("client-a"));
    let mut client_a = node(&args);
    let mut args = owned(&["--name", "client-c", "--connect", &c_addr, "--subscriber"]);
    args.extend(owned(&["--requester", "--watch", "calculator"]));
    args.extend(pki.args("client-c"));
    let mut client_c = node(&args);
    client_c.expect_count("system.time = seq=", 2, WAIT);
    client_c.expect_count("watch calculator Available calculator/", 1, WAIT);
    client_c.send_line("m calculator multiply 6 7");
    client_c.expect_line("m ok 42", WAIT);
    client_a.expect_line("publisher subscription Requested", WAIT);

    // A client without a certificate gets no link.
    let mut bare = node(&owned(&[
        "--name",
        "bare",
        "--connect",
        &b_addr,
        "--tls-ca",
        &pki.ca(),
        "--subscriber",
    ]));
    let lines = bare.collect_for(Duration::from_millis(1500));
    assert!(
        lines.iter().all(|l| !l.contains("connected default")),
        "{lines:#?}"
    );
    // The mesh is unaffected.
    client_c.send_line("m calculator multiply 2 21");
    client_c.expect_line("m ok 42", WAIT);
}

#[test]
fn files_that_cannot_be_used_stop_the_process_at_start_with_status_2() {
    let pki = Pki::new("bad");
    let (cert, _) = pki.issue("one");
    let (_, other_key) = pki.issue("two");
    let missing = Path::new(&pki.ca()).with_file_name("missing.pem");
    let cases = [
        // A key that is not the certificate's.
        owned(&["--tls-cert", &cert, "--tls-key", &other_key]),
        // A file that is not there.
        owned(&["--tls-ca", &missing.display().to_string()]),
        // A key where the CA's certificate should be.
        owned(&["--tls-ca", &other_key]),
    ];
    for case in cases {
        let mut args = owned(&["--name", "bad", "--listen", "127.0.0.1:0"]);
        args.extend(case.clone());
        let mut process = node(&args);
        let status = process.wait_exit(WAIT);
        assert_eq!(status.code(), Some(2), "{case:?}");
        let out = process
            .rest_of_output(Duration::from_millis(500))
            .join("\n");
        assert!(out.contains("tls error: TLS: "), "{case:?}: {out}");
    }
}
