//! The room's version as this instance knows it, and the event streams that carry it to pages.
//!
//! Every instance polls the shared version (one statement per `ROOM_EVENTS_POLL_MS`, whatever
//! the number of pages or requests) and publishes it on a `watch` channel; a change made on this
//! instance is published at once. A page sees a change from another instance within the poll
//! interval plus its own network delay. When the database cannot be read, the version stays
//! where it was (pages keep what they show and keep their polling fallback).

use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use spotauth_domain::room::RoomService;
use tokio::sync::watch;

/// The room's version on this instance.
#[derive(Debug)]
pub struct RoomFeed {
    version: watch::Sender<u64>,
}

impl Default for RoomFeed {
    fn default() -> Self {
        RoomFeed { version: watch::channel(0).0 }
    }
}

impl RoomFeed {
    /// Reads the shared version and publishes it when it moved.
    pub async fn refresh(&self, room: &RoomService) {
        match room.version().await {
            Ok(v) => {
                self.version.send_if_modified(|current| {
                    let moved = *current != v;
                    *current = v;
                    moved
                });
            }
            Err(e) => tracing::debug!(error = %e, "room version unavailable"),
        }
    }

    /// A receiver of the version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

fn event(version: u64) -> Bytes {
    Bytes::from(format!("event: room\ndata: {{\"version\":{version}}}\n\n"))
}

/// The SSE body: the version now, then each new one, and `: keepalive` when idle; every
/// `remind_after` idle keep-alives the version again instead, so pages also re-read the list
/// when nothing was recorded (a session that simply ran out moves no version).
pub fn event_stream(
    versions: watch::Receiver<u64>,
    keepalive: Duration,
    remind_after: u32,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let first = *versions.borrow();
    futures_util::stream::unfold((versions, Some(first), 0u32), move |(mut rx, pending, idle)| async move {
        if let Some(v) = pending {
            return Some((Ok(event(v)), (rx, None, 0)));
        }
        match tokio::time::timeout(keepalive, rx.changed()).await {
            Ok(Ok(())) => {
                let v = *rx.borrow_and_update();
                Some((Ok(event(v)), (rx, None, 0)))
            }
            // The instance is shutting down: end the stream (the page reconnects elsewhere).
            Ok(Err(_)) => None,
            Err(_) if idle + 1 >= remind_after.max(1) => {
                let v = *rx.borrow();
                Some((Ok(event(v)), (rx, None, 0)))
            }
            Err(_) => Some((Ok(Bytes::from_static(b": keepalive\n\n")), (rx, None, idle + 1))),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use futures_util::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn events_keepalives_and_a_reminder_when_idle() {
        let feed = RoomFeed::default();
        let stream = event_stream(feed.subscribe(), Duration::from_millis(20), 3);
        futures_util::pin_mut!(stream);
        let mut next = async || String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(next().await, "event: room\ndata: {\"version\":0}\n\n", "the version at once");
        assert_eq!(next().await, ": keepalive\n\n");
        feed.version.send_replace(7);
        assert_eq!(next().await, "event: room\ndata: {\"version\":7}\n\n", "a change at once");
        assert_eq!(next().await, ": keepalive\n\n");
        assert_eq!(next().await, ": keepalive\n\n");
        assert_eq!(next().await, "event: room\ndata: {\"version\":7}\n\n", "a reminder after 3 idle rounds");
    }
}
