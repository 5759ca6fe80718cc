//! Fixtures shared by the unit tests of [`crate::service`] and [`crate::tokens`]: every port as a
//! mockall mock, with fakes for the pure ones (cipher, codec, digests, ids) and a manual clock and
//! an event log that tests can read back ([`Probe`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ids::{SessionId, TokenId, UserId};
use crate::login::StateDigest;
use crate::ports::{
    CipherError, LeaseOutcome, MockClock, MockDigests, MockIdSource, MockLoginFlowRepository, MockRateLimitRepository,
    MockRefreshEvents, MockSessionRepository, MockSessionTokenCodec, MockSpotifyAccounts, MockSpotifyProfilePort,
    MockTokenCipher, MockTokenRepository, MockUserLocks, MockUserRepository, RefreshEvent, SessionTokenError, UserLock,
};
use crate::secret::{AccessToken, OAuthState, RefreshToken, Secret, SessionToken};
use crate::service::{AuthPorts, AuthService, ServicePolicy};
use crate::session::{SessionClaims, TokenIdHash};
use crate::time::Timestamp;
use crate::token::{EncryptedToken, Scopes, StoredTokens, TokenColumn, TokenGrant, TokenVersion};
use crate::tokens::{RefreshPolicy, TokenIdentity, TokenPorts, TokenService};
use crate::user::{PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription, User};

/// The time every test starts at.
pub(crate) const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
/// The Spotify client id the backoff is keyed by.
pub(crate) const CLIENT_ID: &str = "client-1";
/// This instance's lease-holder id.
pub(crate) const INSTANCE: &str = "instance-a";
/// The `min_validity` the token tests ask for.
pub(crate) const SKEW: Duration = Duration::from_secs(300);

pub(crate) fn uid(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The timings of the token tests: short enough to count the polls of a lease wait.
pub(crate) fn refresh_policy() -> RefreshPolicy {
    RefreshPolicy {
        lease_ttl: secs(10),
        lease_poll: Duration::from_millis(100),
        max_wait: secs(1),
        stale_patience: secs(1),
        max_backoff: secs(3600),
        unavailable_retry_after: secs(5),
    }
}

/// The fake cipher's ciphertext: `column|user|plaintext`.
pub(crate) fn fake_ciphertext(column: TokenColumn, user: UserId, plaintext: &str) -> EncryptedToken {
    EncryptedToken::from_bytes(format!("{}|{}|{}", column.as_str(), user, plaintext).into_bytes())
}

/// A cipher that "encrypts" as [`fake_ciphertext`] and checks the binding on decrypt.
pub(crate) fn fake_cipher() -> MockTokenCipher {
    let mut c = MockTokenCipher::new();
    c.expect_encrypt().returning(|p, b| Ok(fake_ciphertext(b.column, b.user_id, p)));
    c.expect_decrypt().returning(|ct, b| {
        let s = String::from_utf8(ct.as_bytes().to_vec()).unwrap();
        if s.starts_with("retired|") {
            return Err(CipherError::UnknownKey("k0".into()));
        }
        let prefix = format!("{}|{}|", b.column.as_str(), b.user_id);
        s.strip_prefix(&prefix).map(Secret::new).ok_or(CipherError::Tampered)
    });
    c
}

/// The fake digest of a token id: its 16 bytes, zero padded.
pub(crate) fn token_hash(t: &TokenId) -> TokenIdHash {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(t.as_bytes());
    TokenIdHash::from_bytes(h)
}

/// The fake digest of an OAuth state: deterministic, different per state, and not the state's
/// bytes (each byte flipped, folded into 32 bytes after a marker byte).
pub(crate) fn state_digest(s: &OAuthState) -> StateDigest {
    let mut d = [0u8; 32];
    d[0] = 0xD5;
    for (i, b) in s.expose().bytes().enumerate() {
        d[1 + i % 31] ^= !b;
    }
    StateDigest::from_bytes(d)
}

pub(crate) fn fake_digests() -> MockDigests {
    let mut d = MockDigests::new();
    d.expect_token_id().returning(token_hash);
    d.expect_oauth_state().returning(state_digest);
    d.expect_successor_token_id().returning(successor);
    d
}

/// The fake successor of a token id: each byte plus 100.
pub(crate) fn successor(t: &TokenId) -> TokenId {
    TokenId::from_bytes(t.as_bytes().map(|b| b.wrapping_add(100)))
}

/// The fake codec's claims of `jwt.<session>.<user>.<token id>`, issued at [`NOW`].
fn fake_claims(token: &str) -> Result<SessionClaims, SessionTokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 4 || parts[0] != "jwt" {
        return Err(SessionTokenError::Malformed);
    }
    Ok(SessionClaims {
        session_id: parts[1].parse().unwrap(),
        user_id: parts[2].parse().unwrap(),
        token_id: parts[3].parse().unwrap(),
        issued_at: NOW,
        expires_at: NOW.plus(secs(3600)),
    })
}

