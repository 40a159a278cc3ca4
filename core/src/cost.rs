//! What a task costs in AWS requests: the model behind the README's cost table and `tasksub doctor`'s
//! cost line (pure; prices are inputs with us-east-1 defaults).
//!
//! A live task costs its consumer's idle long polls: one ReceiveMessage every [`LONG_POLL_SECONDS`]
//! while the queue is empty, 3,600 ÷ 20 = 180 requests a task-hour, whatever the topic count. Its
//! lifecycle (a start and a stop) costs a handful of requests: the SQS queue's create and delete, one
//! Subscribe and Unsubscribe per topic, the record's writes, two Lambda invocations and the event
//! buffer's requests. Messages cost their delivery into the queue, their receive and their delete (up to
//! 10 per batch call). Sources: Amazon SQS pricing (standard $0.40, FIFO $0.50 per million requests, a
//! request is up to 64 KB), Amazon SNS pricing (API requests $0.50 per million; deliveries to SQS are
//! free), Amazon DynamoDB pricing (on-demand, $0.625 per million write request units, $0.125 per
//! million read request units), AWS Lambda pricing ($0.20 per million requests, $0.0000166667 per
//! GB-second on x86). Free tiers are ignored.

/// The client's long-poll wait (SQS's maximum; a message arrives as soon as it is sent whatever the
/// wait, so a shorter wait only adds requests).
pub const LONG_POLL_SECONDS: f64 = 20.0;

/// Prices in US dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// One SQS request (standard queue).
    pub sqs_request: f64,
    /// One SQS request (FIFO queue).
    pub sqs_fifo_request: f64,
    /// One SNS API request (Subscribe, Unsubscribe).
    pub sns_request: f64,
    /// One DynamoDB write request unit.
    pub ddb_write: f64,
    /// One DynamoDB read request unit.
    pub ddb_read: f64,
    /// One Lambda invocation, duration included (128 MB for about 50 ms).
    pub lambda_invocation: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            sqs_request: 0.40e-6,
            sqs_fifo_request: 0.50e-6,
            sns_request: 0.50e-6,
            ddb_write: 0.625e-6,
            ddb_read: 0.125e-6,
            lambda_invocation: 0.20e-6 + 0.125 * 0.05 * 0.000_016_666_7,
        }
    }
}

/// Requests per task lifecycle, besides the per-topic SNS calls.
mod lifecycle {
    /// CreateQueue (tags included), GetQueueAttributes on a converge, DeleteQueue.
    pub const SQS: f64 = 3.0;
    /// Claim, mark ready, drain, tombstone (one unit each: a record is under 1 KB).
    pub const DDB_WRITES: f64 = 4.0;
    /// The functions' consistent reads, and the client's wait for READY.
    pub const DDB_READS: f64 = 4.0;
    /// The start and the stop.
    pub const INVOCATIONS: f64 = 2.0;
    /// The event buffer: SendMessage, ReceiveMessage, DeleteMessage for each of about 4 state changes.
    pub const BUFFER_SQS: f64 = 12.0;
}

/// How the fleet is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fleet {
    /// Topics each task subscribes to.
    pub topics: usize,
    /// FIFO queues.
    pub fifo: bool,
    /// The client re-reads its record's filters (a table is configured): a read every 5 minutes.
    pub reads_filters: bool,
}

/// The cost of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskCost {
    /// One live hour, idle (no message).
    pub per_hour: f64,
    /// One start and stop.
    pub per_lifecycle: f64,
    /// Per 1,000 messages received, at the worst batching (one message per receive and delete).
    pub per_thousand_messages: f64,
}

/// The cost of one task of `fleet` at `prices`.
pub fn task_cost(fleet: Fleet, prices: Prices) -> TaskCost {
    let sqs = if fleet.fifo {
        prices.sqs_fifo_request
    } else {
        prices.sqs_request
    };
    let polls = 3600.0 / LONG_POLL_SECONDS;
    let refresh = if fleet.reads_filters {
        12.0 * 0.5 * prices.ddb_read
    } else {
        0.0
    };
    let topics = fleet.topics as f64;
    let per_lifecycle = lifecycle::SQS * sqs
        + lifecycle::BUFFER_SQS * prices.sqs_request
        + 2.0 * topics * prices.sns_request
        + lifecycle::DDB_WRITES * prices.ddb_write
        + lifecycle::DDB_READS * prices.ddb_read
        + lifecycle::INVOCATIONS * prices.lambda_invocation;
    TaskCost {
        per_hour: polls * sqs + refresh,
        per_lifecycle,
        // the delivery (SNS's SendMessage to the queue), the receive, the delete
        per_thousand_messages: 1000.0 * 3.0 * sqs,
    }
}

/// Hours in an average month.
pub const HOURS_PER_MONTH: f64 = 730.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(topics: usize, fifo: bool) -> Fleet {
        Fleet {
            topics,
            fifo,
            reads_filters: true,
        }
    }

    /// The figures the README's cost table prints (rounded there).
    #[test]
    fn the_readme_figures() {
        let c = task_cost(fleet(1, false), Prices::default());
        assert!((c.per_hour - 0.000_072_75).abs() < 1e-9, "{c:?}");
        assert!((c.per_lifecycle - 0.000_010_6).abs() < 1e-8, "{c:?}");
        assert!((c.per_thousand_messages - 0.0012).abs() < 1e-12, "{c:?}");
        // 100,000 tasks for a month: about $5,300, the idle polls nearly all of it
        let month = 100_000.0 * c.per_hour * HOURS_PER_MONTH;
        assert!((5_250.0..5_350.0).contains(&month), "{month}");
    }

    /// What moves the figures: FIFO prices, the topic count (lifecycle only), the filter refresh.
    #[test]
    fn each_input_moves_its_figure() {
        let p = Prices::default();
        let base = task_cost(fleet(1, false), p);
        assert!(task_cost(fleet(1, true), p).per_hour > base.per_hour);
        let three = task_cost(fleet(3, false), p);
        assert_eq!(three.per_hour, base.per_hour, "topics cost nothing while idle");
        assert!((three.per_lifecycle - base.per_lifecycle - 4.0 * p.sns_request).abs() < 1e-12);
        let quiet = task_cost(
            Fleet {
                reads_filters: false,
                ..fleet(1, false)
            },
            p,
        );
        assert!((base.per_hour - quiet.per_hour - 6.0 * p.ddb_read).abs() < 1e-12);
    }
}
