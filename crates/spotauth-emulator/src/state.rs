//! The emulator's shared state: users, authorization codes, tokens, the emulator clock, faults
//! and counters. One `Mutex`, held only briefly and never across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::config::{EmulatorConfig, RefreshMode, TestUser};
use crate::connect::Connect;
use crate::faults::{Endpoint, Fault, FaultKind};

/// State shared by the HTTP handlers and the [`crate::EmulatorHandle`].
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig, base_url: String) -> Self {
        Self { inner: Mutex::new(Inner::new(config)), base_url }
    }

    /// Base of the Web API: `<base>/v1`.
    pub(crate) fn api_url(&self) -> String {
        format!("{}/v1", self.base_url)
    }

    /// Locks the state; a poisoned lock is recovered (the state stays consistent because every
    /// critical section is short and panic-free by construction).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who logs in at the next `/authorize` without `login_as`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginChoice {
    /// The test user's id.
    pub user_id: String,
    /// The user declines the consent screen (`error=access_denied`).
    #[serde(default)]
    pub deny: bool,
}

/// Request counters of one user or of the whole emulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCounters {
    /// `GET /authorize` requests.
    pub authorize: u64,
    /// `POST /api/token` with `grant_type=authorization_code`.
    pub token_authorization_code: u64,
    /// `POST /api/token` with `grant_type=refresh_token`.
    pub token_refresh_token: u64,
    /// `POST /api/token` with any other or no grant type.
    pub token_other: u64,
    /// `GET /v1/me`.
    pub me: u64,
    /// Player endpoints (`/v1/me/player` and everything under it).
    pub player: u64,
    /// Requests of the fake Web Playback SDK (`/sdk/v1/...`: register, poll, commands).
    #[serde(default)]
    pub sdk: u64,
    /// `grant_type=refresh_token` requests presenting a refresh token that an earlier refresh
    /// already replaced with a new one (also counted in `token_refresh_token`). A client that
    /// stores what it is given never does this; see [`RefreshReuse`].
    #[serde(default)]
    pub token_refresh_reused: u64,
}

impl EndpointCounters {
    /// All `POST /api/token` requests.
    #[must_use]
    pub fn token_total(&self) -> u64 {
        self.token_authorization_code + self.token_refresh_token + self.token_other
    }
}

/// Every request that reached an emulated endpoint is counted, including those answered by an
/// injected fault or an error. Per-user counts are kept when the request could be attributed
/// (login user, code owner, refresh or access token owner).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Totals.
    pub total: EndpointCounters,
    /// Per Spotify user id.
    pub per_user: BTreeMap<String, EndpointCounters>,
}

impl Counters {
    /// Counters of one user (zeros when it made no request).
    #[must_use]
    pub fn user(&self, user_id: &str) -> EndpointCounters {
        self.per_user.get(user_id).copied().unwrap_or_default()
    }
}

/// One presentation of a refresh token that a refresh had already replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshReuse {
    /// Whose token it was.
    pub user_id: String,
    /// When the refresh that replaced it was answered (wall clock).
    pub replaced_at: SystemTime,
    /// When it was presented again (wall clock).
    pub reused_at: SystemTime,
    /// Whether the token that replaced it has been presented since (asked when the list is
    /// read). `false` means the client never stored the answer of that refresh: it died
    /// between Spotify's answer and its own write, or it threw the answer away.
    pub successor_presented: bool,
}

/// A reuse as recorded; the successor's fate is read when the list is asked for.
#[derive(Debug, Clone)]
pub(crate) struct ReuseEvent {
    pub(crate) user_id: String,
    pub(crate) replaced_at: SystemTime,
    pub(crate) reused_at: SystemTime,
    pub(crate) successor: String,
}

/// Which counter a request increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Authorize,
    TokenAuthorizationCode,
    TokenRefreshToken,
    TokenRefreshReused,
    TokenOther,
    Me,
    Player,
    Sdk,
}

