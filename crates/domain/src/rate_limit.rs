//! Per-source request limits over fixed windows, shared by replicas
//! without a write per request.
//!
//! Each replica counts the requests it admits per (class, source) in the
//! current window and periodically publishes those counts; it learns the
//! other replicas' totals at the same time. A request is admitted while
//! this replica's count plus the others' last known total is under the
//! limit. Replicas therefore agree within one publishing interval (and the
//! others' totals are only fetched for sources that could matter), which
//! is the trade the design makes against a database write per request.

use std::collections::HashMap;

/// Length of a window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;

/// Sources tracked per window; beyond it new sources are admitted
/// untracked rather than growing memory without bound under a flood from
/// many addresses (the global caps guard that case).
pub const MAX_TRACKED: usize = 200_000;

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted and admitted.
    Admit,
    /// Over the limit; retry after this many seconds (the window's end).
    Refuse { retry_after_secs: u64 },
}

#[derive(Debug, Clone, Default)]
struct Count {
    local: u32,
    remote: u32,
    dirty: bool,
}

/// The counts of one replica for one kind of request.
#[derive(Debug, Clone)]
pub struct RateWindow {
    limit: u32,
    window_start_ms: i64,
    counts: HashMap<String, Count>,
}

/// A count to publish: `(source, requests this replica admitted)`.
pub type Published = (String, u32);

impl RateWindow {
    /// At most `limit` requests per source per window (`0`: unlimited).
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            window_start_ms: 0,
            counts: HashMap::new(),
        }
    }

    /// The limit per source and window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Start of the window `now_ms` falls in.
    pub fn window_of(now_ms: i64) -> i64 {
        now_ms - now_ms.rem_euclid(WINDOW_MS)
    }

    fn roll(&mut self, now_ms: i64) {
        let start = Self::window_of(now_ms);
        if start != self.window_start_ms {
            self.window_start_ms = start;
            self.counts.clear();
        }
    }

    /// Counts a request of `source` at `now_ms` if it is under the limit.
    pub fn check(&mut self, source: &str, now_ms: i64) -> Admission {
        if self.limit == 0 {
            return Admission::Admit;
        }
        self.roll(now_ms);
        let tracked = self.counts.len();
        let count = match self.counts.get_mut(source) {
            Some(count) => count,
            None if tracked >= MAX_TRACKED => return Admission::Admit,
            None => self.counts.entry(source.to_owned()).or_default(),
        };
        if count.local.saturating_add(count.remote) >= self.limit {
            let end = self.window_start_ms + WINDOW_MS;
            let secs = (end - now_ms).max(1000) / 1000;
            return Admission::Refuse {
                retry_after_secs: u64::try_from(secs).unwrap_or(1),
            };
        }
        count.local += 1;
        count.dirty = true;
        Admission::Admit
    }

    /// The window and the counts changed since the last call, to publish.
    pub fn take_changes(&mut self, now_ms: i64) -> (i64, Vec<Published>) {
        self.roll(now_ms);
        let changed = self
            .counts
            .iter_mut()
            .filter(|(_, c)| c.dirty)
            .map(|(source, c)| {
                c.dirty = false;
                (source.clone(), c.local)
            })
            .collect();
        (self.window_start_ms, changed)
    }

    /// Marks `sources` of `window_start_ms` as still to publish, after
    /// publishing them failed: the next round sends them again instead of
    /// waiting for their next request.
    pub fn unpublished(&mut self, window_start_ms: i64, sources: &[Published]) {
        if window_start_ms != self.window_start_ms {
            return;
        }
        for (source, _) in sources {
            if let Some(count) = self.counts.get_mut(source) {
                count.dirty = true;
            }
        }
    }

    /// Records the other replicas' totals for `window_start_ms` (sources
    /// not listed count as zero elsewhere).
    pub fn set_remote(&mut self, window_start_ms: i64, totals: &[(String, u32)]) {
        if window_start_ms != self.window_start_ms {
            return;
        }
        for count in self.counts.values_mut() {
            count.remote = 0;
        }
        for (source, total) in totals {
            if let Some(count) = self.counts.get_mut(source) {
                count.remote = *total;
            } else if self.counts.len() < MAX_TRACKED {
                self.counts.insert(
                    source.clone(),
                    Count {
                        remote: *total,
                        ..Count::default()
                    },
                );
            }
        }
    }

    /// The smallest total elsewhere worth fetching: a quarter of the limit
    /// (a smaller one lets a source exceed the limit by at most that).
    pub fn remote_threshold(&self) -> u32 {
        (self.limit / 4).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000; // a window boundary

    #[test]
    fn counts_that_failed_to_publish_are_published_again() {
        let mut w = RateWindow::new(10);
        assert_eq!(w.check("a", T0 + 10), Admission::Admit);
        let (start, changes) = w.take_changes(T0 + 20);
        assert_eq!(changes, vec![("a".to_owned(), 1)]);
        assert!(w.take_changes(T0 + 30).1.is_empty(), "nothing new");
        w.unpublished(start, &changes);
        assert_eq!(w.take_changes(T0 + 40).1, vec![("a".to_owned(), 1)]);
        // A failure reported after the window rolled over changes nothing.
        w.unpublished(start, &changes);
        assert!(w.take_changes(T0 + WINDOW_MS + 1).1.is_empty());
    }

    #[test]
    fn admits_up_to_the_limit_per_source_and_window() {
        let mut w = RateWindow::new(3);
        for _ in 0..3 {
            assert_eq!(w.check("a", T0 + 10), Admission::Admit);
        }
        assert_eq!(
            w.check("a", T0 + 10_000),
            Admission::Refuse {
                retry_after_secs: 50
            }
        );
        assert_eq!(w.check("b", T0 + 10_000), Admission::Admit, "other sources");
        assert_eq!(
            w.check("a", T0 + WINDOW_MS),
            Admission::Admit,
            "next window"
        );
    }

    #[test]
    fn other_replicas_counts_are_added() {
        let mut w = RateWindow::new(10);
        assert_eq!(w.check("a", T0), Admission::Admit);
        let (start, changes) = w.take_changes(T0 + 1);
        assert_eq!((start, changes), (T0, vec![("a".to_owned(), 1)]));
        assert!(w.take_changes(T0 + 2).1.is_empty(), "nothing new");
        w.set_remote(T0, &[("a".into(), 9), ("c".into(), 10)]);
        assert!(matches!(w.check("a", T0 + 3), Admission::Refuse { .. }));
        assert!(matches!(w.check("c", T0 + 3), Admission::Refuse { .. }));
        // A stale answer for another window is ignored.
        w.set_remote(T0 - WINDOW_MS, &[("b".into(), 100)]);
        assert_eq!(w.check("b", T0 + 4), Admission::Admit);
        assert_eq!(w.remote_threshold(), 2);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut w = RateWindow::new(0);
        for _ in 0..1000 {
            assert_eq!(w.check("a", T0), Admission::Admit);
        }
    }
}
