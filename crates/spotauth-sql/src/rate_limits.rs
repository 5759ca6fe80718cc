//! `RateLimitRepository`.

use async_trait::async_trait;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use spotauth_domain::ports::{RateLimitRepository, RepoError};
use spotauth_domain::time::Timestamp;

use crate::conn::{AnyConn, Connections, each_backend};
use crate::schema::spotify_rate_limits::dsl as r;
use crate::store::SqlStore;

#[async_trait]
impl<C: Connections> RateLimitRepository for SqlStore<C> {
    async fn backoff_until(&self, client: &str) -> Result<Option<Timestamp>, RepoError> {
        let client = client.to_owned();
        let until: Option<i64> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let until = each_backend!(&mut conn, |c| r::spotify_rate_limits
                        .find(&client)
                        .select(r::backoff_until)
                        .first(c)
                        .await
                        .optional())?;
                    Ok(until)
                })
            })
            .await?;
        Ok(until.map(Timestamp::from_unix_millis))
    }

    async fn extend_backoff(&self, client: &str, until: Timestamp, now: Timestamp) -> Result<Timestamp, RepoError> {
        let client = client.to_owned();
        let (until, now) = (until.unix_millis(), now.unix_millis());
        let effective: i64 = self
            .write(move |mut conn| {
                Box::pin(async move {
                    // One upsert statement, so concurrent instances can only move the end later (a
                    // portable insert-or-ignore then UPDATE would deadlock on MySQL's shared
                    // duplicate-key locks). The values and the update are written once; only the
                    // conflict clause is dialect: `ON DUPLICATE KEY UPDATE` on MySQL,
                    // `ON CONFLICT (client_id) DO UPDATE` on SQLite.
                    let values = (r::client_id.eq(&client), r::backoff_until.eq(until), r::updated_at.eq(now));
                    let longest = (
                        r::backoff_until
                            .eq(case_when::<_, _, BigInt>(r::backoff_until.lt(until), until)
                                .otherwise(r::backoff_until)),
                        r::updated_at.eq(now),
                    );
                    let upsert = diesel::insert_into(r::spotify_rate_limits).values(values);
                    match &mut conn {
                        AnyConn::Mysql(c) => {
                            upsert.on_conflict(diesel::dsl::DuplicatedKeys).do_update().set(longest).execute(*c).await
                        }
                        AnyConn::Sqlite(c) => {
                            upsert.on_conflict(r::client_id).do_update().set(longest).execute(*c).await
                        }
                    }?;
                    let effective = each_backend!(&mut conn, |c| r::spotify_rate_limits
                        .find(&client)
                        .select(r::backoff_until)
                        .first(c)
                        .await)?;
                    Ok(effective)
                })
            })
            .await?;
        Ok(Timestamp::from_unix_millis(effective))
    }
}
