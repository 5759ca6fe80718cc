//! The change journal (`auth_changes`): written by every write that changes what a user's
//! requests see, in that write's transaction, and read by instances that cache sessions.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{Change, ChangeFeed, RepoError};

use crate::conn::{AnyConn, Connections, each_backend};
use crate::rows::corrupt;
use crate::schema::auth_changes::dsl as ch;
use crate::store::SqlStore;

/// Records, inside the caller's transaction, that `user_id`'s view changed.
pub(crate) async fn journal(conn: &mut AnyConn<'_>, user_id: &str) -> QueryResult<()> {
    each_backend!(conn, |c| diesel::insert_into(ch::auth_changes).values(ch::user_id.eq(user_id)).execute(c).await)?;
    Ok(())
}

/// What an erasure leaves in the journal's `user_id` column: the nil UUID, which no user id is
/// (ids are random v4 UUIDs). Read back as `Change { user: None }`.
const ERASED: &str = "00000000-0000-0000-0000-000000000000";

/// Records, inside the caller's transaction, that a user was erased: their earlier entries
/// become erasures (their id must not outlive them; an instance that has not read those rows
/// yet forgets everything instead of them) and one erasure is appended for the instances that
/// have.
pub(crate) async fn journal_erasure(conn: &mut AnyConn<'_>, user_id: &str) -> QueryResult<()> {
    each_backend!(conn, |c| diesel::update(ch::auth_changes.filter(ch::user_id.eq(user_id)))
        .set(ch::user_id.eq(ERASED))
        .execute(c)
        .await)?;
    journal(conn, ERASED).await
}

fn position(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

#[async_trait]
impl<C: Connections> ChangeFeed for SqlStore<C> {
    async fn head(&self) -> Result<u64, RepoError> {
        let head: Option<i64> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| ch::auth_changes.select(diesel::dsl::max(ch::id)).first(c).await)?)
                })
            })
            .await?;
        Ok(head.map_or(0, position))
    }

    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<Change>, RepoError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| ch::auth_changes
                        .filter(ch::id.gt(after))
                        .order(ch::id.asc())
                        .limit(i64::from(limit))
                        .select((ch::id, ch::user_id))
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, user)| {
                let user = match user.as_str() {
                    ERASED => None,
                    id => Some(id.parse::<UserId>().map_err(|_| corrupt("auth_changes.user_id"))?),
                };
                Ok(Change { seq: position(id), user })
            })
            .collect()
    }

    async fn purge_through(&self, through: u64) -> Result<u64, RepoError> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let n = self
            .write(move |mut conn| {
                Box::pin(async move {
                    // The largest row stays: an AUTO_INCREMENT may restart from the largest id
                    // left after a server restart, and positions must never go back.
                    let latest: Option<i64> =
                        each_backend!(&mut conn, |c| ch::auth_changes.select(diesel::dsl::max(ch::id)).first(c).await)?;
                    let Some(latest) = latest else { return Ok(0) };
                    let n = each_backend!(&mut conn, |c| diesel::delete(
                        ch::auth_changes.filter(ch::id.le(through)).filter(ch::id.lt(latest))
                    )
                    .execute(c)
                    .await)?;
                    Ok(n)
                })
            })
            .await?;
        Ok(n as u64)
    }
}
