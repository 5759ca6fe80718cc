//! `LoginFlowRepository`.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::login::{ClientKey, ConsumeOutcome, NewLoginFlow, PendingLogins, StateDigest};
use spotauth_domain::ports::{LoginFlowRepository, RepoError, UniqueKey};
use spotauth_domain::time::Timestamp;

use crate::conn::{Connections, each_backend};
use crate::rows::{FlowRow, NewFlowRow, consume_outcome};
use crate::schema::oauth_login_flows::dsl as f;
use crate::store::SqlStore;

#[async_trait]
impl<C: Connections> LoginFlowRepository for SqlStore<C> {
    async fn create(&self, flow: NewLoginFlow) -> Result<(), RepoError> {
        let row = NewFlowRow::from(flow);
        self.write_one_insert(UniqueKey::State, move |mut conn| {
            Box::pin(async move {
                each_backend!(&mut conn, |c| diesel::insert_into(f::oauth_login_flows).values(&row).execute(c).await)?;
                Ok(())
            })
        })
        .await
    }

    async fn consume(&self, state: &StateDigest, now: Timestamp) -> Result<ConsumeOutcome, RepoError> {
        let digest = state.as_bytes().to_vec();
        let at = now.unix_millis();
        let (matched, row) = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    // The one atomic step: of concurrent callers, only one matches `used_at IS NULL`.
                    let matched = each_backend!(&mut conn, |c| diesel::update(
                        f::oauth_login_flows.find(&digest).filter(f::used_at.is_null()).filter(f::expires_at.gt(at))
                    )
                    .set(f::used_at.eq(at))
                    .execute(c)
                    .await)?;
                    let row = each_backend!(&mut conn, |c| f::oauth_login_flows
                        .find(&digest)
                        .select(FlowRow::as_select())
                        .first(c)
                        .await
                        .optional())?;
                    Ok((matched, row))
                })
            })
            .await?;
        let found = row.map(FlowRow::into_flow).transpose()?;
        Ok(consume_outcome(matched > 0, found, now))
    }

    async fn count_pending(&self, client: Option<ClientKey>, now: Timestamp) -> Result<PendingLogins, RepoError> {
        let client = client.map(|c| c.as_str().to_owned());
        let at = now.unix_millis();
        let (client, total) = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let pending = || f::oauth_login_flows.filter(f::used_at.is_null()).filter(f::expires_at.gt(at));
                    let mine: i64 = match &client {
                        Some(key) => each_backend!(&mut conn, |c| pending()
                            .filter(f::client_key.eq(key))
                            .count()
                            .get_result(c)
                            .await)?,
                        None => 0,
                    };
                    let total: i64 = each_backend!(&mut conn, |c| pending().count().get_result(c).await)?;
                    Ok((mine, total))
                })
            })
            .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(PendingLogins { client: count(client), total: count(total) })
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepoError> {
        let cutoff = before.unix_millis();
        let n = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let n = each_backend!(&mut conn, |c| diesel::delete(
                        f::oauth_login_flows.filter(f::expires_at.lt(cutoff))
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