/// A codec whose tokens are `jwt.<session>.<user>.<token id>`.
pub(crate) fn fake_codec() -> MockSessionTokenCodec {
    let mut c = MockSessionTokenCodec::new();
    c.expect_issue().returning(|claims| {
        Ok(SessionToken::new(format!("jwt.{}.{}.{}", claims.session_id, claims.user_id, claims.token_id)).unwrap())
    });
    c.expect_verify().returning(|token, _now| fake_claims(token));
    c.expect_verify_ignoring_time().returning(fake_claims);
    c
}

/// Ids: user 42, session 9, token ids 1, 2, 3, … in order; jitter is always the maximum asked
/// for (so a sleep shows the jitter bound it was drawn with).
pub(crate) fn counter_ids() -> MockIdSource {
    let mut ids = MockIdSource::new();
    ids.expect_new_user_id().returning(|| uid(42));
    ids.expect_new_session_id().returning(|| SessionId::from_bytes([9; 16]));
    let n = AtomicU8::new(1);
    ids.expect_new_token_id().returning(move || TokenId::from_bytes([n.fetch_add(1, Ordering::SeqCst); 16]));
    ids.expect_jitter().returning(|max| max);
    ids
}

/// What Spotify's token endpoint answers: an access token valid for an hour from [`NOW`].
pub(crate) fn grant(access: &str, refresh: Option<&str>) -> TokenGrant {
    TokenGrant {
        access_token: AccessToken::new(access).unwrap(),
        access_expires_at: NOW.plus(secs(3600)),
        refresh_token: refresh.map(|r| RefreshToken::new(r).unwrap()),
        scopes: Scopes::parse("streaming user-read-email user-read-private"),
    }
}

/// A token row holding `OLD-AT`/`OLD-RT` at version 5, its access token expiring
/// `access_expires_in` seconds after [`NOW`], its refresh token `refresh_expires_in` seconds after.
pub(crate) fn stored(user_id: UserId, access_expires_in: i64, refresh_expires_in: i64) -> StoredTokens {
    stored_as(user_id, "OLD-AT", access_expires_in, refresh_expires_in, 5)
}

/// [`stored`] with another access token and version (a row someone else wrote).
pub(crate) fn stored_as(
    user_id: UserId,
    access: &str,
    access_expires_in: i64,
    refresh_expires_in: i64,
    version: u64,
) -> StoredTokens {
    StoredTokens {
        access_token: fake_ciphertext(TokenColumn::Access, user_id, access),
        refresh_token: fake_ciphertext(TokenColumn::Refresh, user_id, "OLD-RT"),
        access_expires_at: Timestamp::from_unix_seconds(NOW.unix_seconds() + access_expires_in),
        refresh_expires_at: Timestamp::from_unix_seconds(NOW.unix_seconds() + refresh_expires_in),
        scopes: Scopes::parse("streaming"),
        version: TokenVersion(version),
        reauth_required: false,
    }
}

pub(crate) fn free_lock() -> UserLock {
    UserLock { joined: false, guard: Box::new(()) }
}

