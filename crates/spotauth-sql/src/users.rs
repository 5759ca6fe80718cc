//! `UserRepository`: profile, Premium status and activity.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{LoginUpdate, NewUser, RepoError, UniqueKey, UserRepository};
use spotauth_domain::session::LiveAfter;
use spotauth_domain::time::Timestamp;
use spotauth_domain::user::{Page, PageRequest, SpotifyAccountKey, Subscription, User};

use crate::changes::{journal, journal_erasure};
use crate::conn::{AnyConn, Connections, TxError, each_backend};
use crate::error::is_unique_violation;
use crate::queries::{has_live_session, lease_cleared, user_exists};
use crate::rows::{ProfileColumns, SubscriptionColumns, TokenColumns, UserRow};
use crate::schema::room_players::dsl as p;
use crate::schema::spotify_users::dsl as u;
use crate::schema::user_sessions::dsl as s;
use crate::store::{SqlStore, job};

/// The user row, inside a job.
pub(crate) async fn user_row(conn: &mut AnyConn<'_>, id: &str) -> QueryResult<Option<UserRow>> {
    each_backend!(conn, |c| u::spotify_users.find(id).select(UserRow::as_select()).first(c).await.optional())
}

/// After an update that named one user: the user as written, read in the same transaction;
/// `NotFound` when the update matched no row.
async fn as_written(conn: &mut AnyConn<'_>, matched: usize, id: &str) -> Result<User, TxError> {
    if matched == 0 {
        return Err(RepoError::NotFound.into());
    }
    let row = user_row(conn, id).await?.ok_or(RepoError::NotFound)?;
    Ok(User::try_from(row)?)
}

