//! Unit tests of the use cases and the refresh strategy, with mockall mocks of every port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use mockall::predicate::*;

use crate::ids::{SessionId, TokenId, UserId};
use crate::ports::*;
use crate::refresh::StoreRefresher;
use crate::secret::{AccessToken, RefreshToken, Secret, SessionToken};
use crate::service::*;
use crate::session::{Session, SessionClaims, SessionMeta, SessionOwner, SessionView, TokenIdHash};
use crate::time::Timestamp;
use crate::token::*;
use crate::user::*;

struct Mocks;
impl Ports for Mocks {
    type Users = MockUserRepository;
    type Sessions = MockSessionRepository;
    type Flows = MockLoginFlowRepository;
    type Accounts = MockSpotifyAccounts;
    type Profile = MockSpotifyProfilePort;
    type Cipher = MockTokenCipher;
    type Codec = MockSessionTokenCodec;
    type Clock = MockClock;
    type Ids = MockIdSource;
    type Refresher = MockTokenRefresher;
}

const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fn uid(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}

/// A cipher mock that "encrypts" as `column|user|plaintext`, and checks the binding on decrypt.
fn fake_cipher() -> MockTokenCipher {
    let mut c = MockTokenCipher::new();
    c.expect_encrypt().returning(|p, b| {
        Ok(EncryptedToken::from_bytes(format!("{}|{}|{}", b.column.as_str(), b.user_id, p).into_bytes()))
    });
    c.expect_decrypt().returning(|ct, b| {
        let s = String::from_utf8(ct.as_bytes().to_vec()).unwrap();
        let prefix = format!("{}|{}|", b.column.as_str(), b.user_id);
        s.strip_prefix(&prefix).map(Secret::new).ok_or(CipherError::Tampered)
    });
    c
}

fn fake_codec() -> MockSessionTokenCodec {
    let mut c = MockSessionTokenCodec::new();
    c.expect_hash_token_id().returning(|t| {
        let mut h = [0u8; 32];
        h[..16].copy_from_slice(t.as_bytes());
        TokenIdHash::from_bytes(h)
    });
    c.expect_issue().returning(|claims| {
        Ok(SessionToken::new(format!("jwt.{}.{}.{}", claims.session_id, claims.user_id, claims.token_id)).unwrap())
    });
    c.expect_verify().returning(|token, _now| {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 4 || parts[0] != "jwt" {
            return Err(SessionTokenError::Malformed);
        }
        Ok(SessionClaims {
            session_id: parts[1].parse().unwrap(),
            user_id: parts[2].parse().unwrap(),
            token_id: parts[3].parse().unwrap(),
            issued_at: NOW,
            expires_at: NOW.plus(Duration::from_secs(3600)),
        })
    });
    c
}

fn fixed_clock(at: Timestamp) -> MockClock {
    let mut c = MockClock::new();
    c.expect_now().return_const(at);
    c
}

fn counter_ids() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_new_user_id().returning(|| uid(42));
    ids.expect_new_session_id().returning(|| SessionId::from_bytes([9; 16]));
    let n = std::sync::atomic::AtomicU8::new(1);
    ids.expect_new_token_id()
        .returning(move || TokenId::from_bytes([n.fetch_add(1, std::sync::atomic::Ordering::SeqCst); 16]));
    ids
}

struct Setup {
    users: MockUserRepository,
    sessions: MockSessionRepository,
    flows: MockLoginFlowRepository,
    accounts: MockSpotifyAccounts,
    profile: MockSpotifyProfilePort,
    refresher: MockTokenRefresher,
    policy: ServicePolicy,
    now: Timestamp,
}

impl Setup {
    fn new() -> Self {
        Setup {
            users: MockUserRepository::new(),
            sessions: MockSessionRepository::new(),
            flows: MockLoginFlowRepository::new(),
            accounts: MockSpotifyAccounts::new(),
            profile: MockSpotifyProfilePort::new(),
            refresher: MockTokenRefresher::new(),
            policy: ServicePolicy::default(),
            now: NOW,
        }
    }

