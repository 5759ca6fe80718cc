//! `LoginFlowRepository` on SQLite.

use async_trait::async_trait;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use spotauth_domain::login::{ConsumeOutcome, LoginFlow, NewLoginFlow, ReturnTo};
use spotauth_domain::ports::{LoginFlowRepository, RepoError};
use spotauth_domain::secret::OAuthState;
use spotauth_domain::time::Timestamp;

use crate::convert::{corrupt, from_db, to_db};
use crate::schema::oauth_login_flows::dsl as f;
use crate::store::SqliteLoginFlows;

/// The stored key of a state: its SHA-256 digest (the state itself is never stored).
fn state_hash(state: &OAuthState) -> Vec<u8> {
    Sha256::digest(state.expose().as_bytes()).to_vec()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::oauth_login_flows)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct FlowRow {
    return_to: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

#[async_trait]
impl LoginFlowRepository for SqliteLoginFlows {
    async fn create(&self, flow: NewLoginFlow) -> Result<(), RepoError> {
        let hash = state_hash(&flow.state);
        let return_to = flow.return_to.map(|r| r.as_str().to_owned());
        let (created_at, expires_at) = (to_db(flow.created_at), to_db(flow.expires_at));
        self.0
            .write(move |c| {
                diesel::insert_into(f::oauth_login_flows)
                    .values((
                        f::state_hash.eq(hash),
                        f::return_to.eq(return_to),
                        f::created_at.eq(created_at),
                        f::expires_at.eq(expires_at),
                        f::used_at.eq(None::<i64>),
                    ))
                    .execute(c)
            })
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => RepoError::Conflict("state"),
                other => other,
            })?;
        Ok(())
    }

    async fn consume(&self, state: &OAuthState, now: Timestamp) -> Result<ConsumeOutcome, RepoError> {
        let hash = state_hash(state);
        let at = to_db(now);
        let (matched, row) = self
            .0
            .write(move |c| {
                // The one atomic step: of concurrent callers, only one matches `used_at IS NULL`.
                let matched = diesel::update(
                    f::oauth_login_flows
                        .filter(f::state_hash.eq(&hash))
                        .filter(f::used_at.is_null())
                        .filter(f::expires_at.gt(at)),
                )
                .set(f::used_at.eq(at))
                .execute(c)?;
                let row: Option<FlowRow> = f::oauth_login_flows
                    .filter(f::state_hash.eq(&hash))
                    .select(FlowRow::as_select())
                    .first(c)
                    .optional()?;
                Ok((matched, row))
            })
            .await?;
        let found = row
            .map(|row| {
                let return_to = row.return_to.map(ReturnTo::new).transpose().map_err(|_| corrupt("return_to"))?;
                let flow =
                    LoginFlow { return_to, created_at: from_db(row.created_at), expires_at: from_db(row.expires_at) };
                Ok::<_, RepoError>((flow, row.used_at.is_some()))
            })
            .transpose()?;
        // The update and the read share one transaction, so "unknown" here means no such flow.
        Ok(ConsumeOutcome::after_update(matched > 0, found, now))
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepoError> {
        let cutoff = to_db(before);
        let n = self
            .0
            .write(move |c| diesel::delete(f::oauth_login_flows.filter(f::expires_at.lt(cutoff))).execute(c))
            .await?;
        Ok(n as u64)
    }
}
