//! What a connected user is playing, asked by a service other than the spotauth server.
//!
//! ```text
//! cargo run -p spotauth --example now_playing -- <user id or Spotify account key>
//! cargo run -p spotauth --example now_playing -- --fingerprint <user>
//! ```
//! Reads the server's settings from the environment (`DATABASE_URL` or `SQLITE_PATH`,
//! `TOKEN_ENCRYPTION_KEYS`, `SPOTIFY_CLIENT_ID`, `SPOTIFY_CLIENT_SECRET`,
//! `SPOTIFY_REDIRECT_URI`, `SPOTIFY_API_URL`...), gets the user's access token through
//! `spotauth` (refreshed once across every process if it is about to expire) and asks
//! Spotify's `GET /v1/me/player`. `--fingerprint` prints only a fingerprint of the token (the
//! tests compare it with the server's; a token is never printed).
//! Exit codes: 0 done, 2 a setting is wrong, 3 the user must reconnect Spotify, 4 no such user,
//! 1 anything else.

use std::process::ExitCode;

use sha2::{Digest as _, Sha256};
use spotauth::{Config, Error, Spotauth, UserRef};

fn exit_code(e: &Error) -> ExitCode {
    ExitCode::from(match e {
        Error::Config(_) => 2,
        Error::ReauthRequired | Error::NotConnected => 3,
        Error::UnknownUser => 4,
        _ => 1,
    })
}

async fn run(args: &[String]) -> Result<(), Error> {
    let (fingerprint, who) = match args {
        [flag, who] if flag == "--fingerprint" => (true, who),
        [who] => (false, who),
        _ => return Err(Error::Config("usage: now_playing [--fingerprint] <user id or Spotify account key>".into())),
    };
    let config = Config::from_env()?;
    let api = config.spotify.api_url().to_owned();
    let spotauth = Spotauth::open(config).await?;
    let user = UserRef::parse(who)?;
    let grant = spotauth.access_token(&user).await?;
    if fingerprint {
        let digest = Sha256::digest(grant.access_token.expose().as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        println!("token {hex} expires {}", grant.expires_at.unix_millis());
        return Ok(());
    }
    let name = spotauth.user(&user).await?.display_name.unwrap_or_else(|| who.clone());
    let answer = reqwest::Client::new()
        .get(format!("{api}/me/player"))
        .bearer_auth(grant.access_token.expose())
        .send()
        .await
        .map_err(|e| Error::Other(format!("Spotify: {}", e.without_url())))?;
    match answer.status().as_u16() {
        204 => println!("{name} is not playing anything"),
        200 => {
            let state: serde_json::Value =
                answer.json().await.map_err(|e| Error::Other(format!("Spotify: {}", e.without_url())))?;
            let track = state["item"]["name"].as_str().unwrap_or("something");
            let device = state["device"]["name"].as_str().unwrap_or("a device");
            let verb = if state["is_playing"] == true { "is playing" } else { "paused" };
            println!("{name} {verb} “{track}” on {device}");
        }
        status => return Err(Error::Other(format!("Spotify answered {status} to GET /me/player"))),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("now_playing: {e}");
            exit_code(&e)
        }
    }
}
