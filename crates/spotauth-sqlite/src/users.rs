//! `UserRepository` on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{LeaseOutcome, LoginUpdate, NewUser, RepoError, UserRepository};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{EncryptedToken, RefreshedTokens, Scopes, StoredTokens, TokenVersion};
use spotauth_domain::user::{
    DisplayName, Page, PageRequest, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription, User,
};

use crate::convert::{corrupt, from_db, to_db, version_from_db, version_to_db};
use crate::schema::spotify_users::dsl as u;
use crate::store::SqliteUsers;

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::spotify_users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
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
                status: PremiumStatus::from_option(r.is_premium),
                product: r.premium_product,
                source: PremiumSource::parse(&r.premium_source).ok_or_else(|| corrupt("premium_source"))?,
                checked_at: r.premium_checked_at.map(from_db),
            },
            is_active: r.is_active,
            last_active: from_db(r.last_active),
            created_at: from_db(r.created_at),
            reauth_required: r.reauth_required,
            has_tokens: r.refresh_token_expires_at.is_some(),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::spotify_users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
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
            access_expires_at: from_db(access_exp),
            refresh_expires_at: from_db(refresh_exp),
            scopes: Scopes::parse(self.token_scopes.as_deref().unwrap_or("")),
            version: version_from_db(self.token_version)?,
            reauth_required: self.reauth_required,
        }))
    }
}

/// The token columns a refresh writes; `refresh_token: None` leaves the stored one untouched.
#[derive(AsChangeset)]
#[diesel(table_name = crate::schema::spotify_users)]
struct RefreshChanges {
    access_token: Vec<u8>,
    token_expiry: i64,
    token_scopes: String,
    refresh_token: Option<Vec<u8>>,
}

