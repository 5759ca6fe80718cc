//! `TokenRepository`: stored tokens (compare-and-swap on the version), refresh leases and the
//! proactive refresher's candidates.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{LeaseOutcome, RepoError, TokenRepository};
use spotauth_domain::session::LiveAfter;
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{RefreshedTokens, StoredTokens, TokenVersion};

use crate::changes::journal;
use crate::conn::{Connections, each_backend};
use crate::queries::{guarded, has_live_session, lease_cleared, tokens_deleted, user_exists};
use crate::rows::{RefreshChanges, TokenRow, corrupt, version_to_db};
use crate::schema::spotify_users::dsl as u;
use crate::store::SqlStore;

#[async_trait]
impl<C: Connections> TokenRepository for SqlStore<C> {
    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError> {
        let id = id.to_string();
        let row = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let row = each_backend!(&mut conn, |c| u::spotify_users
                        .find(&id)
                        .select(TokenRow::as_select())
                        .first(c)
                        .await)?;
                    Ok(row)
                })
            })
            .await?;
        row.into_stored()
    }

    async fn store_refreshed(
        &self,
        id: UserId,
        expected: TokenVersion,
        tokens: RefreshedTokens,
    ) -> Result<TokenVersion, RepoError> {
        let expected_db = version_to_db(expected)?;
        let next = TokenVersion(expected.0.checked_add(1).ok_or_else(|| corrupt("token_version"))?);
        let changes = RefreshChanges::from(tokens);
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                // Guarded by the version, and by the refresh token still being there: a refresh
                // that raced a disconnect never resurrects tokens.
                let matched = each_backend!(&mut conn, |c| diesel::update(
                    u::spotify_users
                        .find(&id)
                        .filter(u::token_version.eq(expected_db))
                        .filter(u::refresh_token.is_not_null())
                )
                .set((&changes, u::token_version.eq(u::token_version + 1i64)))
                .execute(c)
                .await)?;
                if matched > 0 {
                    journal(&mut conn, &id).await?;
                }
                guarded(&mut conn, matched, &id).await
            })
        })
        .await?;
        Ok(next)
    }

    async fn mark_reauth_required(&self, id: UserId, expected: TokenVersion) -> Result<(), RepoError> {
        let expected = version_to_db(expected)?;
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                let matched = each_backend!(&mut conn, |c| diesel::update(
                    u::spotify_users.find(&id).filter(u::token_version.eq(expected))
                )
                .set((u::reauth_required.eq(true), u::token_version.eq(u::token_version + 1i64)))
                .execute(c)
                .await)?;
                if matched > 0 {
                    journal(&mut conn, &id).await?;
                }
                guarded(&mut conn, matched, &id).await
            })
        })
        .await
    }

    async fn delete_tokens(&self, id: UserId) -> Result<(), RepoError> {
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                let matched = each_backend!(&mut conn, |c| diesel::update(u::spotify_users.find(&id))
                    .set(tokens_deleted())
                    .execute(c)
                    .await)?;
                if matched == 0 {
                    return Err(RepoError::NotFound.into());
                }
                journal(&mut conn, &id).await?;
                Ok(())
            })
        })
        .await
    }

    async fn try_acquire_refresh_lease(
        &self,
        id: UserId,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<LeaseOutcome, RepoError> {
        let (now, until) = (now.unix_millis(), now.plus(ttl).unix_millis());
        let id = id.to_string();
        let holder = holder.to_owned();
        self.write_one(move |mut conn| {
            Box::pin(async move {
                // Free, lapsed (at its end exactly), or already this holder's (re-entrant).
                let matched = each_backend!(&mut conn, |c| diesel::update(
                    u::spotify_users.find(&id).filter(
                        u::refresh_lease_holder
                            .is_null()
                            .or(u::refresh_lease_until.le(now))
                            .or(u::refresh_lease_holder.eq(&holder))
                    )
                )
                .set((u::refresh_lease_holder.eq(&holder), u::refresh_lease_until.eq(until)))
                .execute(c)
                .await)?;
                match matched {
                    0 if user_exists(&mut conn, &id).await? => Ok(LeaseOutcome::Busy),
                    0 => Err(RepoError::NotFound.into()),
                    _ => Ok(LeaseOutcome::Acquired),
                }
            })
        })
        .await
    }

    async fn release_refresh_lease(&self, id: UserId, holder: &str) -> Result<(), RepoError> {
        let id = id.to_string();
        let holder = holder.to_owned();
        self.write_one(move |mut conn| {
            Box::pin(async move {
                each_backend!(&mut conn, |c| diesel::update(
                    u::spotify_users.find(&id).filter(u::refresh_lease_holder.eq(&holder))
                )
                .set(lease_cleared())
                .execute(c)
                .await)?;
                Ok(())
            })
        })
        .await
    }

    async fn list_refresh_candidates(
        &self,
        expiring_before: Timestamp,
        live: LiveAfter,
        limit: u32,
    ) -> Result<Vec<UserId>, RepoError> {
        let ids: Vec<String> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let ids = each_backend!(&mut conn, |c| u::spotify_users
                        .filter(has_live_session(live))
                        .filter(u::reauth_required.eq(false))
                        .filter(u::refresh_token.is_not_null())
                        .filter(u::token_expiry.lt(expiring_before.unix_millis()))
                        .order(u::token_expiry.asc())
                        .limit(i64::from(limit))
                        .select(u::id)
                        .load(c)
                        .await)?;
                    Ok(ids)
                })
            })
            .await?;
        ids.iter().map(|id| id.parse().map_err(|_| corrupt("spotify_users.id"))).collect()
    }

    async fn delete_tokens_of_idle_users(&self, live: LiveAfter) -> Result<u64, RepoError> {
        let n = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let n = each_backend!(&mut conn, |c| diesel::update(
                        u::spotify_users
                            .filter(u::refresh_token.is_not_null())
                            .filter(u::last_active.lt(live.at.unix_millis()))
                            .filter(diesel::dsl::not(has_live_session(live)))
                    )
                    .set(tokens_deleted())
                    .execute(c)
                    .await)?;
                    Ok(n)
                })
            })
            .await?;
        Ok(n as u64)
    }

    async fn page_tokens(&self, after: Option<UserId>, limit: u32) -> Result<Vec<(UserId, StoredTokens)>, RepoError> {
        // Every id sorts after the empty string.
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let rows: Vec<(String, TokenRow)> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| u::spotify_users
                        .filter(u::id.gt(&after))
                        .filter(u::access_token.is_not_null())
                        .order(u::id.asc())
                        .limit(i64::from(limit))
                        .select((u::id, TokenRow::as_select()))
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        with_tokens(rows)
    }

    async fn newest_tokens(&self) -> Result<Option<(UserId, StoredTokens)>, RepoError> {
        let rows: Vec<(String, TokenRow)> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| u::spotify_users
                        .filter(u::access_token.is_not_null())
                        .filter(u::reauth_required.eq(false))
                        .order(u::token_expiry.desc())
                        .limit(1)
                        .select((u::id, TokenRow::as_select()))
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        Ok(with_tokens(rows)?.into_iter().next())
    }
}

/// Rows as (user, tokens), those without tokens left out.
fn with_tokens(rows: Vec<(String, TokenRow)>) -> Result<Vec<(UserId, StoredTokens)>, RepoError> {
    let mut out = Vec::with_capacity(rows.len());
    for (id, row) in rows {
        let id = id.parse::<UserId>().map_err(|_| corrupt("spotify_users.id"))?;
        if let Some(stored) = row.into_stored()? {
            out.push((id, stored));
        }
    }
    Ok(out)
}
