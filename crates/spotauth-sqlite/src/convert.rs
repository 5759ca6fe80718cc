//! Conversions between columns and domain values, and the error seam.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use spotauth_domain::ports::RepoError;
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::TokenVersion;

/// A time column: milliseconds since the Unix epoch.
pub(crate) fn to_db(t: Timestamp) -> i64 {
    t.unix_millis()
}

/// Reads a time column.
pub(crate) fn from_db(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

/// A token version as stored (SQLite integers are signed 64-bit).
pub(crate) fn version_to_db(v: TokenVersion) -> Result<i64, RepoError> {
    i64::try_from(v.0).map_err(|_| RepoError::Corrupt("token version out of range".into()))
}

/// Reads a token version.
pub(crate) fn version_from_db(v: i64) -> Result<TokenVersion, RepoError> {
    u64::try_from(v).map(TokenVersion).map_err(|_| corrupt("token_version"))
}

pub(crate) fn corrupt(what: &str) -> RepoError {
    RepoError::Corrupt(what.to_owned())
}

/// Maps diesel errors at the seam. SQLite's own messages name tables, columns and conditions
/// ("UNIQUE constraint failed: t.c", "database is locked"), never a bound value, so they are
/// kept; a value of ours never reaches a message.
pub(crate) fn map_err(e: DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepoError::Conflict(unique_key(info.message()))
        }
        DieselError::DatabaseError(kind, info) => {
            RepoError::Unavailable(format!("database error ({kind:?}): {}", one_line(info.message())))
        }
        DieselError::DeserializationError(_) => RepoError::Corrupt("row does not match the schema".into()),
        other => RepoError::Unavailable(format!("query failed: {}", kind_of(&other))),
    }
}

/// Which unique key a "UNIQUE constraint failed: table.column" names.
fn unique_key(msg: &str) -> &'static str {
    if msg.contains("spotify_account_key") {
        "account key"
    } else if msg.contains("token_id_hash") {
        "token id"
    } else if msg.contains("oauth_login_flows") {
        "state"
    } else if msg.contains("spotify_users.id") {
        "user id"
    } else if msg.contains("user_sessions.id") {
        "session id"
    } else {
        "primary key"
    }
}

fn one_line(msg: &str) -> String {
    msg.lines().next().unwrap_or("").chars().take(200).collect()
}

fn kind_of(e: &DieselError) -> &'static str {
    match e {
        DieselError::QueryBuilderError(_) => "query builder",
        DieselError::SerializationError(_) => "serialization",
        DieselError::RollbackTransaction | DieselError::RollbackErrorOnCommit { .. } => "transaction rolled back",
        DieselError::BrokenTransactionManager => "broken transaction",
        DieselError::AlreadyInTransaction | DieselError::NotInTransaction => "transaction state",
        _ => "driver error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_name_the_key() {
        assert_eq!(unique_key("UNIQUE constraint failed: spotify_users.spotify_account_key"), "account key");
        assert_eq!(unique_key("UNIQUE constraint failed: spotify_users.id"), "user id");
        assert_eq!(unique_key("UNIQUE constraint failed: user_sessions.id"), "session id");
        assert_eq!(unique_key("UNIQUE constraint failed: user_sessions.token_id_hash"), "token id");
        assert_eq!(unique_key("UNIQUE constraint failed: oauth_login_flows.state_hash"), "state");
    }

    #[test]
    fn versions_round_trip_and_refuse_negative() {
        assert_eq!(version_from_db(version_to_db(TokenVersion(7)).unwrap()).unwrap(), TokenVersion(7));
        assert!(version_from_db(-1).is_err());
        assert!(version_to_db(TokenVersion(u64::MAX)).is_err());
    }
}
