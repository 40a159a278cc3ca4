//! Where the sweeper is in each topic's subscription listing, kept between runs.
//!
//! ListSubscriptionsByTopic returns 100 subscriptions a page at 30 calls a second per account, so a topic
//! with 100,000 subscriptions takes 1,000 calls (over 33 s at the quota, 100 s at the sweeper's default
//! pace). One run reads at most a page budget per topic and records where it stopped (the listing's
//! `NextToken`); the next run resumes there, and after the last page the next run starts again at the
//! first. So every subscription is judged once per *cycle*, ⌈pages ÷ budget⌉ runs, at any topic size,
//! instead of the first pages forever.
//!
//! A topic's listing is *complete* for a run only when that run read it from the first page to the last:
//! only then does a recorded subscription missing from it prove the subscription lost (the reconciler's
//! `listed`). A topic too big for one run is judged piecewise (orphans are judged per subscription, which
//! needs no completeness); lost subscriptions on it are found by the rotating audit, which reads each
//! recorded subscription's attributes.
//!
//! Pure: the sweeper loads [`Positions`], asks [`Positions::resume_from`], reads, reports what it read with
//! [`Positions::advance`], and saves them (a dry run never saves).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The key of the table item that holds the [`Positions`]: beside the records, never one of them (a task
/// ID is hexadecimal or a UUID and never starts with `#`). A scan leaves every `#` key out of the records.
pub const ITEM_KEY: &str = "#sweeper-listing-positions";

/// True for the key of an item that is the table's bookkeeping, not a task's record.
pub fn is_bookkeeping(key: &str) -> bool {
    key.starts_with('#')
}

/// Every topic's position, and the revision it was read at (a save is conditional on it, so two sweeps
/// that overlap never move a position backwards or past pages neither read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Positions {
    /// Bumped by every save.
    #[serde(default)]
    pub revision: u64,
    /// Topic ARN → its listing.
    #[serde(default)]
    pub topics: BTreeMap<String, Listing>,
}

/// One topic's listing across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The cycle under way: where the next run resumes. `None`: the next run starts at the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// The last cycle that reached the end of the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<Cycle>,
}

/// A cycle under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// The listing's token for the next page.
    pub next: String,
    /// When the cycle's first page was read.
    pub started: DateTime<Utc>,
    /// Runs that read part of this cycle so far.
    pub runs: u32,
    /// Pages read in this cycle so far.
    pub pages: u64,
    /// Subscriptions read in this cycle so far.
    pub subscriptions: u64,
}

/// A finished cycle: every subscription of the topic was read once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cycle {
    /// When its first page was read.
    pub started: DateTime<Utc>,
    /// When its last page was read.
    pub finished: DateTime<Utc>,
    /// Runs it took.
    pub runs: u32,
    /// Pages it read.
    pub pages: u64,
    /// Subscriptions it read.
    pub subscriptions: u64,
}

impl Cycle {
    /// Seconds from its first page to its last.
    pub fn seconds(&self) -> i64 {
        (self.finished - self.started).num_seconds()
    }
}

/// What one run read of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The run began at the first page (no position, or the stored token was refused and it started over).
    pub from_start: bool,
    /// Pages read.
    pub pages: u64,
    /// Subscriptions read.
    pub subscriptions: u64,
    /// The token of the next unread page; `None`: the run reached the end of the listing.
    pub next: Option<String>,
}

/// What a run's read of one topic covered, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// The topic.
    pub topic: String,
    /// Read from the first page to the last in this run: a recorded subscription missing from it is lost.
    pub complete: bool,
    /// This run reached the end of the listing (its cycle finished).
    pub cycle_finished: bool,
    /// Pages read by this run.
    pub pages: u64,
    /// Subscriptions read by this run.
    pub subscriptions: u64,
    /// Pages of the cycle read so far (this run's included).
    pub cycle_pages: u64,
    /// Runs of the cycle so far (this run's included).
    pub cycle_runs: u32,
    /// The last finished cycle's length in seconds (this run's, when it finished one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle_seconds: Option<i64>,
    /// The last finished cycle's length in runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle_runs: Option<u32>,
}

impl Positions {
    /// The token a run resumes `topic`'s listing from (`None`: the first page).
    pub fn resume_from(&self, topic: &str) -> Option<&str> {
        self.topics.get(topic)?.cursor.as_ref().map(|c| c.next.as_str())
    }

    /// Records what a run read of `topic` at `now` and says what it covered.
    pub fn advance(&mut self, topic: &str, read: Read, now: DateTime<Utc>) -> Coverage {
        let listing = self.topics.entry(topic.to_owned()).or_default();
        // A run from the start begins a new cycle, whatever an older one had reached.
        let mut cursor = match listing.cursor.take() {
            Some(c) if !read.from_start => c,
            _ => Cursor {
                next: String::new(),
                started: now,
                runs: 0,
                pages: 0,
                subscriptions: 0,
            },
        };
        cursor.runs += 1;
        cursor.pages += read.pages;
        cursor.subscriptions += read.subscriptions;
        let finished = read.next.is_none().then_some(Cycle {
            started: cursor.started,
            finished: now,
            runs: cursor.runs,
            pages: cursor.pages,
            subscriptions: cursor.subscriptions,
        });
        let cycle_finished = finished.is_some();
        let complete = read.from_start && cycle_finished;
        let (cycle_pages, cycle_runs) = (cursor.pages, cursor.runs);
        let last = if complete {
            // Read whole in one run: nothing to resume, nothing to keep (nor to write) between runs.
            self.topics.remove(topic);
            finished
        } else {
            match read.next {
                Some(next) => listing.cursor = Some(Cursor { next, ..cursor }),
                None => listing.last_cycle = finished,
            }
            listing.last_cycle.clone()
        };
        Coverage {
            topic: topic.to_owned(),
            complete,
            cycle_finished,
            pages: read.pages,
            subscriptions: read.subscriptions,
            cycle_pages,
            cycle_runs,
            last_cycle_seconds: last.as_ref().map(Cycle::seconds),
            last_cycle_runs: last.as_ref().map(|c| c.runs),
        }
    }

    /// True when these positions differ from `stored` in what a later run needs (a save is worth a write).
    pub fn changed_from(&self, stored: &Positions) -> bool {
        self.topics != stored.topics
    }

    /// Forgets the topics no longer listed (neither configured nor named by a record).
    pub fn retain(&mut self, listed: &BTreeSet<String>) {
        self.topics.retain(|t, _| listed.contains(t));
    }
}

#[cfg(test)]
mod tests;
