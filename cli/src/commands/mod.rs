//! The subcommands.

pub mod doctor;
pub mod init;
pub mod records;
pub mod replay;
pub mod sweep;

/// Exit code: an event failed permanently, or what was asked for does not exist.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or settings.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a transient failure; retrying may succeed.
pub const EXIT_TRANSIENT: u8 = 3;

/// The exit code for a command's error: an AWS call's failure by its kind (transient 3; a missing
/// credential, region or endpoint 2, a usage problem; any other refusal 1), anything else (bad input
/// files, bad settings) 2.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    use tasksub_core::outcome::ErrorKind;
    let port = e
        .chain()
        .find_map(|c| c.downcast_ref::<tasksub_functions::ports::PortError>());
    match port.map(|p| p.kind) {
        Some(k) if k.is_transient() => EXIT_TRANSIENT,
        Some(ErrorKind::Config) | None => EXIT_USAGE,
        Some(_) => EXIT_FAILED,
    }
}

/// Logs go to stderr as JSON (the same shape as the functions'), so stdout stays machine-readable.
/// `RUST_LOG` filters; the default shows warnings only.
pub fn init_logging() {
    let filter = tasksub_functions::runtime::log_filter("warn");
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
