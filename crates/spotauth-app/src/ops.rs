//! Operator commands of the service binary, run against the same settings and database as the
//! server (safe while it runs): `keys status`, `keys rotate`, `users list`, `purge`. Each prints
//! its answer on stdout; a failure is one line on stderr and exit code 1; a usage error is exit
//! code 2.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use spotauth_domain::tokens::KeyCensus;

use crate::settings::Settings;
use crate::startup::{Core, ROOM_CHANGES_KEPT};

/// The commands' usage.
pub const USAGE: &str = "\
operator commands (same settings and database as the server; safe while it runs):
  spotauth keys status               how many stored Spotify tokens each key holds
  spotauth keys rotate [--batch N]   re-encrypt every stored token under the primary (first) key
                                     of TOKEN_ENCRYPTION_KEYS, N users per step (default 200);
                                     resumable: run it again after an interruption
  spotauth users list [--limit N]    every user (tab-separated), the first N when given
  spotauth purge                     run the data lifecycle now (ended sessions, lapsed logins,
                                     tokens of idle users, old room records)
exit codes: 0 done, 1 failed (one line on stderr), 2 usage error";

/// A command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `keys status`.
    KeysStatus,
    /// `keys rotate [--batch N]`.
    KeysRotate {
        /// Users per step.
        batch: u32,
    },
    /// `users list [--limit N]`.
    UsersList {
        /// At most this many.
        limit: Option<u64>,
    },
    /// `purge`.
    Purge,
}

/// A command line that does not parse: the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn number(flag: &str, value: Option<&String>) -> Result<u64, UsageError> {
    value
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| UsageError(format!("{flag} needs a positive number")))
}

impl Command {
    /// Parses the words of a command (`["keys", "rotate", "--batch", "50"]`).
    pub fn parse(words: &[String]) -> Result<Self, UsageError> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["keys", "status"] => Ok(Command::KeysStatus),
            ["keys", "rotate"] => Ok(Command::KeysRotate { batch: 200 }),
            ["keys", "rotate", "--batch", _] => {
                let batch = number("--batch", words.get(3))?;
                Ok(Command::KeysRotate { batch: u32::try_from(batch).unwrap_or(u32::MAX) })
            }
            ["users", "list"] => Ok(Command::UsersList { limit: None }),
            ["users", "list", "--limit", _] => Ok(Command::UsersList { limit: Some(number("--limit", words.get(3))?) }),
            ["purge"] => Ok(Command::Purge),
            _ => Err(UsageError(format!("unknown command `{}`", words.join(" ")))),
        }
    }
}

/// Why a command failed: one line, no secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpsError(String);

fn failed(what: &str) -> impl Fn(&dyn std::fmt::Display) -> OpsError + '_ {
    move |e| OpsError(format!("{what}: {e}"))
}

/// Runs `command`; its answer is returned as text (printed by `main`), progress goes to stderr.
pub async fn run(command: Command, settings: &Settings) -> Result<String, OpsError> {
    let core = Core::build(settings).await.map_err(|e| OpsError(e.to_string()))?;
    match command {
        Command::KeysStatus => {
            let census = core.token_service.key_census(PAGE).await.map_err(|e| failed("keys status")(&e))?;
            Ok(describe(&census))
        }
        Command::KeysRotate { batch } => rotate(&core, batch).await,
        Command::UsersList { limit } => users(&core, limit).await,
        Command::Purge => purge(&core).await,
    }
}

/// Rows read per statement when a command pages through a table.
const PAGE: u32 = 500;

fn describe(c: &KeyCensus) -> String {
    let mut out = format!("primary key: {}\nusers with Spotify tokens: {}\n", c.primary, c.users);
    let _ = writeln!(out, "key\ttokens\tstate");
    for (kid, n) in &c.columns {
        let state = if c.unknown.contains_key(kid) {
            "NOT in TOKEN_ENCRYPTION_KEYS: these users must reconnect Spotify"
        } else if *kid == c.primary {
            "primary"
        } else {
            "older key: `spotauth keys rotate` moves these to the primary"
        };
        let _ = writeln!(out, "{kid}\t{n}\t{state}");
    }
    if c.malformed > 0 {
        let _ = writeln!(out, "unreadable\t{}\tnot a ciphertext of ours", c.malformed);
    }
    out
}

