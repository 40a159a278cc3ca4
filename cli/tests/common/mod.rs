//! Running the real `tasksub` binary against moto, for the CLI tests.

use std::process::{Command, Output};

use tasksub_tests::moto::Moto;

/// Runs `tasksub` with a clean environment: moto behind `AWS_ENDPOINT_URL`, test credentials, and `env`.
pub fn tasksub(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasksub"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", Moto::get().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tasksub")
}

/// Standard output as text.
#[allow(dead_code)] // not every test file reads stdout
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
#[allow(dead_code)] // not every test file reads stderr
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
