//! Unit tests of the token use case, [`TokenService`](super::TokenService), over mocks of its
//! ports (fixtures in [`crate::test_support`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use mockall::Sequence;
use mockall::predicate::*;

use crate::ports::{CipherError, LeaseOutcome, RefreshEvent, RepoError, SpotifyError, TokenError, UserLock};
use crate::session::{LiveAfter, SessionPolicy};
use crate::test_support::*;
use crate::token::{AccessGrant, TokenColumn, TokenVersion};

/// The access token in the clear, or the error.
fn plain(got: Result<AccessGrant, TokenError>) -> Result<String, TokenError> {
    got.map(|g| g.access_token.expose().to_owned())
}

fn ok(token: &str) -> Result<String, TokenError> {
    Ok(token.to_owned())
}

const POLL_SLEEP: Duration = Duration::from_millis(150); // lease_poll + the jitter bound (poll / 2)

// --- The fresh path and what short-circuits ---------------------------------------------------

#[tokio::test]
async fn a_fresh_token_is_served_without_calling_spotify() {
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, 3000, 86400))));
    fx.accounts.expect_refresh().never();
    fx.locks.expect_lock().never();
    let (svc, probe) = fx.token_service();
    let g = svc.valid_access_token(uid(1), SKEW).await.unwrap();
    assert_eq!(g.access_token.expose(), "OLD-AT");
    assert_eq!(g.expires_at, NOW.plus(secs(3000)));
    assert!(probe.events().is_empty());
}

#[tokio::test]
async fn a_given_row_serves_a_fresh_token_without_a_read_and_anything_else_reads_again() {
    // Fresh and usable: served from the row; no store call at all (the token, lease and backoff
    // mocks have no other expectation), no lock, no Spotify call.
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().never();
    fx.locks.expect_lock().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let g = svc.valid_access_token_given(uid(1), Some(stored(uid(1), 3000, 86400)), SKEW).await.unwrap();
    assert_eq!(g.access_token.expose(), "OLD-AT");
    drop(svc);

    // Expiring, marked for re-authorization, past the absolute expiry, or absent: the copy is
    // never acted on; the full path reads the row again (here it finds a fresh one).
    let mut marked = stored(uid(1), 3000, 86400);
    marked.reauth_required = true;
    for row in [Some(stored(uid(1), 100, 86400)), Some(marked), Some(stored(uid(1), 3000, -1)), None] {
        let mut fx = Fixture::new();
        fx.tokens.expect_load_tokens().times(1).returning(|id| Ok(Some(stored(id, 3000, 86400))));
        fx.tokens.expect_mark_reauth_required().never();
        fx.accounts.expect_refresh().never();
        let (svc, _) = fx.token_service();
        let g = svc.valid_access_token_given(uid(1), row, SKEW).await.unwrap();
        assert_eq!(g.access_token.expose(), "OLD-AT");
    }
}

#[tokio::test]
async fn a_given_stale_row_is_re_read_before_anything_else() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.tokens
        .expect_load_tokens()
        .with(eq(uid(1)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|id| Ok(Some(stored(id, 100, 86400))));
    fx.locks.expect_lock().with(eq(uid(1))).times(1).in_sequence(&mut seq).returning(|_| free_lock());
    // Another caller refreshed meanwhile.
    fx.tokens
        .expect_load_tokens()
        .with(eq(uid(1)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|id| Ok(Some(stored_as(id, "NEW-AT", 3600, 86400, 6))));
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let got = svc.valid_access_token_given(uid(1), Some(stored(uid(1), 100, 86400)), SKEW).await;
    assert_eq!(plain(got), ok("NEW-AT"));
}

#[tokio::test]
async fn a_given_row_is_never_marked_for_reauthorization_only_the_row_read_again() {
    // The copy (version 5) is past its absolute expiry; the row read again (version 6) too: the
    // mark names version 6, and nothing else happens.
    let mut fx = Fixture::new();
    fx.loads(uid(1), vec![Some(stored_as(uid(1), "OLD-AT", -10, -1, 6))]);
    fx.tokens.expect_mark_reauth_required().with(eq(uid(1)), eq(TokenVersion(6))).times(1).returning(|_, _| Ok(()));
    fx.locks.expect_lock().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let got = svc.valid_access_token_given(uid(1), Some(stored(uid(1), -10, -1)), SKEW).await;
    assert_eq!(plain(got), Err(TokenError::ReauthRequired));
    drop(svc);

    // The copy is marked and the row read again is still marked: no second mark, no lock.
    let mut marked = stored(uid(1), 3000, 86400);
    marked.reauth_required = true;
    let mut fx = Fixture::new();
    fx.loads(uid(1), vec![Some(marked.clone())]);
    fx.tokens.expect_mark_reauth_required().never();
    fx.locks.expect_lock().never();
    let (svc, _) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token_given(uid(1), Some(marked), SKEW).await), Err(TokenError::ReauthRequired));
}