    fn build(self) -> AuthService<Mocks> {
        AuthService::new(
            Adapters {
                users: Arc::new(self.users),
                sessions: Arc::new(self.sessions),
                flows: Arc::new(self.flows),
                accounts: Arc::new(self.accounts),
                profile: Arc::new(self.profile),
                cipher: Arc::new(fake_cipher()),
                codec: Arc::new(fake_codec()),
                clock: Arc::new(fixed_clock(self.now)),
                ids: Arc::new(counter_ids()),
                refresher: Arc::new(self.refresher),
            },
            self.policy,
        )
    }
}

fn grant(access: &str, refresh: Option<&str>) -> TokenGrant {
    TokenGrant {
        access_token: AccessToken::new(access).unwrap(),
        access_expires_at: NOW.plus(Duration::from_secs(3600)),
        refresh_token: refresh.map(|r| RefreshToken::new(r).unwrap()),
        scopes: Scopes::parse("streaming user-read-email user-read-private"),
    }
}

fn profile(product: Option<&str>) -> SpotifyProfile {
    SpotifyProfile {
        spotify_id: SpotifyUserId::new("alice").unwrap(),
        account_id: Some(SpotifyAccountKey::new("acct-alice").unwrap()),
        display_name: Some(DisplayName::new("Alice").unwrap()),
        product: product.map(str::to_owned),
    }
}

fn user(id: UserId, status: PremiumStatus) -> User {
    User {
        id,
        account_key: SpotifyAccountKey::new("acct-alice").unwrap(),
        spotify_id: SpotifyUserId::new("alice").unwrap(),
        display_name: None,
        subscription: Subscription { status, product: None, source: PremiumSource::Profile, checked_at: Some(NOW) },
        is_active: true,
        last_active: NOW,
        created_at: NOW,
        reauth_required: false,
        has_tokens: true,
    }
}

fn session(id: SessionId, user_id: UserId, token: TokenId, last_active: Timestamp) -> Session {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(token.as_bytes());
    Session {
        id,
        user_id,
        token_id_hash: TokenIdHash::from_bytes(h),
        created_at: NOW,
        last_active,
        expires_at: NOW.plus(Duration::from_secs(30 * 86400)),
        revoked_at: None,
        meta: SessionMeta::default(),
    }
}

fn view(session: Session, user: User) -> SessionView {
    SessionView { session, owner: Some(SessionOwner { user, tokens: None }) }
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
            meta: n.meta,
        })
    });
}

#[tokio::test]
async fn first_login_with_product_stores_encrypted_tokens_bound_to_the_new_row() {
    let mut s = Setup::new();
    s.users.expect_find_by_account_key().times(1).returning(|_| Ok(None));
    s.users
        .expect_insert()
        .times(1)
        .withf(|n| {
            n.id == uid(42)
                && n.tokens.access_token.as_bytes() == format!("access_token|{}|AT1", uid(42)).as_bytes()
                && n.tokens.refresh_token.as_bytes() == format!("refresh_token|{}|RT1", uid(42)).as_bytes()
                && n.tokens.refresh_expires_at == NOW.plus(REFRESH_TOKEN_LIFETIME)
                && n.account_key.as_str() == "acct-alice"
        })
        .returning(|n| Ok(user_from_new(&n)));
    expect_session_create(&mut s.sessions);
    s.profile.expect_probe_premium().never();
    let svc = s.build();

    let logged =
        svc.connect(grant("AT1", Some("RT1")), profile(Some("premium")), SessionMeta::default()).await.unwrap();
    assert_eq!(logged.user.subscription.status, PremiumStatus::Premium);
    assert_eq!(logged.user.subscription.source, PremiumSource::Profile);
    assert_eq!(logged.issued.token_expires_at, NOW.plus(svc.policy().session.token_ttl));
    assert!(logged.issued.token.expose().starts_with("jwt."));
}

#[tokio::test]
async fn development_mode_profile_falls_back_to_the_player_probe() {
    for (probe, expected, source) in [
        (Ok(PremiumProbe::Free), PremiumStatus::Free, PremiumSource::PlayerProbe),
        (Ok(PremiumProbe::Premium), PremiumStatus::Premium, PremiumSource::PlayerProbe),
        (Ok(PremiumProbe::Inconclusive), PremiumStatus::Unknown, PremiumSource::None),
        (Err(SpotifyError::Unavailable("502".into())), PremiumStatus::Unknown, PremiumSource::None),
    ] {
        let mut s = Setup::new();
        s.profile.expect_probe_premium().times(1).return_once(move |_| probe);
        s.users.expect_find_by_account_key().returning(|_| Ok(None));
        s.users.expect_insert().returning(|n| Ok(user_from_new(&n)));
        expect_session_create(&mut s.sessions);
        let logged = s.build().connect(grant("AT", Some("RT")), profile(None), SessionMeta::default()).await.unwrap();
        assert_eq!(logged.user.subscription.status, expected);
        assert_eq!(logged.user.subscription.source, source);
    }
}

