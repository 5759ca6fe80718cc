//! The token use case, with this crate's locks and metrics, against real stores (SQLite, and MySQL for several instances on one
//! database), the Spotify adapter, and the emulator over HTTP, with an injected clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{
    AccountPrompt, Clock, LoginUpdate, NewUser, SpotifyAccounts, SpotifyProfilePort, TokenCipher, TokenError,
    TokenRepository, UserRepository,
};
use spotauth_domain::secret::AuthorizationCode;
use spotauth_domain::session::{NewSession, SessionMeta, SessionPolicy, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{NewTokens, REFRESH_TOKEN_LIFETIME, TokenBinding, TokenColumn};
use spotauth_domain::tokens::{RefreshPolicy, TokenIdentity, TokenPorts, TokenService};
use spotauth_domain::user::Subscription;
use spotauth_emulator::{Emulator, EmulatorHandle, Fault, FaultTarget, RefreshMode, TestUser};
use spotauth_runtime::proactive::{self, ProactiveSettings};
use spotauth_runtime::{LockMap, RefreshMetrics};
use spotauth_spotify::SpotifyClient;
use spotauth_sql::Repositories;
use spotauth_testkit::emulator::confidential_app;
use spotauth_testkit::{ManualClock, TempDir, TestDb, keyring};

use common::REDIRECT;
const SKEW: Duration = Duration::from_secs(300);

/// One app instance's token use case, with its own locks and metrics.
struct Instance {
    tokens: Arc<TokenService>,
    metrics: Arc<RefreshMetrics>,
}

enum Guard {
    #[allow(dead_code)]
    Dir(TempDir),
    #[allow(dead_code)]
    Db(TestDb),
}

struct Env {
    emu: EmulatorHandle,
    clock: Arc<ManualClock>,
    repos: Repositories,
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn TokenRepository>,
    cipher: Arc<dyn TokenCipher>,
    spotify: Arc<SpotifyClient>,
    http: reqwest::Client,
    sessions_made: std::sync::atomic::AtomicU8,
    _guard: Guard,
}

async fn emulator() -> EmulatorHandle {
    let mut config = confidential_app("refresh-client", "secret", REDIRECT);
    for i in 0..20 {
        config = config.user(TestUser::premium(format!("u{i}")));
    }
    Emulator::start(config).await.unwrap()
}

impl Env {
    async fn build(emu: EmulatorHandle, repos: Repositories, guard: Guard) -> Env {
        // Polls for another instance's lease wait for real, while the test moves the time.
        let clock = Arc::new(ManualClock::at(Timestamp::from_unix_seconds(1_800_000_000)).with_real_sleep());
        let cipher: Arc<dyn TokenCipher> = Arc::new(keyring());
        let spotify = common::spotify_client(&emu, "refresh-client", Duration::from_secs(2), clock.clone());
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let (users, tokens) = (repos.users.clone(), repos.tokens.clone());
        let sessions_made = std::sync::atomic::AtomicU8::new(1);
        Env { emu, clock, repos, users, tokens, cipher, spotify, http, sessions_made, _guard: guard }
    }

    async fn sqlite() -> Env {
        let dir = TempDir::new("spotauth-refresh");
        let repos = common::sqlite_repositories(&dir).await;
        Env::build(emulator().await, repos, Guard::Dir(dir)).await
    }

    /// A MySQL database; returns the URL too, so a second "instance" can open its own pool.
    async fn mysql() -> (Env, String) {
        let db = TestDb::create().await;
        let url = db.url().to_owned();
        let store = open_mysql(&url).await;
        store.run_migrations(|_| {}).await.unwrap();
        (Env::build(emulator().await, store.repositories(), Guard::Db(db)).await, url)
    }

    fn instance(&self) -> Instance {
        self.instance_on(&self.repos)
    }

    /// An instance of the token use case on `repos` (another pool: another app instance).
    fn instance_on(&self, repos: &Repositories) -> Instance {
        let mut policy = RefreshPolicy::for_timeout(Duration::from_secs(2));
        policy.lease_poll = Duration::from_millis(20);
        let metrics = Arc::new(RefreshMetrics::default());
        let ports = TokenPorts {
            tokens: repos.tokens.clone(),
            limits: repos.rate_limits.clone(),
            cipher: self.cipher.clone(),
            accounts: self.spotify.clone(),
            clock: self.clock.clone(),
            ids: Arc::new(spotauth_crypto::OsIds),
            locks: Arc::new(LockMap::default()),
            events: metrics.clone(),
        };
        let identity = TokenIdentity { client_id: "refresh-client".into(), instance: format!("i-{}", rand_suffix()) };
        Instance { tokens: Arc::new(TokenService::new(ports, policy, identity)), metrics }
    }

    /// A real authorization at the emulator; returns the code exchange's grant.
    async fn authorize(&self, user: &str) -> spotauth_domain::token::TokenGrant {
        let start = self.spotify.begin_authorization(AccountPrompt::Silent);
        let resp = self.http.get(format!("{}&login_as={user}", start.authorize_url)).send().await.unwrap();
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        self.spotify.exchange_code(&AuthorizationCode::new(code).unwrap(), &start.pkce_verifier).await.unwrap()
    }

    fn tokens_for(&self, id: UserId, grant: &spotauth_domain::token::TokenGrant) -> NewTokens {
        let bind = |column| TokenBinding { user_id: id, column };
        NewTokens {
            access_token: self.cipher.encrypt(grant.access_token.expose(), bind(TokenColumn::Access)).unwrap(),
            refresh_token: self
                .cipher
                .encrypt(grant.refresh_token.as_ref().unwrap().expose(), bind(TokenColumn::Refresh))
                .unwrap(),
            access_expires_at: grant.access_expires_at,
            refresh_expires_at: self.clock.now().plus(REFRESH_TOKEN_LIFETIME),
            scopes: grant.scopes.clone(),
        }
    }

    /// Connects a user as a login would: authorize, exchange, profile, store encrypted tokens.
    async fn connect(&self, user: &str) -> UserId {
        let grant = self.authorize(user).await;
        let profile = self.spotify.current_profile(&grant.access_token).await.unwrap();
        let id = UserId::from_bytes(*uuid_bytes(user));
        let new = NewUser {
            id,
            account_key: profile.account_key().unwrap(),
            spotify_id: profile.spotify_id.clone(),
            display_name: profile.display_name.clone(),
            subscription: Subscription::unknown(),
            tokens: self.tokens_for(id, &grant),
            now: self.clock.now(),
        };
        self.users.insert(new).await.unwrap();
        id
    }

    /// Signs the user in: a session live from now for a day.
    async fn sign_in(&self, id: UserId) {
        let now = self.clock.now();
        let n = self.sessions_made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let session = NewSession {
            id: SessionId::from_bytes([n; 16]),
            user_id: id,
            token_id_hash: TokenIdHash::from_bytes([n; 32]),
            created_at: now,
            expires_at: now.plus(Duration::from_secs(86400)),
            token_expires_at: now.plus(Duration::from_secs(86400)),
            meta: SessionMeta::default(),
        };
        self.repos.sessions.create(session).await.unwrap();
    }

    async fn relogin(&self, id: UserId, user: &str) {
        let grant = self.authorize(user).await;
        let profile = self.spotify.current_profile(&grant.access_token).await.unwrap();
        let update = LoginUpdate {
            spotify_id: profile.spotify_id,
            display_name: None,
            subscription: Subscription::unknown(),
            tokens: self.tokens_for(id, &grant),
            now: self.clock.now(),
        };
        self.users.update_on_login(id, update).await.unwrap();
    }

    fn refreshes(&self) -> u64 {
        self.emu.counters().total.token_refresh_token
    }
}

async fn open_mysql(url: &str) -> spotauth_mysql::MysqlStore {
    spotauth_mysql::MysqlStore::connect(spotauth_mysql::DatabaseUrl::parse(url).unwrap(), Default::default())
        .await
        .unwrap()
}

fn rand_suffix() -> String {
    use spotauth_domain::ports::IdSource as _;
    spotauth_crypto::OsIds.new_session_id().to_string()
}

fn uuid_bytes(name: &str) -> Box<[u8; 16]> {
    let mut b = [0u8; 16];
    for (i, c) in name.bytes().enumerate() {
        b[i % 16] ^= c.wrapping_add(i as u8);
    }
    b[15] = name.len() as u8;
    Box::new(b)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_requests_make_one_upstream_refresh() {
    let env = Env::sqlite().await;
    let alice = env.connect("alice").await;
    let original = env.instance().tokens.valid_access_token(alice, SKEW).await.unwrap();
    env.clock.advance(Duration::from_secs(3400)); // 200 s left: inside the 300 s skew
    let instance = env.instance();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let c = instance.tokens.clone();
            tokio::spawn(async move { c.valid_access_token(alice, SKEW).await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().access_token.expose().to_owned());
    }
    assert_eq!(env.refreshes(), 1, "exactly one upstream refresh");
    assert_eq!(tokens.len(), 1, "all 200 got the same new token");
    assert!(!tokens.contains(original.access_token.expose()));
    let m = instance.metrics.snapshot();
    assert_eq!(m.refreshed, 1);
    assert!(m.single_flight_joins > 0, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_make_one_upstream_refresh() {
    let (env, url) = Env::mysql().await;
    let alice = env.connect("alice").await;
    env.clock.advance(Duration::from_secs(3400));
    // The refresh takes a while, so both instances are surely in flight together.
    env.emu.inject_fault(Fault::slow(FaultTarget::Token, Duration::from_millis(300))).unwrap();
    let second = open_mysql(&url).await;
    let a = env.instance();
    let b = env.instance_on(&second.repositories());
    let mut tasks = Vec::new();
    for i in 0..60 {
        let c = if i % 2 == 0 { a.tokens.clone() } else { b.tokens.clone() };
        tasks.push(tokio::spawn(async move { c.valid_access_token(alice, SKEW).await }));
    }
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().access_token.expose().to_owned());
    }
    assert_eq!(env.refreshes(), 1, "exactly one upstream refresh across instances");
    assert_eq!(tokens.len(), 1);
    let (ma, mb) = (a.metrics.snapshot(), b.metrics.snapshot());
    assert_eq!(ma.refreshed + mb.refreshed, 1);
    assert!(ma.lease_waits + mb.lease_waits > 0, "the other instance waited on the lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keep_and_single_use_refresh_tokens() {
    let env = Env::sqlite().await;
    let c = env.instance().tokens;
    for (mode, user) in [(RefreshMode::Rotate, "alice"), (RefreshMode::Keep, "bob"), (RefreshMode::SingleUse, "carol")]
    {
        env.emu.set_user_refresh_mode(user, Some(mode)).unwrap();
        let id = env.connect(user).await;
        let mut previous = env.tokens.load_tokens(id).await.unwrap().unwrap().refresh_token;
        for round in 0..3 {
            env.clock.advance(Duration::from_secs(3500));
            let before = env.refreshes();
            c.valid_access_token(id, SKEW).await.unwrap_or_else(|e| panic!("{mode:?} round {round}: {e}"));
            assert_eq!(env.refreshes(), before + 1);
            let now = env.tokens.load_tokens(id).await.unwrap().unwrap().refresh_token;
            match mode {
                RefreshMode::Keep => assert_eq!(now, previous, "no refresh_token in the response: the old one stays"),
                _ => assert_ne!(now, previous, "the new refresh token is stored"),
            }
            previous = now;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spotify_500_leaves_the_stored_tokens_intact_and_the_next_call_succeeds() {
    let env = Env::sqlite().await;
    let alice = env.connect("alice").await;
    let instance = env.instance();
    let c = &instance.tokens;
    let stored = env.tokens.load_tokens(alice).await.unwrap().unwrap();
    let old = c.valid_access_token(alice, SKEW).await.unwrap();

    // Expiring but still valid: the old token is served.
    env.clock.advance(Duration::from_secs(3400));
    env.emu.inject_fault(Fault::server_error(FaultTarget::Token, 500)).unwrap();
    assert_eq!(c.valid_access_token(alice, SKEW).await.unwrap(), old);
    assert_eq!(env.tokens.load_tokens(alice).await.unwrap().unwrap(), stored, "stored tokens intact");
    assert_eq!(instance.metrics.snapshot().served_stale, 1);

    // Expired: 503-style error with a retry hint, still nothing lost.
    env.clock.advance(Duration::from_secs(300));
    env.emu.inject_fault(Fault::server_error(FaultTarget::Token, 503)).unwrap();
    match c.valid_access_token(alice, SKEW).await {
        Err(TokenError::Unavailable { retry_after: Some(_) }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(env.tokens.load_tokens(alice).await.unwrap().unwrap(), stored);

    // Within the retry hint this instance does not call Spotify for her again: an outage does
    // not turn every request into a call.
    let calls = env.emu.counters().total.token_refresh_token;
    match c.valid_access_token(alice, SKEW).await {
        Err(TokenError::Unavailable { retry_after: Some(_) }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(env.emu.counters().total.token_refresh_token, calls);

    env.clock.advance(Duration::from_secs(5));
    let fresh = c.valid_access_token(alice, SKEW).await.unwrap();
    assert_ne!(fresh, old);
    assert!(fresh.expires_at > env.clock.now().plus(SKEW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_user_of_the_client_id_on_every_instance() {
    let env = Env::sqlite().await;
    let alice = env.connect("alice").await;
    let bob = env.connect("bob").await;
    env.clock.advance(Duration::from_secs(3700)); // both expired
    env.emu.inject_fault(Fault::rate_limited(FaultTarget::Token, 30)).unwrap();
    let instance = env.instance();
    let c = &instance.tokens;
    assert_eq!(
        c.valid_access_token(alice, SKEW).await.unwrap_err(),
        TokenError::RateLimited { retry_after: Duration::from_secs(30) }
    );
    assert_eq!(env.refreshes(), 1);

    // Another user, another instance: no call to Spotify during the 30 s.
    env.clock.advance(Duration::from_secs(10));
    assert_eq!(
        c.valid_access_token(bob, SKEW).await.unwrap_err(),
        TokenError::RateLimited { retry_after: Duration::from_secs(20) }
    );
    let other_instance = env.instance().tokens;
    assert!(matches!(other_instance.valid_access_token(bob, SKEW).await, Err(TokenError::RateLimited { .. })));
    env.clock.advance(Duration::from_secs(19));
    assert!(matches!(other_instance.valid_access_token(alice, SKEW).await, Err(TokenError::RateLimited { .. })));
    assert_eq!(env.refreshes(), 1, "no upstream call for any user for 30 s");
    assert!(instance.metrics.snapshot().backoff_until_ms > 0);

    env.clock.advance(Duration::from_secs(2));
    other_instance.valid_access_token(bob, SKEW).await.unwrap();
    c.valid_access_token(alice, SKEW).await.unwrap();
    assert_eq!(env.refreshes(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_means_reauthorization_until_a_new_login() {
    let env = Env::sqlite().await;
    let alice = env.connect("alice").await;
    let c = env.instance().tokens;
    env.emu.revoke_refresh_tokens("alice");
    env.clock.advance(Duration::from_secs(3700));
    assert_eq!(c.valid_access_token(alice, SKEW).await.unwrap_err(), TokenError::ReauthRequired);
    assert_eq!(c.valid_access_token(alice, SKEW).await.unwrap_err(), TokenError::ReauthRequired);
    assert_eq!(env.refreshes(), 1, "never retried");
    assert!(env.users.get(alice).await.unwrap().unwrap().reauth_required);

    env.relogin(alice, "alice").await;
    assert!(c.valid_access_token(alice, SKEW).await.is_ok());
    assert!(!env.users.get(alice).await.unwrap().unwrap().reauth_required);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lease_lapses() {
    let env = Env::sqlite().await;
    let alice = env.connect("alice").await;
    env.clock.advance(Duration::from_secs(3400));
    // An instance took the lease and died.
    let ttl = Duration::from_secs(7);
    env.tokens.try_acquire_refresh_lease(alice, "dead-instance", env.clock.now(), ttl).await.unwrap();
    let instance = env.instance();
    let pending = {
        let c = instance.tokens.clone();
        tokio::spawn(async move { c.valid_access_token(alice, SKEW).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "waits while the lease is live");
    assert_eq!(env.refreshes(), 0);
    env.clock.advance(ttl);
    pending.await.unwrap().unwrap();
    assert_eq!(env.refreshes(), 1);
    assert!(instance.metrics.snapshot().lease_waits > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proactive_refresher_renews_tokens_before_they_expire_and_stops_cleanly() {
    let env = Env::sqlite().await;
    let sessions = SessionPolicy::default();
    let alice = env.connect("alice").await;
    let bob = env.connect("bob").await;
    // Dave connected once, but has no live session: his session was revoked (he logged out
    // of this device; his tokens stay until the token retention).
    let dave = env.connect("dave").await;
    for id in [alice, bob, dave] {
        env.sign_in(id).await;
    }
    env.repos.sessions.revoke_all_for_user(dave, sessions.live_after(env.clock.now()), None).await.unwrap();
    env.clock.advance(Duration::from_secs(1800));
    let carol = env.connect("carol").await; // connected later: expires later
    env.sign_in(carol).await;
    env.clock.advance(Duration::from_secs(1500)); // alice and bob: 300 s left; carol: 1800 s
    let instance = env.instance();
    let settings = ProactiveSettings { lookahead: Duration::from_secs(600), ..ProactiveSettings::default() };
    assert_eq!(proactive::run_once(&instance.tokens, settings, &sessions).await.unwrap(), (2, 0));
    assert_eq!(env.refreshes(), 2, "dave is not signed in: no upstream call for him");
    assert!(
        env.tokens.load_tokens(dave).await.unwrap().unwrap().access_expires_at
            < env.clock.now().plus(settings.lookahead)
    );
    for id in [alice, bob] {
        assert!(
            env.tokens.load_tokens(id).await.unwrap().unwrap().access_expires_at
                > env.clock.now().plus(settings.lookahead)
        );
    }
    // Nothing left to do.
    assert_eq!(proactive::run_once(&instance.tokens, settings, &sessions).await.unwrap(), (0, 0));

    let fast = ProactiveSettings { interval: Duration::from_millis(20), ..settings };
    let task = proactive::spawn(instance.tokens.clone(), instance.metrics.clone(), fast, sessions);
    tokio::time::sleep(Duration::from_millis(150)).await;
    tokio::time::timeout(Duration::from_secs(2), task.shutdown()).await.expect("stops promptly");
    assert!(instance.metrics.snapshot().proactive_runs >= 1);
}
