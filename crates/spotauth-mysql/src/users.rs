//! `UserRepository` on MySQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{LeaseOutcome, LoginUpdate, NewUser, RepoError, UserRepository};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{EncryptedToken, RefreshedTokens, Scopes, StoredTokens, TokenVersion};
use spotauth_domain::user::{
    DisplayName, Page, PageRequest, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription, User,
};

use crate::convert::{corrupt, from_db, map_err, to_db};
use crate::schema::spotify_users::dsl as u;
use crate::store::MysqlUsers;

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::spotify_users)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub(crate) struct UserRow {
    id: String,
    spotify_account_key: String,
    spotify_id: String,
    display_name: Option<String>,
    refresh_token_expires_at: Option<NaiveDateTime>,
    reauth_required: bool,
    is_active: bool,
    is_premium: Option<bool>,
    premium_product: Option<String>,
    premium_source: String,
    premium_checked_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    last_active: NaiveDateTime,
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
#[diesel(check_for_backend(diesel::mysql::Mysql))]
pub(crate) struct TokenRow {
    access_token: Option<Vec<u8>>,
    refresh_token: Option<Vec<u8>>,
    token_expiry: Option<NaiveDateTime>,
    refresh_token_expires_at: Option<NaiveDateTime>,
    token_scopes: Option<String>,
    token_version: u64,
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
            version: TokenVersion(self.token_version),
            reauth_required: self.reauth_required,
        }))
    }
}

/// The token columns a refresh writes; `refresh_token: None` leaves the stored one untouched.
#[derive(AsChangeset)]
#[diesel(table_name = crate::schema::spotify_users)]
struct RefreshChanges {
    access_token: Vec<u8>,
    token_expiry: NaiveDateTime,
    token_scopes: String,
    refresh_token: Option<Vec<u8>>,
}

fn subscription_columns(s: &Subscription) -> (Option<bool>, Option<String>, &'static str, Option<NaiveDateTime>) {
    (s.status.as_option(), s.product.clone(), s.source.as_str(), s.checked_at.map(to_db))
}

impl MysqlUsers {
    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncMysqlConnection>, RepoError> {
        self.0.conn().await
    }

    async fn exists(&self, id: UserId) -> Result<bool, RepoError> {
        let mut conn = self.conn().await?;
        let n: i64 =
            u::spotify_users.filter(u::id.eq(id.to_string())).count().get_result(&mut conn).await.map_err(map_err)?;
        Ok(n > 0)
    }

    async fn must_get(&self, id: UserId) -> Result<User, RepoError> {
        self.get(id).await?.ok_or(RepoError::NotFound)
    }