impl Counted {
    fn bump(self, c: &mut EndpointCounters) {
        let field = match self {
            Self::Authorize => &mut c.authorize,
            Self::TokenAuthorizationCode => &mut c.token_authorization_code,
            Self::TokenRefreshToken => &mut c.token_refresh_token,
            Self::TokenRefreshReused => &mut c.token_refresh_reused,
            Self::TokenOther => &mut c.token_other,
            Self::Me => &mut c.me,
            Self::Player => &mut c.player,
            Self::Sdk => &mut c.sdk,
        };
        *field = field.saturating_add(1);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) user_id: String,
    pub(crate) scope: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) used: bool,
    pub(crate) grant_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessRecord {
    pub(crate) user_id: String,
    pub(crate) scope: String,
    pub(crate) expires_at: u64,
    pub(crate) force_expired: bool,
    pub(crate) grant_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshRecord {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) scope: String,
    /// Time of the user's ORIGINAL authorization (carried over on rotation).
    pub(crate) authorized_at: u64,
    pub(crate) grant_id: u64,
    /// Presented at `POST /api/token` at least once.
    pub(crate) presented: bool,
    /// Set when a refresh answered a new refresh token in its place.
    pub(crate) replaced: Option<Replaced>,
}

/// How a refresh token was replaced.
#[derive(Debug, Clone)]
pub(crate) struct Replaced {
    pub(crate) at: SystemTime,
    pub(crate) successor: String,
    /// Replaced in [`RefreshMode::SingleUse`]: presenting it again is `invalid_grant`.
    pub(crate) single_use: bool,
}

impl RefreshRecord {
    /// Still accepted at `/api/token` (not replaced under single-use rules).
    pub(crate) fn usable(&self) -> bool {
        !self.replaced.as_ref().is_some_and(|r| r.single_use)
    }
}

/// A token pair just issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
    pub(crate) expires_in: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) initial: EmulatorConfig,
    pub(crate) config: EmulatorConfig,
    pub(crate) users: BTreeMap<String, TestUser>,
    pub(crate) user_refresh_mode: HashMap<String, RefreshMode>,
    pub(crate) next_logins: VecDeque<LoginChoice>,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) access_tokens: HashMap<String, AccessRecord>,
    pub(crate) refresh_tokens: HashMap<String, RefreshRecord>,
    pub(crate) clock_offset: u64,
    /// The real time the clock stands at when `config.frozen_clock` is set.
    frozen_at: Option<u64>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) counters: Counters,
    pub(crate) reuses: Vec<ReuseEvent>,
    next_grant: u64,
    /// Devices and streams (Spotify Connect).
    pub(crate) connect: Connect,
}