#[tokio::test]
async fn reauth_mark_and_disconnect_short_circuit() {
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().with(eq(uid(1))).returning(|id| {
        let mut s = stored(id, -1, 86400);
        s.reauth_required = true;
        Ok(Some(s))
    });
    fx.tokens.expect_load_tokens().with(eq(uid(2))).returning(|_| Ok(None));
    fx.tokens.expect_mark_reauth_required().never();
    fx.locks.expect_lock().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    assert_eq!(svc.valid_access_token(uid(1), SKEW).await.unwrap_err(), TokenError::ReauthRequired);
    assert_eq!(svc.valid_access_token(uid(2), SKEW).await.unwrap_err(), TokenError::NotConnected);
}

#[tokio::test]
async fn a_refresh_token_past_six_months_is_known_dead_without_a_call() {
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, -1))));
    fx.tokens.expect_mark_reauth_required().with(eq(uid(1)), eq(TokenVersion(5))).times(1).returning(|_, _| Ok(()));
    fx.locks.expect_lock().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let err = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::ReauthRequired);
}

#[tokio::test]
async fn a_ciphertext_bound_to_another_user_is_refused() {
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().returning(|_| Ok(Some(stored(uid(99), 3000, 86400))));
    let (svc, _) = fx.token_service();
    let err = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::Cipher(CipherError::Tampered));
}

#[tokio::test]
async fn a_token_under_a_retired_key_becomes_reconnect_spotify_not_a_refresh_loop() {
    for access_expires_in in [3000, 10] {
        let mut fx = Fixture::new();
        fx.tokens.expect_load_tokens().returning(move |id| {
            let mut row = stored(id, access_expires_in, 86400);
            row.access_token = crate::token::EncryptedToken::from_bytes(b"retired|access".to_vec());
            row.refresh_token = crate::token::EncryptedToken::from_bytes(b"retired|refresh".to_vec());
            Ok(Some(row))
        });
        fx.lock_free();
        fx.no_backoff();
        fx.lease_free();
        fx.accounts.expect_refresh().never();
        fx.tokens.expect_mark_reauth_required().with(eq(uid(1)), eq(TokenVersion(5))).times(1).returning(|_, _| Ok(()));
        let (svc, _) = fx.token_service();
        let err = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
        assert_eq!(err, TokenError::ReauthRequired, "fresh for {access_expires_in} s");
    }
}

// --- One attempt and its write ----------------------------------------------------------------

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_a_missing_refresh_token_keeps_the_old_one() {
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, 100, 86400))));
    fx.tokens
        .expect_store_refreshed()
        .withf(|id, v, t| {
            *id == uid(1)
                && *v == TokenVersion(5)
                && t.refresh_token.is_none()
                && t.access_token == fake_ciphertext(TokenColumn::Access, uid(1), "NEW-AT")
                && t.access_expires_at == NOW.plus(secs(3600))
        })
        .times(1)
        .returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().withf(|rt| rt.expose() == "OLD-RT").times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, probe) = fx.token_service();
    let g = svc.valid_access_token(uid(1), SKEW).await.unwrap();
    assert_eq!(g.access_token.expose(), "NEW-AT");
    assert_eq!(g.expires_at, NOW.plus(secs(3600)));
    assert_eq!(probe.events(), vec![RefreshEvent::Refreshed]);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_in_the_same_write() {
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, 86400))));
    fx.tokens
        .expect_store_refreshed()
        .withf(|id, _, t| t.refresh_token == Some(fake_ciphertext(TokenColumn::Refresh, *id, "NEW-RT")))
        .times(1)
        .returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", Some("NEW-RT"))));
    let (svc, _) = fx.token_service();
    svc.valid_access_token(uid(1), SKEW).await.unwrap();
}

