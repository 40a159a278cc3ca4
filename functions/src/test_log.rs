//! A log sink for tests that read what the functions log.

use std::io;
use std::sync::{Arc, Mutex};

/// Everything written to it, shared by its clones (give one to a subscriber's writer, read the other).
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