async fn rotate(core: &Core, batch: u32) -> Result<String, OpsError> {
    let tokens = &core.token_service;
    let before = tokens.key_census(PAGE).await.map_err(|e| failed("keys rotate")(&e))?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(before.users)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(format!("re-encrypting under {}", before.primary));
    let (mut after, mut rewritten, mut changed, mut unreadable, mut scanned) = (None, 0, 0, 0, 0);
    loop {
        let page = tokens.reencrypt_page(after, batch).await.map_err(|e| {
            bar.abandon();
            failed("keys rotate (run it again to resume)")(&e)
        })?;
        (rewritten, changed, unreadable, scanned) = (
            rewritten + page.rewritten,
            changed + page.changed_meanwhile,
            unreadable + page.unreadable,
            scanned + page.scanned,
        );
        bar.inc(page.scanned);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    bar.finish_and_clear();
    let census = tokens.key_census(PAGE).await.map_err(|e| failed("keys status")(&e))?;
    let mut out = format!(
        "scanned {scanned} users: re-encrypted {rewritten} under {}, {changed} written meanwhile by a refresh or login, \
         {unreadable} under a key no longer configured (marked \"reconnect Spotify\")\n",
        census.primary
    );
    out.push_str(&describe(&census));
    let others: Vec<&String> =
        census.columns.keys().filter(|k| **k != census.primary && !census.unknown.contains_key(*k)).collect();
    if others.is_empty() && census.users > 0 {
        let _ = writeln!(out, "every readable token is under {}: older keys can be removed", census.primary);
    }
    Ok(out)
}

async fn users(core: &Core, limit: Option<u64>) -> Result<String, OpsError> {
    let mut out = String::from(
        "id\tspotify_id\tdisplay_name\tpremium\tspotify_connected\treauth_required\tactive\tlast_active\tcreated\n",
    );
    let (mut after, mut listed) = (None, 0u64);
    'pages: loop {
        let page = core.users.page(after, PAGE).await.map_err(|e| failed("users list")(&e))?;
        for u in &page {
            if limit.is_some_and(|l| listed >= l) {
                break 'pages;
            }
            let premium = match u.subscription.status.as_option() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            };
            let name = u.display_name.as_ref().map(ToString::to_string).unwrap_or_default().replace(['\t', '\n'], " ");
            let _ = writeln!(
                out,
                "{}\t{}\t{name}\t{premium}\t{}\t{}\t{}\t{}\t{}",
                u.id,
                u.spotify_id,
                u.has_tokens,
                u.reauth_required,
                u.is_active,
                crate::web::iso(u.last_active),
                crate::web::iso(u.created_at)
            );
            listed += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    Ok(out)
}

async fn purge(core: &Core) -> Result<String, OpsError> {
    let done = core.service.housekeeping().await.map_err(|e| failed("purge")(&e))?;
    let room = core.room.housekeeping(ROOM_CHANGES_KEPT).await.map_err(|e| failed("purge")(&e))?;
    Ok(format!(
        "deleted: {} ended sessions, {} lapsed logins, tokens of {} idle users, {} old room records\n",
        done.sessions, done.login_flows, done.disconnected_users, room
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(Command::parse(&words("keys status")), Ok(Command::KeysStatus));
        assert_eq!(Command::parse(&words("keys rotate")), Ok(Command::KeysRotate { batch: 200 }));
        assert_eq!(Command::parse(&words("keys rotate --batch 5")), Ok(Command::KeysRotate { batch: 5 }));
        assert_eq!(Command::parse(&words("users list --limit 3")), Ok(Command::UsersList { limit: Some(3) }));
        assert_eq!(Command::parse(&words("purge")), Ok(Command::Purge));
        for bad in ["keys", "keys rotate --batch 0", "keys rotate --batch x", "users", "users list --limit", "nope"] {
            let err = Command::parse(&words(bad)).unwrap_err().to_string();
            assert!(!err.is_empty() && !err.contains('\n'), "{bad}: {err}");
        }
    }
}