#[async_trait]
impl<C: Connections> UserRepository for SqlStore<C> {
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let id = id.to_string();
        let row = self.read(move |mut conn| Box::pin(async move { Ok(user_row(&mut conn, &id).await?) })).await?;
        row.map(User::try_from).transpose()
    }

    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError> {
        let key = key.as_str().to_owned();
        let row = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let row = each_backend!(&mut conn, |c| u::spotify_users
                        .filter(u::spotify_account_key.eq(&key))
                        .select(UserRow::as_select())
                        .first(c)
                        .await
                        .optional())?;
                    Ok(row)
                })
            })
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn insert(&self, n: NewUser) -> Result<User, RepoError> {
        let id = n.id.to_string();
        let account_key = n.account_key.as_str().to_owned();
        let profile = ProfileColumns::new(&n.spotify_id, n.display_name.as_ref());
        let (tokens, subscription) = (TokenColumns::from(n.tokens), SubscriptionColumns::from(n.subscription));
        let now = n.now.unix_millis();
        self.write_insert(UniqueKey::UserId, move |mut conn| {
            Box::pin(async move {
                let values = (
                    u::id.eq(&id),
                    u::spotify_account_key.eq(account_key),
                    profile,
                    tokens,
                    subscription,
                    u::token_version.eq(1i64),
                    u::reauth_required.eq(false),
                    u::is_active.eq(true),
                    u::created_at.eq(now),
                    u::last_active.eq(now),
                );
                let inserted =
                    each_backend!(&mut conn, |c| diesel::insert_into(u::spotify_users).values(values).execute(c).await);
                // A taken id is `Conflict(UserId)` even when the account key is taken too, whichever
                // unique index the database reports (looked up only when the insert failed).
                if inserted.as_ref().is_err_and(is_unique_violation) && user_exists(&mut conn, &id).await? {
                    return Err(RepoError::Conflict(UniqueKey::UserId).into());
                }
                as_written(&mut conn, inserted?, &id).await
            })
        })
        .await
    }

    async fn update_on_login(&self, id: UserId, l: LoginUpdate) -> Result<User, RepoError> {
        let id = id.to_string();
        let profile = ProfileColumns::new(&l.spotify_id, l.display_name.as_ref());
        let (tokens, subscription) = (TokenColumns::from(l.tokens), SubscriptionColumns::from(l.subscription));
        let now = l.now.unix_millis();
        self.write(move |mut conn| {
            Box::pin(async move {
                let changes = (
                    profile,
                    tokens,
                    subscription,
                    u::token_version.eq(u::token_version + 1i64),
                    u::reauth_required.eq(false),
                    lease_cleared(),
                    u::last_active.eq(now),
                );
                let matched = each_backend!(&mut conn, |c| diesel::update(u::spotify_users.find(&id))
                    .set(changes)
                    .execute(c)
                    .await)?;
                if matched > 0 {
                    journal(&mut conn, &id).await?;
                }
                as_written(&mut conn, matched, &id).await
            })
        })
        .await
    }

    async fn list_active(&self, page: PageRequest, live: LiveAfter) -> Result<Page<User>, RepoError> {
        let (total, rows) = self
            .read(move |mut conn| {
                Box::pin(async move {
                    // One read transaction: the total and the page come from one snapshot.
                    let found = each_backend!(&mut conn, |c| c
                        .transaction(async |c| {
                            let listed =
                                || u::spotify_users.filter(u::is_active.eq(true)).filter(has_live_session(live));
                            let total: i64 = listed().count().get_result(c).await?;
                            let rows: Vec<UserRow> = listed()
                                .order((u::last_active.desc(), u::id.asc()))
                                .limit(i64::from(page.limit))
                                .offset(i64::from(page.offset))
                                .select(UserRow::as_select())
                                .load(c)
                                .await?;
                            Ok::<_, diesel::result::Error>((total, rows))
                        })
                        .await)?;
                    Ok(found)
                })
            })
            .await?;
        let items = rows.into_iter().map(User::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0), request: page })
    }

    async fn list_present(&self, live: LiveAfter) -> Result<Vec<User>, RepoError> {
        let rows: Vec<UserRow> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| u::spotify_users
                        .filter(u::is_active.eq(true))
                        .filter(has_live_session(live))
                        .order((u::last_active.desc(), u::id.asc()))
                        .select(UserRow::as_select())
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError> {
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                let matched = each_backend!(&mut conn, |c| diesel::update(u::spotify_users.find(&id))
                    .set((u::is_active.eq(active), u::last_active.eq(now.unix_millis())))
                    .execute(c)
                    .await)?;
                if matched > 0 {
                    journal(&mut conn, &id).await?;
                }
                as_written(&mut conn, matched, &id).await
            })
        })
        .await
    }

    async fn record_subscription(&self, id: UserId, s: Subscription) -> Result<User, RepoError> {
        let id = id.to_string();
        let changes = SubscriptionColumns::from(s);
        self.write(move |mut conn| {
            Box::pin(async move {
                let matched = each_backend!(&mut conn, |c| diesel::update(u::spotify_users.find(&id))
                    .set(changes)
                    .execute(c)
                    .await)?;
                if matched > 0 {
                    journal(&mut conn, &id).await?;
                }
                as_written(&mut conn, matched, &id).await
            })
        })
        .await
    }

    async fn touch_many(&self, ids: &[UserId], now: Timestamp) -> Result<u64, RepoError> {
        let at = now.unix_millis();
        self.write_one_per_chunk(ids.iter().map(ToString::to_string).collect(), move |chunk| {
            job(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| diesel::update(
                        u::spotify_users.filter(u::id.eq_any(&chunk)).filter(u::last_active.lt(at))
                    )
                    .set(u::last_active.eq(at))
                    .execute(c)
                    .await)?)
                })
            })
        })
        .await
    }

    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError> {
        let id = id.to_string();
        self.write_one(move |mut conn| {
            Box::pin(async move {
                let matched = each_backend!(&mut conn, |c| diesel::update(u::spotify_users.find(&id))
                    .set(u::last_active.eq(now.unix_millis()))
                    .execute(c)
                    .await)?;
                if matched == 0 { Err(RepoError::NotFound.into()) } else { Ok(()) }
            })
        })
        .await
    }

    async fn page(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, RepoError> {
        // Every id sorts after the empty string.
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let rows: Vec<UserRow> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| u::spotify_users
                        .filter(u::id.gt(&after))
                        .order(u::id.asc())
                        .limit(i64::from(limit))
                        .select(UserRow::as_select())
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn erase(&self, id: UserId) -> Result<bool, RepoError> {
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                // The user row first: on MySQL it takes the row's lock, so a login or a refresh
                // of this user waits for the erasure and then finds nothing to update.
                let users = each_backend!(&mut conn, |c| diesel::delete(u::spotify_users.find(&id)).execute(c).await)?;
                let sessions =
                    each_backend!(&mut conn, |c| diesel::delete(s::user_sessions.filter(s::user_id.eq(&id)))
                        .execute(c)
                        .await)?;
                let players = each_backend!(&mut conn, |c| diesel::delete(p::room_players.find(&id)).execute(c).await)?;
                let existed = users + sessions + players > 0;
                if existed {
                    journal_erasure(&mut conn, &id).await?;
                }
                Ok(users > 0)
            })
        })
        .await
    }
}