#[tokio::test]
async fn a_lost_compare_and_swap_still_serves_the_new_token() {
    // A login replaced the tokens between our read and our write: ours is still valid.
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, 86400))));
    fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Err(RepoError::StaleVersion));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, _) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("NEW-AT"));
}

#[tokio::test]
async fn invalid_grant_marks_reauthorization_and_is_not_retried() {
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, 86400))));
    fx.tokens.expect_mark_reauth_required().with(eq(uid(1)), eq(TokenVersion(5))).times(1).returning(|_, _| Ok(()));
    fx.accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::ReauthRequired));
    let (svc, probe) = fx.token_service();
    let err = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::ReauthRequired);
    assert_eq!(probe.events(), vec![RefreshEvent::Reauth(uid(1))]);
}

#[tokio::test]
async fn outage_serves_the_old_token_while_valid_else_unavailable() {
    // The retry hint is the policy's `unavailable_retry_after`, as production always answered.
    let unavailable = TokenError::Unavailable { retry_after: Some(refresh_policy().unavailable_retry_after) };
    for (expires_in, outcome, served_stale) in [(100, ok("OLD-AT"), true), (-1, Err(unavailable), false)] {
        let mut fx = Fixture::new();
        fx.calm();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.tokens.expect_store_refreshed().never();
        fx.accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::Unavailable("503".into())));
        let (svc, probe) = fx.token_service();
        let got = svc.valid_access_token(uid(1), SKEW).await;
        assert_eq!(plain(got), outcome);
        let mut events = vec![RefreshEvent::Unavailable(uid(1))];
        if served_stale {
            events.push(RefreshEvent::ServedStale);
        }
        assert_eq!(probe.events(), events);
    }
}

// --- A token a client reports refused ----------------------------------------------------------

fn refused(token: &str) -> crate::secret::AccessToken {
    crate::secret::AccessToken::new(token).unwrap()
}

#[tokio::test]
async fn a_refused_token_still_stored_is_refreshed_once_even_while_fresh() {
    let mut fx = Fixture::new();
    fx.calm();
    // The session's copy and every re-read (the full path, under the lock, under the lease)
    // still hold the refused token, fresh for an hour.
    fx.loads(uid(1), vec![Some(stored(uid(1), 3000, 86400)); 3]);
    fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, probe) = fx.token_service();
    let got = svc.replacement_for(uid(1), Some(stored(uid(1), 3000, 86400)), &refused("OLD-AT"), SKEW).await;
    assert_eq!(plain(got), ok("NEW-AT"));
    assert_eq!(probe.events(), vec![RefreshEvent::Refreshed]);
}

#[tokio::test]
async fn a_refused_token_already_replaced_is_answered_with_the_current_one_without_a_call() {
    // Another tab reported it first: the session's row already holds the new token.
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().never();
    fx.locks.expect_lock().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let row = stored_as(uid(1), "NEW-AT", 3600, 86400, 6);
    let got = svc.replacement_for(uid(1), Some(row), &refused("OLD-AT"), SKEW).await;
    assert_eq!(plain(got), ok("NEW-AT"));
    drop(svc);

    // Joined a single flight that replaced it meanwhile: served from the re-read, no call.
    let mut fx = Fixture::new();
    fx.calm();
    fx.loads(uid(1), vec![Some(stored(uid(1), 3000, 86400)), Some(stored_as(uid(1), "NEW-AT", 3600, 86400, 6))]);
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    let got = svc.replacement_for(uid(1), Some(stored(uid(1), 3000, 86400)), &refused("OLD-AT"), SKEW).await;
    assert_eq!(plain(got), ok("NEW-AT"));
}

#[tokio::test]
async fn a_refused_token_is_never_served_back_even_when_spotify_is_down() {
    let unavailable = TokenError::Unavailable { retry_after: Some(refresh_policy().unavailable_retry_after) };
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, 3000, 86400))));
    fx.accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::Unavailable("503".into())));
    let (svc, probe) = fx.token_service();
    let got = svc.replacement_for(uid(1), None, &refused("OLD-AT"), SKEW).await;
    assert_eq!(plain(got), Err(unavailable));
    assert_eq!(probe.events(), vec![RefreshEvent::Unavailable(uid(1))], "not served stale");
}

