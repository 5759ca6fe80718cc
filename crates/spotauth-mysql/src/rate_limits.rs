//! `RateLimitRepository` on MySQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Datetime, Varchar};
use diesel_async::RunQueryDsl;
use spotauth_domain::ports::{RateLimitRepository, RepoError};
use spotauth_domain::time::Timestamp;

use crate::convert::{from_db, map_err, to_db};
use crate::schema::spotify_rate_limits::dsl as r;
use crate::store::MysqlRateLimits;

#[async_trait]
impl RateLimitRepository for MysqlRateLimits {
    async fn backoff_until(&self, client: &str) -> Result<Option<Timestamp>, RepoError> {
        let mut conn = self.0.conn().await?;
        let until: Option<NaiveDateTime> = r::spotify_rate_limits
            .filter(r::client_id.eq(client))
            .select(r::backoff_until)
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        Ok(until.map(from_db))
    }

    async fn extend_backoff(&self, client: &str, until: Timestamp) -> Result<Timestamp, RepoError> {
        let mut conn = self.0.conn().await?;
        let now = chrono::Utc::now().naive_utc();
        // One statement: concurrent instances can only move the end later, never earlier.
        diesel::sql_query(
            "INSERT INTO spotify_rate_limits (client_id, backoff_until, updated_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE backoff_until = GREATEST(backoff_until, VALUES(backoff_until)), \
             updated_at = VALUES(updated_at)",
        )
        .bind::<Varchar, _>(client)
        .bind::<Datetime, _>(to_db(until))
        .bind::<Datetime, _>(now)
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
        let effective: NaiveDateTime = r::spotify_rate_limits
            .filter(r::client_id.eq(client))
            .select(r::backoff_until)
            .first(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(from_db(effective))
    }
}