#[tokio::test]
async fn premium_only_policy_refuses_a_free_user_before_storing_anything() {
    let mut s = Setup::new();
    s.policy.require_premium_for_login = true;
    s.users.expect_insert().never();
    s.users.expect_find_by_account_key().never();
    s.sessions.expect_create().never();
    let err = s.build().connect(grant("AT", Some("RT")), profile(Some("open")), SessionMeta::default()).await;
    assert_eq!(err.unwrap_err(), AuthError::PremiumRequired);
}

#[tokio::test]
async fn concurrent_first_login_conflict_updates_the_winning_row() {
    let mut s = Setup::new();
    let mut seq = mockall::Sequence::new();
    s.users.expect_find_by_account_key().times(1).in_sequence(&mut seq).returning(|_| Ok(None));
    s.users.expect_insert().times(1).in_sequence(&mut seq).returning(|_| Err(RepoError::Conflict("account key")));
    s.users
        .expect_find_by_account_key()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Some(user(uid(7), PremiumStatus::Unknown))));
    s.users.expect_update_on_login().with(eq(uid(7)), always()).times(1).in_sequence(&mut seq).returning(|id, u| {
        assert!(u.tokens.access_token.as_bytes().starts_with(format!("access_token|{id}|").as_bytes()));
        Ok(user(id, PremiumStatus::Premium))
    });
    expect_session_create(&mut s.sessions);
    let logged =
        s.build().connect(grant("AT", Some("RT")), profile(Some("premium")), SessionMeta::default()).await.unwrap();
    assert_eq!(logged.user.id, uid(7));
}

#[tokio::test]
async fn code_exchange_without_refresh_token_is_a_protocol_error() {
    let s = Setup::new();
    let err = s.build().connect(grant("AT", None), profile(Some("premium")), SessionMeta::default()).await.unwrap_err();
    assert!(matches!(err, AuthError::Spotify(SpotifyError::Protocol(_))));
}

fn token_for(sid: SessionId, user_id: UserId, tid: TokenId) -> String {
    format!("jwt.{sid}.{user_id}.{tid}")
}

#[tokio::test]
async fn a_rotated_out_token_revokes_the_session() {
    let sid = SessionId::from_bytes([1; 16]);
    let mut s = Setup::new();
    s.sessions.expect_get_with_user().returning(move |_| {
        Ok(Some(view(session(sid, uid(1), TokenId::from_bytes([2; 16]), NOW), user(uid(1), PremiumStatus::Premium))))
    });
    s.sessions.expect_revoke().with(eq(sid), eq(NOW)).times(1).returning(|_, _| Ok(()));
    let err = s.build().authenticate(&token_for(sid, uid(1), TokenId::from_bytes([3; 16]))).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_enforced_on_the_server() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([2; 16]);
    let mut s = Setup::new();
    let idle = s.policy.session.idle_timeout;
    s.sessions.expect_get_with_user().returning(move |_| {
        Ok(Some(view(
            session(sid, uid(1), tid, NOW.minus(idle).minus(Duration::from_secs(1))),
            user(uid(1), PremiumStatus::Premium),
        )))
    });
    s.sessions.expect_revoke().times(1).returning(|_, _| Ok(()));
    let err = s.build().authenticate(&token_for(sid, uid(1), tid)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Expired));
}

#[tokio::test]
async fn a_valid_token_authenticates_and_touches_at_most_once_a_minute() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([2; 16]);
    let mut s = Setup::new();
    s.sessions.expect_get_with_user().returning(move |_| {
        Ok(Some(view(
            session(sid, uid(1), tid, NOW.minus(Duration::from_secs(10))),
            user(uid(1), PremiumStatus::Premium),
        )))
    });
    s.sessions.expect_touch().never();
    let auth = s.build().authenticate(&token_for(sid, uid(1), tid)).await.unwrap();
    assert_eq!(auth.user.id, uid(1));
}

