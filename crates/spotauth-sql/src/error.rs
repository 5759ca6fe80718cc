//! The error seam: one classification of diesel's errors into `RepoError` for both backends.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use spotauth_domain::ports::{RepoError, UniqueKey};

/// The unique keys of the schema, by every name a backend's message uses for them: MySQL and
/// MariaDB name the index (`uq_…`), SQLite names `table.column`. `PRIMARY` (MySQL's name of
/// every primary key) is resolved by the statement's table.
fn unique_key_named(name: &str, primary: Option<UniqueKey>) -> Option<UniqueKey> {
    Some(match name {
        "PRIMARY" => return primary,
        "uq_spotify_users_account_key" | "spotify_users.spotify_account_key" => UniqueKey::AccountKey,
        "spotify_users.id" => UniqueKey::UserId,
        "user_sessions.id" => UniqueKey::SessionId,
        "uq_user_sessions_token_id_hash" | "user_sessions.token_id_hash" => UniqueKey::TokenIdHash,
        "oauth_login_flows.state_hash" => UniqueKey::State,
        _ => return None,
    })
}

/// Whether a statement failed on a unique key (which one is for [`classify`] to say).
pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Maps a diesel error at the seam. `violated_key` is the backend's reading of a
/// unique-violation message ([`crate::Connections::violated_key`]); `primary` is the key of the
/// statement's table when it inserts (a MySQL message names a primary key only as `PRIMARY`).
/// Messages name the kind of failure; the database's own text only when `quote_messages` (it
/// holds no bound value), cut to one line.
pub fn classify(
    error: DieselError,
    violated_key: fn(&str) -> Option<&str>,
    primary: Option<UniqueKey>,
    quote_messages: bool,
) -> RepoError {
    match error {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match violated_key(info.message()).and_then(|name| unique_key_named(name, primary)) {
                Some(key) => RepoError::Conflict(key),
                None => RepoError::Unavailable("unique violation on an unknown key".into()),
            }
        }
        DieselError::DatabaseError(kind, info) if quote_messages => {
            RepoError::Unavailable(format!("database error ({kind:?}): {}", one_line(info.message())))
        }
        DieselError::DatabaseError(kind, _) => RepoError::Unavailable(format!("database error ({kind:?})")),
        DieselError::DeserializationError(_) => RepoError::Corrupt("row does not match the schema".into()),
        other => RepoError::Unavailable(format!("query failed: {}", kind_of(&other))),
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
        _ => "connection lost or driver error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_name_of_a_unique_key_resolves() {
        let pk = Some(UniqueKey::UserId);
        for (name, key) in [
            ("uq_spotify_users_account_key", Some(UniqueKey::AccountKey)),
            ("spotify_users.spotify_account_key", Some(UniqueKey::AccountKey)),
            ("spotify_users.id", Some(UniqueKey::UserId)),
            ("user_sessions.id", Some(UniqueKey::SessionId)),
            ("uq_user_sessions_token_id_hash", Some(UniqueKey::TokenIdHash)),
            ("user_sessions.token_id_hash", Some(UniqueKey::TokenIdHash)),
            ("oauth_login_flows.state_hash", Some(UniqueKey::State)),
            ("PRIMARY", pk),
            ("uq_something_else", None),
        ] {
            assert_eq!(unique_key_named(name, pk), key, "{name}");
        }
        assert_eq!(unique_key_named("PRIMARY", None), None);
    }
}