#[tokio::test]
async fn rate_limit_passes_retry_after_when_no_valid_token_is_at_hand() {
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -1, 86400))));
    fx.accounts.expect_refresh().returning(|_| Err(SpotifyError::RateLimited { retry_after: secs(30) }));
    fx.limits.expect_extend_backoff().returning(|_, until, _| Ok(until));
    let (svc, _) = fx.token_service();
    let err = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::RateLimited { retry_after: secs(30) });
}

#[tokio::test]
async fn holding_the_lease_a_row_refreshed_meanwhile_is_served_without_a_call() {
    // Another instance released its lease just before we took it: the read under the lease
    // finds its token.
    let mut fx = Fixture::new();
    fx.calm();
    let stale = Some(stored(uid(1), 100, 86400));
    fx.loads(uid(1), vec![stale.clone(), stale, Some(stored_as(uid(1), "OTHER-AT", 3600, 86400, 6))]);
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("OTHER-AT"));
}

// --- Single flight ----------------------------------------------------------------------------

#[tokio::test]
async fn a_joined_single_flight_re_reads_and_serves_the_token_the_first_caller_wrote() {
    let mut fx = Fixture::new();
    fx.loads(uid(1), vec![Some(stored(uid(1), 100, 86400)), Some(stored_as(uid(1), "NEW-AT", 3600, 86400, 6))]);
    fx.locks.expect_lock().with(eq(uid(1))).times(1).returning(|_| UserLock { joined: true, guard: Box::new(()) });
    fx.limits.expect_backoff_until().never();
    fx.tokens.expect_try_acquire_refresh_lease().never();
    fx.accounts.expect_refresh().never();
    let (svc, probe) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("NEW-AT"));
    assert_eq!(probe.events(), vec![RefreshEvent::SingleFlightJoin]);
}

// --- The shared backoff -----------------------------------------------------------------------

#[tokio::test]
async fn while_a_backoff_is_in_force_no_refresh_is_attempted() {
    let until = NOW.plus(secs(20));
    let limited = TokenError::RateLimited { retry_after: secs(20) };
    for (expires_in, outcome) in [(100, ok("OLD-AT")), (-1, Err(limited))] {
        let mut fx = Fixture::new();
        fx.lock_free();
        let row = Some(stored(uid(1), expires_in, 86400));
        fx.loads(uid(1), vec![row.clone(), row]);
        fx.limits.expect_backoff_until().withf(|c| c == CLIENT_ID).times(1).returning(move |_| Ok(Some(until)));
        fx.tokens.expect_try_acquire_refresh_lease().never();
        fx.accounts.expect_refresh().never();
        let (svc, probe) = fx.token_service();
        let served = outcome.is_ok();
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), outcome);
        let mut events = vec![RefreshEvent::BackoffUntil(until), RefreshEvent::BackoffBlocked];
        if served {
            events.push(RefreshEvent::ServedStale);
        }
        assert_eq!(probe.events(), events);
    }
}

#[tokio::test]
async fn a_backoff_that_ended_does_not_block() {
    let mut fx = Fixture::new();
    fx.lock_free();
    fx.lease_free();
    fx.limits.expect_backoff_until().times(1).returning(|_| Ok(Some(NOW.minus(secs(1)))));
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, 100, 86400))));
    fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, probe) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("NEW-AT"));
    assert_eq!(probe.events(), vec![RefreshEvent::Refreshed]);
}

#[tokio::test]
async fn a_429_extends_the_shared_backoff_by_the_clamped_retry_after() {
    // (Retry-After, the end asked for, the end the store says is in force, access token expiry)
    let cases = [
        (secs(0), secs(1), secs(1), -1),
        (secs(30), secs(30), secs(30), -1),
        (secs(86_400), refresh_policy().max_backoff, refresh_policy().max_backoff, -1),
        // Another instance recorded a longer backoff: that one is reported.
        (secs(30), secs(30), secs(100), -1),
        // A still-valid token is served meanwhile.
        (secs(30), secs(30), secs(30), 100),
    ];
    for (retry_after, wanted, in_force, expires_in) in cases {
        let mut fx = Fixture::new();
        fx.calm();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.accounts.expect_refresh().times(1).returning(move |_| Err(SpotifyError::RateLimited { retry_after }));
        fx.limits
            .expect_extend_backoff()
            .withf(move |c, until, now| c == CLIENT_ID && *until == NOW.plus(wanted) && *now == NOW)
            .times(1)
            .returning(move |_, _, _| Ok(NOW.plus(in_force)));
        let (svc, probe) = fx.token_service();
        let got = plain(svc.valid_access_token(uid(1), SKEW).await);
        let mut events = vec![RefreshEvent::RateLimited, RefreshEvent::BackoffUntil(NOW.plus(in_force))];
        if expires_in > 0 {
            assert_eq!(got, ok("OLD-AT"));
            events.push(RefreshEvent::ServedStale);
        } else {
            assert_eq!(got, Err(TokenError::RateLimited { retry_after: in_force }), "Retry-After {retry_after:?}");
        }
        assert_eq!(probe.events(), events);
    }
}

