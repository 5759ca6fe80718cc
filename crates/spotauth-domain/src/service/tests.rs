//! Unit tests of the use cases of [`AuthService`], over mocks of every port and a real
//! [`crate::tokens::TokenService`] on the same mocks (fixtures in [`crate::test_support`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mockall::predicate::*;

use crate::ids::{SessionId, TokenId, UserId};
use crate::login::{
    ClientKey, ConsumeOutcome, LOGIN_FLOW_TTL, LoginFlow, LoginLimits, PendingLogins, ReturnTo, StateDigest,
};
use crate::ports::{
    AccountPrompt, AuthorizationStart, Freshness, MockDigests, MockSessionRepository, NewUser, PremiumProbe, RepoError,
    SpotifyError, UniqueKey,
};
use crate::secret::{AuthorizationCode, OAuthState, PkceVerifier};
use crate::session::{LiveAfter, Session, SessionMeta, SessionOwner, SessionView};
use crate::test_support::*;
use crate::time::Timestamp;
use crate::token::{REFRESH_TOKEN_LIFETIME, StoredTokens, TokenColumn, TokenVersion};
use crate::user::{
    DisplayName, Page, PageRequest, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyProfile, SpotifyUserId,
    User,
};

use super::*;

fn profile(product: Option<&str>) -> SpotifyProfile {
    SpotifyProfile {
        spotify_id: SpotifyUserId::new("alice").unwrap(),
        account_id: Some(SpotifyAccountKey::new("acct-alice").unwrap()),
        display_name: Some(DisplayName::new("Alice").unwrap()),
        product: product.map(str::to_owned),
    }
}

fn user_from_new(n: &NewUser) -> User {
    User {
        id: n.id,
        account_key: n.account_key.clone(),
        spotify_id: n.spotify_id.clone(),
        display_name: n.display_name.clone(),
        subscription: n.subscription.clone(),
        is_active: true,
        last_active: n.now,
        created_at: n.now,
        reauth_required: false,
        has_tokens: true,
    }
}

const SID: SessionId = SessionId::from_bytes([1; 16]);
const TID: TokenId = TokenId::from_bytes([2; 16]);
/// The token id that replaces [`TID`] at rotation (the fake digests' successor).
const NEXT_TID: TokenId = TokenId::from_bytes([102; 16]);

fn session(id: SessionId, user_id: UserId, token: TokenId, last_active: Timestamp) -> Session {
    Session {
        id,
        user_id,
        token_id_hash: token_hash(&token),
        created_at: NOW,
        last_active,
        expires_at: NOW.plus(Duration::from_secs(30 * 86400)),
        revoked_at: None,
        previous_token_id_hash: None,
        rotated_at: None,
        token_expires_at: Some(NOW.plus(Duration::from_secs(86400))),
        meta: SessionMeta::default(),
    }
}

fn view(session: Session, user: User) -> SessionView {
    SessionView { session, owner: Some(SessionOwner { user, tokens: None }) }
}

/// Session [`SID`] of user 1, Premium, current token [`TID`], last used at `last_active`, with the
/// token row `tokens` read along.
fn live_view(last_active: Timestamp, tokens: Option<StoredTokens>) -> SessionView {
    let mut v = view(session(SID, uid(1), TID, last_active), user(uid(1), PremiumStatus::Premium));
    if let Some(owner) = v.owner.as_mut() {
        owner.tokens = tokens;
    }
    v
}

fn token_for(sid: SessionId, user_id: UserId, tid: TokenId) -> String {
    format!("jwt.{sid}.{user_id}.{tid}")
}

fn authenticated(user: User, tokens: Option<StoredTokens>) -> Authenticated {
    Authenticated { session: session(SID, user.id, TID, NOW), user, tokens, superseded: false }
}

fn expect_session_create(s: &mut MockSessionRepository) {
    s.expect_create().times(1).returning(|n| {
        Ok(Session {
            id: n.id,
            user_id: n.user_id,
            token_id_hash: n.token_id_hash,
            created_at: n.created_at,
            last_active: n.created_at,
            expires_at: n.expires_at,
            revoked_at: None,
            previous_token_id_hash: None,
            rotated_at: None,
            token_expires_at: Some(n.token_expires_at),
            meta: n.meta,
        })
    });
}

/// The session rotation of [`SID`] succeeds, to the hash of [`NEXT_TID`].
fn expect_rotation(s: &mut MockSessionRepository) {
    s.expect_rotate()
        .withf(|id, old, new, now, token_expires_at| {
            *id == SID
                && *old == token_hash(&TID)
                && *new == token_hash(&NEXT_TID)
                && *now == NOW
                && *token_expires_at == NOW.plus(Duration::from_secs(86400))
        })
        .times(1)
        .returning(|id, _, new, now, _| {
            let mut out = session(id, uid(1), TID, now);
            out.token_id_hash = new.clone();
            Ok(out)
        });
}

// --- Connecting a user ------------------------------------------------------------------------

