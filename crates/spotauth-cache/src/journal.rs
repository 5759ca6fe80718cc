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
    /// Since when the position after `at` has been missing while later ones were seen.
    gap_since: Option<Instant>,
}

impl Cursor {
    fn rejoin(&mut self, head: u64) {
        *self = Cursor { at: Some(head.saturating_sub(REJOIN_OVERLAP)), ..Cursor::default() };
    }

    /// Moves `at` over the positions seen in a row, and over a gap waited for long enough.
    fn advance(&mut self, now: Instant) {
        let Some(mut at) = self.at else { return };
        loop {
            while self.seen.remove(&(at + 1)) {
                at += 1;
            }
            match self.seen.first().copied() {
                None => {
                    self.gap_since = None;
                    break;
                }
                Some(next) => match self.gap_since {
                    Some(since) if now.saturating_duration_since(since) >= GAP_WAIT => {
                        at = next - 1;
                        self.gap_since = None;
                    }
                    Some(_) => break,
                    None => {
                        self.gap_since = Some(now);
                        break;
                    }
                },
            }
        }
        self.at = Some(at);
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
                    self.forget_user(change.user);
                    new += 1;
                }
            }
            match changes.last() {
                Some(last) if changes.len() == PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        cursor.advance(started);
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(at: u64, seen: &[u64]) -> Cursor {
        Cursor { at: Some(at), seen: seen.iter().copied().collect(), gap_since: None }
    }

    #[test]
    fn moves_over_what_was_seen_in_a_row() {
        let mut c = cursor(10, &[11, 12, 13]);
        c.advance(Instant::now());
        assert_eq!((c.at, c.seen.len(), c.gap_since), (Some(13), 0, None));
    }

    #[test]
    fn waits_at_a_gap_then_gives_it_up() {
        let t0 = Instant::now();
        let mut c = cursor(10, &[12, 13]);
        c.advance(t0);
        assert_eq!(c.at, Some(10), "11 may still commit");
        assert!(c.gap_since.is_some());
        c.advance(t0 + Duration::from_secs(1));
        assert_eq!(c.at, Some(10));
        // 11 committed late: seen, and the cursor moves over all of it.
        c.seen.insert(11);
        c.advance(t0 + Duration::from_secs(2));
        assert_eq!((c.at, c.gap_since), (Some(13), None));

        let mut c = cursor(10, &[12]);
        c.advance(t0);
        c.advance(t0 + GAP_WAIT);
        assert_eq!((c.at, c.seen.len()), (Some(12), 0), "11 was rolled back");
    }
}
