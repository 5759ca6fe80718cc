//! `SessionRepository`.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{Freshness, RepoError, SessionRepository, UniqueKey};
use spotauth_domain::session::{LiveAfter, NewSession, Session, SessionOwner, SessionView, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::user::User;

use crate::changes::journal;
use crate::conn::{AnyConn, Connections, each_backend};
use crate::error::is_unique_violation;
use crate::queries::session_live;
use crate::rows::{NewSessionRow, SessionRow, TokenRow, UserRow};
use crate::schema::spotify_users::dsl as u;
use crate::schema::user_sessions::dsl as s;
use crate::store::{SqlStore, job};

/// The session row, inside a job.
async fn session_row(conn: &mut AnyConn<'_>, id: &str) -> QueryResult<Option<SessionRow>> {
    each_backend!(conn, |c| s::user_sessions.find(id).select(SessionRow::as_select()).first(c).await.optional())
}

fn session(row: Option<SessionRow>) -> Result<Session, RepoError> {
    row.map(Session::try_from).transpose()?.ok_or(RepoError::NotFound)
}

#[async_trait]
impl<C: Connections> SessionRepository for SqlStore<C> {
    async fn create(&self, n: NewSession) -> Result<Session, RepoError> {
        let row = NewSessionRow::from(n);
        let row = self
            .write_insert(UniqueKey::SessionId, move |mut conn| {
                Box::pin(async move {
                    let id = row.id.clone();
                    let inserted = each_backend!(&mut conn, |c| diesel::insert_into(s::user_sessions)
                        .values(&row)
                        .execute(c)
                        .await);
                    // A taken id is `Conflict(SessionId)` even when the token hash is taken too,
                    // whichever unique index the database reports (looked up only on failure).
                    if inserted.as_ref().is_err_and(is_unique_violation) && session_row(&mut conn, &id).await?.is_some()
                    {
                        return Err(RepoError::Conflict(UniqueKey::SessionId).into());
                    }
                    inserted?;
                    Ok(session_row(&mut conn, &id).await?)
                })
            })
            .await?;
        session(row)
    }

    async fn load_view(&self, id: SessionId, _: Freshness) -> Result<Option<SessionView>, RepoError> {
        let id = id.to_string();
        let row: Option<(SessionRow, Option<UserRow>, Option<TokenRow>)> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let row = each_backend!(&mut conn, |c| s::user_sessions
                        .left_join(u::spotify_users.on(u::id.eq(s::user_id)))
                        .filter(s::id.eq(&id))
                        .select((
                            SessionRow::as_select(),
                            Option::<UserRow>::as_select(),
                            Option::<TokenRow>::as_select()
                        ))
                        .first(c)
                        .await
                        .optional())?;
                    Ok(row)
                })
            })
            .await?;
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
        token_expires_at: Timestamp,
    ) -> Result<Session, RepoError> {
        let id = id.to_string();
        let (expected, new) = (expected.as_bytes().to_vec(), new.as_bytes().to_vec());
        let (matched, row) = self
            .write(move |mut conn| {
                Box::pin(async move {
                    // MySQL: take the row's lock by primary key first. Two rotations of one token
                    // otherwise deadlock on the unique token-hash index (the second looks the row
                    // up through it and waits there while the first needs a gap lock beside it);
                    // this way the second waits for the first and then matches nothing. SQLite
                    // has one writer: nothing to order.
                    if let AnyConn::Mysql(c) = &mut conn {
                        s::user_sessions
                            .find(&id)
                            .select(s::id)
                            .for_update()
                            .first::<String>(&mut **c)
                            .await
                            .optional()?;
                    }
                    let matched = each_backend!(&mut conn, |c| diesel::update(
                        s::user_sessions
                            .find(&id)
                            .filter(s::token_id_hash.eq(&expected))
                            .filter(s::revoked_at.is_null())
                    )
                    .set((
                        s::token_id_hash.eq(&new),
                        s::previous_token_id_hash.eq(Some(&expected)),
                        s::rotated_at.eq(Some(now.unix_millis())),
                        s::token_expires_at.eq(Some(token_expires_at.unix_millis())),
                        s::last_active.eq(now.unix_millis()),
                    ))
                    .execute(c)
                    .await)?;
                    let row = session_row(&mut conn, &id).await?;
                    if let Some(row) = row.as_ref().filter(|_| matched > 0) {
                        journal(&mut conn, &row.user_id).await?;
                    }
                    Ok((matched, row))
                })
            })
            .await?;
        let session = session(row)?;
        if matched == 0 {
            return Err(RepoError::StaleVersion);
        }
        Ok(session)
    }

    async fn touch(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        let id = id.to_string();
        let matched = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let matched = each_backend!(&mut conn, |c| diesel::update(s::user_sessions.find(&id))
                        .set(s::last_active.eq(now.unix_millis()))
                        .execute(c)
                        .await)?;
                    Ok(matched)
                })
            })
            .await?;
        if matched == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn touch_many(&self, ids: &[SessionId], now: Timestamp) -> Result<u64, RepoError> {
        let at = now.unix_millis();
        self.write_one_per_chunk(ids.iter().map(ToString::to_string).collect(), move |chunk| {
            job(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| diesel::update(
                        s::user_sessions.filter(s::id.eq_any(&chunk)).filter(s::last_active.lt(at))
                    )
                    .set(s::last_active.eq(at))
                    .execute(c)
                    .await)?)
                })
            })
        })
        .await
    }

    async fn revoke(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        let id = id.to_string();
        self.write(move |mut conn| {
            Box::pin(async move {
                // Only a live session: the first revocation time is kept.
                let revoked = each_backend!(&mut conn, |c| diesel::update(
                    s::user_sessions.find(&id).filter(s::revoked_at.is_null())
                )
                .set(s::revoked_at.eq(now.unix_millis()))
                .execute(c)
                .await)?;
                if revoked > 0
                    && let Some(row) = session_row(&mut conn, &id).await?
                {
                    journal(&mut conn, &row.user_id).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        live: LiveAfter,
        keep: Option<SessionId>,
    ) -> Result<u64, RepoError> {
        let user_id = user_id.to_string();
        // The empty string is no session id: keeping it keeps nothing.
        let keep = keep.map(|id| id.to_string()).unwrap_or_default();
        let live_ones: i64 = self
            .write(move |mut conn| {
                Box::pin(async move {
                    // Counted and revoked in one transaction. Every unrevoked row is revoked, the
                    // lapsed ones too: a request that verified a token just before it lapsed (or
                    // on an instance whose clock runs behind) could otherwise still rotate it.
                    let of_user = || {
                        s::user_sessions
                            .filter(s::user_id.eq(&user_id))
                            .filter(s::revoked_at.is_null())
                            .filter(s::id.ne(&keep))
                    };
                    let live_ones: i64 =
                        each_backend!(&mut conn, |c| of_user().filter(session_live(live)).count().get_result(c).await)?;
                    let revoked = each_backend!(&mut conn, |c| diesel::update(of_user())
                        .set(s::revoked_at.eq(live.at.unix_millis()))
                        .execute(c)
                        .await)?;
                    if revoked > 0 {
                        journal(&mut conn, &user_id).await?;
                    }
                    Ok(live_ones)
                })
            })
            .await?;
        Ok(u64::try_from(live_ones).unwrap_or(0))
    }

    async fn list_for_user(&self, user_id: UserId, live: LiveAfter) -> Result<Vec<Session>, RepoError> {
        let user_id = user_id.to_string();
        let rows: Vec<SessionRow> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    Ok(each_backend!(&mut conn, |c| s::user_sessions
                        .filter(s::user_id.eq(&user_id))
                        .filter(session_live(live))
                        .order((s::last_active.desc(), s::created_at.desc(), s::id.asc()))
                        .select(SessionRow::as_select())
                        .load(c)
                        .await)?)
                })
            })
            .await?;
        rows.into_iter().map(Session::try_from).collect()
    }

    async fn purge_ended(&self, ended_before: LiveAfter) -> Result<u64, RepoError> {
        let n = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let n = each_backend!(&mut conn, |c| diesel::delete(
                        s::user_sessions.filter(diesel::dsl::not(session_live(ended_before)))
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