#[tokio::test]
async fn first_login_with_product_stores_encrypted_tokens_bound_to_the_new_row() {
    let mut fx = Fixture::new();
    fx.users.expect_find_by_account_key().times(1).returning(|_| Ok(None));
    fx.users
        .expect_insert()
        .times(1)
        .withf(|n| {
            n.id == uid(42)
                && n.tokens.access_token == fake_ciphertext(TokenColumn::Access, uid(42), "AT1")
                && n.tokens.refresh_token == fake_ciphertext(TokenColumn::Refresh, uid(42), "RT1")
                && n.tokens.refresh_expires_at == NOW.plus(REFRESH_TOKEN_LIFETIME)
                && n.account_key.as_str() == "acct-alice"
        })
        .returning(|n| Ok(user_from_new(&n)));
    expect_session_create(&mut fx.sessions);
    fx.profile.expect_probe_premium().never();
    let (svc, _) = fx.auth_service();

    let (user, issued) =
        svc.connect(grant("AT1", Some("RT1")), profile(Some("premium")), SessionMeta::default()).await.unwrap();
    assert_eq!(user.subscription.status, PremiumStatus::Premium);
    assert_eq!(user.subscription.source, PremiumSource::Profile);
    assert_eq!(issued.token_expires_at, NOW.plus(svc.policy().session.token_ttl));
    assert!(issued.token.expose().starts_with("jwt."));
}

#[tokio::test]
async fn development_mode_profile_falls_back_to_the_player_probe() {
    for (probe, expected, source) in [
        (Ok(PremiumProbe::Free), PremiumStatus::Free, PremiumSource::PlayerProbe),
        (Ok(PremiumProbe::Premium), PremiumStatus::Premium, PremiumSource::PlayerProbe),
        (Ok(PremiumProbe::Inconclusive), PremiumStatus::Unknown, PremiumSource::None),
        (Err(SpotifyError::Unavailable("502".into())), PremiumStatus::Unknown, PremiumSource::None),
    ] {
        let mut fx = Fixture::new();
        fx.no_backoff();
        fx.profile.expect_probe_premium().times(1).return_once(move |_| probe);
        fx.users.expect_find_by_account_key().returning(|_| Ok(None));
        fx.users.expect_insert().returning(|n| Ok(user_from_new(&n)));
        expect_session_create(&mut fx.sessions);
        let (svc, _) = fx.auth_service();
        let (user, _) = svc.connect(grant("AT", Some("RT")), profile(None), SessionMeta::default()).await.unwrap();
        assert_eq!(user.subscription.status, expected);
        assert_eq!(user.subscription.source, source);
    }
}

#[tokio::test]
async fn premium_only_policy_refuses_a_free_user_before_storing_anything() {
    let mut fx = Fixture::new();
    fx.policy.require_premium_for_login = true;
    fx.users.expect_insert().never();
    fx.users.expect_find_by_account_key().never();
    fx.sessions.expect_create().never();
    let (svc, _) = fx.auth_service();
    let err = svc.connect(grant("AT", Some("RT")), profile(Some("open")), SessionMeta::default()).await;
    assert_eq!(err.unwrap_err(), AuthError::PremiumRequired);
}

#[tokio::test]
async fn concurrent_first_login_conflict_updates_the_winning_row() {
    let mut fx = Fixture::new();
    let mut seq = mockall::Sequence::new();
    fx.users.expect_find_by_account_key().times(1).in_sequence(&mut seq).returning(|_| Ok(None));
    fx.users
        .expect_insert()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(RepoError::Conflict(UniqueKey::AccountKey)));
    fx.users
        .expect_find_by_account_key()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Some(user(uid(7), PremiumStatus::Unknown))));
    fx.users.expect_update_on_login().with(eq(uid(7)), always()).times(1).in_sequence(&mut seq).returning(|id, u| {
        assert!(u.tokens.access_token.as_bytes().starts_with(format!("access_token|{id}|").as_bytes()));
        Ok(user(id, PremiumStatus::Premium))
    });
    expect_session_create(&mut fx.sessions);
    let (svc, _) = fx.auth_service();
    let (user, _) =
        svc.connect(grant("AT", Some("RT")), profile(Some("premium")), SessionMeta::default()).await.unwrap();
    assert_eq!(user.id, uid(7));
}

#[tokio::test]
async fn code_exchange_without_refresh_token_is_a_protocol_error() {
    let (svc, _) = Fixture::new().auth_service();
    let err = svc.connect(grant("AT", None), profile(Some("premium")), SessionMeta::default()).await.unwrap_err();
    assert!(matches!(err, AuthError::Spotify(SpotifyError::Protocol(_))));
}

// --- Sessions ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_rotated_out_token_revokes_the_session() {
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(live_view(NOW, None))));
    fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    let err = svc.authenticate(&token_for(SID, uid(1), TokenId::from_bytes([3; 16]))).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_enforced_on_the_server() {
    let policy = ServicePolicy::default().session;
    let month = Duration::from_secs(30 * 86400);
    // (last used, absolute end)
    let cases = [
        // Idle: unused just over the idle timeout, well before the absolute end.
        (NOW.minus(policy.idle_timeout).minus(Duration::from_secs(1)), NOW.plus(month)),
        // Absolute: used a minute ago, but past its absolute end …
        (NOW.minus(Duration::from_secs(60)), NOW.minus(Duration::from_secs(1))),
        // … or right at it.
        (NOW.minus(Duration::from_secs(60)), NOW),
    ];
    for (last_active, expires_at) in cases {
        let mut fx = Fixture::new();
        fx.sessions.expect_load_view().returning(move |_, _| {
            let mut v = live_view(last_active, None);
            v.session.expires_at = expires_at;
            Ok(Some(v))
        });
        fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
        fx.sessions.expect_touch().never();
        fx.users.expect_touch().never();
        let (svc, _) = fx.auth_service();
        let err = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap_err();
        assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Expired), "last {last_active}, end {expires_at}");
    }
}