type SubscriptionColumns = (Option<bool>, Option<String>, &'static str, Option<i64>);

fn subscription_columns(s: &Subscription) -> SubscriptionColumns {
    (s.status.as_option(), s.product.clone(), s.source.as_str(), s.checked_at.map(to_db))
}

/// The user row, inside a read or write closure.
fn load_user(c: &mut SqliteConnection, id: &str) -> QueryResult<Option<UserRow>> {
    u::spotify_users.filter(u::id.eq(id)).select(UserRow::as_select()).first(c).optional()
}

fn exists(c: &mut SqliteConnection, id: &str) -> QueryResult<bool> {
    let n: i64 = u::spotify_users.filter(u::id.eq(id)).count().get_result(c)?;
    Ok(n > 0)
}

/// An update that must hit the row, then the row: `NotFound` when there is none.
fn found(row: Option<UserRow>) -> Result<User, RepoError> {
    row.map(User::try_from).transpose()?.ok_or(RepoError::NotFound)
}

/// A guarded token write's result: matched rows, and whether the user exists at all.
fn guarded((matched, exists): (usize, bool)) -> Result<(), RepoError> {
    match (matched, exists) {
        (0, true) => Err(RepoError::StaleVersion),
        (0, false) => Err(RepoError::NotFound),
        _ => Ok(()),
    }
}

#[async_trait]
impl UserRepository for SqliteUsers {
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let id = id.to_string();
        self.0.read(move |c| load_user(c, &id)).await?.map(User::try_from).transpose()
    }

    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError> {
        let key = key.as_str().to_owned();
        let row = self
            .0
            .read(move |c| {
                u::spotify_users.filter(u::spotify_account_key.eq(key)).select(UserRow::as_select()).first(c).optional()
            })
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn insert(&self, n: NewUser) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&n.subscription);
        let now = to_db(n.now);
        let id = n.id.to_string();
        let row = self
            .0
            .write(move |c| {
                // A taken id is `Conflict("user id")` even when the account key is taken too, as
                // on MySQL (SQLite would name whichever unique index it checks first).
                if exists(c, &id)? {
                    return Ok(Err(RepoError::Conflict("user id")));
                }
                diesel::insert_into(u::spotify_users)
                    .values((
                        u::id.eq(&id),
                        u::spotify_account_key.eq(n.account_key.as_str()),
                        u::spotify_id.eq(n.spotify_id.as_str()),
                        u::display_name.eq(n.display_name.as_ref().map(DisplayName::as_str)),
                        u::access_token.eq(n.tokens.access_token.as_bytes()),
                        u::refresh_token.eq(n.tokens.refresh_token.as_bytes()),
                        u::token_expiry.eq(to_db(n.tokens.access_expires_at)),
                        u::refresh_token_expires_at.eq(to_db(n.tokens.refresh_expires_at)),
                        u::token_scopes.eq(n.tokens.scopes.to_string()),
                        u::token_version.eq(1i64),
                        u::reauth_required.eq(false),
                        u::is_active.eq(true),
                        u::is_premium.eq(is_premium),
                        u::premium_product.eq(product),
                        u::premium_source.eq(source),
                        u::premium_checked_at.eq(checked),
                        u::created_at.eq(now),
                        u::last_active.eq(now),
                    ))
                    .execute(c)?;
                Ok(Ok(load_user(c, &id)?))
            })
            .await??;
        found(row)
    }

    async fn update_on_login(&self, id: UserId, l: LoginUpdate) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&l.subscription);
        let id = id.to_string();
        let row = self
            .0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(&id)))
                    .set((
                        u::spotify_id.eq(l.spotify_id.as_str()),
                        u::display_name.eq(l.display_name.as_ref().map(DisplayName::as_str)),
                        u::access_token.eq(l.tokens.access_token.as_bytes()),
                        u::refresh_token.eq(l.tokens.refresh_token.as_bytes()),
                        u::token_expiry.eq(to_db(l.tokens.access_expires_at)),
                        u::refresh_token_expires_at.eq(to_db(l.tokens.refresh_expires_at)),
                        u::token_scopes.eq(l.tokens.scopes.to_string()),
                        u::token_version.eq(u::token_version + 1i64),
                        u::reauth_required.eq(false),
                        u::refresh_lease_holder.eq(None::<String>),
                        u::refresh_lease_until.eq(None::<i64>),
                        u::is_active.eq(true),
                        u::is_premium.eq(is_premium),
                        u::premium_product.eq(product),
                        u::premium_source.eq(source),
                        u::premium_checked_at.eq(checked),
                        u::last_active.eq(to_db(l.now)),
                    ))
                    .execute(c)?;
                load_user(c, &id)
            })
            .await?;
        found(row)
    }

    async fn list_active(&self, page: PageRequest) -> Result<Page<User>, RepoError> {
        let (total, rows) = self
            .0
            .read(move |c| {
                // One read transaction: the total and the page come from one snapshot.
                c.transaction(|c| {
                    let total: i64 = u::spotify_users.filter(u::is_active.eq(true)).count().get_result(c)?;
                    let rows: Vec<UserRow> = u::spotify_users
                        .filter(u::is_active.eq(true))
                        .order((u::last_active.desc(), u::id.asc()))
                        .limit(i64::from(page.limit))
                        .offset(i64::from(page.offset))
                        .select(UserRow::as_select())
                        .load(c)?;
                    Ok((total, rows))
                })
            })
            .await?;
        let items = rows.into_iter().map(User::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0), request: page })
    }

    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError> {
        let id = id.to_string();
        let row = self
            .0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(&id)))
                    .set((u::is_active.eq(active), u::last_active.eq(to_db(now))))
                    .execute(c)?;
                load_user(c, &id)
            })
            .await?;
        found(row)
    }

    async fn record_subscription(&self, id: UserId, s: Subscription) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&s);
        let id = id.to_string();
        let row = self
            .0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(&id)))
                    .set((
                        u::is_premium.eq(is_premium),
                        u::premium_product.eq(product),
                        u::premium_source.eq(source),
                        u::premium_checked_at.eq(checked),
                    ))
                    .execute(c)?;
                load_user(c, &id)
            })
            .await?;
        found(row)
    }

    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError> {
        let id = id.to_string();
        let matched = self
            .0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(id))).set(u::last_active.eq(to_db(now))).execute(c)
            })
            .await?;
        if matched == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError> {
        let id = id.to_string();
        let row: TokenRow =
            self.0.read(move |c| u::spotify_users.filter(u::id.eq(id)).select(TokenRow::as_select()).first(c)).await?;
        row.into_stored()
    }

    async fn store_refreshed(
        &self,
        id: UserId,
        expected: TokenVersion,
        t: RefreshedTokens,
    ) -> Result<TokenVersion, RepoError> {
        let expected_db = version_to_db(expected)?;
        let next = TokenVersion(expected.0.checked_add(1).ok_or_else(|| corrupt("token_version"))?);
        let changes = RefreshChanges {
            access_token: t.access_token.into_bytes(),
            token_expiry: to_db(t.access_expires_at),
            token_scopes: t.scopes.to_string(),
            refresh_token: t.refresh_token.map(EncryptedToken::into_bytes),
        };
        let id = id.to_string();
        let result = self
            .0
            .write(move |c| {
                let matched = diesel::update(
                    u::spotify_users
                        .filter(u::id.eq(&id))
                        .filter(u::token_version.eq(expected_db))
                        .filter(u::refresh_token.is_not_null()),
                )
                .set((changes, u::token_version.eq(u::token_version + 1i64)))
                .execute(c)?;
                Ok((matched, matched > 0 || exists(c, &id)?))
            })
            .await?;
        guarded(result)?;
        Ok(next)
    }

    async fn mark_reauth_required(&self, id: UserId, expected: TokenVersion) -> Result<(), RepoError> {
        let expected = version_to_db(expected)?;
        let id = id.to_string();
        let result = self
            .0
            .write(move |c| {
                let matched =
                    diesel::update(u::spotify_users.filter(u::id.eq(&id)).filter(u::token_version.eq(expected)))
                        .set((u::reauth_required.eq(true), u::token_version.eq(u::token_version + 1i64)))
                        .execute(c)?;
                Ok((matched, matched > 0 || exists(c, &id)?))
            })
            .await?;
        guarded(result)
    }

    async fn delete_tokens(&self, id: UserId) -> Result<(), RepoError> {
        let id = id.to_string();
        let matched = self
            .0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(id)))
                    .set((
                        u::access_token.eq(None::<Vec<u8>>),
                        u::refresh_token.eq(None::<Vec<u8>>),
                        u::token_expiry.eq(None::<i64>),
                        u::refresh_token_expires_at.eq(None::<i64>),
                        u::token_scopes.eq(None::<String>),
                        u::token_version.eq(u::token_version + 1i64),
                        u::reauth_required.eq(false),
                        u::refresh_lease_holder.eq(None::<String>),
                        u::refresh_lease_until.eq(None::<i64>),
                    ))
                    .execute(c)
            })
            .await?;
        if matched == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn try_acquire_refresh_lease(
        &self,
        id: UserId,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<LeaseOutcome, RepoError> {
        let until = now.plus(ttl);
        let id = id.to_string();
        let holder = holder.to_owned();
        let (matched, current) = self
            .0
            .write(move |c| {
                let matched = diesel::update(
                    u::spotify_users.filter(u::id.eq(&id)).filter(
                        u::refresh_lease_holder
                            .is_null()
                            .or(u::refresh_lease_until.le(to_db(now)))
                            .or(u::refresh_lease_holder.eq(&holder)),
                    ),
                )
                .set((u::refresh_lease_holder.eq(&holder), u::refresh_lease_until.eq(to_db(until))))
                .execute(c)?;
                if matched > 0 {
                    return Ok((matched, None));
                }
                let current: Option<Option<i64>> =
                    u::spotify_users.filter(u::id.eq(&id)).select(u::refresh_lease_until).first(c).optional()?;
                Ok((matched, current))
            })
            .await?;
        if matched > 0 {
            return Ok(LeaseOutcome::Acquired { until });
        }
        match current {
            None => Err(RepoError::NotFound),
            Some(until) => Ok(LeaseOutcome::Busy { until: until.map(from_db).unwrap_or(now) }),
        }
    }

    async fn release_refresh_lease(&self, id: UserId, holder: &str) -> Result<(), RepoError> {
        let id = id.to_string();
        let holder = holder.to_owned();
        self.0
            .write(move |c| {
                diesel::update(u::spotify_users.filter(u::id.eq(id)).filter(u::refresh_lease_holder.eq(holder)))
                    .set((u::refresh_lease_holder.eq(None::<String>), u::refresh_lease_until.eq(None::<i64>)))
                    .execute(c)
            })
            .await?;
        Ok(())
    }

    async fn list_refresh_candidates(&self, expiring_before: Timestamp, limit: u32) -> Result<Vec<UserId>, RepoError> {
        let ids: Vec<String> = self
            .0
            .read(move |c| {
                u::spotify_users
                    .filter(u::is_active.eq(true))
                    .filter(u::reauth_required.eq(false))
                    .filter(u::refresh_token.is_not_null())
                    .filter(u::token_expiry.lt(to_db(expiring_before)))
                    .order(u::token_expiry.asc())
                    .limit(i64::from(limit))
                    .select(u::id)
                    .load(c)
            })
            .await?;
        ids.iter().map(|id| id.parse().map_err(|_| corrupt("spotify_users.id"))).collect()
    }
}
