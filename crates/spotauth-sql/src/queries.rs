//! Query pieces several repositories use.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ports::RepoError;

use crate::conn::{AnyConn, TxError, each_backend};
use crate::schema::spotify_users::dsl as u;

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

/// The answer of a compare-and-swap update that named one user: matched rows, or else
/// `StaleVersion` when the user exists (the guard failed) and `NotFound` when not.
pub(crate) async fn guarded(conn: &mut AnyConn<'_>, matched: usize, id: &str) -> Result<(), TxError> {
    match matched {
        0 if user_exists(conn, id).await? => Err(RepoError::StaleVersion.into()),
        0 => Err(RepoError::NotFound.into()),
        _ => Ok(()),
    }
}