#[tokio::test]
async fn a_valid_token_authenticates_and_touches_at_most_once_a_minute() {
    // 10 s after the last touch: no write.
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(live_view(NOW.minus(Duration::from_secs(10)), None))));
    fx.sessions.expect_touch().never();
    fx.users.expect_touch().never();
    let (svc, _) = fx.auth_service();
    let auth = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!(auth.user.id, uid(1));
    drop(svc);

    // Past the touch interval: exactly one session touch and one user touch, at now.
    let mut fx = Fixture::new();
    let last = NOW.minus(fx.policy.session.touch_interval).minus(Duration::from_secs(1));
    fx.sessions.expect_load_view().returning(move |_, _| Ok(Some(live_view(last, None))));
    fx.sessions.expect_touch().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    fx.users.expect_touch().with(eq(uid(1)), eq(NOW)).times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    let auth = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!((auth.user.id, auth.session.id), (uid(1), SID));
}

#[tokio::test]
async fn losing_a_concurrent_rotation_counts_as_reuse() {
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(live_view(NOW, Some(stored(uid(1), 3000, 86400))))));
    fx.sessions.expect_rotate().times(1).returning(|_, _, _, _, _| Err(RepoError::StaleVersion));
    fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    fx.tokens.expect_load_tokens().never();
    let (svc, _) = fx.auth_service();
    let err = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

#[tokio::test]
async fn rotation_issues_a_token_with_a_new_id() {
    let tid = TokenId::from_bytes([200; 16]);
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(move |_, _| {
        let mut v = live_view(NOW, Some(stored(uid(1), 3000, 86400)));
        v.session.token_id_hash = token_hash(&tid);
        Ok(Some(v))
    });
    fx.sessions.expect_rotate().times(1).returning(move |_, old, new, _, _| {
        assert_ne!(old, new);
        let mut out = session(SID, uid(1), tid, NOW);
        out.token_id_hash = new.clone();
        Ok(out)
    });
    let (svc, _) = fx.auth_service();
    let refreshed = svc.refresh_session(&token_for(SID, uid(1), tid)).await.unwrap();
    assert_ne!(refreshed.issued.token.expose(), token_for(SID, uid(1), tid));
}

#[tokio::test]
async fn refresh_session_rotates_and_hands_out_the_access_token() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_load_view()
        .times(1)
        .returning(|_, _| Ok(Some(live_view(NOW, Some(stored(uid(1), 3000, 86400))))));
    expect_rotation(&mut fx.sessions);
    fx.sessions.expect_revoke().never();
    // The token row came with the session and is fresh: no read, no refresh.
    fx.tokens.expect_load_tokens().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.auth_service();
    let RefreshedSession { issued, token } = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!(issued.token.expose(), token_for(SID, uid(1), NEXT_TID));
    assert_eq!(issued.session.token_id_hash, token_hash(&NEXT_TID));
    assert_eq!((issued.issued_at, issued.token_expires_at), (NOW, NOW.plus(svc.policy().session.token_ttl)));
    let served = token.unwrap();
    assert_eq!(served.grant.access_token.expose(), "OLD-AT");
    assert_eq!(served.grant.expires_at, NOW.plus(Duration::from_secs(3000)));
    assert_eq!(served.served_at, NOW);
}

#[tokio::test]
async fn refresh_session_without_an_access_token_still_carries_the_new_session() {
    let mut marked = stored(uid(1), 3000, 86400);
    marked.reauth_required = true;
    let unavailable = AuthError::Unavailable { retry_after: Some(refresh_policy().unavailable_retry_after) };
    // (the row read with the session, the row read again, Spotify's answer to a refresh, the error)
    let cases = [
        (None, None, None, AuthError::NotConnected),
        (Some(marked.clone()), Some(marked), None, AuthError::ReauthRequired),
        (
            Some(stored(uid(1), -1, 86400)),
            Some(stored(uid(1), -1, 86400)),
            Some(SpotifyError::Unavailable("503".into())),
            unavailable,
        ),
    ];
    for (with_session, reread, spotify, want) in cases {
        let mut fx = Fixture::new();
        fx.sessions.expect_load_view().times(1).returning(move |_, _| Ok(Some(live_view(NOW, with_session.clone()))));
        expect_rotation(&mut fx.sessions);
        fx.sessions.expect_revoke().never();
        fx.tokens.expect_load_tokens().with(eq(uid(1))).returning(move |_| Ok(reread.clone()));
        match spotify {
            Some(answer) => {
                fx.calm();
                fx.accounts.expect_refresh().times(1).return_once(move |_| Err(answer));
            }
            None => {
                fx.accounts.expect_refresh().never();
            }
        }
        let (svc, _) = fx.auth_service();
        let RefreshedSession { issued, token } = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap();
        assert_eq!(issued.token.expose(), token_for(SID, uid(1), NEXT_TID));
        assert_eq!(issued.session.token_id_hash, token_hash(&NEXT_TID));
        assert_eq!(token.unwrap_err(), want);
    }
}

#[tokio::test]
async fn log_out_everywhere_disconnects_even_with_an_expired_or_ended_session() {
    for session_state in ["live", "revoked", "gone"] {
        let mut fx = Fixture::new();
        // The session row is never needed: the verified token names the user.
        fx.sessions.expect_load_view().never();
        let live = fx.policy.session.live_after(NOW);
        fx.sessions
            .expect_revoke_all_for_user()
            .with(eq(uid(1)), eq(live), eq(None))
            .times(1)
            .returning(|_, _, _| Ok(1));
        fx.tokens.expect_delete_tokens().with(eq(uid(1))).times(1).returning(|_| Ok(()));
        // Presence follows live sessions: the opt-out flag is not logout's business.
        fx.users.expect_set_active().never();
        let (svc, _) = fx.auth_service();
        let out = svc.log_out(&token_for(SID, uid(1), TID), LogoutScope::Everywhere).await.unwrap();
        assert_eq!(
            out,
            LogoutOutcome { scope: LogoutScope::Everywhere, sessions_ended: 1, spotify_disconnected: true },
            "{session_state}"
        );
    }
}