    /// Runs a guarded token update; 0 matched rows means stale (row exists) or not found.
    async fn guarded(&self, id: UserId, matched: usize) -> Result<(), RepoError> {
        match matched {
            0 if self.exists(id).await? => Err(RepoError::StaleVersion),
            0 => Err(RepoError::NotFound),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl UserRepository for MysqlUsers {
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        let row: Option<UserRow> = u::spotify_users
            .filter(u::id.eq(id.to_string()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        row.map(User::try_from).transpose()
    }

    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        let row: Option<UserRow> = u::spotify_users
            .filter(u::spotify_account_key.eq(key.as_str()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        row.map(User::try_from).transpose()
    }

    async fn insert(&self, n: NewUser) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&n.subscription);
        let now = to_db(n.now);
        {
            let mut conn = self.conn().await?;
            diesel::insert_into(u::spotify_users)
                .values((
                    u::id.eq(n.id.to_string()),
                    u::spotify_account_key.eq(n.account_key.as_str()),
                    u::spotify_id.eq(n.spotify_id.as_str()),
                    u::display_name.eq(n.display_name.as_ref().map(DisplayName::as_str)),
                    u::access_token.eq(n.tokens.access_token.as_bytes()),
                    u::refresh_token.eq(n.tokens.refresh_token.as_bytes()),
                    u::token_expiry.eq(to_db(n.tokens.access_expires_at)),
                    u::refresh_token_expires_at.eq(to_db(n.tokens.refresh_expires_at)),
                    u::token_scopes.eq(n.tokens.scopes.to_string()),
                    u::token_version.eq(1u64),
                    u::reauth_required.eq(false),
                    u::is_active.eq(true),
                    u::is_premium.eq(is_premium),
                    u::premium_product.eq(product),
                    u::premium_source.eq(source),
                    u::premium_checked_at.eq(checked),
                    u::created_at.eq(now),
                    u::last_active.eq(now),
                ))
                .execute(&mut conn)
                .await
                .map_err(|e| match map_err(e) {
                    RepoError::Conflict("primary key") => RepoError::Conflict("user id"),
                    other => other,
                })?;
        }
        self.must_get(n.id).await
    }

    async fn update_on_login(&self, id: UserId, l: LoginUpdate) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&l.subscription);
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())))
                .set((
                    u::spotify_id.eq(l.spotify_id.as_str()),
                    u::display_name.eq(l.display_name.as_ref().map(DisplayName::as_str)),
                    u::access_token.eq(l.tokens.access_token.as_bytes()),
                    u::refresh_token.eq(l.tokens.refresh_token.as_bytes()),
                    u::token_expiry.eq(to_db(l.tokens.access_expires_at)),
                    u::refresh_token_expires_at.eq(to_db(l.tokens.refresh_expires_at)),
                    u::token_scopes.eq(l.tokens.scopes.to_string()),
                    u::token_version.eq(u::token_version + 1u64),
                    u::reauth_required.eq(false),
                    u::refresh_lease_holder.eq(None::<String>),
                    u::refresh_lease_until.eq(None::<NaiveDateTime>),
                    u::is_active.eq(true),
                    u::is_premium.eq(is_premium),
                    u::premium_product.eq(product),
                    u::premium_source.eq(source),
                    u::premium_checked_at.eq(checked),
                    u::last_active.eq(to_db(l.now)),
                ))
                .execute(&mut conn)
                .await
                .map_err(map_err)?
        };
        if matched == 0 {
            return Err(RepoError::NotFound);
        }
        self.must_get(id).await
    }

    async fn list_active(&self, page: PageRequest) -> Result<Page<User>, RepoError> {
        let mut conn = self.conn().await?;
        let total: i64 =
            u::spotify_users.filter(u::is_active.eq(true)).count().get_result(&mut conn).await.map_err(map_err)?;
        let rows: Vec<UserRow> = u::spotify_users
            .filter(u::is_active.eq(true))
            .order((u::last_active.desc(), u::id.asc()))
            .limit(i64::from(page.limit))
            .offset(i64::from(page.offset))
            .select(UserRow::as_select())
            .load(&mut conn)
            .await
            .map_err(map_err)?;
        let items = rows.into_iter().map(User::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0), request: page })
    }

    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError> {
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())))
                .set((u::is_active.eq(active), u::last_active.eq(to_db(now))))
                .execute(&mut conn)
                .await
                .map_err(map_err)?
        };
        if matched == 0 {
            return Err(RepoError::NotFound);
        }
        self.must_get(id).await
    }

    async fn record_subscription(&self, id: UserId, s: Subscription) -> Result<User, RepoError> {
        let (is_premium, product, source, checked) = subscription_columns(&s);
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())))
                .set((
                    u::is_premium.eq(is_premium),
                    u::premium_product.eq(product),
                    u::premium_source.eq(source),
                    u::premium_checked_at.eq(checked),
                ))
                .execute(&mut conn)
                .await
                .map_err(map_err)?
        };
        if matched == 0 {
            return Err(RepoError::NotFound);
        }
        self.must_get(id).await
    }

    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        let matched = diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())))
            .set(u::last_active.eq(to_db(now)))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        if matched == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError> {
        let mut conn = self.conn().await?;
        let row: TokenRow = u::spotify_users
            .filter(u::id.eq(id.to_string()))
            .select(TokenRow::as_select())
            .first(&mut conn)
            .await
            .map_err(map_err)?;
        row.into_stored()
    }

    async fn store_refreshed(
        &self,
        id: UserId,
        expected: TokenVersion,
        t: RefreshedTokens,
    ) -> Result<TokenVersion, RepoError> {
        let changes = RefreshChanges {
            access_token: t.access_token.into_bytes(),
            token_expiry: to_db(t.access_expires_at),
            token_scopes: t.scopes.to_string(),
            refresh_token: t.refresh_token.map(EncryptedToken::into_bytes),
        };
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(
                u::spotify_users
                    .filter(u::id.eq(id.to_string()))
                    .filter(u::token_version.eq(expected.0))
                    .filter(u::refresh_token.is_not_null()),
            )
            .set((changes, u::token_version.eq(u::token_version + 1u64)))
            .execute(&mut conn)
            .await
            .map_err(map_err)?
        };
        self.guarded(id, matched).await?;
        Ok(TokenVersion(expected.0 + 1))
    }

    async fn mark_reauth_required(&self, id: UserId, expected: TokenVersion) -> Result<(), RepoError> {
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())).filter(u::token_version.eq(expected.0)))
                .set((u::reauth_required.eq(true), u::token_version.eq(u::token_version + 1u64)))
                .execute(&mut conn)
                .await
                .map_err(map_err)?
        };
        self.guarded(id, matched).await
    }

    async fn delete_tokens(&self, id: UserId) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        let matched = diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())))
            .set((
                u::access_token.eq(None::<Vec<u8>>),
                u::refresh_token.eq(None::<Vec<u8>>),
                u::token_expiry.eq(None::<NaiveDateTime>),
                u::refresh_token_expires_at.eq(None::<NaiveDateTime>),
                u::token_scopes.eq(None::<String>),
                u::token_version.eq(u::token_version + 1u64),
                u::reauth_required.eq(false),
                u::refresh_lease_holder.eq(None::<String>),
                u::refresh_lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
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
        let mut conn = self.conn().await?;
        let matched = diesel::update(
            u::spotify_users.filter(u::id.eq(id.to_string())).filter(
                u::refresh_lease_holder
                    .is_null()
                    .or(u::refresh_lease_until.le(to_db(now)))
                    .or(u::refresh_lease_holder.eq(holder)),
            ),
        )
        .set((u::refresh_lease_holder.eq(holder), u::refresh_lease_until.eq(to_db(until))))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
        if matched > 0 {
            return Ok(LeaseOutcome::Acquired { until });
        }
        let current: Option<Option<NaiveDateTime>> = u::spotify_users
            .filter(u::id.eq(id.to_string()))
            .select(u::refresh_lease_until)
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        match current {
            None => Err(RepoError::NotFound),
            Some(until) => Ok(LeaseOutcome::Busy { until: until.map(from_db).unwrap_or(now) }),
        }
    }

    async fn release_refresh_lease(&self, id: UserId, holder: &str) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::update(u::spotify_users.filter(u::id.eq(id.to_string())).filter(u::refresh_lease_holder.eq(holder)))
            .set((u::refresh_lease_holder.eq(None::<String>), u::refresh_lease_until.eq(None::<NaiveDateTime>)))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_refresh_candidates(&self, expiring_before: Timestamp, limit: u32) -> Result<Vec<UserId>, RepoError> {
        let mut conn = self.conn().await?;
        let ids: Vec<String> = u::spotify_users
            .filter(u::is_active.eq(true))
            .filter(u::reauth_required.eq(false))
            .filter(u::refresh_token.is_not_null())
            .filter(u::token_expiry.lt(to_db(expiring_before)))
            .order(u::token_expiry.asc())
            .limit(i64::from(limit))
            .select(u::id)
            .load(&mut conn)
            .await
            .map_err(map_err)?;
        ids.iter().map(|id| id.parse().map_err(|_| corrupt("spotify_users.id"))).collect()
    }
}
