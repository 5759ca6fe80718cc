//! `RateLimitRepository` on SQLite.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use spotauth_domain::ports::{RateLimitRepository, RepoError};
use spotauth_domain::time::Timestamp;

use crate::convert::{from_db, to_db};
use crate::schema::spotify_rate_limits::dsl as r;
use crate::store::SqliteRateLimits;

#[async_trait]
impl RateLimitRepository for SqliteRateLimits {
    async fn backoff_until(&self, client: &str) -> Result<Option<Timestamp>, RepoError> {
        let client = client.to_owned();
        let until: Option<i64> = self
            .0
            .read(move |c| {
                r::spotify_rate_limits.filter(r::client_id.eq(&client)).select(r::backoff_until).first(c).optional()
            })
            .await?;
        Ok(until.map(from_db))
    }

    async fn extend_backoff(&self, client: &str, until: Timestamp) -> Result<Timestamp, RepoError> {
        let client = client.to_owned();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let effective: i64 = self
            .0
            .write(move |c| {
                // Only ever moves the end later, whoever recorded the longer backoff.
                diesel::sql_query(
                    "INSERT INTO spotify_rate_limits (client_id, backoff_until, updated_at) VALUES (?, ?, ?) \
                     ON CONFLICT(client_id) DO UPDATE SET \
                     backoff_until = MAX(backoff_until, excluded.backoff_until), updated_at = excluded.updated_at",
                )
                .bind::<Text, _>(&client)
                .bind::<BigInt, _>(to_db(until))
                .bind::<BigInt, _>(now)
                .execute(c)?;
                r::spotify_rate_limits.filter(r::client_id.eq(&client)).select(r::backoff_until).first(c)
            })
            .await?;
        Ok(from_db(effective))
    }
}