/// A signed-in user (Spotify id `alice`) with tokens and this plan.
pub(crate) fn user(id: UserId, status: PremiumStatus) -> User {
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

/// The manual clock (starting at [`NOW`]; `sleep` advances it instead of waiting), the sleeps
/// taken and the events recorded, readable after the service is built.
#[derive(Clone, Default)]
pub(crate) struct Probe {
    now_ms: Arc<AtomicI64>,
    sleeps: Arc<Mutex<Vec<Duration>>>,
    events: Arc<Mutex<Vec<RefreshEvent>>>,
}

impl Probe {
    fn new() -> Self {
        let probe = Probe::default();
        probe.now_ms.store(NOW.unix_millis(), Ordering::SeqCst);
        probe
    }

    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn advance(&self, d: Duration) {
        self.now_ms.fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// Sets the clock, e.g. back in time, as a wall clock stepped back by NTP does.
    pub(crate) fn set(&self, t: Timestamp) {
        self.now_ms.store(t.unix_millis(), Ordering::SeqCst);
    }

    pub(crate) fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    pub(crate) fn events(&self) -> Vec<RefreshEvent> {
        self.events.lock().unwrap().clone()
    }

    pub(crate) fn clock(&self) -> MockClock {
        let mut c = MockClock::new();
        let now = self.now_ms.clone();
        c.expect_now().returning(move || Timestamp::from_unix_millis(now.load(Ordering::SeqCst)));
        let (now, sleeps) = (self.now_ms.clone(), self.sleeps.clone());
        c.expect_sleep().returning(move |d| {
            sleeps.lock().unwrap().push(d);
            now.fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::SeqCst);
        });
        c
    }

    fn recorder(&self) -> MockRefreshEvents {
        let mut e = MockRefreshEvents::new();
        let events = self.events.clone();
        e.expect_record().returning(move |event| events.lock().unwrap().push(event));
        e
    }
}

/// Every port of both use cases. The repositories, Spotify and the locks start without any
/// expectation (an unexpected call fails the test); set what a test needs, then build.
pub(crate) struct Fixture {
    pub(crate) users: MockUserRepository,
    pub(crate) tokens: MockTokenRepository,
    pub(crate) sessions: MockSessionRepository,
    pub(crate) flows: MockLoginFlowRepository,
    pub(crate) limits: MockRateLimitRepository,
    pub(crate) accounts: MockSpotifyAccounts,
    pub(crate) profile: MockSpotifyProfilePort,
    pub(crate) locks: MockUserLocks,
    /// Fakes by default ([`fake_digests`]); replace to check calls.
    pub(crate) digests: MockDigests,
    pub(crate) policy: ServicePolicy,
    pub(crate) refresh_policy: RefreshPolicy,
    pub(crate) probe: Probe,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Fixture {
            users: MockUserRepository::new(),
            tokens: MockTokenRepository::new(),
            sessions: MockSessionRepository::new(),
            flows: MockLoginFlowRepository::new(),
            limits: MockRateLimitRepository::new(),
            accounts: MockSpotifyAccounts::new(),
            profile: MockSpotifyProfilePort::new(),
            locks: MockUserLocks::new(),
            digests: fake_digests(),
            policy: ServicePolicy::default(),
            refresh_policy: refresh_policy(),
            probe: Probe::new(),
        }
    }

    /// The user lock is free (no single-flight join).
    pub(crate) fn lock_free(&mut self) {
        self.locks.expect_lock().returning(|_| free_lock());
    }

    /// No backoff was ever recorded for the client id.
    pub(crate) fn no_backoff(&mut self) {
        self.limits.expect_backoff_until().returning(|_| Ok(None));
    }

    /// The refresh lease is free, and released without trouble.
    pub(crate) fn lease_free(&mut self) {
        self.tokens.expect_try_acquire_refresh_lease().returning(|_, _, _, _| Ok(LeaseOutcome::Acquired));
        self.tokens.expect_release_refresh_lease().returning(|_, _| Ok(()));
    }

    /// Nothing stands in the way of a refresh: [`Self::lock_free`], [`Self::no_backoff`],
    /// [`Self::lease_free`].
    pub(crate) fn calm(&mut self) {
        self.lock_free();
        self.no_backoff();
        self.lease_free();
    }

    /// The token row reads answer `rows`, one per read, in order, and there are exactly that many.
    pub(crate) fn loads(&mut self, user: UserId, rows: Vec<Option<StoredTokens>>) {
        let n = rows.len();
        let rows = Mutex::new(std::collections::VecDeque::from(rows));
        self.tokens
            .expect_load_tokens()
            .with(mockall::predicate::eq(user))
            .times(n)
            .returning(move |_| Ok(rows.lock().unwrap().pop_front().unwrap()));
    }

    /// The token use case alone.
    pub(crate) fn token_service(self) -> (Arc<TokenService>, Probe) {
        let (_, tokens, probe) = self.services();
        (tokens, probe)
    }

    /// The auth use case over a token use case sharing its token store, cipher, Spotify
    /// accounts, clock and ids.
    pub(crate) fn auth_service(self) -> (AuthService, Probe) {
        let (auth, _, probe) = self.services();
        (auth, probe)
    }

    fn services(self) -> (AuthService, Arc<TokenService>, Probe) {
        let tokens = Arc::new(self.tokens);
        let accounts = Arc::new(self.accounts);
        let cipher = Arc::new(fake_cipher());
        let clock = Arc::new(self.probe.clock());
        let ids = Arc::new(counter_ids());
        let token_ports = TokenPorts {
            tokens: tokens.clone(),
            limits: Arc::new(self.limits),
            cipher: cipher.clone(),
            accounts: accounts.clone(),
            clock: clock.clone(),
            ids: ids.clone(),
            locks: Arc::new(self.locks),
            events: Arc::new(self.probe.recorder()),
        };
        let identity = TokenIdentity { client_id: CLIENT_ID.into(), instance: INSTANCE.into() };
        let token_service = Arc::new(TokenService::new(token_ports, self.refresh_policy, identity));
        let auth_ports = AuthPorts {
            users: Arc::new(self.users),
            tokens,
            sessions: Arc::new(self.sessions),
            flows: Arc::new(self.flows),
            accounts,
            profile: Arc::new(self.profile),
            cipher,
            codec: Arc::new(fake_codec()),
            digests: Arc::new(self.digests),
            clock,
            ids,
        };
        (AuthService::new(auth_ports, token_service.clone(), self.policy), token_service, self.probe)
    }
}