#[tokio::test]
async fn within_a_known_backoff_the_store_is_not_asked_again() {
    let mut fx = Fixture::new();
    fx.lock_free();
    fx.limits.expect_backoff_until().times(1).returning(|_| Ok(None));
    fx.tokens.expect_try_acquire_refresh_lease().times(1).returning(|_, _, _, _| Ok(LeaseOutcome::Acquired));
    fx.tokens.expect_release_refresh_lease().times(1).returning(|_, _| Ok(()));
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -1, 86400))));
    fx.accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::RateLimited { retry_after: secs(30) }));
    fx.limits.expect_extend_backoff().times(1).returning(|_, until, _| Ok(until));
    let (svc, probe) = fx.token_service();
    let first = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(first, TokenError::RateLimited { retry_after: secs(30) });
    probe.advance(secs(10));
    let second = svc.valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(second, TokenError::RateLimited { retry_after: secs(20) });
    let until = NOW.plus(secs(30));
    assert_eq!(
        probe.events(),
        vec![RefreshEvent::RateLimited, RefreshEvent::BackoffUntil(until), RefreshEvent::BackoffBlocked]
    );
}

// --- The lease across instances ---------------------------------------------------------------

#[tokio::test]
async fn a_busy_lease_sleeps_re_reads_and_serves_the_token_another_instance_wrote() {
    let mut fx = Fixture::new();
    fx.lock_free();
    fx.no_backoff();
    let stale = Some(stored(uid(1), 100, 86400));
    fx.loads(uid(1), vec![stale.clone(), stale, Some(stored_as(uid(1), "OTHER-AT", 3600, 86400, 6))]);
    fx.tokens
        .expect_try_acquire_refresh_lease()
        .withf(|id, holder, now, ttl| *id == uid(1) && holder == INSTANCE && *now == NOW && *ttl == secs(10))
        .times(1)
        .returning(|_, _, _, _| Ok(LeaseOutcome::Busy));
    fx.tokens.expect_release_refresh_lease().never();
    fx.accounts.expect_refresh().never();
    let (svc, probe) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("OTHER-AT"));
    assert_eq!(probe.sleeps(), vec![POLL_SLEEP]);
    assert_eq!(probe.events(), vec![RefreshEvent::LeaseWait]);
}

#[tokio::test]
async fn past_max_wait_with_the_lease_still_busy_the_still_valid_token_else_unavailable() {
    // max_wait 1 s, each poll 150 ms: seven sleeps, the eighth busy answer is past the wait.
    let unavailable = TokenError::Unavailable { retry_after: Some(secs(1)) };
    for (expires_in, outcome) in [(100, ok("OLD-AT")), (-1, Err(unavailable))] {
        let mut fx = Fixture::new();
        fx.lock_free();
        fx.no_backoff();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.tokens.expect_try_acquire_refresh_lease().times(8).returning(|_, _, _, _| Ok(LeaseOutcome::Busy));
        fx.tokens.expect_release_refresh_lease().never();
        fx.accounts.expect_refresh().never();
        let (svc, probe) = fx.token_service();
        let served = outcome.is_ok();
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), outcome);
        assert_eq!(probe.sleeps(), vec![POLL_SLEEP; 7]);
        assert_eq!(probe.now(), NOW.plus(POLL_SLEEP * 7));
        let mut events = vec![RefreshEvent::LeaseWait; 8];
        if served {
            events.push(RefreshEvent::ServedStale);
        }
        assert_eq!(probe.events(), events);
    }
}