/// Unix seconds now.
fn real_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Inner {
    fn new(config: EmulatorConfig) -> Self {
        let users = config.users.iter().map(|u| (u.id.clone(), u.clone())).collect();
        let frozen_at = config.frozen_clock.then(real_now);
        Self {
            initial: config.clone(),
            config,
            users,
            user_refresh_mode: HashMap::new(),
            next_logins: VecDeque::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            clock_offset: 0,
            frozen_at,
            faults: Vec::new(),
            counters: Counters::default(),
            reuses: Vec::new(),
            next_grant: 1,
            connect: Connect::default(),
        }
    }

    /// Back to the state right after start.
    pub(crate) fn reset(&mut self) {
        *self = Self::new(self.initial.clone());
    }

    /// Emulator time: Unix seconds (or the frozen instant) plus the clock offset.
    pub(crate) fn now(&self) -> u64 {
        self.frozen_at.unwrap_or_else(real_now).saturating_add(self.clock_offset)
    }

    /// Emulator time in Unix milliseconds (the same clock as [`Self::now`]).
    pub(crate) fn now_ms(&self) -> u64 {
        let base = match self.frozen_at {
            Some(secs) => secs.saturating_mul(1000),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        };
        base.saturating_add(self.clock_offset.saturating_mul(1000))
    }

    /// The Connect model moved on to now (stale devices dropped, positions advanced).
    pub(crate) fn connect_now(&mut self) -> (&mut Connect, u64) {
        let now = self.now_ms();
        self.connect.settle(now);
        (&mut self.connect, now)
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.clock_offset = self.clock_offset.saturating_add(by.as_secs());
    }

    pub(crate) fn count(&mut self, what: Counted, user: Option<&str>) {
        what.bump(&mut self.counters.total);
        if let Some(user) = user {
            what.bump(self.counters.per_user.entry(user.to_owned()).or_default());
        }
    }

    /// Consumes one use of the first fault matching `endpoint`.
    pub(crate) fn take_fault(&mut self, endpoint: Endpoint) -> Option<FaultKind> {
        let idx = self.faults.iter().position(|f| f.target.matches(endpoint))?;
        let fault = self.faults.get_mut(idx)?;
        let kind = fault.kind.clone();
        match fault.times {
            Some(n) if n <= 1 => {
                self.faults.remove(idx);
            }
            Some(n) => fault.times = Some(n - 1),
            None => {}
        }
        Some(kind)
    }

    pub(crate) fn refresh_mode_for(&self, user_id: &str) -> RefreshMode {
        self.user_refresh_mode.get(user_id).copied().unwrap_or(self.config.refresh_mode)
    }

    pub(crate) fn new_grant(&mut self) -> u64 {
        let id = self.next_grant;
        self.next_grant += 1;
        id
    }

    /// Issues an access token (and a refresh token unless `refresh` is `None`).
    pub(crate) fn issue(
        &mut self,
        client_id: &str,
        user_id: &str,
        scope: &str,
        grant_id: u64,
        refresh_authorized_at: Option<u64>,
    ) -> Issued {
        let now = self.now();
        let expires_in = self.config.access_token_lifetime.as_secs();
        let access_token = random_token("BQ", 48);
        self.access_tokens.insert(
            access_token.clone(),
            AccessRecord {
                user_id: user_id.to_owned(),
                scope: scope.to_owned(),
                expires_at: now.saturating_add(expires_in),
                force_expired: false,
                grant_id,
            },
        );
        let refresh_token = refresh_authorized_at.map(|authorized_at| {
            let token = random_token("AQ", 48);
            self.refresh_tokens.insert(
                token.clone(),
                RefreshRecord {
                    client_id: client_id.to_owned(),
                    user_id: user_id.to_owned(),
                    scope: scope.to_owned(),
                    authorized_at,
                    grant_id,
                    presented: false,
                    replaced: None,
                },
            );
            token
        });
        Issued { access_token, refresh_token, scope: scope.to_owned(), expires_in }
    }

    /// Revokes every token issued from one authorization (a reused code).
    pub(crate) fn revoke_grant(&mut self, grant_id: u64) {
        self.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
        self.access_tokens.retain(|_, a| a.grant_id != grant_id);
    }

    /// Revokes a user's refresh tokens (access tokens stay valid until they expire, as on
    /// Spotify). Returns how many were revoked.
    pub(crate) fn revoke_user(&mut self, user_id: &str) -> usize {
        let live = self.refresh_tokens.values().filter(|r| r.user_id == user_id && r.usable()).count();
        self.refresh_tokens.retain(|_, r| r.user_id != user_id);
        live
    }

    /// Records a presentation of refresh token `token` (before faults apply: the client sent it
    /// whatever the answer); the owner when the token is known.
    pub(crate) fn presented(&mut self, token: &str) -> Option<String> {
        let record = self.refresh_tokens.get_mut(token)?;
        record.presented = true;
        let user_id = record.user_id.clone();
        if let Some(replaced) = &record.replaced {
            let event = ReuseEvent {
                user_id: user_id.clone(),
                replaced_at: replaced.at,
                reused_at: SystemTime::now(),
                successor: replaced.successor.clone(),
            };
            self.reuses.push(event);
            self.count(Counted::TokenRefreshReused, Some(&user_id));
        }
        Some(user_id)
    }

    /// Every reuse so far, the successors' fate read now.
    pub(crate) fn reuses(&self) -> Vec<RefreshReuse> {
        self.reuses
            .iter()
            .map(|e| RefreshReuse {
                user_id: e.user_id.clone(),
                replaced_at: e.replaced_at,
                reused_at: e.reused_at,
                successor_presented: self.refresh_tokens.get(&e.successor).is_some_and(|r| r.presented),
            })
            .collect()
    }

    /// Marks a user's access tokens expired. Returns how many.
    pub(crate) fn expire_access_tokens(&mut self, user_id: &str) -> usize {
        let mut n = 0;
        for rec in self.access_tokens.values_mut() {
            if rec.user_id == user_id && !rec.force_expired {
                rec.force_expired = true;
                n += 1;
            }
        }
        n
    }
}

/// `prefix` + base64url of `bytes` random bytes (Spotify's tokens are opaque strings).
pub(crate) fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf))
}
