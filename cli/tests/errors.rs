//! A broken environment gets a clear error and the documented exit code: 2 for usage and configuration
//! (no event to replay, no credentials, no region), 3 for a transient failure (an endpoint that accepts
//! connections and never answers: bounded by the SDK timeouts, never a hang).

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{stderr, tasksub};
use tasksub_tests::moto::{unique, Moto};

/// `tasksub` with only PATH and `env` (no credentials, no region unless given; no instance metadata).
fn bare(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("run tasksub")
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasksub"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/tasksub-test-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tasksub-test-credentials");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn an_empty_replay_says_so_and_exits_2() {
    let file = std::env::temp_dir().join(unique("empty-"));
    std::fs::write(&file, "\n\n").unwrap();
    let env = [
        ("TASKSUB_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
        ("TASKSUB_ACCOUNT_ID", "123456789012"),
        ("TASKSUB_REGION", "us-east-1"),
        ("TASKSUB_TABLE", "records"),
        ("TASKSUB_CLUSTERS", "prod"),
    ];
    let o = tasksub(&["replay", file.to_str().unwrap()], &env);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no event in"), "{}", stderr(&o));
}

#[test]
fn missing_credentials_or_region_are_configuration_errors() {
    let endpoint = Moto::get().endpoint();
    let no_credentials = [("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)];
    let no_region = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint),
    ];
    for (what, env) in [("credentials", &no_credentials[..]), ("region", &no_region[..])] {
        let started = Instant::now();
        let o = bare(&["list", "--table", "records"], env);
        assert_eq!(o.status.code(), Some(2), "no {what}: {}", stderr(&o));
        assert!(stderr(&o).contains("configured"), "no {what}: {}", stderr(&o));
        assert!(started.elapsed() < Duration::from_secs(20), "no {what}: no retry loop");
    }
}

/// A server that accepts connections and never answers.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    url
}

#[test]
fn an_endpoint_that_never_answers_is_transient_and_bounded() {
    let url = black_hole();
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", url.as_str()),
    ];
    // Without SDK timeouts this would hang for good: the child is killed after 60 s and the test fails.
    let started = Instant::now();
    let mut child = command(
        &["show", "--table", "records", "0123456789abcdef0123456789abcdef"],
        &env,
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("run tasksub");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("tasksub show hung on an endpoint that never answers");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    assert_eq!(status.code(), Some(3));
    // The operation timeout (25 s) bounds it; a little slack for process start-up.
    assert!(took < Duration::from_secs(40), "took {took:?}");
}

/// `doctor` against an endpoint that never answers: every group of checks runs at once, each bounded by
/// one operation timeout, so it ends in about 25 s (not one timeout per check in turn), and its only
/// problems are transient: exit 3.
#[test]
fn doctor_against_an_endpoint_that_never_answers_ends_in_one_timeout_with_exit_3() {
    let url = black_hole();
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("TASKSUB_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
        ("TASKSUB_ACCOUNT_ID", "123456789012"),
        ("TASKSUB_TABLE", "records"),
        ("TASKSUB_CLUSTERS", "prod"),
    ];
    let started = Instant::now();
    let mut child = command(&["doctor"], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run tasksub");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("tasksub doctor did not end within 120 s on an endpoint that never answers");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(
        out.contains("no answer within 25 s") || out.contains("could not check"),
        "{out}"
    );
    // one operation timeout (25 s) bounds every group; slack for start-up and a loaded machine
    assert!(took < Duration::from_secs(60), "took {took:?}\n{out}");
}
