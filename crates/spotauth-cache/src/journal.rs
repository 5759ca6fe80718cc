//! Following the change journal: what other instances wrote, forgotten here within the bound.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use spotauth_domain::ports::{ChangeFeed, RepoError};

use crate::state::SessionCache;

/// Rows read per statement; more are read in further pages of the same poll.
const PAGE: u32 = 1000;

/// How long a skipped position is waited for before it is taken for a rolled-back write. A
/// position is taken when the write's transaction inserts its journal row and becomes visible
/// when it commits, so a later position can be seen first; those commits are milliseconds
/// apart. While a gap is waited for, the rows above it are still acted on at once (and not
/// twice): the wait only keeps the gap's position in the next reads.
const GAP_WAIT: Duration = Duration::from_secs(5);

/// When the journal is (re)joined, the rows this far below its head are read again, for
/// writes that took their position before the head but had not committed yet.
const REJOIN_OVERLAP: u64 = 1000;

/// Where this instance is in the journal.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// Every position at or below this has been seen or given up; `None` before the first read.
    at: Option<u64>,
    /// Positions above `at` already acted on.
    seen: BTreeSet<u64>,
    /// The missing position after `at` (while later ones were seen), and since when.
    gap: Option<(u64, Instant)>,
}

impl Cursor {
    fn rejoin(&mut self, head: u64) {
        *self = Cursor { at: Some(head.saturating_sub(REJOIN_OVERLAP)), ..Cursor::default() };
    }

    /// Moves `at` over the positions seen in a row, and over a gap waited for long enough
    /// (each missing position is waited for [`GAP_WAIT`] from when it became the first one
    /// missing). Returns whether a gap was given up: a write that commits later still would
    /// never be read, so the caller forgets everything.
    fn advance(&mut self, now: Instant) -> bool {
        let Some(mut at) = self.at else { return false };
        let mut gave_up = false;
        loop {
            while self.seen.remove(&(at + 1)) {
                at += 1;
            }
            let Some(next) = self.seen.first().copied() else {
                self.gap = None;
                break;
            };
            match self.gap {
                Some((missing, since)) if missing == at + 1 => {
                    if now.saturating_duration_since(since) < GAP_WAIT {
                        break;
                    }
                    at = next - 1;
                    self.gap = None;
                    gave_up = true;
                }
                _ => {
                    self.gap = Some((at + 1, now));
                    break;
                }
            }
        }
        self.at = Some(at);
        gave_up
    }
}

impl SessionCache {
    /// Reads the journal once (one statement, more only when over 1,000 changes arrived) and
    /// forgets every user another instance changed. On success, cached views may be served
    /// for the staleness bound counted from when this read started. Before the first success,
    /// and after any read that failed for longer than the bound, everything cached is
    /// forgotten and the journal is joined at its head again (whatever was missed meanwhile
    /// is re-read from the database). Returns how many changes were new.
    pub async fn follow_journal(&self, feed: &dyn ChangeFeed) -> Result<usize, RepoError> {
        let started = Instant::now();
        let mut cursor = self.cursor.lock().await;
        let result = self.read_journal(feed, &mut cursor, started).await;
        match &result {
            Ok(_) => self.trust_until(started),
            Err(_) => self.journal_failed(),
        }
        result
    }

    async fn read_journal(
        &self,
        feed: &dyn ChangeFeed,
        cursor: &mut Cursor,
        started: Instant,
    ) -> Result<usize, RepoError> {
        if cursor.at.is_none() || !self.trusted() {
            let head = feed.head().await?;
            self.forget_everything();
            cursor.rejoin(head);
        }
        let mut after = cursor.at.unwrap_or(0);
        let mut new = 0;
        loop {
            let changes = feed.changes_after(after, PAGE).await?;
            for change in &changes {
                if cursor.seen.insert(change.seq) {
                    match change.user {
                        Some(user) => self.forget_user(user),
                        // An erased account: its id is stored nowhere, so forget everyone.
                        None => self.forget_everything(),
                    }
                    new += 1;
                }
            }
            match changes.last() {
                Some(last) if changes.len() == PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        if cursor.advance(started) {
            self.forget_everything();
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(at: u64, seen: &[u64]) -> Cursor {
        Cursor { at: Some(at), seen: seen.iter().copied().collect(), gap: None }
    }

    #[test]
    fn moves_over_what_was_seen_in_a_row() {
        let mut c = cursor(10, &[11, 12, 13]);
        assert!(!c.advance(Instant::now()));
        assert_eq!((c.at, c.seen.len(), c.gap), (Some(13), 0, None));
    }

    #[test]
    fn waits_at_a_gap_then_gives_it_up() {
        let t0 = Instant::now();
        let mut c = cursor(10, &[12, 13]);
        assert!(!c.advance(t0));
        assert_eq!(c.at, Some(10), "11 may still commit");
        assert!(!c.advance(t0 + Duration::from_secs(1)));
        assert_eq!(c.at, Some(10));
        // 11 committed late: seen, and the cursor moves over all of it.
        c.seen.insert(11);
        assert!(!c.advance(t0 + Duration::from_secs(2)));
        assert_eq!((c.at, c.gap), (Some(13), None));

        let mut c = cursor(10, &[12]);
        c.advance(t0);
        assert!(c.advance(t0 + GAP_WAIT), "giving up is reported (the caller forgets everything)");
        assert_eq!((c.at, c.seen.len()), (Some(12), 0), "11 was rolled back");
    }

    #[test]
    fn each_missing_position_gets_its_own_wait() {
        let t0 = Instant::now();
        let mut c = cursor(10, &[12]);
        c.advance(t0);
        // Just before 11's wait ends, 11 and 16 arrive: 13 is now the first missing position,
        // and its wait starts now, not when 11's did.
        c.seen.extend([11, 16]);
        c.advance(t0 + GAP_WAIT - Duration::from_millis(100));
        assert_eq!(c.at, Some(12));
        assert!(!c.advance(t0 + GAP_WAIT), "13 has waited 0.1 s only");
        assert_eq!(c.at, Some(12));
        assert!(c.advance(t0 + 2 * GAP_WAIT));
        assert_eq!(c.at, Some(16));
    }
}