#[tokio::test]
async fn log_out_device_ends_only_a_live_session_and_says_so() {
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(live_view(NOW, None))));
    fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    fx.sessions.expect_revoke_all_for_user().never();
    fx.tokens.expect_delete_tokens().never();
    let (svc, _) = fx.auth_service();
    let out = svc.log_out(&token_for(SID, uid(1), TID), LogoutScope::Device).await.unwrap();
    assert_eq!((out.sessions_ended, out.spotify_disconnected), (1, false));

    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| {
        let mut v = live_view(NOW, None);
        v.session.revoked_at = Some(NOW.minus(secs(60)));
        Ok(Some(v))
    });
    fx.sessions.expect_revoke().never();
    let (svc, _) = fx.auth_service();
    let out = svc.log_out(&token_for(SID, uid(1), TID), LogoutScope::Device).await.unwrap();
    assert_eq!((out.sessions_ended, out.spotify_disconnected), (0, false), "nothing live to end");

    // A session that lapsed on its own (its token expired) is revoked all the same, so a
    // rotation that verified its token a moment earlier cannot revive it; it was not live.
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| {
        let mut v = live_view(NOW, None);
        v.session.token_expires_at = Some(NOW);
        Ok(Some(v))
    });
    fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    let out = svc.log_out(&token_for(SID, uid(1), TID), LogoutScope::Device).await.unwrap();
    assert_eq!((out.sessions_ended, out.spotify_disconnected), (0, false));
}

// --- Managing one's sessions and account -------------------------------------------------------

#[tokio::test]
async fn ending_a_session_needs_it_to_be_a_live_one_of_the_caller() {
    const OTHER: SessionId = SessionId::from_bytes([7; 16]);
    let alice = authenticated(user(uid(1), PremiumStatus::Premium), None);
    // Alice's other live session: revoked.
    let mut fx = Fixture::new();
    fx.sessions
        .expect_load_view()
        .with(eq(OTHER), eq(Freshness::Latest))
        .returning(|id, _| Ok(Some(view(session(id, uid(1), TID, NOW), user(uid(1), PremiumStatus::Premium)))));
    fx.sessions.expect_revoke().with(eq(OTHER), eq(NOW)).times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    svc.end_session(&alice, OTHER).await.unwrap();

    // Bob's session, an ended one of Alice's, or no session at all: the same answer, no write.
    for case in ["bob's", "ended", "unknown"] {
        let mut fx = Fixture::new();
        fx.sessions.expect_load_view().returning(move |id, _| {
            let owner = if case == "bob's" { uid(2) } else { uid(1) };
            let mut s = session(id, owner, TID, NOW);
            if case == "ended" {
                s.revoked_at = Some(NOW.minus(secs(1)));
            }
            Ok((case != "unknown").then(|| view(s, user(owner, PremiumStatus::Premium))))
        });
        fx.sessions.expect_revoke().never();
        let (svc, _) = fx.auth_service();
        assert_eq!(svc.end_session(&alice, OTHER).await.unwrap_err(), AuthError::SessionNotFound, "{case}");
    }
}

#[tokio::test]
async fn ending_the_other_sessions_keeps_the_callers_and_spotify() {
    let mut fx = Fixture::new();
    let live = fx.policy.session.live_after(NOW);
    fx.sessions
        .expect_revoke_all_for_user()
        .with(eq(uid(1)), eq(live), eq(Some(SID)))
        .times(1)
        .returning(|_, _, _| Ok(2));
    fx.tokens.expect_delete_tokens().never();
    let (svc, _) = fx.auth_service();
    let alice = authenticated(user(uid(1), PremiumStatus::Premium), None);
    assert_eq!(svc.end_other_sessions(&alice).await.unwrap(), 2);
}

#[tokio::test]
async fn listing_sessions_reads_the_callers_live_ones() {
    let mut fx = Fixture::new();
    let live = fx.policy.session.live_after(NOW);
    fx.sessions
        .expect_list_for_user()
        .with(eq(uid(1)), eq(live))
        .times(1)
        .returning(|u, _| Ok(vec![session(SID, u, TID, NOW)]));
    let (svc, _) = fx.auth_service();
    let alice = authenticated(user(uid(1), PremiumStatus::Premium), None);
    assert_eq!(svc.sessions_of(&alice).await.unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_the_account_erases_the_user() {
    for existed in [true, false] {
        let mut fx = Fixture::new();
        fx.users.expect_erase().with(eq(uid(1))).times(1).returning(move |_| Ok(existed));
        let (svc, _) = fx.auth_service();
        let alice = authenticated(user(uid(1), PremiumStatus::Premium), None);
        let out = svc.delete_account(&alice).await;
        assert_eq!(out, if existed { Ok(()) } else { Err(AuthError::UserNotFound) });
    }
}

#[tokio::test]
async fn log_out_with_nothing_identifiable_does_nothing_and_says_so() {
    let mut fx = Fixture::new();
    fx.sessions.expect_revoke_all_for_user().never();
    fx.tokens.expect_delete_tokens().never();
    let policy = fx.policy;
    let (svc, probe) = fx.auth_service();
    let err = svc.log_out("garbage", LogoutScope::Everywhere).await.unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated(_)), "{err:?}");
    // A token of ours issued longer ago than any session may live identifies nobody any more.
    probe.advance(policy.session.absolute_timeout);
    let err = svc.log_out(&token_for(SID, uid(1), TID), LogoutScope::Everywhere).await.unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated(_)), "{err:?}");
}