#[tokio::test]
async fn losing_a_concurrent_rotation_counts_as_reuse() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([2; 16]);
    let mut s = Setup::new();
    s.sessions
        .expect_get_with_user()
        .returning(move |_| Ok(Some(view(session(sid, uid(1), tid, NOW), user(uid(1), PremiumStatus::Premium)))));
    s.sessions.expect_rotate().times(1).returning(|_, _, _, _| Err(RepoError::StaleVersion));
    s.sessions.expect_revoke().times(1).returning(|_, _| Ok(()));
    let err = s.build().rotate_session(&token_for(sid, uid(1), tid)).await.unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Unauthenticated::Reused));
}

#[tokio::test]
async fn rotation_issues_a_token_with_a_new_id() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([200; 16]);
    let mut s = Setup::new();
    s.sessions
        .expect_get_with_user()
        .returning(move |_| Ok(Some(view(session(sid, uid(1), tid, NOW), user(uid(1), PremiumStatus::Premium)))));
    s.sessions.expect_rotate().times(1).returning(move |_, old, new, _| {
        assert_ne!(old, new);
        let mut out = session(sid, uid(1), tid, NOW);
        out.token_id_hash = new.clone();
        Ok(out)
    });
    let (_, issued) = s.build().rotate_session(&token_for(sid, uid(1), tid)).await.unwrap();
    assert_ne!(issued.token.expose(), token_for(sid, uid(1), tid));
}

#[tokio::test]
async fn log_out_disconnects_and_is_idempotent() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([2; 16]);
    let mut s = Setup::new();
    s.sessions
        .expect_get_with_user()
        .returning(move |_| Ok(Some(view(session(sid, uid(1), tid, NOW), user(uid(1), PremiumStatus::Premium)))));
    s.sessions.expect_revoke_all_for_user().with(eq(uid(1)), eq(NOW)).times(1).returning(|_, _| Ok(1));
    s.users.expect_delete_tokens().with(eq(uid(1))).times(1).returning(|_| Ok(()));
    s.users
        .expect_set_active()
        .with(eq(uid(1)), eq(false), eq(NOW))
        .times(1)
        .returning(|id, _, _| Ok(user(id, PremiumStatus::Premium)));
    let svc = s.build();
    svc.log_out(&token_for(sid, uid(1), tid)).await.unwrap();
    // A garbage or dead token is already logged out.
    svc.log_out("garbage").await.unwrap();
}

#[tokio::test]
async fn playback_token_is_refused_to_a_known_free_user_without_touching_spotify() {
    let mut s = Setup::new();
    s.users.expect_get().returning(|id| Ok(Some(user(id, PremiumStatus::Free))));
    s.refresher.expect_valid_access_token().never();
    assert_eq!(s.build().playback_token(uid(1)).await.unwrap_err(), AuthError::PremiumRequired);
}

#[tokio::test]
async fn playback_token_for_unknown_status_is_served() {
    let mut s = Setup::new();
    s.users.expect_get().returning(|id| Ok(Some(user(id, PremiumStatus::Unknown))));
    s.refresher
        .expect_valid_access_token()
        .with(eq(uid(1)), eq(Duration::from_secs(300)))
        .times(1)
        .returning(|_, _| Ok(AccessGrant { access_token: AccessToken::new("AT").unwrap(), expires_at: NOW }));
    assert_eq!(s.build().playback_token(uid(1)).await.unwrap().access_token.expose(), "AT");
}

#[tokio::test]
async fn stale_subscription_is_rechecked_fresh_one_is_not() {
    let mut s = Setup::new();
    let ttl = s.policy.subscription_ttl;
    s.users.expect_get().returning(move |id| {
        let mut u = user(id, PremiumStatus::Unknown);
        u.subscription.checked_at = Some(NOW.minus(ttl).minus(Duration::from_secs(1)));
        Ok(Some(u))
    });
    s.refresher
        .expect_valid_access_token()
        .times(1)
        .returning(|_, _| Ok(AccessGrant { access_token: AccessToken::new("AT").unwrap(), expires_at: NOW }));
    s.profile.expect_current_profile().times(1).returning(|_| Ok(profile(Some("premium"))));
    s.users.expect_record_subscription().times(1).returning(|id, sub| {
        let mut u = user(id, PremiumStatus::Unknown);
        u.subscription = sub;
        Ok(u)
    });
    let sub = s.build().check_subscription(uid(1), false).await.unwrap();
    assert_eq!((sub.status, sub.checked_at), (PremiumStatus::Premium, Some(NOW)));

    let mut s = Setup::new();
    s.users.expect_get().returning(|id| Ok(Some(user(id, PremiumStatus::Free))));
    s.refresher.expect_valid_access_token().never();
    assert_eq!(s.build().check_subscription(uid(1), false).await.unwrap().status, PremiumStatus::Free);
}