#[tokio::test]
async fn a_still_valid_token_is_served_after_the_patience_not_after_a_dead_holders_lease() {
    // Patience 300 ms, max_wait 1 s, each poll 150 ms: with a valid token, the third busy answer
    // is past the patience and the token is served; with none, the wait goes on to max_wait.
    let unavailable = TokenError::Unavailable { retry_after: Some(secs(1)) };
    for (expires_in, outcome, busy, sleeps) in [(100, ok("OLD-AT"), 3, 2), (-1, Err(unavailable), 8, 7)] {
        let mut fx = Fixture::new();
        fx.refresh_policy.stale_patience = Duration::from_millis(300);
        fx.lock_free();
        fx.no_backoff();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.tokens.expect_try_acquire_refresh_lease().times(busy).returning(|_, _, _, _| Ok(LeaseOutcome::Busy));
        fx.tokens.expect_release_refresh_lease().never();
        fx.accounts.expect_refresh().never();
        let (svc, probe) = fx.token_service();
        let served = outcome.is_ok();
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), outcome);
        assert_eq!(probe.sleeps(), vec![POLL_SLEEP; sleeps]);
        let mut events = vec![RefreshEvent::LeaseWait; busy];
        if served {
            events.push(RefreshEvent::ServedStale);
        }
        assert_eq!(probe.events(), events);
    }
}

#[tokio::test]
async fn after_spotify_fails_a_users_refresh_this_instance_waits_the_retry_hint_before_calling_again() {
    // A token still valid for 100 s (under the 300 s wanted) and one already expired.
    for expires_in in [100, -1] {
        let mut fx = Fixture::new();
        fx.lock_free();
        fx.no_backoff();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.tokens.expect_try_acquire_refresh_lease().times(2).returning(|_, _, _, _| Ok(LeaseOutcome::Acquired));
        fx.tokens.expect_release_refresh_lease().times(2).returning(|_, _| Ok(()));
        fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Ok(TokenVersion(6)));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        fx.accounts.expect_refresh().times(2).returning(move |_| {
            match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(SpotifyError::Unavailable("503".into())),
                _ => Ok(grant("NEW-AT", None)),
            }
        });
        let (svc, probe) = fx.token_service();
        let stale_or = |retry_after: u64| {
            if expires_in > 0 {
                ok("OLD-AT")
            } else {
                Err(TokenError::Unavailable { retry_after: Some(secs(retry_after)) })
            }
        };
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), stale_or(5));
        // Within the hint: no lease, no call; the still-valid token or the time left.
        probe.advance(secs(2));
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), stale_or(3));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Past it: one new attempt, which works; the pause is over.
        probe.advance(secs(3));
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("NEW-AT"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn a_wall_clock_stepped_back_does_not_stretch_the_wait_for_a_busy_lease() {
    // The clock goes back to NOW at every busy answer: only the count of polls (max_wait /
    // lease_poll = 10) ends the wait.
    let mut fx = Fixture::new();
    fx.lock_free();
    fx.no_backoff();
    fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, 100, 86400))));
    let stepped_back = fx.probe.clone();
    fx.tokens.expect_try_acquire_refresh_lease().times(11).returning(move |_, _, _, _| {
        stepped_back.set(NOW);
        Ok(LeaseOutcome::Busy)
    });
    fx.tokens.expect_release_refresh_lease().never();
    fx.accounts.expect_refresh().never();
    let (svc, probe) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("OLD-AT"));
    assert_eq!(probe.sleeps().len(), 10);
}

#[tokio::test]
async fn the_lease_is_released_after_every_attempt() {
    let cases: [(Result<_, SpotifyError>, i64, Result<String, TokenError>); 4] = [
        (Ok(grant("NEW-AT", None)), -1, ok("NEW-AT")),
        (Err(SpotifyError::ReauthRequired), -1, Err(TokenError::ReauthRequired)),
        (
            Err(SpotifyError::Unavailable("timeout".into())),
            -1,
            Err(TokenError::Unavailable { retry_after: Some(secs(5)) }),
        ),
        (
            Err(SpotifyError::Misconfigured("invalid_client".into())),
            -1,
            Err(TokenError::Spotify(SpotifyError::Misconfigured("invalid_client".into()))),
        ),
    ];
    for (answer, expires_in, outcome) in cases {
        let mut fx = Fixture::new();
        fx.lock_free();
        fx.no_backoff();
        fx.tokens.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        fx.tokens
            .expect_try_acquire_refresh_lease()
            .withf(|id, holder, now, ttl| *id == uid(1) && holder == INSTANCE && *now == NOW && *ttl == secs(10))
            .times(1)
            .returning(|_, _, _, _| Ok(LeaseOutcome::Acquired));
        fx.tokens
            .expect_release_refresh_lease()
            .withf(|id, holder| *id == uid(1) && holder == INSTANCE)
            .times(1)
            .returning(|_, _| Ok(()));
        fx.tokens.expect_store_refreshed().returning(|_, _, _| Ok(TokenVersion(6)));
        fx.tokens.expect_mark_reauth_required().returning(|_, _| Ok(()));
        fx.accounts.expect_refresh().times(1).return_once(move |_| answer);
        let (svc, probe) = fx.token_service();
        assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), outcome);
        assert!(!probe.events().iter().any(|e| matches!(e, RefreshEvent::LeaseNotReleased(..))));
    }
}

