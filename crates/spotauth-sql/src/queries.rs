//! Query pieces several repositories use.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ports::RepoError;
use spotauth_domain::session::LiveAfter;

use crate::conn::{AnyConn, TxError, each_backend};
use crate::schema::spotify_users::dsl as u;
use crate::schema::user_sessions::dsl as s;

/// Whether a user row has this id.
pub(crate) async fn user_exists(conn: &mut AnyConn<'_>, id: &str) -> QueryResult<bool> {
    each_backend!(conn, |c| diesel::select(diesel::dsl::exists(u::spotify_users.find(id))).get_result(c).await)
}

/// The refresh lease, released.
#[diesel::dsl::auto_type]
pub(crate) fn lease_cleared() -> _ {
    let holder: Option<String> = None;
    let until: Option<i64> = None;
    (u::refresh_lease_holder.eq(holder), u::refresh_lease_until.eq(until))
}

/// The token columns of a disconnect: no tokens, the version bumped (so a refresh in flight
/// cannot write them back), no re-authorization mark, no lease.
#[diesel::dsl::auto_type]
pub(crate) fn tokens_deleted() -> _ {
    let no_access: Option<Vec<u8>> = None;
    let no_refresh: Option<Vec<u8>> = None;
    let no_time: Option<i64> = None;
    let no_text: Option<String> = None;
    (
        u::access_token.eq(no_access),
        u::refresh_token.eq(no_refresh),
        u::token_expiry.eq(no_time),
        u::refresh_token_expires_at.eq(no_time),
        u::token_scopes.eq(no_text),
        u::token_version.eq(u::token_version + 1i64),
        u::reauth_required.eq(false),
        lease_cleared(),
    )
}

/// Whether the session row in scope is live after `live`: the SQL form of the domain's one
/// liveness rule (`Session::is_live`, `LiveAfter`), comparison for comparison.
#[diesel::dsl::auto_type]
pub(crate) fn session_live(live: LiveAfter) -> _ {
    let at: i64 = live.at.unix_millis();
    let idle_since: i64 = live.idle_since.unix_millis();
    s::revoked_at
        .is_null()
        .or(s::revoked_at.gt(at))
        .and(s::expires_at.gt(at))
        .and(s::last_active.ge(idle_since))
        .and(s::token_expires_at.is_null().or(s::token_expires_at.gt(at)))
}

/// Whether the user row in scope has a session live after `live`, for the active list, the
/// proactive refresher and the token lifecycle.
///
/// A scalar subquery, `(SELECT id … LIMIT 1) IS NOT NULL`, not `EXISTS`: an optimizer may turn
/// an `EXISTS` into a semi-join and materialize it by scanning every session through
/// `idx_user_sessions_expires_at`. MariaDB did under the soak (docs/benchmarks.md,
/// "Reliability"): a cost that grows with every ended session kept for its retention. The
/// scalar form is one probe of `idx_user_sessions_user_liveness` per user, however many sessions
/// the table keeps.
#[diesel::dsl::auto_type]
pub(crate) fn has_live_session(live: LiveAfter) -> _ {
    let live_session: session_live = session_live(live);
    let one: i64 = 1;
    s::user_sessions
        .filter(s::user_id.eq(u::id))
        .filter(live_session)
        .select(s::id)
        .limit(one)
        .single_value()
        .is_not_null()
}

/// The answer of a compare-and-swap update that named one user: matched rows, or else
/// `StaleVersion` when the user exists (the guard failed) and `NotFound` when not.
pub(crate) async fn guarded(conn: &mut AnyConn<'_>, matched: usize, id: &str) -> Result<(), TxError> {
    match matched {
        0 if user_exists(conn, id).await? => Err(RepoError::StaleVersion.into()),
        0 => Err(RepoError::NotFound.into()),
        _ => Ok(()),
    }
}
