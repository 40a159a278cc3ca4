//! Wait, never create: poll for the queue (and optionally the READY record) with jittered backoff
//! until a deadline, or until shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;
use tasksub_core::record::State;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{Error, Kind};
use crate::port::{QueueLocator, RecordReader};
use crate::BoxError;

/// Default limit for the queue (and READY) to appear after the client starts.
pub const QUEUE_WAIT_LIMIT: Duration = Duration::from_secs(120);
/// Delays between checks: from about 0.5 s, doubling, up to about 10 s.
pub(crate) const WAIT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

/// What one check found.
enum Check<T> {
    Done(T),
    NotYet,
    Failed(BoxError),
    Fatal(Error),
}

/// How a wait ended.
enum Waited<T> {
    Found(T),
    Stopped,
    Deadline(Option<BoxError>),
    Fatal(Error),
}

/// Runs `check` until it is done or fatal, the deadline passes, or `stop` fires. A check is always
/// made at the deadline itself.
async fn poll<T, F, Fut>(deadline: Instant, stop: &CancellationToken, rng: &mut fastrand::Rng, check: F) -> Waited<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Check<T>>,
{
    let mut last_error = None;
    for attempt in 0u32.. {
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => return Waited::Stopped,
            r = check() => r,
        };
        match result {
            Check::Done(v) => return Waited::Found(v),
            Check::Fatal(e) => return Waited::Fatal(e),
            Check::NotYet => {}
            Check::Failed(e) => last_error = Some(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Waited::Deadline(last_error);
        }
        let delay = WAIT_BACKOFF.delay(attempt, rng).min(deadline - now);
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Waited::Stopped,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    unreachable!("the loop only ends by returning")
}

fn with_last(e: Error, last: Option<BoxError>) -> Error {
    match last {
        Some(source) => e.with_source(source),
        None => e,
    }
}

/// Waits until GetQueueUrl finds `queue`. `Ok(None)` when `stop` fired first.
pub(crate) async fn queue_url<L: QueueLocator>(
    locator: &L,
    queue: &str,
    deadline: Instant,
    stop: &CancellationToken,
    rng: &mut fastrand::Rng,
) -> Result<Option<String>, Error> {
    let started = Instant::now();
    let logged = &AtomicBool::new(false);
    let waited = poll(deadline, stop, rng, || async move {
        match locator.queue_url(queue).await {
            Ok(Some(url)) => Check::Done(url),
            Ok(None) => {
                if !logged.swap(true, Ordering::Relaxed) {
                    tracing::info!(action = "wait-queue", queue, "queue does not exist yet; waiting for the controller");
                }
                Check::NotYet
            }
            Err(e) => {
                tracing::warn!(action = "wait-queue", queue, error = %DisplayErrorContext(&*e), "GetQueueUrl failed; retrying");
                Check::Failed(e)
            }
        }
    })
    .await;
    let waited_ms = started.elapsed().as_millis() as u64;
    match waited {
        Waited::Found(url) => {
            tracing::info!(action = "wait-queue", queue, waited_ms, "queue found");
            Ok(Some(url))
        }
        Waited::Stopped => Ok(None),
        Waited::Fatal(e) => Err(e),
        Waited::Deadline(last) => {
            let e = Error::new(Kind::QueueMissing {
                queue: queue.to_owned(),
                waited: started.elapsed(),
            });
            Err(with_last(e, last))
        }
    }
}

/// One read of the record: READY, a tombstone (fatal), or not yet (each new state logged once).
async fn check_ready<R: RecordReader>(
    records: &R,
    task_id: &str,
    last_state: &Mutex<Option<Option<State>>>,
) -> Check<()> {
    match records.state(task_id).await {
        Ok(Some(State::Ready)) => Check::Done(()),
        Ok(Some(state)) if state.is_tombstone() => Check::Fatal(Error::new(Kind::TaskStopping {
            task_id: task_id.to_owned(),
            state,
        })),
        Ok(state) => {
            let mut last = last_state.lock().expect("not poisoned");
            if *last != Some(state) {
                let shown = state.map_or("none", State::as_str);
                tracing::info!(
                    action = "wait-ready",
                    task_id,
                    state = shown,
                    "record not READY yet; waiting"
                );
            }
            *last = Some(state);
            Check::NotYet
        }
        Err(e) => {
            tracing::warn!(action = "wait-ready", task_id, error = %DisplayErrorContext(&*e), "GetItem failed; retrying");
            Check::Failed(e)
        }
    }
}

/// Waits until the task's record says READY. `Ok(false)` when `stop` fired first.
pub(crate) async fn ready<R: RecordReader>(
    records: &R,
    task_id: &str,
    deadline: Instant,
    stop: &CancellationToken,
    rng: &mut fastrand::Rng,
) -> Result<bool, Error> {
    let started = Instant::now();
    // Outer `None`: nothing seen yet; inner: the record's state (`None` while there is no record).
    let last_state: &Mutex<Option<Option<State>>> = &Mutex::new(None);
    let waited = poll(deadline, stop, rng, || check_ready(records, task_id, last_state)).await;
    match waited {
        Waited::Found(()) => {
            tracing::info!(
                action = "wait-ready",
                task_id,
                waited_ms = started.elapsed().as_millis() as u64,
                "record READY"
            );
            Ok(true)
        }
        Waited::Stopped => Ok(false),
        Waited::Fatal(e) => Err(e),
        Waited::Deadline(last) => {
            let state = last_state.lock().expect("not poisoned").flatten();
            let e = Error::new(Kind::NotReady {
                task_id: task_id.to_owned(),
                waited: started.elapsed(),
                last: state,
            });
            Err(with_last(e, last))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{ScriptedLocator, ScriptedRecords};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Log lines written while the guard lives (this thread only: the tests run on one thread).
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;
        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

    impl Logs {
        fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
            let logs = Self::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish();
            (logs.clone(), tracing::subscriber::set_default(subscriber))
        }
        fn count(&self, needle: &str) -> usize {
            String::from_utf8_lossy(&self.0.lock().unwrap()).matches(needle).count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_queue_is_logged_once_not_at_every_check() {
        let (logs, _guard) = Logs::capture();
        let loc = ScriptedLocator::new([Ok(None), Ok(None), Ok(None), Ok(Some("http://q/url"))]);
        let url = queue_url(
            &loc,
            "q",
            Instant::now() + secs(60),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap();
        assert!(url.is_some());
        assert_eq!(logs.count("queue does not exist yet"), 1);
        assert_eq!(logs.count("queue found"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn each_new_record_state_is_logged_once() {
        let (logs, _guard) = Logs::capture();
        let records = ScriptedRecords::new([
            None,
            Some(State::Provisioning),
            Some(State::Provisioning),
            Some(State::Ready),
        ]);
        let ok = ready(
            &records,
            "t",
            Instant::now() + secs(60),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap();
        assert!(ok);
        assert_eq!(
            logs.count("record not READY yet"),
            2,
            "no record, then PROVISIONING once"
        );
        assert_eq!(logs.count("PROVISIONING"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_found_once_it_appears_with_backoff_between_checks() {
        // GIVEN a queue that appears at the fourth lookup
        let loc = ScriptedLocator::new([Ok(None), Ok(None), Ok(None), Ok(Some("http://q/url"))]);
        let t0 = Instant::now();
        let url = queue_url(
            &loc,
            "tasksub-x",
            t0 + QUEUE_WAIT_LIMIT,
            &CancellationToken::new(),
            &mut fastrand::Rng::with_seed(7),
        )
        .await
        .unwrap();
        // THEN it is returned, and the checks were spaced by the jittered backoff
        assert_eq!(url.as_deref(), Some("http://q/url"));
        let calls = loc.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 4);
        for (i, pair) in calls.windows(2).enumerate() {
            let ceiling = WAIT_BACKOFF.ceiling(i as u32);
            let gap = pair[1] - pair[0];
            assert!(gap >= ceiling / 2 && gap <= ceiling, "gap {i}: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_never_appears_fails_at_the_limit() {
        let loc = ScriptedLocator::new([]);
        let t0 = Instant::now();
        let e = queue_url(
            &loc,
            "tasksub-x",
            t0 + secs(120),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap_err();
        assert!(e.is_queue_missing() && e.is_timeout(), "{e}");
        assert_eq!(t0.elapsed(), secs(120), "the last check is made at the deadline");
        assert!(e.to_string().contains("tasksub-x did not appear within 120 s"), "{e}");
        let calls = loc.calls.lock().unwrap().len();
        assert!(
            (14..=40).contains(&calls),
            "backoff up to ~10 s, never a hot loop: {calls} checks"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lookup_errors_are_retried_and_the_last_one_is_the_source() {
        let loc = ScriptedLocator::new([Err("throttled"), Ok(Some("http://q/url"))]);
        let url = queue_url(
            &loc,
            "q",
            Instant::now() + secs(60),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap();
        assert_eq!(url.as_deref(), Some("http://q/url"));

        let loc = ScriptedLocator::new(std::iter::repeat_n(Err("AccessDenied"), 100));
        let e = queue_url(
            &loc,
            "q",
            Instant::now() + secs(5),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap_err();
        assert!(e.is_queue_missing());
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "AccessDenied");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait_at_once() {
        let loc = ScriptedLocator::new([]);
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(secs(7)).await;
            s.cancel();
        });
        let t0 = Instant::now();
        let found = queue_url(&loc, "q", t0 + secs(120), &stop, &mut fastrand::Rng::new())
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(t0.elapsed(), secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn ready_waits_through_no_record_and_provisioning() {
        let records = ScriptedRecords::new([None, Some(State::Provisioning), Some(State::Ready)]);
        let ok = ready(
            &records,
            "t",
            Instant::now() + secs(60),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap();
        assert!(ok);
        assert_eq!(*records.calls.lock().unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_task_is_an_error_at_once() {
        for state in [State::Draining, State::Gone] {
            let records = ScriptedRecords::new([Some(state)]);
            let t0 = Instant::now();
            let e = ready(
                &records,
                "t",
                t0 + secs(60),
                &CancellationToken::new(),
                &mut fastrand::Rng::new(),
            )
            .await
            .unwrap_err();
            assert!(e.is_task_stopping(), "{e}");
            assert_eq!(e.record_state(), Some(state));
            assert_eq!(t0.elapsed(), Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_never_gets_ready_fails_at_the_limit() {
        let records = ScriptedRecords::new([Some(State::Provisioning)]);
        let e = ready(
            &records,
            "t",
            Instant::now() + secs(30),
            &CancellationToken::new(),
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap_err();
        assert!(e.is_not_ready() && e.is_timeout(), "{e}");
        assert_eq!(e.record_state(), Some(State::Provisioning));
        assert!(e.to_string().contains("last seen: PROVISIONING"), "{e}");
    }
}