#[tokio::test]
async fn playback_token_for_a_request_uses_the_token_row_read_with_the_session() {
    let sid = SessionId::from_bytes([1; 16]);
    let tid = TokenId::from_bytes([2; 16]);
    let row = stored(uid(1), 3000, 86400);
    let mut s = Setup::new();
    let with_tokens = row.clone();
    s.sessions.expect_get_with_user().times(2).returning(move |_| {
        let mut v = view(session(sid, uid(1), tid, NOW), user(uid(1), PremiumStatus::Premium));
        if let Some(owner) = v.owner.as_mut() {
            owner.tokens = Some(with_tokens.clone());
        }
        Ok(Some(v))
    });
    s.users.expect_load_tokens().never();
    s.refresher.expect_valid_access_token().never();
    s.refresher
        .expect_valid_access_token_preloaded()
        .withf(move |id, t, min| *id == uid(1) && t.as_ref() == Some(&row) && *min == Duration::from_secs(300))
        .times(1)
        .returning(|_, _, _| Ok(AccessGrant { access_token: AccessToken::new("AT").unwrap(), expires_at: NOW }));
    let svc = s.build();
    let auth = svc.authenticate(&token_for(sid, uid(1), tid)).await.unwrap();
    assert_eq!(svc.playback_token_for(auth).await.unwrap().access_token.expose(), "AT");
    // A known free user is refused before any token work.
    let mut free = svc.authenticate(&token_for(sid, uid(1), tid)).await.unwrap();
    free.user.subscription.status = PremiumStatus::Free;
    assert_eq!(svc.playback_token_for(free).await.unwrap_err(), AuthError::PremiumRequired);
}

// --- StoreRefresher -----------------------------------------------------------------------

fn stored(user_id: UserId, access_expires_in: i64, refresh_expires_in: i64) -> StoredTokens {
    let c = fake_cipher();
    StoredTokens {
        access_token: c.encrypt("OLD-AT", TokenBinding { user_id, column: TokenColumn::Access }).unwrap(),
        refresh_token: c.encrypt("OLD-RT", TokenBinding { user_id, column: TokenColumn::Refresh }).unwrap(),
        access_expires_at: Timestamp::from_unix_seconds(NOW.unix_seconds() + access_expires_in),
        refresh_expires_at: Timestamp::from_unix_seconds(NOW.unix_seconds() + refresh_expires_in),
        scopes: Scopes::parse("streaming"),
        version: TokenVersion(5),
        reauth_required: false,
    }
}

type Refresher = StoreRefresher<MockUserRepository, MockTokenCipher, MockSpotifyAccounts, MockClock>;

fn refresher(users: MockUserRepository, accounts: MockSpotifyAccounts) -> Refresher {
    StoreRefresher::new(Arc::new(users), Arc::new(fake_cipher()), Arc::new(accounts), Arc::new(fixed_clock(NOW)))
}

const SKEW: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_fresh_token_is_served_without_calling_spotify() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, 3000, 86400))));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().never();
    let g = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap();
    assert_eq!(g.access_token.expose(), "OLD-AT");
}