#[tokio::test]
async fn housekeeping_purges_past_the_retentions_and_reports_the_counts() {
    let mut fx = Fixture::new();
    let (ended, lapsed) = (fx.policy.ended_session_retention, fx.policy.lapsed_login_retention);
    assert_ne!(ended, lapsed, "the test must tell the two retentions apart");
    let tokens_kept = fx.policy.token_retention;
    let idle = fx.policy.session.idle_timeout;
    let ended_at = NOW.minus(ended);
    fx.sessions
        .expect_purge_ended()
        .with(eq(LiveAfter { at: ended_at, idle_since: ended_at.minus(idle) }))
        .times(1)
        .returning(|_| Ok(4));
    fx.flows.expect_purge_expired().with(eq(NOW.minus(lapsed))).times(1).returning(|_| Ok(2));
    let at = NOW.minus(tokens_kept);
    fx.tokens
        .expect_delete_tokens_of_idle_users()
        .with(eq(LiveAfter { at, idle_since: at.minus(idle) }))
        .times(1)
        .returning(|_| Ok(3));
    let (svc, _) = fx.auth_service();
    assert_eq!(svc.housekeeping().await.unwrap(), Housekeeping { sessions: 4, login_flows: 2, disconnected_users: 3 });
}

// --- Rotation grace window --------------------------------------------------------------------

/// Session [`SID`] whose token [`TID`] was rotated to [`NEXT_TID`] `ago` before [`NOW`].
fn rotated_view(ago: Duration) -> SessionView {
    let mut v = live_view(NOW, Some(stored(uid(1), 3000, 86400)));
    v.session.token_id_hash = token_hash(&NEXT_TID);
    v.session.previous_token_id_hash = Some(token_hash(&TID));
    v.session.rotated_at = Some(NOW.minus(ago));
    v
}

#[tokio::test]
async fn a_token_rotated_out_within_the_grace_window_still_authenticates_and_rotates_to_the_current_one() {
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(rotated_view(secs(2)))));
    fx.sessions.expect_revoke().never();
    fx.sessions.expect_rotate().never();
    let (svc, _) = fx.auth_service();
    let auth = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap();
    assert!(auth.superseded);
    // Rotating it again hands out the session's current token, and writes nothing.
    let refreshed = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!(refreshed.issued.token.expose(), token_for(SID, uid(1), NEXT_TID));
    assert_eq!(refreshed.token.unwrap().grant.access_token.expose(), "OLD-AT");
}

#[tokio::test]
async fn past_the_grace_window_a_rotated_out_token_is_reuse() {
    for ago in [secs(5), secs(60)] {
        let mut fx = Fixture::new();
        fx.sessions.expect_load_view().returning(move |_, _| Ok(Some(rotated_view(ago))));
        fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
        let (svc, _) = fx.auth_service();
        let err = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap_err();
        assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused), "{ago:?}");
    }
    // A grace of zero turns the window off.
    let mut fx = Fixture::new();
    fx.policy.session.rotation_grace = Duration::ZERO;
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(rotated_view(Duration::ZERO))));
    fx.sessions.expect_revoke().times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    assert!(svc.authenticate(&token_for(SID, uid(1), TID)).await.is_err());
}

#[tokio::test]
async fn a_token_older_than_the_previous_one_is_reuse_even_within_the_window() {
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().returning(|_, _| Ok(Some(rotated_view(secs(1)))));
    fx.sessions.expect_revoke().times(1).returning(|_, _| Ok(()));
    let (svc, _) = fx.auth_service();
    let older = TokenId::from_bytes([7; 16]);
    let err = svc.refresh_session(&token_for(SID, uid(1), older)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

#[tokio::test]
async fn racing_rotations_of_one_token_both_get_the_same_successor() {
    let mut fx = Fixture::new();
    let mut reads = 0;
    // First the session as both requests saw it, then as the winner left it.
    fx.sessions.expect_load_view().returning(move |_, _| {
        reads += 1;
        Ok(Some(if reads == 1 {
            live_view(NOW, Some(stored(uid(1), 3000, 86400)))
        } else {
            rotated_view(Duration::ZERO)
        }))
    });
    fx.sessions.expect_rotate().times(1).returning(|_, _, _, _, _| Err(RepoError::StaleVersion));
    fx.sessions.expect_revoke().never();
    let (svc, _) = fx.auth_service();
    let refreshed = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!(refreshed.issued.token.expose(), token_for(SID, uid(1), NEXT_TID));
}

// --- A cached view only lets requests in ------------------------------------------------------

#[tokio::test]
async fn a_cached_view_that_would_refuse_is_decided_on_the_latest_one() {
    // The cache still holds the session before another instance rotated it: the current token
    // looks rotated out there. The latest view accepts it; nothing is revoked.
    let mut fx = Fixture::new();
    fx.policy.session.rotation_grace = Duration::ZERO;
    fx.sessions
        .expect_load_view()
        .with(eq(SID), eq(Freshness::Cached))
        .times(1)
        .returning(|_, _| Ok(Some(live_view(NOW, None))));
    fx.sessions.expect_load_view().with(eq(SID), eq(Freshness::Latest)).times(1).returning(|_, _| {
        let mut v = rotated_view(secs(1));
        v.owner.as_mut().unwrap().tokens = None;
        Ok(Some(v))
    });
    fx.sessions.expect_revoke().never();
    let (svc, _) = fx.auth_service();
    let auth = svc.authenticate(&token_for(SID, uid(1), NEXT_TID)).await.unwrap();
    assert!(!auth.superseded);

    // A revocation the cache has not seen yet: refused on the latest view, with its reason.
    let mut fx = Fixture::new();
    fx.sessions.expect_load_view().with(eq(SID), eq(Freshness::Cached)).returning(|_, _| Ok(None));
    fx.sessions.expect_load_view().with(eq(SID), eq(Freshness::Latest)).times(1).returning(|_, _| {
        let mut v = live_view(NOW, None);
        v.session.revoked_at = Some(NOW);
        Ok(Some(v))
    });
    fx.sessions.expect_revoke().never();
    let (svc, _) = fx.auth_service();
    let err = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Revoked));
}

