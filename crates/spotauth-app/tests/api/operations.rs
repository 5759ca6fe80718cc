//! Operator commands and readiness: key rotation while the service serves (`keys status`,
//! `keys rotate`), a row under a removed key becoming "reconnect Spotify", the readiness
//! canary, `users list`, `purge`, and the commands' exit codes.

use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_crypto::TokenKeyring;
use spotauth_domain::ports::TokenCipher;
use spotauth_domain::token::{RefreshedTokens, TokenBinding, TokenColumn};

use crate::common::*;

const K2: &str = "k2:c2Vjb25kLWtleS1zZWNvbmQta2V5LXNlY29uZC1rZXk=";
const K0: &str = "k0:cmV0aXJlZC1rZXktcmV0aXJlZC1rZXktcmV0aXJlZC0=";

/// Runs `spotauth <args>` with these settings.
fn spotauth(pairs: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spotauth")).env_clear().envs(pairs.iter().cloned()).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `key → tokens` of a `keys status` answer.
fn holdings(status: &str) -> Vec<(String, u64)> {
    status
        .lines()
        .skip_while(|l| !l.starts_with("key\t"))
        .skip(1)
        .take_while(|l| l.contains('\t'))
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap().to_owned(), f.next().unwrap().parse().unwrap())
        })
        .collect()
}

