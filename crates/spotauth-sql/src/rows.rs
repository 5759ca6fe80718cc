//! Rows and changesets: the one mapping between columns and domain values, checked by diesel
//! against both backends, and the two storage rules that used to live in the domain (the
//! nullable-boolean Premium status and the outcome of an atomic consume).

use diesel::prelude::*;
use spotauth_domain::login::{ConsumeOutcome, LoginFlow, NewLoginFlow, ReturnTo};
use spotauth_domain::ports::RepoError;
use spotauth_domain::session::{NewSession, Session, SessionMeta, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{EncryptedToken, NewTokens, RefreshedTokens, Scopes, StoredTokens, TokenVersion};
use spotauth_domain::user::{
    DisplayName, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription, User,
};

use crate::schema::{oauth_login_flows, spotify_users, user_sessions};

pub(crate) fn corrupt(what: &str) -> RepoError {
    RepoError::Corrupt(what.to_owned())
}

fn time(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

/// A token version as stored: a signed `BIGINT` in both schemas.
pub(crate) fn version_to_db(v: TokenVersion) -> Result<i64, RepoError> {
    i64::try_from(v.0).map_err(|_| corrupt("token version out of range"))
}

/// Reads a stored token version; a negative one is corrupt.
pub(crate) fn version_from_db(v: i64) -> Result<TokenVersion, RepoError> {
    u64::try_from(v).map(TokenVersion).map_err(|_| corrupt("token_version"))
}

/// Reads the Premium status column back: a nullable boolean ([`PremiumStatus::as_option`]),
/// `NULL` for unknown.
pub(crate) fn premium_from_db(value: Option<bool>) -> PremiumStatus {
    match value {
        Some(true) => PremiumStatus::Premium,
        Some(false) => PremiumStatus::Free,
        None => PremiumStatus::Unknown,
    }
}

/// The outcome of an atomic consume: `consumed` tells whether the conditional update
/// (`used_at IS NULL AND expires_at > now`) took the flow; `found` is the flow as read after it,
/// in the same transaction, with whether it is marked used. Expired whether used or not, else
/// used, else unknown.
pub(crate) fn consume_outcome(consumed: bool, found: Option<(LoginFlow, bool)>, now: Timestamp) -> ConsumeOutcome {
    match found {
        // Consumed and purged in between: the row is gone, report it unknown.
        None => ConsumeOutcome::Unknown,
        Some((flow, _)) if consumed => ConsumeOutcome::Consumed(flow),
        Some((flow, _)) if now >= flow.expires_at => ConsumeOutcome::Expired,
        Some((_, true)) => ConsumeOutcome::AlreadyUsed,
        Some((_, false)) => ConsumeOutcome::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/// A user as `UserRepository` reads it (no token bytes).
#[derive(Queryable, Selectable)]
#[diesel(table_name = spotify_users)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct UserRow {
    id: String,
    spotify_account_key: String,
    spotify_id: String,
    display_name: Option<String>,
    refresh_token_expires_at: Option<i64>,
    reauth_required: bool,
    is_active: bool,
    is_premium: Option<bool>,
    premium_product: Option<String>,
    premium_source: String,
    premium_checked_at: Option<i64>,
    created_at: i64,
    last_active: i64,
}

impl TryFrom<UserRow> for User {
    type Error = RepoError;
    fn try_from(r: UserRow) -> Result<Self, RepoError> {
        Ok(User {
            id: r.id.parse().map_err(|_| corrupt("spotify_users.id"))?,
            account_key: SpotifyAccountKey::new(r.spotify_account_key).map_err(|_| corrupt("spotify_account_key"))?,
            spotify_id: SpotifyUserId::new(r.spotify_id).map_err(|_| corrupt("spotify_id"))?,
            display_name: r.display_name.and_then(|n| DisplayName::new(n).ok()),
            subscription: Subscription {
                status: premium_from_db(r.is_premium),
                product: r.premium_product,
                source: PremiumSource::parse(&r.premium_source).ok_or_else(|| corrupt("premium_source"))?,
                checked_at: r.premium_checked_at.map(time),
            },
            is_active: r.is_active,
            last_active: time(r.last_active),
            created_at: time(r.created_at),
            reauth_required: r.reauth_required,
            has_tokens: r.refresh_token_expires_at.is_some(),
        })
    }
}

/// A user's token columns.
#[derive(Queryable, Selectable)]
#[diesel(table_name = spotify_users)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct TokenRow {
    access_token: Option<Vec<u8>>,
    refresh_token: Option<Vec<u8>>,
    token_expiry: Option<i64>,
    refresh_token_expires_at: Option<i64>,
    token_scopes: Option<String>,
    token_version: i64,
    reauth_required: bool,
}

impl TokenRow {
    /// The stored tokens; `None` while the user has none.
    pub(crate) fn into_stored(self) -> Result<Option<StoredTokens>, RepoError> {
        let (Some(access), Some(refresh), Some(access_exp), Some(refresh_exp)) =
            (self.access_token, self.refresh_token, self.token_expiry, self.refresh_token_expires_at)
        else {
            return Ok(None);
        };
        Ok(Some(StoredTokens {
            access_token: EncryptedToken::from_bytes(access),
            refresh_token: EncryptedToken::from_bytes(refresh),
            access_expires_at: time(access_exp),
            refresh_expires_at: time(refresh_exp),
            scopes: Scopes::parse(self.token_scopes.as_deref().unwrap_or("")),
            version: version_from_db(self.token_version)?,
            reauth_required: self.reauth_required,
        }))
    }
}

/// A session row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = user_sessions)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct SessionRow {
    id: String,
    pub(crate) user_id: String,
    token_id_hash: Vec<u8>,
    created_at: i64,
    last_active: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    user_agent: Option<String>,
    ip_address: Option<String>,
    previous_token_id_hash: Option<Vec<u8>>,
    rotated_at: Option<i64>,
    token_expires_at: Option<i64>,
}

impl TryFrom<SessionRow> for Session {
    type Error = RepoError;
    fn try_from(r: SessionRow) -> Result<Self, RepoError> {
        Ok(Session {
            id: r.id.parse().map_err(|_| corrupt("user_sessions.id"))?,
            user_id: r.user_id.parse().map_err(|_| corrupt("user_sessions.user_id"))?,
            token_id_hash: TokenIdHash::from_slice(&r.token_id_hash).ok_or_else(|| corrupt("token_id_hash"))?,
            created_at: time(r.created_at),
            last_active: time(r.last_active),
            expires_at: time(r.expires_at),
            revoked_at: r.revoked_at.map(time),
            previous_token_id_hash: r
                .previous_token_id_hash
                .map(|h| TokenIdHash::from_slice(&h).ok_or_else(|| corrupt("previous_token_id_hash")))
                .transpose()?,
            rotated_at: r.rotated_at.map(time),
            token_expires_at: r.token_expires_at.map(time),
            meta: SessionMeta { user_agent: r.user_agent, ip_address: r.ip_address },
        })
    }
}

/// A login flow as read after a consume attempt.
#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_login_flows)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct FlowRow {
    return_to: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl FlowRow {
    /// The flow, and whether it is marked used.
    pub(crate) fn into_flow(self) -> Result<(LoginFlow, bool), RepoError> {
        let return_to = self.return_to.map(ReturnTo::new).transpose().map_err(|_| corrupt("return_to"))?;
        let flow = LoginFlow { return_to, created_at: time(self.created_at), expires_at: time(self.expires_at) };
        Ok((flow, self.used_at.is_some()))
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// The profile columns a login writes (insert or repeat login); no display name is `NULL`.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = spotify_users, treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct ProfileColumns {
    spotify_id: String,
    display_name: Option<String>,
}

impl ProfileColumns {
    pub(crate) fn new(spotify_id: &SpotifyUserId, display_name: Option<&DisplayName>) -> Self {
        ProfileColumns {
            spotify_id: spotify_id.as_str().to_owned(),
            display_name: display_name.map(|n| n.as_str().to_owned()),
        }
    }
}

/// The token columns a login writes: both tokens, a fresh authorization.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = spotify_users)]
pub(crate) struct TokenColumns {
    access_token: Vec<u8>,
    refresh_token: Vec<u8>,
    token_expiry: i64,
    refresh_token_expires_at: i64,
    token_scopes: String,
}

impl From<NewTokens> for TokenColumns {
    fn from(t: NewTokens) -> Self {
        TokenColumns {
            access_token: t.access_token.into_bytes(),
            refresh_token: t.refresh_token.into_bytes(),
            token_expiry: t.access_expires_at.unix_millis(),
            refresh_token_expires_at: t.refresh_expires_at.unix_millis(),
            token_scopes: t.scopes.to_string(),
        }
    }
}

/// The subscription columns; unknown is `NULL`.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = spotify_users, treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct SubscriptionColumns {
    is_premium: Option<bool>,
    premium_product: Option<String>,
    premium_source: String,
    premium_checked_at: Option<i64>,
}

impl From<Subscription> for SubscriptionColumns {
    fn from(s: Subscription) -> Self {
        SubscriptionColumns {
            is_premium: s.status.as_option(),
            premium_product: s.product,
            premium_source: s.source.as_str().to_owned(),
            premium_checked_at: s.checked_at.map(Timestamp::unix_millis),
        }
    }
}

/// The token columns a refresh writes; `refresh_token: None` leaves the stored one untouched.
#[derive(AsChangeset)]
#[diesel(table_name = spotify_users)]
pub(crate) struct RefreshChanges {
    access_token: Vec<u8>,
    token_expiry: i64,
    token_scopes: String,
    refresh_token: Option<Vec<u8>>,
}

impl From<RefreshedTokens> for RefreshChanges {
    fn from(t: RefreshedTokens) -> Self {
        RefreshChanges {
            access_token: t.access_token.into_bytes(),
            token_expiry: t.access_expires_at.unix_millis(),
            token_scopes: t.scopes.to_string(),
            refresh_token: t.refresh_token.map(EncryptedToken::into_bytes),
        }
    }
}

/// A new session row; its first `last_active` is its creation.
#[derive(Insertable)]
#[diesel(table_name = user_sessions, treat_none_as_default_value = false)]
pub(crate) struct NewSessionRow {
    pub(crate) id: String,
    user_id: String,
    token_id_hash: Vec<u8>,
    created_at: i64,
    last_active: i64,
    expires_at: i64,
    token_expires_at: Option<i64>,
    user_agent: Option<String>,
    ip_address: Option<String>,
}

impl From<NewSession> for NewSessionRow {
    fn from(n: NewSession) -> Self {
        NewSessionRow {
            id: n.id.to_string(),
            user_id: n.user_id.to_string(),
            token_id_hash: n.token_id_hash.as_bytes().to_vec(),
            created_at: n.created_at.unix_millis(),
            last_active: n.created_at.unix_millis(),
            expires_at: n.expires_at.unix_millis(),
            token_expires_at: Some(n.token_expires_at.unix_millis()),
            user_agent: n.meta.user_agent,
            ip_address: n.meta.ip_address,
        }
    }
}

/// A new, unused login flow, keyed by its state digest.
#[derive(Insertable)]
#[diesel(table_name = oauth_login_flows, treat_none_as_default_value = false)]
pub(crate) struct NewFlowRow {
    state_hash: Vec<u8>,
    return_to: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    client_key: Option<String>,
}

impl From<NewLoginFlow> for NewFlowRow {
    fn from(f: NewLoginFlow) -> Self {
        NewFlowRow {
            state_hash: f.state.as_bytes().to_vec(),
            return_to: f.return_to.map(|r| r.as_str().to_owned()),
            created_at: f.created_at.unix_millis(),
            expires_at: f.expires_at.unix_millis(),
            used_at: None,
            client_key: f.client.map(|c| c.as_str().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premium_status_round_trips_through_a_nullable_boolean() {
        for s in [PremiumStatus::Premium, PremiumStatus::Free, PremiumStatus::Unknown] {
            assert_eq!(premium_from_db(s.as_option()), s);
        }
        assert_eq!(PremiumStatus::Unknown.as_option(), None, "unknown is NULL, never false");
    }

    #[test]
    fn versions_round_trip_and_refuse_negative() {
        assert_eq!(version_from_db(version_to_db(TokenVersion(7)).unwrap()).unwrap(), TokenVersion(7));
        assert!(version_from_db(-1).is_err());
        assert!(version_to_db(TokenVersion(u64::MAX)).is_err());
    }

    #[test]
    fn consume_outcomes() {
        let now = Timestamp::from_unix_seconds(100);
        let flow =
            |exp: i64| LoginFlow { return_to: None, created_at: now, expires_at: Timestamp::from_unix_seconds(exp) };
        assert_eq!(consume_outcome(true, Some((flow(200), true)), now), ConsumeOutcome::Consumed(flow(200)));
        assert_eq!(consume_outcome(false, Some((flow(100), false)), now), ConsumeOutcome::Expired);
        assert_eq!(consume_outcome(false, Some((flow(50), true)), now), ConsumeOutcome::Expired);
        assert_eq!(consume_outcome(false, Some((flow(200), true)), now), ConsumeOutcome::AlreadyUsed);
        assert_eq!(consume_outcome(false, Some((flow(200), false)), now), ConsumeOutcome::Unknown);
        assert_eq!(consume_outcome(true, None, now), ConsumeOutcome::Unknown);
    }
}
