//! `LoginFlowRepository` on MySQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};
use spotauth_domain::login::{ConsumeOutcome, LoginFlow, NewLoginFlow, ReturnTo};
use spotauth_domain::ports::{LoginFlowRepository, RepoError};
use spotauth_domain::secret::OAuthState;
use spotauth_domain::time::Timestamp;

use crate::convert::{corrupt, from_db, map_err, to_db};
use crate::schema::oauth_login_flows::dsl as f;
use crate::store::MysqlLoginFlows;

/// The stored key of a state: its SHA-256 digest (the state itself is never stored).
fn state_hash(state: &OAuthState) -> Vec<u8> {
    Sha256::digest(state.expose().as_bytes()).to_vec()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::oauth_login_flows)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
struct FlowRow {
    return_to: Option<String>,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
}

#[async_trait]
impl LoginFlowRepository for MysqlLoginFlows {
    async fn create(&self, flow: NewLoginFlow) -> Result<(), RepoError> {
        let mut conn = self.0.conn().await?;
        diesel::insert_into(f::oauth_login_flows)
            .values((
                f::state_hash.eq(state_hash(&flow.state)),
                f::return_to.eq(flow.return_to.as_ref().map(ReturnTo::as_str)),
                f::created_at.eq(to_db(flow.created_at)),
                f::expires_at.eq(to_db(flow.expires_at)),
                f::used_at.eq(None::<NaiveDateTime>),
            ))
            .execute(&mut conn)
            .await
            .map_err(|e| match map_err(e) {
                RepoError::Conflict(_) => RepoError::Conflict("state"),
                other => other,
            })?;
        Ok(())
    }

    async fn consume(&self, state: &OAuthState, now: Timestamp) -> Result<ConsumeOutcome, RepoError> {
        let hash = state_hash(state);
        let at = to_db(now);
        let mut conn = self.0.conn().await?;
        // The one atomic step: of concurrent callers, only one matches `used_at IS NULL`.
        let matched = diesel::update(
            f::oauth_login_flows
                .filter(f::state_hash.eq(&hash))
                .filter(f::used_at.is_null())
                .filter(f::expires_at.gt(at)),
        )
        .set(f::used_at.eq(at))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
        let row: Option<FlowRow> = f::oauth_login_flows
            .filter(f::state_hash.eq(&hash))
            .select(FlowRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        Ok(ConsumeOutcome::after_update(matched > 0, found(row)?, now))
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepoError> {
        let mut conn = self.0.conn().await?;
        let n = diesel::delete(f::oauth_login_flows.filter(f::expires_at.lt(to_db(before))))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(n as u64)
    }
}

/// The flow as read after the update, with whether it is marked used.
fn found(row: Option<FlowRow>) -> Result<Option<(LoginFlow, bool)>, RepoError> {
    row.map(|row| {
        let return_to = row.return_to.map(ReturnTo::new).transpose().map_err(|_| corrupt("return_to"))?;
        let flow = LoginFlow { return_to, created_at: from_db(row.created_at), expires_at: from_db(row.expires_at) };
        Ok((flow, row.used_at.is_some()))
    })
    .transpose()
}
