//! `SessionRepository` on MySQL.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{RepoError, SessionRepository};
use spotauth_domain::session::{NewSession, Session, SessionMeta, SessionOwner, SessionView, TokenIdHash};
use spotauth_domain::time::Timestamp;

use crate::convert::{corrupt, from_db, map_err, to_db};
use crate::schema::user_sessions::dsl as s;
use crate::store::MysqlSessions;
use crate::users::{TokenRow, UserRow};
use spotauth_domain::user::User;

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::schema::user_sessions)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
struct SessionRow {
    id: String,
    user_id: String,
    token_id_hash: Vec<u8>,
    created_at: NaiveDateTime,
    last_active: NaiveDateTime,
    expires_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    user_agent: Option<String>,
    ip_address: Option<String>,
}

impl TryFrom<SessionRow> for Session {
    type Error = RepoError;
    fn try_from(r: SessionRow) -> Result<Self, RepoError> {
        Ok(Session {
            id: r.id.parse().map_err(|_| corrupt("user_sessions.id"))?,
            user_id: r.user_id.parse().map_err(|_| corrupt("user_sessions.user_id"))?,
            token_id_hash: TokenIdHash::from_slice(&r.token_id_hash).ok_or_else(|| corrupt("token_id_hash"))?,
            created_at: from_db(r.created_at),
            last_active: from_db(r.last_active),
            expires_at: from_db(r.expires_at),
            revoked_at: r.revoked_at.map(from_db),
            meta: SessionMeta { user_agent: r.user_agent, ip_address: r.ip_address },
        })
    }
}

impl MysqlSessions {
    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncMysqlConnection>, RepoError> {
        self.0.conn().await
    }
}

#[async_trait]
impl SessionRepository for MysqlSessions {
    async fn create(&self, n: NewSession) -> Result<Session, RepoError> {
        {
            let mut conn = self.conn().await?;
            diesel::insert_into(s::user_sessions)
                .values((
                    s::id.eq(n.id.to_string()),
                    s::user_id.eq(n.user_id.to_string()),
                    s::token_id_hash.eq(n.token_id_hash.as_bytes().as_slice()),
                    s::created_at.eq(to_db(n.created_at)),
                    s::last_active.eq(to_db(n.created_at)),
                    s::expires_at.eq(to_db(n.expires_at)),
                    s::user_agent.eq(n.meta.user_agent.as_deref()),
                    s::ip_address.eq(n.meta.ip_address.as_deref()),
                ))
                .execute(&mut conn)
                .await
                .map_err(|e| match map_err(e) {
                    RepoError::Conflict("primary key") => RepoError::Conflict("session id"),
                    other => other,
                })?;
        }
        self.get(n.id).await?.ok_or(RepoError::NotFound)
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, RepoError> {
        let mut conn = self.conn().await?;
        let row: Option<SessionRow> = s::user_sessions
            .filter(s::id.eq(id.to_string()))
            .select(SessionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        row.map(Session::try_from).transpose()
    }

    async fn get_with_user(&self, id: SessionId) -> Result<Option<SessionView>, RepoError> {
        use crate::schema::spotify_users::dsl as u;
        let mut conn = self.conn().await?;
        let row: Option<(SessionRow, Option<UserRow>, Option<TokenRow>)> = s::user_sessions
            .left_join(u::spotify_users.on(u::id.eq(s::user_id)))
            .filter(s::id.eq(id.to_string()))
            .select((SessionRow::as_select(), Option::<UserRow>::as_select(), Option::<TokenRow>::as_select()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_err)?;
        row.map(|(session, user, tokens)| {
            let owner = match user {
                Some(user) => Some(SessionOwner {
                    user: User::try_from(user)?,
                    tokens: tokens.map(TokenRow::into_stored).transpose()?.flatten(),
                }),
                None => None,
            };
            Ok(SessionView { session: Session::try_from(session)?, owner })
        })
        .transpose()
    }

    async fn rotate(
        &self,
        id: SessionId,
        expected: &TokenIdHash,
        new: &TokenIdHash,
        now: Timestamp,
    ) -> Result<Session, RepoError> {
        let matched = {
            let mut conn = self.conn().await?;
            diesel::update(
                s::user_sessions
                    .filter(s::id.eq(id.to_string()))
                    .filter(s::token_id_hash.eq(expected.as_bytes().as_slice()))
                    .filter(s::revoked_at.is_null()),
            )
            .set((s::token_id_hash.eq(new.as_bytes().as_slice()), s::last_active.eq(to_db(now))))
            .execute(&mut conn)
            .await
            .map_err(map_err)?
        };
        let session = self.get(id).await?.ok_or(RepoError::NotFound)?;
        if matched == 0 {
            return Err(RepoError::StaleVersion);
        }
        Ok(session)
    }

    async fn touch(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        let matched = diesel::update(s::user_sessions.filter(s::id.eq(id.to_string())))
            .set(s::last_active.eq(to_db(now)))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        if matched == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn revoke(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::update(s::user_sessions.filter(s::id.eq(id.to_string())).filter(s::revoked_at.is_null()))
            .set(s::revoked_at.eq(to_db(now)))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn revoke_all_for_user(&self, user_id: UserId, now: Timestamp) -> Result<u64, RepoError> {
        let mut conn = self.conn().await?;
        let n =
            diesel::update(s::user_sessions.filter(s::user_id.eq(user_id.to_string())).filter(s::revoked_at.is_null()))
                .set(s::revoked_at.eq(to_db(now)))
                .execute(&mut conn)
                .await
                .map_err(map_err)?;
        Ok(n as u64)
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, RepoError> {
        let mut conn = self.conn().await?;
        let cutoff = to_db(before);
        let n = diesel::delete(s::user_sessions.filter(s::revoked_at.lt(cutoff).or(s::expires_at.lt(cutoff))))
            .execute(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(n as u64)
    }
}