#[tokio::test]
async fn a_failed_lease_release_is_recorded_and_the_token_still_served() {
    let mut fx = Fixture::new();
    fx.lock_free();
    fx.no_backoff();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, -1, 86400))));
    fx.tokens.expect_try_acquire_refresh_lease().times(1).returning(|_, _, _, _| Ok(LeaseOutcome::Acquired));
    fx.tokens
        .expect_release_refresh_lease()
        .times(1)
        .returning(|_, _| Err(RepoError::Unavailable("connection reset".into())));
    fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, probe) = fx.token_service();
    assert_eq!(plain(svc.valid_access_token(uid(1), SKEW).await), ok("NEW-AT"));
    let reset = RepoError::Unavailable("connection reset".into());
    assert_eq!(probe.events(), vec![RefreshEvent::Refreshed, RefreshEvent::LeaseNotReleased(uid(1), reset)]);
}

// --- The proactive refresher's list -----------------------------------------------------------

#[tokio::test]
async fn due_for_refresh_lists_the_tokens_expiring_within_the_lookahead_of_signed_in_users() {
    let mut fx = Fixture::new();
    let sessions = SessionPolicy::default();
    let live = LiveAfter { at: NOW, idle_since: NOW.minus(sessions.idle_timeout) };
    fx.tokens
        .expect_list_refresh_candidates()
        .with(eq(NOW.plus(secs(600))), eq(live), eq(50))
        .times(1)
        .returning(|_, _, _| Ok(vec![uid(1), uid(2)]));
    let (svc, _) = fx.token_service();
    assert_eq!(svc.due_for_refresh(secs(600), &sessions, 50).await.unwrap(), vec![uid(1), uid(2)]);
}

// --- Other Spotify calls under the shared backoff -------------------------------------------

#[tokio::test]
async fn under_backoff_makes_no_call_while_backing_off_and_records_a_429_for_everyone() {
    // A backoff another instance recorded: the call is never made.
    let mut fx = Fixture::new();
    fx.limits.expect_backoff_until().times(1).returning(|_| Ok(Some(NOW.plus(secs(30)))));
    let (svc, probe) = fx.token_service();
    let called = std::sync::atomic::AtomicBool::new(false);
    let call = async {
        called.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, SpotifyError>(())
    };
    assert_eq!(svc.under_backoff(call).await, Err(TokenError::RateLimited { retry_after: secs(30) }));
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst), "no call during a backoff");
    assert!(probe.events().contains(&RefreshEvent::BackoffBlocked));

    // A 429 the call receives extends the shared backoff.
    let mut fx = Fixture::new();
    fx.no_backoff();
    fx.limits
        .expect_extend_backoff()
        .with(eq(CLIENT_ID), eq(NOW.plus(secs(20))), eq(NOW))
        .times(1)
        .returning(|_, until, _| Ok(until));
    let (svc, _) = fx.token_service();
    let answer = svc.under_backoff(async { Err::<(), _>(SpotifyError::RateLimited { retry_after: secs(20) }) }).await;
    assert_eq!(answer, Err(TokenError::RateLimited { retry_after: secs(20) }));
    // Other errors pass through untouched.
    let mut fx = Fixture::new();
    fx.no_backoff();
    fx.limits.expect_extend_backoff().never();
    let (svc, _) = fx.token_service();
    let answer = svc.under_backoff(async { Err::<(), _>(SpotifyError::ReauthRequired) }).await;
    assert_eq!(answer, Err(TokenError::Spotify(SpotifyError::ReauthRequired)));
}
