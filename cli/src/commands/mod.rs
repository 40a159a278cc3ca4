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
