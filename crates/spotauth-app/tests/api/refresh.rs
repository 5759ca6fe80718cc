//! Token refresh through the running service: metrics, and a process killed mid-refresh.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{Emulator, EmulatorConfig, Fault, FaultTarget, TestUser};

use crate::common::*;

/// The real `spotauth` binary as a child process.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    async fn start(env: &[(&str, String)]) -> Service {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotauth"));
        cmd.env_clear().env("BIND_ADDR", format!("127.0.0.1:{port}")).env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
        // Owned by the guard from here on: killed and reaped whatever happens.
        let service = Service { child, base: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ready = http.get(format!("{}/readyz", service.base)).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not become ready");
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no cleanup, like a crash
        self.child.wait().unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_refresh_leaves_consistent_tokens_and_the_user_can_still_get_one() {
    // Spotify tokens live 60 s and are refreshed when within 300 s of expiry: every /token
    // call refreshes. Spotify calls time out after 1 s, so a lease lasts 6 s.
    let emu = Emulator::start(
        EmulatorConfig::new("test-client")
            .client_secret(Some("test-secret".into()))
            .redirect_uris([REDIRECT])
            .access_token_lifetime(Duration::from_secs(60))
            .user(TestUser::premium("alice")),
    )
    .await
    .unwrap();
    let store = TestStore::from_env().await;
    let (store_setting, store_value) = store.setting();
    let env: Vec<(&str, String)> = vec![
        (store_setting, store_value),
        ("SPOTIFY_CLIENT_ID", "test-client".into()),
        ("SPOTIFY_CLIENT_SECRET", "test-secret".into()),
        ("SPOTIFY_REDIRECT_URI", REDIRECT.into()),
        ("SPOTIFY_ACCOUNTS_URL", emu.accounts_url().into()),
        ("SPOTIFY_API_URL", emu.api_url()),
        ("SPOTIFY_TIMEOUT_MS", "1000".into()),
        ("FRONTEND_URL", FRONTEND.into()),
        ("TOKEN_ENCRYPTION_KEYS", KEYS.into()),
        ("SESSION_SIGNING_KEY", SIGNING.into()),
        ("PROACTIVE_REFRESH", "false".into()),
        ("APP_ENV", "production".into()),
    ];
    let service = Service::start(&env).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let app = TestApp {
        base: service.base.clone(),
        metrics_base: None,
        http,
        emu,
        store,
        pairs: Vec::new(),
        proxy: None,
        contract: None,
        violations: Violations::default(),
    };
    let alice = app.login("alice").await;

    // The refresh is slow upstream; kill the service while Spotify is answering it.
    app.emu.inject_fault(Fault::slow(FaultTarget::Token, Duration::from_millis(700))).unwrap();
    let before = app.emu.counters().total.token_refresh_token;
    let pending = {
        let (http, url, cookie) = (app.http.clone(), app.url("/api/auth/spotify/token"), alice.session.clone());
        tokio::spawn(async move { http.get(url).header("Cookie", cookie).send().await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.emu.counters().total.token_refresh_token == before {
        assert!(Instant::now() < deadline, "the refresh never reached Spotify");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.kill();
    assert!(pending.await.unwrap().is_err(), "the request died with the process");

    // After a restart the stored tokens are whole and the user still gets a token: the
    // still-valid one without waiting out the dead instance's lease, then, once that lease has
    // lapsed, a refreshed one.
    let restarted = Service::start(&env).await;
    let token_of_alice = || async {
        let resp = app
            .http
            .get(format!("{}/api/auth/spotify/token", restarted.base))
            .header("Cookie", &alice.session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(app.spotify_user_of(body["accessToken"].as_str().unwrap()).await, "alice");
    };
    let started = Instant::now();
    token_of_alice().await;
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    let metrics =
        || async { app.http.get(format!("{}/metrics", restarted.base)).send().await.unwrap().text().await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = metrics().await;
        if metrics.contains("spotauth_token_refreshes_total{outcome=\"ok\"} 1") {
            break metrics;
        }
        assert!(Instant::now() < deadline, "never refreshed after the lease lapsed: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        token_of_alice().await;
    };
    assert!(metrics.contains("# TYPE spotauth_token_lease_waits counter"), "{metrics}");
}