#[tokio::test]
async fn rotation_never_trusts_a_cached_view() {
    // Only the latest view is read: a token rotated out elsewhere is reuse at once, even when a
    // cache would still call it current.
    let mut fx = Fixture::new();
    fx.policy.session.rotation_grace = Duration::ZERO;
    fx.sessions.expect_load_view().with(eq(SID), eq(Freshness::Cached)).never();
    fx.sessions
        .expect_load_view()
        .with(eq(SID), eq(Freshness::Latest))
        .times(1)
        .returning(|_, _| Ok(Some(rotated_view(secs(1)))));
    fx.sessions.expect_revoke().with(eq(SID), eq(NOW)).times(1).returning(|_, _| Ok(()));
    fx.sessions.expect_rotate().never();
    let (svc, _) = fx.auth_service();
    let err = svc.refresh_session(&token_for(SID, uid(1), TID)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

// --- Account: Premium and the playback token --------------------------------------------------

#[tokio::test]
async fn playback_token_is_refused_to_a_known_free_user_without_touching_spotify() {
    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.auth_service();
    let auth = authenticated(user(uid(1), PremiumStatus::Free), Some(stored(uid(1), -1, 86400)));
    assert_eq!(svc.playback_token(auth).await.unwrap_err(), AuthError::PremiumRequired);
}

#[tokio::test]
async fn playback_token_for_unknown_status_is_served() {
    // No row came with the session: it is read once; 301 s left is fresh for the policy's
    // 300 s minimum validity, so it is served as is.
    let mut fx = Fixture::new();
    assert_eq!(fx.policy.access_token_min_validity, Duration::from_secs(300));
    fx.tokens.expect_load_tokens().with(eq(uid(1))).times(1).returning(|id| Ok(Some(stored(id, 301, 86400))));
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.auth_service();
    let served = svc.playback_token(authenticated(user(uid(1), PremiumStatus::Unknown), None)).await.unwrap();
    assert_eq!(served.grant.access_token.expose(), "OLD-AT");
    assert_eq!(served.served_at, NOW);
    drop(svc);

    // 299 s left is within the minimum validity: refreshed first.
    let mut fx = Fixture::new();
    fx.calm();
    fx.tokens.expect_load_tokens().with(eq(uid(1))).returning(|id| Ok(Some(stored(id, 299, 86400))));
    fx.tokens.expect_store_refreshed().times(1).returning(|_, _, _| Ok(TokenVersion(6)));
    fx.accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let (svc, _) = fx.auth_service();
    let served = svc.playback_token(authenticated(user(uid(1), PremiumStatus::Unknown), None)).await.unwrap();
    assert_eq!(served.grant.access_token.expose(), "NEW-AT");
}

#[tokio::test]
async fn stale_subscription_is_rechecked_fresh_one_is_not() {
    let mut fx = Fixture::new();
    fx.no_backoff();
    let ttl = fx.policy.subscription_ttl;
    // The token row came with the session and is fresh: used without a read.
    fx.tokens.expect_load_tokens().never();
    fx.profile
        .expect_current_profile()
        .withf(|at| at.expose() == "OLD-AT")
        .times(1)
        .returning(|_| Ok(profile(Some("premium"))));
    fx.users.expect_record_subscription().with(eq(uid(1)), always()).times(1).returning(|id, sub| {
        let mut u = user(id, PremiumStatus::Unknown);
        u.subscription = sub;
        Ok(u)
    });
    let (svc, _) = fx.auth_service();
    let mut stale = user(uid(1), PremiumStatus::Unknown);
    stale.subscription.checked_at = Some(NOW.minus(ttl).minus(Duration::from_secs(1)));
    let sub = svc.subscription(authenticated(stale, Some(stored(uid(1), 3000, 86400)))).await.unwrap();
    assert_eq!((sub.status, sub.checked_at), (PremiumStatus::Premium, Some(NOW)));
    drop(svc);

    let mut fx = Fixture::new();
    fx.tokens.expect_load_tokens().never();
    fx.profile.expect_current_profile().never();
    fx.users.expect_record_subscription().never();
    let (svc, _) = fx.auth_service();
    let fresh = authenticated(user(uid(1), PremiumStatus::Free), Some(stored(uid(1), 3000, 86400)));
    assert_eq!(svc.subscription(fresh).await.unwrap().status, PremiumStatus::Free);
}

#[tokio::test]
async fn playback_token_for_a_request_uses_the_token_row_read_with_the_session() {
    // 301 s left: fresh for the policy's 300 s minimum validity.
    let row = stored(uid(1), 301, 86400);
    let mut fx = Fixture::new();
    let with_tokens = row.clone();
    fx.sessions.expect_load_view().times(2).returning(move |_, _| Ok(Some(live_view(NOW, Some(with_tokens.clone())))));
    fx.tokens.expect_load_tokens().never();
    fx.accounts.expect_refresh().never();
    let (svc, _) = fx.auth_service();
    let auth = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap();
    assert_eq!(auth.tokens.as_ref(), Some(&row));
    let served = svc.playback_token(auth).await.unwrap();
    assert_eq!(served.grant.access_token.expose(), "OLD-AT");
    assert_eq!(served.grant.expires_at, row.access_expires_at);
    // A known free user is refused before any token work.
    let mut free = svc.authenticate(&token_for(SID, uid(1), TID)).await.unwrap();
    free.user.subscription.status = PremiumStatus::Free;
    assert_eq!(svc.playback_token(free).await.unwrap_err(), AuthError::PremiumRequired);
}

// --- Login flow -------------------------------------------------------------------------------

fn state(s: &str) -> OAuthState {
    OAuthState::new(s).unwrap()
}

fn verifier() -> PkceVerifier {
    PkceVerifier::new("v".repeat(43)).unwrap()
}

fn callback(query: Option<&str>, cookie: Option<&str>) -> CallbackInput {
    CallbackInput {
        state: query.map(state),
        outcome: Ok(AuthorizationCode::new("CODE").unwrap()),
        bound: cookie.map(|c| (state(c), verifier())),
        meta: SessionMeta::default(),
    }
}

fn start(s: &str) -> AuthorizationStart {
    AuthorizationStart {
        authorize_url: format!("https://accounts.example/authorize?state={s}"),
        state: state(s),
        pkce_verifier: verifier(),
    }
}

/// The code exchange, profile and first-login writes of a successful callback.
fn expect_first_login(fx: &mut Fixture) {
    fx.accounts
        .expect_exchange_code()
        .withf(|code, v| code.expose() == "CODE" && *v == verifier())
        .times(1)
        .returning(|_, _| Ok(grant("AT", Some("RT"))));
    fx.profile.expect_current_profile().times(1).returning(|_| Ok(profile(Some("premium"))));
    fx.users.expect_find_by_account_key().returning(|_| Ok(None));
    fx.users.expect_insert().returning(|n| Ok(user_from_new(&n)));
    expect_session_create(&mut fx.sessions);
}

#[tokio::test]
async fn begin_login_records_the_flow_with_its_return_path() {
    let mut fx = Fixture::new();
    fx.accounts.expect_begin_authorization().returning(|_| start("S1"));
    fx.flows.expect_count_pending().with(eq(Some(client())), eq(NOW)).times(1).returning(|_, _| Ok(pending(49, 9_999)));
    fx.flows
        .expect_create()
        .withf(|f| {
            f.state == state_digest(&state("S1"))
                && f.client == Some(client())
                && f.return_to.as_ref().map(ReturnTo::as_str) == Some("/room")
                && f.created_at == NOW
                && f.expires_at == NOW.plus(LOGIN_FLOW_TTL)
        })
        .times(1)
        .returning(|_| Ok(()));
    let (svc, _) = fx.auth_service();
    let start =
        svc.begin_login(Some(ReturnTo::new("/room").unwrap()), Some(client()), AccountPrompt::Silent).await.unwrap();
    assert_eq!(start.state.expose(), "S1");
    assert_eq!(start.authorize_url, "https://accounts.example/authorize?state=S1");
    assert_eq!((start.started_at, start.expires_at), (NOW, NOW.plus(LOGIN_FLOW_TTL)));
}

#[tokio::test]
async fn the_login_flow_is_stored_and_consumed_under_the_state_digest_never_the_state() {
    // Whatever the Digests port computes from the state is the key, at both ends.
    let digest = StateDigest::from_bytes([0xAB; 32]);
    let mut fx = Fixture::new();
    fx.no_backoff();
    fx.digests = MockDigests::new();
    fx.digests.expect_oauth_state().with(eq(state("S1"))).times(2).return_const(digest.clone());
    fx.digests.expect_token_id().returning(token_hash);
    fx.accounts.expect_begin_authorization().times(1).returning(|_| start("S1"));
    fx.flows.expect_count_pending().returning(|_, _| Ok(pending(0, 0)));
    let stored_key = digest.clone();
    fx.flows.expect_create().withf(move |f| f.state == stored_key).times(1).returning(|_| Ok(()));
    fx.flows.expect_consume().withf(move |st, now| *st == digest && *now == NOW).times(1).returning(|_, _| {
        Ok(ConsumeOutcome::Consumed(LoginFlow {
            return_to: Some(ReturnTo::new("/room").unwrap()),
            created_at: NOW,
            expires_at: NOW.plus(LOGIN_FLOW_TTL),
        }))
    });
    expect_first_login(&mut fx);
    let (svc, _) = fx.auth_service();
    let begun =
        svc.begin_login(Some(ReturnTo::new("/room").unwrap()), None, AccountPrompt::ChooseAccount).await.unwrap();
    let input = CallbackInput {
        state: Some(begun.state.clone()),
        outcome: Ok(AuthorizationCode::new("CODE").unwrap()),
        bound: Some((begun.state, begun.pkce_verifier)),
        meta: SessionMeta::default(),
    };
    let logged = svc.complete_login(input).await.unwrap();
    assert_eq!(logged.return_to.unwrap().as_str(), "/room");
}

#[tokio::test]
async fn callback_state_problems_never_reach_spotify() {
    let cases: Vec<(CallbackInput, Option<ConsumeOutcome>, LoginRejected)> = vec![
        (callback(None, Some("S1")), None, LoginRejected::StateMissing),
        (callback(Some("S1"), None), None, LoginRejected::StateMissing),
        (callback(Some("S1"), Some("S2")), None, LoginRejected::StateMismatch),
        (callback(Some("S1"), Some("S1")), Some(ConsumeOutcome::Unknown), LoginRejected::StateUnknown),
        (callback(Some("S1"), Some("S1")), Some(ConsumeOutcome::Expired), LoginRejected::Expired),
        (callback(Some("S1"), Some("S1")), Some(ConsumeOutcome::AlreadyUsed), LoginRejected::AlreadyUsed),
    ];
    for (input, consumed, want) in cases {
        let mut fx = Fixture::new();
        fx.accounts.expect_exchange_code().never();
        match consumed {
            Some(outcome) => {
                fx.flows.expect_consume().times(1).return_once(move |_, _| Ok(outcome));
            }
            None => {
                fx.flows.expect_consume().never();
            }
        }
        let (svc, _) = fx.auth_service();
        let err = svc.complete_login(input).await.unwrap_err();
        assert_eq!(err, AuthError::LoginRejected(want));
    }
}

#[tokio::test]
async fn declined_authorization_spends_the_flow_and_exchanges_nothing() {
    let mut fx = Fixture::new();
    fx.flows.expect_consume().times(1).returning(|_, _| {
        Ok(ConsumeOutcome::Consumed(LoginFlow { return_to: None, created_at: NOW, expires_at: NOW }))
    });
    fx.accounts.expect_exchange_code().never();
    let (svc, _) = fx.auth_service();
    let mut input = callback(Some("S1"), Some("S1"));
    input.outcome = Err("access_denied".into());
    let err = svc.complete_login(input).await.unwrap_err();
    assert_eq!(err, AuthError::AuthorizationDeclined("access_denied".into()));
}

#[tokio::test]
async fn a_valid_callback_exchanges_the_code_with_the_bound_verifier() {
    let mut fx = Fixture::new();
    fx.no_backoff();
    fx.flows.expect_consume().withf(|st, now| *st == state_digest(&state("S1")) && *now == NOW).times(1).returning(
        |_, _| {
            Ok(ConsumeOutcome::Consumed(LoginFlow {
                return_to: Some(ReturnTo::new("/after").unwrap()),
                created_at: NOW,
                expires_at: NOW,
            }))
        },
    );
    expect_first_login(&mut fx);
    let (svc, _) = fx.auth_service();
    let logged = svc.complete_login(callback(Some("S1"), Some("S1"))).await.unwrap();
    assert_eq!(logged.return_to.unwrap().as_str(), "/after");
    assert_eq!(logged.user.subscription.status, PremiumStatus::Premium);
}

fn client() -> ClientKey {
    ClientKey::from_ip("203.0.113.5".parse().unwrap())
}

fn pending(client: u64, total: u64) -> PendingLogins {
    PendingLogins { client, total }
}

#[tokio::test]
async fn begin_login_is_refused_while_too_many_logins_are_pending_and_writes_nothing() {
    let limits = LoginLimits::default();
    for (mine, all) in [(limits.pending_per_client, 0), (0, limits.pending_total)] {
        let mut fx = Fixture::new();
        fx.flows.expect_count_pending().times(1).returning(move |_, _| Ok(pending(mine, all)));
        fx.flows.expect_create().never();
        fx.accounts.expect_begin_authorization().never();
        let (svc, _) = fx.auth_service();
        let err = svc.begin_login(None, Some(client()), AccountPrompt::Silent).await.unwrap_err();
        assert!(matches!(err, AuthError::TooManyLogins { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_login_during_a_spotify_backoff_makes_no_call_and_a_refused_code_is_an_expected_outcome() {
    let consumed = || {
        Ok(ConsumeOutcome::Consumed(LoginFlow {
            return_to: None,
            created_at: NOW,
            expires_at: NOW.plus(LOGIN_FLOW_TTL),
        }))
    };
    let mut fx = Fixture::new();
    fx.flows.expect_consume().times(1).returning(move |_, _| consumed());
    fx.limits.expect_backoff_until().returning(|_| Ok(Some(NOW.plus(secs(40)))));
    fx.accounts.expect_exchange_code().never();
    let (svc, _) = fx.auth_service();
    let err = svc.complete_login(callback(Some("S1"), Some("S1"))).await.unwrap_err();
    assert_eq!(err, AuthError::RateLimited { retry_after: secs(40) });

    let mut fx = Fixture::new();
    fx.flows.expect_consume().times(1).returning(move |_, _| consumed());
    fx.no_backoff();
    fx.accounts.expect_exchange_code().times(1).returning(|_, _| Err(SpotifyError::ReauthRequired));
    fx.profile.expect_current_profile().never();
    let (svc, _) = fx.auth_service();
    let err = svc.complete_login(callback(Some("S1"), Some("S1"))).await.unwrap_err();
    assert_eq!(err, AuthError::LoginRejected(LoginRejected::CodeRefused));
}

#[tokio::test]
async fn the_active_list_shows_presences_of_people_signed_in_now() {
    let mut fx = Fixture::new();
    let idle = fx.policy.session.idle_timeout;
    fx.users
        .expect_list_active()
        .with(always(), eq(LiveAfter { at: NOW, idle_since: NOW.minus(idle) }))
        .times(1)
        .returning(|page, _| {
            let mut seen = user(uid(1), PremiumStatus::Premium);
            seen.last_active = NOW.plus(Duration::from_millis(299_999));
            Ok(Page { items: vec![seen], total: 1, request: page })
        });
    let (svc, _) = fx.auth_service();
    let page = svc.list_active_users(PageRequest::new(0, 20).unwrap()).await.unwrap();
    let p = &page.items[0];
    assert_eq!((p.user_id, p.can_play), (uid(1), Some(true)));
    assert_eq!(p.last_seen, NOW, "rounded down to five minutes");
}
