//! A wrapper around any ports that counts calls and injects faults, so the same crash and throttling
//! scenarios run on the in-memory fake and on the emulator.
//!
//! A test double: compiled only with the `test-util` feature (not in the Lambda binaries).
#![cfg(feature = "test-util")]

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tasksub_core::outcome::ErrorKind;

use crate::ports::PortError;
use crate::wrap::Wrap;

/// AWS operations that change something.
pub const WRITE_OPS: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "CreateQueue",
    "DeleteQueue",
    "SetQueueAttributes",
    "Subscribe",
    "Unsubscribe",
    "SetSubscriptionAttributes",
];

#[derive(Debug, Clone)]
struct Fault {
    op: &'static str,
    skip: usize,
    kind: ErrorKind,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<&'static str>,
    faults: Vec<Fault>,
}

/// Counts every call and fails the ones scripted with [`Instrumented::fail_nth`].
#[derive(Debug, Clone)]
pub struct Instrumented<P> {
    inner: P,
    log: Arc<Mutex<Log>>,
}

impl<P> Instrumented<P> {
    /// Wraps ports.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// The wrapped ports.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("instrumented log lock")
    }

    /// Makes the `nth` (1-based) next call of `op` fail with `kind` before it reaches the inner ports.
    pub fn fail_nth(&self, op: &'static str, nth: usize, kind: ErrorKind) {
        self.lock().faults.push(Fault {
            op,
            skip: nth.saturating_sub(1),
            kind,
        });
    }

    /// Every call so far, in order (failed ones included).
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    /// Calls that change (or try to change) something.
    pub fn write_calls(&self) -> Vec<&'static str> {
        self.calls().into_iter().filter(|c| WRITE_OPS.contains(c)).collect()
    }

    /// Forgets the call log (faults stay).
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    fn enter(&self, op: &'static str) -> Result<(), PortError> {
        let mut log = self.lock();
        log.calls.push(op);
        if let Some(i) = log.faults.iter().position(|f| f.op == op) {
            if log.faults[i].skip == 0 {
                let f = log.faults.remove(i);
                return Err(PortError::new(f.kind, op, "injected fault"));
            }
            log.faults[i].skip -= 1;
        }
        Ok(())
    }
}

impl<P: Send + Sync> Wrap for Instrumented<P> {
    type Inner = P;

    fn inner(&self) -> &P {
        &self.inner
    }

    /// Logs the call, or fails it with a scripted fault before it reaches the inner ports.
    async fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        self.enter(op)?;
        call.await
    }
}

crate::wrap_ports!([P: Send + Sync] Instrumented<P>: Records, Queues, Subscriptions, Tasks);
