//! The data lifecycle end to end, with a fake clock: the real use cases (`AuthService`) on a
//! real SQLite store, the real crypto and Spotify adapters, and logins through the emulator
//! over HTTP; then one housekeeping pass a month later.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use spotauth_crypto::{JwtCodec, JwtSettings, OsIds, Sha256Digests};
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{AccountPrompt, Clock};
use spotauth_domain::secret::AuthorizationCode;
use spotauth_domain::service::{AuthPorts, AuthService, CallbackInput, Housekeeping, LogoutScope, ServicePolicy};
use spotauth_domain::session::SessionMeta;
use spotauth_domain::time::Timestamp;
use spotauth_domain::tokens::{RefreshPolicy, TokenIdentity, TokenPorts, TokenService};
use spotauth_emulator::{Emulator, EmulatorHandle};
use spotauth_runtime::{LockMap, RefreshMetrics};
use spotauth_sql::Repositories;
use spotauth_testkit::emulator::confidential_app;
use spotauth_testkit::{ManualClock, SIGNING_KEY, TempDir, keyring};

use common::REDIRECT;
const DAY: Duration = Duration::from_secs(86400);

struct World {
    service: AuthService,
    repos: Repositories,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    _emu: EmulatorHandle,
    _dir: TempDir,
}

impl World {
    async fn new() -> World {
        let dir = TempDir::new("spotauth-lifecycle");
        let repos = common::sqlite_repositories(&dir).await;
        let emu = Emulator::start(confidential_app("life-client", "secret", REDIRECT)).await.unwrap();
        let clock = Arc::new(ManualClock::at(Timestamp::from_unix_seconds(1_800_000_000)));
        let spotify = common::spotify_client(&emu, "life-client", Duration::from_secs(10), clock.clone());
        let cipher = Arc::new(keyring());
        let token_ports = TokenPorts {
            tokens: repos.tokens.clone(),
            limits: repos.rate_limits.clone(),
            cipher: cipher.clone(),
            accounts: spotify.clone(),
            clock: clock.clone(),
            ids: Arc::new(OsIds),
            locks: Arc::new(LockMap::default()),
            events: Arc::new(RefreshMetrics::default()),
        };
        let identity = TokenIdentity { client_id: "life-client".into(), instance: "i-life".into() };
        let tokens =
            Arc::new(TokenService::new(token_ports, RefreshPolicy::for_timeout(Duration::from_secs(5)), identity));
        let ports = AuthPorts {
            users: repos.users.clone(),
            tokens: repos.tokens.clone(),
            sessions: repos.sessions.clone(),
            flows: repos.flows.clone(),
            accounts: spotify.clone(),
            profile: spotify.clone(),
            cipher,
            codec: Arc::new(JwtCodec::from_config(SIGNING_KEY, JwtSettings::default()).unwrap()),
            digests: Arc::new(Sha256Digests),
            clock: clock.clone(),
            ids: Arc::new(OsIds),
        };
        let service = AuthService::new(ports, tokens, ServicePolicy::default());
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        World { service, repos, clock, http, _emu: emu, _dir: dir }
    }

    /// A whole login at the current time; returns the user and the session token.
    async fn log_in(&self, user: &str) -> (UserId, String) {
        let start = self.service.begin_login(None, None, AccountPrompt::Silent).await.unwrap();
        let resp = self.http.get(format!("{}&login_as={user}", start.authorize_url)).send().await.unwrap();
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let input = CallbackInput {
            state: Some(start.state.clone()),
            outcome: Ok(AuthorizationCode::new(code).unwrap()),
            bound: Some((start.state, start.pkce_verifier)),
            meta: SessionMeta::new(Some("test"), Some("192.0.2.1".into())),
        };
        let logged = self.service.complete_login(input).await.unwrap();
        (logged.user.id, logged.issued.token.expose().to_owned())
    }

    async fn has_tokens(&self, id: UserId) -> bool {
        self.repos.tokens.load_tokens(id).await.unwrap().is_some()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_later_one_housekeeping_pass_leaves_only_what_the_retentions_allow() {
    let w = World::new().await;
    let policy = *w.service.policy();
    // Day 0: alice logs in and logs this device out (her Spotify stays connected for now); bob
    // logs in; carol starts a login she never finishes.
    let (alice, alice_token) = w.log_in("alice").await;
    let out = w.service.log_out(&alice_token, LogoutScope::Device).await.unwrap();
    assert_eq!((out.sessions_ended, out.spotify_disconnected), (1, false));
    let (bob, bob_token) = w.log_in("bob").await;
    w.service.begin_login(None, None, AccountPrompt::Silent).await.unwrap();
    assert!(w.has_tokens(alice).await && w.has_tokens(bob).await);
    // Bob's page rotates his session every 20 hours for almost six days (each token lives a
    // day); his last token expires before day 7, and then bob is gone.
    let mut token = bob_token;
    let every = Duration::from_secs(20 * 3600);
    for _ in 0..7 {
        w.clock.advance(every);
        token = w.service.refresh_session(&token).await.unwrap().issued.token.expose().to_owned();
    }

    // Day 31: alice has had no live session for the token retention; bob's ended before day 7,
    // which is within it.
    w.clock.advance(policy.token_retention + DAY - 7 * every);
    let done = w.service.housekeeping().await.unwrap();
    // Both ended sessions go (ended more than 7 days ago); every flow lapsed more than a day ago.
    assert_eq!(done, Housekeeping { sessions: 2, login_flows: 3, disconnected_users: 1 });
    assert!(!w.has_tokens(alice).await, "alice: no live session for the token retention");
    assert!(w.has_tokens(bob).await, "bob: his session ended 24 days ago");
    assert_eq!(w.repos.flows.count_pending(None, w.clock.now()).await.unwrap().total, 0);

    // Day 37: dave logs in. Half a day later bob's last session ended more than 30 days ago.
    w.clock.advance(6 * DAY);
    let (dave, _) = w.log_in("dave").await;
    w.clock.advance(DAY / 2);
    let done = w.service.housekeeping().await.unwrap();
    assert_eq!(done, Housekeeping { sessions: 0, login_flows: 0, disconnected_users: 1 });
    assert!(!w.has_tokens(bob).await && w.has_tokens(dave).await);
    // A second pass has nothing left to do.
    assert_eq!(w.service.housekeeping().await.unwrap(), Housekeeping::default());
    // Only dave is listed: the others have no live session.
    let served = w.service.list_active_users(spotauth_domain::user::PageRequest::new(0, 10).unwrap()).await.unwrap();
    assert_eq!(served.items.iter().map(|p| p.user_id).collect::<Vec<_>>(), vec![dave]);
}
