//! Conversions between rows and domain values, and the error seam.

use chrono::{DateTime, NaiveDateTime};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use spotauth_domain::ports::RepoError;
use spotauth_domain::time::Timestamp;

pub(crate) fn to_db(t: Timestamp) -> NaiveDateTime {
    DateTime::from_timestamp_millis(t.unix_millis()).unwrap_or_default().naive_utc()
}

pub(crate) fn from_db(t: NaiveDateTime) -> Timestamp {
    Timestamp::from_unix_millis(t.and_utc().timestamp_millis())
}

pub(crate) fn corrupt(what: &str) -> RepoError {
    RepoError::Corrupt(what.to_owned())
}

/// Maps diesel errors at the seam. Messages name the kind of failure, never a value.
pub(crate) fn map_err(e: DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let msg = info.message();
            if msg.contains("account_key") {
                RepoError::Conflict("account key")
            } else if msg.contains("token_id_hash") {
                RepoError::Conflict("token id")
            } else {
                RepoError::Conflict("primary key")
            }
        }
        DieselError::DatabaseError(kind, _) => RepoError::Unavailable(format!("database error ({kind:?})")),
        DieselError::DeserializationError(_) => RepoError::Corrupt("row does not match the schema".into()),
        other => RepoError::Unavailable(format!("query failed: {}", kind_of(&other))),
    }
}

fn kind_of(e: &DieselError) -> &'static str {
    match e {
        DieselError::QueryBuilderError(_) => "query builder",
        DieselError::SerializationError(_) => "serialization",
        DieselError::RollbackTransaction | DieselError::RollbackErrorOnCommit { .. } => "transaction rolled back",
        DieselError::BrokenTransactionManager => "broken transaction",
        DieselError::AlreadyInTransaction | DieselError::NotInTransaction => "transaction state",
        _ => "connection lost or driver error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        let t = Timestamp::from_unix_millis(1_800_000_000_123);
        assert_eq!(from_db(to_db(t)), t);
    }
}
