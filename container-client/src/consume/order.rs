//! FIFO ordering (pure): at most one job per message group runs, the others wait in receive order.
//!
//! SQS FIFO hands out a group's messages in order and holds the group back while any of them is in
//! flight, but one receive may return several messages of a group. The client runs them one after the
//! other; when one fails, the ones behind it are not run but released (visibility 0), so SQS redelivers
//! them after the failed one. Different groups run concurrently.

use std::collections::{HashMap, VecDeque};

/// Groups that have a job running, and the jobs waiting behind it.
#[derive(Debug)]
pub(crate) struct Groups<J> {
    waiting: HashMap<String, VecDeque<J>>,
}

impl<J> Default for Groups<J> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
        }
    }
}

impl<J> Groups<J> {
    /// Adds a job of `group`: returned when the group was idle (the caller runs it now and the group
    /// is busy), `None` when it waits behind the group's running job.
    pub(crate) fn push(&mut self, group: &str, job: J) -> Option<J> {
        match self.waiting.get_mut(group) {
            Some(queue) => {
                queue.push_back(job);
                None
            }
            None => {
                self.waiting.insert(group.to_owned(), VecDeque::new());
                Some(job)
            }
        }
    }

    /// The running job of `group` succeeded: its next job, or `None` (the group is idle again).
    pub(crate) fn next(&mut self, group: &str) -> Option<J> {
        let next = self.waiting.get_mut(group).and_then(VecDeque::pop_front);
        if next.is_none() {
            self.waiting.remove(group);
        }
        next
    }

    /// The running job of `group` failed: every job waiting behind it, in order (to release, not
    /// run); the group is idle again.
    pub(crate) fn fail(&mut self, group: &str) -> Vec<J> {
        self.waiting.remove(group).map(Vec::from).unwrap_or_default()
    }

    /// Groups with a running job.
    #[cfg(test)]
    pub(crate) fn busy(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_job_of_an_idle_group_runs_the_others_wait_in_order() {
        let mut g = Groups::default();
        assert_eq!(g.push("a", 1), Some(1));
        assert_eq!(g.push("a", 2), None);
        assert_eq!(g.push("b", 10), Some(10), "another group runs at once");
        assert_eq!(g.push("a", 3), None);
        assert_eq!(g.busy(), 2);
        assert_eq!(g.next("a"), Some(2));
        assert_eq!(g.next("a"), Some(3));
        assert_eq!(g.next("a"), None, "drained: idle");
        assert_eq!(g.busy(), 1);
        assert_eq!(g.push("a", 4), Some(4), "an idle group runs its next job at once");
    }

    #[test]
    fn a_failure_hands_back_the_waiting_jobs_and_frees_the_group() {
        let mut g = Groups::default();
        g.push("a", 1);
        g.push("a", 2);
        g.push("a", 3);
        g.push("b", 10);
        g.push("b", 11);
        assert_eq!(g.fail("a"), [2, 3]);
        assert_eq!(g.busy(), 1);
        assert_eq!(g.push("a", 4), Some(4));
        assert_eq!(g.next("b"), Some(11), "other groups are untouched");
        assert!(g.fail("c").is_empty());
        assert_eq!(g.next("c"), None);
    }
}