#[tokio::test]
async fn a_preloaded_row_serves_a_fresh_token_without_a_read_and_anything_else_reads_again() {
    // Fresh and usable: served from the row, no read, no Spotify call.
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().never();
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().never();
    let g = refresher(users, accounts)
        .valid_access_token_preloaded(uid(1), Some(stored(uid(1), 3000, 86400)), SKEW)
        .await
        .unwrap();
    assert_eq!(g.access_token.expose(), "OLD-AT");

    // Expiring, marked for re-authorization, past the absolute expiry, or absent: the copy is
    // never acted on; the full path reads the row again (here it finds a fresh one).
    let mut marked = stored(uid(1), 3000, 86400);
    marked.reauth_required = true;
    for row in [Some(stored(uid(1), 100, 86400)), Some(marked), Some(stored(uid(1), 3000, -1)), None] {
        let mut users = MockUserRepository::new();
        users.expect_load_tokens().times(1).returning(|id| Ok(Some(stored(id, 3000, 86400))));
        users.expect_mark_reauth_required().never();
        let mut accounts = MockSpotifyAccounts::new();
        accounts.expect_refresh().never();
        let g = refresher(users, accounts).valid_access_token_preloaded(uid(1), row, SKEW).await.unwrap();
        assert_eq!(g.access_token.expose(), "OLD-AT");
    }
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_a_missing_refresh_token_keeps_the_old_one() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, 100, 86400))));
    users
        .expect_store_refreshed()
        .withf(|id, v, t| *id == uid(1) && *v == TokenVersion(5) && t.refresh_token.is_none())
        .times(1)
        .returning(|_, _, _| Ok(TokenVersion(6)));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().withf(|rt| rt.expose() == "OLD-RT").times(1).returning(|_| Ok(grant("NEW-AT", None)));
    let g = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap();
    assert_eq!(g.access_token.expose(), "NEW-AT");
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_in_the_same_write() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, 86400))));
    users
        .expect_store_refreshed()
        .withf(|id, _, t| {
            t.refresh_token.as_ref().map(|r| r.as_bytes().to_vec())
                == Some(format!("refresh_token|{id}|NEW-RT").into_bytes())
        })
        .times(1)
        .returning(|_, _, _| Ok(TokenVersion(6)));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().times(1).returning(|_| Ok(grant("NEW-AT", Some("NEW-RT"))));
    refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap();
}

#[tokio::test]
async fn invalid_grant_marks_reauthorization_and_is_not_retried() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, 86400))));
    users.expect_mark_reauth_required().with(eq(uid(1)), eq(TokenVersion(5))).times(1).returning(|_, _| Ok(()));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::ReauthRequired));
    let err = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::ReauthRequired);
}

#[tokio::test]
async fn a_refresh_token_past_six_months_is_known_dead_without_a_call() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, -10, -1))));
    users.expect_mark_reauth_required().times(1).returning(|_, _| Ok(()));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().never();
    let err = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::ReauthRequired);
}

#[tokio::test]
async fn outage_serves_the_old_token_while_valid_else_unavailable() {
    for (expires_in, outcome) in [(100, Ok("OLD-AT")), (-1, Err(TokenError::Unavailable { retry_after: None }))] {
        let mut users = MockUserRepository::new();
        users.expect_load_tokens().returning(move |id| Ok(Some(stored(id, expires_in, 86400))));
        users.expect_store_refreshed().never();
        let mut accounts = MockSpotifyAccounts::new();
        accounts.expect_refresh().times(1).returning(|_| Err(SpotifyError::Unavailable("503".into())));
        let got = refresher(users, accounts).valid_access_token(uid(1), SKEW).await;
        assert_eq!(got.map(|g| g.access_token.expose().to_owned()), outcome.map(str::to_owned));
    }
}

#[tokio::test]
async fn rate_limit_passes_retry_after_when_no_valid_token_is_at_hand() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|id| Ok(Some(stored(id, -1, 86400))));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().returning(|_| Err(SpotifyError::RateLimited { retry_after: Duration::from_secs(30) }));
    let err = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::RateLimited { retry_after: Duration::from_secs(30) });
}

#[tokio::test]
async fn reauth_mark_and_disconnect_short_circuit() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().with(eq(uid(1))).returning(|id| {
        let mut s = stored(id, -1, 86400);
        s.reauth_required = true;
        Ok(Some(s))
    });
    users.expect_load_tokens().with(eq(uid(2))).returning(|_| Ok(None));
    let mut accounts = MockSpotifyAccounts::new();
    accounts.expect_refresh().never();
    let r = refresher(users, accounts);
    assert_eq!(r.valid_access_token(uid(1), SKEW).await.unwrap_err(), TokenError::ReauthRequired);
    assert_eq!(r.valid_access_token(uid(2), SKEW).await.unwrap_err(), TokenError::NotConnected);
}

