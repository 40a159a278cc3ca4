//! Test support for tasksub: the moto emulator harness, event builders and the scenario suite that
//! runs on both the in-memory fake and moto.
//!
//! # Layout
//! - [`moto`]: find or start `moto_server` on 127.0.0.1 and build SDK config pointing at it.
pub mod moto;
