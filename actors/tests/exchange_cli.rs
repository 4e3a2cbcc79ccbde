//! `netsvc exchange` refuses settings it cannot use at start, with status 2.

use std::time::Duration;

use netsvc_integration_tests::Process;

const NETSVC: &str = env!("CARGO_BIN_EXE_netsvc");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_bad_policy_or_secret_stops_the_exchange_at_start_with_status_2() {
    let dir = std::env::temp_dir().join(format!("netsvc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (policy, secret) = (dir.join("policy.json"), dir.join("secret"));
    std::fs::write(&policy, r#"{"peers": [{"nodes": "typo"}]}"#).unwrap();
    std::fs::write(&secret, "short\n").unwrap();
    let missing = dir.join("missing");
    let cases = [
        ["--policy", policy.to_str().unwrap()],
        ["--secret-file", secret.to_str().unwrap()],
        ["--secret-file", missing.to_str().unwrap()],
    ];
    for case in cases {
        let mut args = vec!["exchange", "--listen", "127.0.0.1:0"];
        args.extend(case);
        let mut process = Process::start(NETSVC, &args);
        assert_eq!(process.wait_exit(WAIT).code(), Some(2), "{case:?}");
        let out = process.rest_of_output(Duration::from_millis(200));
        assert!(
            out.iter().all(|l| !l.contains("listening")),
            "{case:?}: {out:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