#[tokio::test]
async fn a_ciphertext_bound_to_another_user_is_refused() {
    let mut users = MockUserRepository::new();
    users.expect_load_tokens().returning(|_| Ok(Some(stored(uid(99), 3000, 86400))));
    let accounts = MockSpotifyAccounts::new();
    let err = refresher(users, accounts).valid_access_token(uid(1), SKEW).await.unwrap_err();
    assert_eq!(err, TokenError::Cipher(CipherError::Tampered));
}

// --- Login flow ----------------------------------------------------------------------------

use crate::login::{ConsumeOutcome, LoginFlow, ReturnTo};
use crate::secret::{AuthorizationCode, OAuthState, PkceVerifier};

fn state(s: &str) -> OAuthState {
    OAuthState::new(s).unwrap()
}

fn callback(query: Option<&str>, cookie: Option<&str>) -> CallbackInput {
    CallbackInput {
        state: query.map(state),
        outcome: Ok(AuthorizationCode::new("CODE").unwrap()),
        bound: cookie.map(|c| (state(c), PkceVerifier::new("v".repeat(43)).unwrap())),
        meta: SessionMeta::default(),
    }
}

#[tokio::test]
async fn begin_login_records_the_flow_with_its_return_path() {
    let mut s = Setup::new();
    s.accounts.expect_begin_authorization().returning(|| AuthorizationStart {
        authorize_url: "https://accounts.example/authorize?state=S1".into(),
        state: state("S1"),
        pkce_verifier: PkceVerifier::new("v".repeat(43)).unwrap(),
    });
    s.flows
        .expect_create()
        .withf(|f| {
            f.state.expose() == "S1"
                && f.return_to.as_ref().map(ReturnTo::as_str) == Some("/room")
                && f.expires_at == NOW.plus(crate::login::LOGIN_FLOW_TTL)
        })
        .times(1)
        .returning(|_| Ok(()));
    let start = s.build().begin_login(Some(ReturnTo::new("/room").unwrap())).await.unwrap();
    assert_eq!(start.state.expose(), "S1");
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
        let mut s = Setup::new();
        s.accounts.expect_exchange_code().never();
        match consumed {
            Some(outcome) => {
                s.flows.expect_consume().times(1).return_once(move |_, _| Ok(outcome));
            }
            None => {
                s.flows.expect_consume().never();
            }
        }
        let err = s.build().complete_login(input).await.unwrap_err();
        assert_eq!(err, AuthError::LoginRejected(want));
    }
}

#[tokio::test]
async fn declined_authorization_spends_the_flow_and_exchanges_nothing() {
    let mut s = Setup::new();
    s.flows.expect_consume().times(1).returning(|_, _| {
        Ok(ConsumeOutcome::Consumed(LoginFlow { return_to: None, created_at: NOW, expires_at: NOW }))
    });
    s.accounts.expect_exchange_code().never();
    let mut input = callback(Some("S1"), Some("S1"));
    input.outcome = Err("access_denied".into());
    let err = s.build().complete_login(input).await.unwrap_err();
    assert_eq!(err, AuthError::AuthorizationDeclined("access_denied".into()));
}

#[tokio::test]
async fn a_valid_callback_exchanges_the_code_with_the_bound_verifier() {
    let mut s = Setup::new();
    s.flows.expect_consume().withf(|st, now| st.expose() == "S1" && *now == NOW).times(1).returning(|_, _| {
        Ok(ConsumeOutcome::Consumed(LoginFlow {
            return_to: Some(ReturnTo::new("/after").unwrap()),
            created_at: NOW,
            expires_at: NOW,
        }))
    });
    s.accounts
        .expect_exchange_code()
        .withf(|code, v| code.expose() == "CODE" && v.expose() == "v".repeat(43))
        .times(1)
        .returning(|_, _| Ok(grant("AT", Some("RT"))));
    s.profile.expect_current_profile().times(1).returning(|_| Ok(profile(Some("premium"))));
    s.users.expect_find_by_account_key().returning(|_| Ok(None));
    s.users.expect_insert().returning(|n| Ok(user_from_new(&n)));
    expect_session_create(&mut s.sessions);
    let (logged, return_to) = s.build().complete_login(callback(Some("S1"), Some("S1"))).await.unwrap();
    assert_eq!(return_to.unwrap().as_str(), "/after");
    assert_eq!(logged.user.subscription.status, PremiumStatus::Premium);
}
