//! `/metrics`: parsed by an independent Prometheus text parser; the request, Spotify, refresh,
//! pool and housekeeping families move as the service works.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{Fault, FaultTarget};

use crate::common::*;

/// Every sample of the exposition, parsed by an independent OpenMetrics parser (strict: the
/// whole text must parse), as `name{label="value",…}` (labels sorted) → value; counters under
/// `<family>_total`, histograms as `<family>_count` and `<family>_sum`.
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    use openmetrics_parser::{MetricNumber, OpenMetricsValue};
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("unparsable ({e}): {text}"));
    let number = |n: &MetricNumber| n.as_f64();
    let mut out = BTreeMap::new();
    for (name, family) in &parsed.families {
        for sample in family.iter_samples() {
            let set = sample.get_labelset().unwrap();
            let mut labels: Vec<String> = set.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            labels.sort();
            let labels = labels.join(",");
            match &sample.value {
                OpenMetricsValue::Counter(c) => {
                    out.insert(format!("{name}_total{{{labels}}}"), number(&c.value));
                }
                OpenMetricsValue::Histogram(h) => {
                    out.insert(format!("{name}_count{{{labels}}}"), h.count.unwrap_or(0) as f64);
                    out.insert(format!("{name}_sum{{{labels}}}"), h.sum.as_ref().map_or(0.0, number));
                }
                OpenMetricsValue::Gauge(v) | OpenMetricsValue::Unknown(v) => {
                    out.insert(format!("{name}{{{labels}}}"), number(v));
                }
                other => panic!("unexpected sample {other:?}"),
            }
        }
    }
    assert!(out.len() > 20, "{text}");
    out
}

fn at(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_families_move_with_logins_refreshes_and_429s() {
    // Access tokens near expiry at once: every token request refreshes upstream.
    let app = spawn(Options { access_token_lifetime: Duration::from_secs(60), ..Options::default() }).await;
    let before = scrape(&app).await;
    let alice = app.login("alice").await;
    assert_eq!(app.get(&alice, "/api/users/me").await.status(), StatusCode::OK);
    assert_eq!(app.get(&alice, "/api/auth/spotify/token").await.status(), StatusCode::OK);
    let sessions: Value = app.get(&alice, "/api/users/me/sessions").await.json().await.unwrap();
    let id = sessions["items"][0]["id"].as_str().unwrap().to_owned();
    let other = app.login("alice").await;
    let others: Value = app.get(&other, "/api/users/me/sessions").await.json().await.unwrap();
    let other_id = others["items"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].clone();
    assert_ne!(other_id, id.as_str());
    let path = format!("/api/users/me/sessions/{}", other_id.as_str().unwrap());
    assert_eq!(app.delete(&alice, &path).await.status(), StatusCode::NO_CONTENT);
    // A quota 429 from the Web API (a login's profile read): counted with its reason; then, once
    // its 1-s backoff is over, a burst 429 from the token endpoint (no reason) with a long wait.
    app.emu.inject_fault(Fault::quota_exceeded(FaultTarget::Me, 1)).unwrap();
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "bob", false).await;
    assert_eq!(error_redirect(&app.callback(&query, Some(&login_cookie)).await), "spotify_rate_limited");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.emu.inject_fault(Fault::rate_limited(FaultTarget::Token, 120)).unwrap();
    let limited = app.get(&alice, "/api/auth/spotify/token").await;
    assert_eq!(limited.status(), StatusCode::OK, "the still-valid token is served meanwhile");
    let after = scrape(&app).await;

    let me = r#"spotauth_http_requests_total{method="GET",route="/api/users/me",status="200"}"#;
    assert_eq!(at(&after, me) - at(&before, me), 1.0, "{after:#?}");
    let ended = r#"spotauth_http_requests_total{method="DELETE",route="/api/users/me/sessions/{id}",status="204"}"#;
    assert_eq!(
        at(&after, ended),
        1.0,
        "by route template, never the raw path: {:#?}",
        after.keys().filter(|k| k.starts_with("spotauth_http_requests")).collect::<Vec<_>>()
    );
    assert!(after.keys().all(|k| !k.contains(&id)), "no session id in a label");
    let timed = r#"spotauth_http_request_duration_seconds_count{method="GET",route="/api/users/me"}"#;
    assert!(at(&after, timed) >= 1.0, "{after:#?}");

    let token_ok = r#"spotauth_spotify_requests_total{endpoint="POST /api/token",outcome="2xx"}"#;
    assert!(at(&after, token_ok) - at(&before, token_ok) >= 3.0, "two code exchanges and a refresh: {after:#?}");
    let profile = r#"spotauth_spotify_requests_total{endpoint="GET /me",outcome="2xx"}"#;
    assert!(at(&after, profile) >= 2.0);
    let quota = r#"spotauth_spotify_rate_limited_total{endpoint="GET /me",reason="QUOTA_EXCEEDED"}"#;
    assert_eq!(at(&after, quota), 1.0, "{after:#?}");
    let burst = r#"spotauth_spotify_rate_limited_total{endpoint="POST /api/token",reason="none"}"#;
    assert_eq!(at(&after, burst), 1.0, "{after:#?}");
    let waited = r#"spotauth_spotify_retry_after_seconds_sum{endpoint="POST /api/token"}"#;
    assert_eq!(at(&after, waited), 120.0);
    let refreshed = r#"spotauth_token_refreshes_total{outcome="ok"}"#;
    assert!(at(&after, refreshed) - at(&before, refreshed) >= 1.0);
    let rate_limited = r#"spotauth_token_refreshes_total{outcome="rate_limited"}"#;
    assert_eq!(at(&after, rate_limited), 1.0);
    assert_eq!(at(&after, "spotauth_token_served_stale_total{}"), 1.0, "{after:#?}");
    assert!(at(&after, r#"spotauth_db_pool_connections{state="max"}"#) >= 1.0, "{after:#?}");
    assert!(after.contains_key("spotauth_db_pool_waiting{}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_passes_are_counted() {
    let app = spawn(Options { extra: vec![("HOUSEKEEPING_INTERVAL_SECS", "1")], ..Options::default() }).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let samples = scrape(&app).await;
        let passes = at(&samples, r#"spotauth_background_runs_total{outcome="ok",task="housekeeping"}"#);
        let rooms = at(&samples, r#"spotauth_background_runs_total{outcome="ok",task="room"}"#);
        if passes >= 1.0 && rooms >= 1.0 {
            assert!(
                samples.contains_key(r#"spotauth_housekeeping_purged_rows_total{what="sessions"}"#),
                "{samples:#?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no housekeeping pass counted: {samples:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