async fn get(http: &reqwest::Client, base: &str, path: &str, b: &Browser) -> reqwest::Response {
    http.get(format!("{base}{path}")).header("Cookie", &b.session).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_moves_every_token_to_the_new_primary_while_the_service_serves() {
    let app = spawn(Options::default()).await;
    // Alice and Bob (Premium) get Spotify tokens; Carol (free) her profile; all three have rows.
    let people = [app.login("alice").await, app.login("bob").await, app.login("carol").await];
    let asks = ["/api/auth/spotify/token", "/api/auth/spotify/token", "/api/users/me"];
    // Dave's tokens were sealed long ago under k0, a key no longer configured.
    let dave = app.login("dave").await;
    let me: Value = app.get(&dave, "/api/users/me").await.json().await.unwrap();
    let dave_id: spotauth_domain::ids::UserId = me["id"].as_str().unwrap().parse().unwrap();
    let old = TokenKeyring::from_config(K0).unwrap();
    let repos = app.store.repositories().await;
    let stored = repos.tokens.load_tokens(dave_id).await.unwrap().unwrap();
    let seal = |column, text: &str| old.encrypt(text, TokenBinding { user_id: dave_id, column }).unwrap();
    let under_k0 = RefreshedTokens {
        access_token: seal(TokenColumn::Access, "BQ-dave-access"),
        access_expires_at: stored.access_expires_at,
        refresh_token: Some(seal(TokenColumn::Refresh, "AQ-dave-refresh")),
        scopes: stored.scopes.clone(),
    };
    repos.tokens.store_refreshed(dave_id, stored.version, under_k0).await.unwrap();

    // The new key goes first (it encrypts new writes); k1 stays to read the old rows.
    let both = format!("{K2},{KEYS}");
    let operator = app.pairs_with(&[("TOKEN_ENCRYPTION_KEYS", &both)]);
    let before = stdout(&spotauth(&operator, &["keys", "status"]));
    assert!(before.starts_with("primary key: k2\nusers with Spotify tokens: 4\n"), "{before}");
    assert_eq!(holdings(&before), [("k0".into(), 2), ("k1".into(), 6)], "{before}");
    assert!(before.contains("NOT in TOKEN_ENCRYPTION_KEYS"), "{before}");

    // An instance with the new keyring serves throughout the rotation.
    let serving = app.sibling_with(&[("TOKEN_ENCRYPTION_KEYS", &both)]).await;
    let rotation = tokio::task::spawn_blocking({
        let operator = operator.clone();
        move || spotauth(&operator, &["keys", "rotate", "--batch", "1"])
    });
    let mut served = 0;
    loop {
        let finished = rotation.is_finished();
        for (b, path) in people.iter().zip(asks) {
            let resp = get(&app.http, &serving, path, b).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path} served during the rotation");
            served += 1;
        }
        if finished {
            break;
        }
    }
    let rotated = stdout(&rotation.await.unwrap());
    assert!(served >= 3, "{served}");
    assert!(rotated.contains("re-encrypted 3 under k2"), "{rotated}");
    assert!(rotated.contains("1 under a key no longer configured"), "{rotated}");
    assert_eq!(holdings(&rotated), [("k0".into(), 2), ("k2".into(), 6)], "{rotated}");
    assert!(rotated.contains("older keys can be removed"), "{rotated}");
    let again = stdout(&spotauth(&operator, &["keys", "rotate"]));
    assert!(again.contains("re-encrypted 0 under k2"), "idempotent: {again}");

    // k1 removed: everyone still served; Dave's row is "reconnect Spotify", not a refresh loop.
    let k2_only = app.sibling_with(&[("TOKEN_ENCRYPTION_KEYS", K2)]).await;
    let ready: Value = app.http.get(format!("{k2_only}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["keys"], "ok", "{ready}");
    for (b, path) in people.iter().zip(asks) {
        let resp = get(&app.http, &k2_only, path, b).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    let alice: Value = get(&app.http, &k2_only, "/api/auth/spotify/token", &people[0]).await.json().await.unwrap();
    assert_eq!(app.spotify_user_of(alice["accessToken"].as_str().unwrap()).await, "alice", "the same token, re-sealed");
    let me: Value = get(&app.http, &k2_only, "/api/users/me", &dave).await.json().await.unwrap();
    assert_eq!(me["reauthRequired"], true, "{me}");
    let refreshes = app.emu.counters().user("dave").token_refresh_token;
    for _ in 0..3 {
        let resp = get(&app.http, &k2_only, "/api/auth/spotify/token", &dave).await;
        problem(resp, StatusCode::UNAUTHORIZED, "spotify_reauth_required").await;
    }
    assert_eq!(app.emu.counters().user("dave").token_refresh_token, refreshes, "nobody asked Spotify for Dave");

    // A deploy that lacks the key the service writes with is not ready, and says why.
    let k1_only = app.sibling().await;
    let resp = app.http.get(format!("{k1_only}/readyz")).send().await.unwrap();
    let body = problem(resp, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert!(body["detail"].as_str().unwrap().contains("key `k2`"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_purge_and_exit_codes() {
    let app = spawn(Options::default()).await;
    app.login("alice").await;
    app.login("bob").await;
    let operator = app.pairs_with(&[]);
    let listed = stdout(&spotauth(&operator, &["users", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two users: {listed}");
    assert!(lines[0].starts_with("id\tspotify_id\tdisplay_name"), "{listed}");
    assert!(lines.iter().any(|l| l.contains("\talice\tAlice\tyes\ttrue\tfalse\ttrue\t")), "{listed}");
    assert!(!listed.contains("BQ") && !listed.contains("AQ"), "never a token");
    assert_eq!(stdout(&spotauth(&operator, &["users", "list", "--limit", "1"])).lines().count(), 2);
    let purged = stdout(&spotauth(&operator, &["purge"]));
    assert!(purged.starts_with("deleted: 0 ended sessions"), "{purged}");

    for (args, code) in [(&["keys"][..], 2), (&["keys", "rotate", "--batch", "zero"][..], 2), (&["frobnicate"][..], 2)]
    {
        let out = spotauth(&operator, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: ") && err.lines().count() == 1, "{args:?}: {err}");
    }
    let help = spotauth(&operator, &["--help"]);
    assert!(stdout(&help).contains("spotauth keys rotate [--batch N]"));
    // A database that cannot be reached: exit 1, one line, no secret.
    let unreachable = app.pairs_with(&[("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:9/none"), ("SQLITE_PATH", "")]);
    let out = spotauth(&unreachable, &["keys", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: ") && !err.contains("hunter2"), "{err}");
}
