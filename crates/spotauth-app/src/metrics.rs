//! The service's metrics, kept with `prometheus-client` and served at `/metrics` (OpenMetrics
//! text): requests by route template and status with latency; calls to Spotify by endpoint and
//! outcome with latency, 429 reasons and `Retry-After`; token refreshes; the connection pool;
//! housekeeping; the session cache. Figures that live elsewhere (the refresh counters, the
//! cache, the pool) are read at each scrape by a collector, not copied.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use spotauth_cache::SessionCache;
use spotauth_runtime::RefreshMetrics;
use spotauth_spotify::{CallObserver, SpotifyCall};
use spotauth_sql::StoreHealth;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpotifyLabels {
    endpoint: &'static str,
    /// `2xx`, `4xx`…, or why no answer came: `timeout`, `connect`, `other`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    endpoint: &'static str,
    /// Spotify's `reason` (`QUOTA_EXCEEDED`), or `none` for a plain burst limit.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurgedLabels {
    what: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_seconds() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

fn spotify_seconds() -> Histogram {
    // 5 ms … ~20 s (the client's timeout is below).
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

fn retry_after_seconds() -> Histogram {
    Histogram::new([1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 86_400.0])
}

/// The metrics of one instance.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Histograms<RouteLabels>,
    spotify_calls: Family<SpotifyLabels, Counter>,
    spotify_seconds: Histograms<EndpointLabels>,
    spotify_rate_limited: Family<RateLimitLabels, Counter>,
    spotify_retry_after: Histograms<EndpointLabels>,
    task_runs: Family<TaskLabels, Counter>,
    purged: Family<PurgedLabels, Counter>,
    /// One shared copy of each route template seen, so that counting a request allocates no
    /// label (the templates are the router's, a fixed few).
    routes: RwLock<HashMap<String, Arc<str>>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What the collector reads at each scrape.
struct Snapshots {
    refresh: Arc<RefreshMetrics>,
    cache: Option<Arc<SessionCache>>,
    store: Arc<dyn StoreHealth>,
}

impl fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshots").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every family, registered; the refresh counters, the cache and the pool read at scrape.
    pub fn new(refresh: Arc<RefreshMetrics>, cache: Option<Arc<SessionCache>>, store: Arc<dyn StoreHealth>) -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(request_seconds),
            spotify_calls: Family::default(),
            spotify_seconds: Family::new_with_constructor(spotify_seconds),
            spotify_rate_limited: Family::default(),
            spotify_retry_after: Family::new_with_constructor(retry_after_seconds),
            task_runs: Family::default(),
            purged: Family::default(),
            routes: RwLock::default(),
            registry: Registry::default(),
        };
        registry.register(
            "spotauth_http_requests",
            "HTTP requests answered, by method, route template and status.",
            m.http_requests.clone(),
        );
        registry.register(
            "spotauth_http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head), by method and route template.",
            m.http_seconds.clone(),
        );
        registry.register(
            "spotauth_spotify_requests",
            "Calls to Spotify, by endpoint and outcome (status class, or timeout/connect/other).",
            m.spotify_calls.clone(),
        );
        registry.register(
            "spotauth_spotify_request_duration_seconds",
            "Time of a call to Spotify, by endpoint.",
            m.spotify_seconds.clone(),
        );
        registry.register(
            "spotauth_spotify_rate_limited",
            "429 answers from Spotify, by endpoint and reason (QUOTA_EXCEEDED, or none for a burst).",
            m.spotify_rate_limited.clone(),
        );
        registry.register(
            "spotauth_spotify_retry_after_seconds",
            "The Retry-After of Spotify's 429 answers, by endpoint.",
            m.spotify_retry_after.clone(),
        );
        registry.register(
            "spotauth_background_runs",
            "Passes of the background tasks (housekeeping, room, journal purge), by outcome.",
            m.task_runs.clone(),
        );
        registry.register(
            "spotauth_housekeeping_purged_rows",
            "Rows deleted by housekeeping, by what they were.",
            m.purged.clone(),
        );
        registry.register_collector(Box::new(Snapshots { refresh, cache, store }));
        Metrics { registry, ..m }
    }

    /// One answered request. `route` is the matched template (`/api/users/me/sessions/{id}`),
    /// never the raw path, so the label set stays small.
    pub fn request(&self, method: &actix_web::http::Method, route: Option<&str>, status: u16, took: Duration) {
        let method = method_name(method);
        let route = self.route_label(route.unwrap_or("unmatched"));
        self.http_seconds.get_or_create(&RouteLabels { method, route: route.clone() }).observe(took.as_secs_f64());
        self.http_requests.get_or_create(&HttpLabels { method, route, status }).inc();
    }

    fn route_label(&self, route: &str) -> Arc<str> {
        if let Some(known) = self.routes.read().unwrap_or_else(PoisonError::into_inner).get(route) {
            return known.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.entry(route.to_owned()).or_insert_with(|| route.into()).clone()
    }

    /// One background pass (`task`: `housekeeping`, `room`, `journal_purge`).
    pub fn task_run(&self, task: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.task_runs.get_or_create(&TaskLabels { task, outcome }).inc();
    }

    /// Rows a housekeeping pass deleted.
    pub fn purged(&self, what: &'static str, rows: u64) {
        self.purged.get_or_create(&PurgedLabels { what }).inc_by(rows);
    }

    /// A background pass that deletes one kind of row: the pass, and the rows when it worked.
    pub fn purge_pass<E>(&self, task: &'static str, what: &'static str, pass: &Result<u64, E>) {
        self.task_run(task, pass.is_ok());
        if let Ok(rows) = pass {
            self.purged(what, *rows);
        }
    }

    /// The exposition (OpenMetrics text).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn method_name(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        _ => "other",
    }
}

impl CallObserver for Metrics {
    fn observe(&self, call: &SpotifyCall<'_>) {
        let outcome = match (call.status, call.failure) {
            (_, Some(failure)) => failure,
            (Some(s), None) => match s {
                200..=299 => "2xx",
                300..=399 => "3xx",
                429 => "429",
                400..=499 => "4xx",
                _ => "5xx",
            },
            (None, None) => "other",
        };
        let endpoint = call.endpoint;
        self.spotify_calls.get_or_create(&SpotifyLabels { endpoint, outcome }).inc();
        self.spotify_seconds.get_or_create(&EndpointLabels { endpoint }).observe(call.elapsed.as_secs_f64());
        if let Some((reason, retry_after)) = call.rate_limit {
            let reason = reason.unwrap_or("none").to_owned();
            self.spotify_rate_limited.get_or_create(&RateLimitLabels { endpoint, reason }).inc();
            self.spotify_retry_after.get_or_create(&EndpointLabels { endpoint }).observe(retry_after.as_secs_f64());
        }
    }
}

/// A family of constant counters or gauges with one label each (`(label value, sample)`).
fn family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    label: &'static str,
    samples: &[(&'static str, u64)],
) -> fmt::Result {
    let mut descriptor = encoder.encode_descriptor(name, help, None, kind)?;
    for (value, sample) in samples {
        let labels = [(label, *value)];
        let metric = descriptor.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*sample).encode(metric)?,
            _ => ConstGauge::new(i64::try_from(*sample).unwrap_or(i64::MAX)).encode(metric)?,
        }
    }
    Ok(())
}

/// One constant metric without labels.
fn single(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, kind: MetricType, sample: u64) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(sample).encode(metric),
        _ => ConstGauge::new(i64::try_from(sample).unwrap_or(i64::MAX)).encode(metric),
    }
}

impl Collector for Snapshots {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        use MetricType::{Counter as C, Gauge as G};
        let m = self.refresh.snapshot();
        family(
            &mut e,
            "spotauth_token_refreshes",
            "Upstream Spotify token refreshes by outcome.",
            C,
            "outcome",
            &[
                ("ok", m.refreshed),
                ("reauth_required", m.reauth),
                ("rate_limited", m.rate_limited),
                ("unavailable", m.unavailable),
                ("error", m.failed),
            ],
        )?;
        let refresh_singles: [(&str, &str, u64); 5] = [
            (
                "spotauth_token_single_flight_joins",
                "Requests that waited for another request's refresh in this process instead of refreshing.",
                m.single_flight_joins,
            ),
            ("spotauth_token_lease_waits", "Polls while another instance held a user's refresh lease.", m.lease_waits),
            (
                "spotauth_token_served_stale",
                "Still-valid old tokens served because Spotify could not refresh them.",
                m.served_stale,
            ),
            (
                "spotauth_token_backoff_blocked",
                "Refreshes not attempted because the client id was backing off after a 429.",
                m.backoff_blocked,
            ),
            ("spotauth_proactive_refresh_runs", "Proactive refresh passes completed.", m.proactive_runs),
        ];
        for (name, help, value) in refresh_singles {
            single(&mut e, name, help, C, value)?;
        }
        single(
            &mut e,
            "spotauth_spotify_backoff_until_seconds",
            "End of the current Spotify rate-limit backoff known to this instance (Unix seconds; 0 if none).",
            G,
            u64::try_from(m.backoff_until_ms / 1000).unwrap_or(0),
        )?;
        let pool = self.store.pool_usage();
        family(
            &mut e,
            "spotauth_db_pool_connections",
            "Database connections of this instance's pool (SQLite: its readers), by state.",
            G,
            "state",
            &[("open", pool.open as u64), ("idle", pool.idle as u64), ("max", pool.max as u64)],
        )?;
        single(
            &mut e,
            "spotauth_db_pool_waiting",
            "Callers waiting for a database connection.",
            G,
            pool.waiting as u64,
        )?;
        if let Some(cache) = &self.cache {
            let s = cache.stats();
            family(
                &mut e,
                "spotauth_session_cache_reads",
                "Session reads of the request path, by where they were answered.",
                C,
                "from",
                &[("memory", s.hits), ("database", s.misses)],
            )?;
            single(&mut e, "spotauth_session_cache_sessions", "Sessions held in memory.", G, s.sessions)?;
            single(
                &mut e,
                "spotauth_session_cache_forgotten",
                "Users whose cached sessions were dropped after a write (here or on another instance).",
                C,
                s.forgotten,
            )?;
            single(
                &mut e,
                "spotauth_session_cache_journal_failures",
                "Reads of the change journal that failed (the database unreachable).",
                C,
                s.journal_failures,
            )?;
            if let Some(age) = s.journal_age_ms {
                let encoder = e.encode_descriptor(
                    "spotauth_session_cache_journal_age_seconds",
                    "Since the last successful read of the change journal started: how far behind other instances' writes cached sessions may be (served only while below SESSION_CACHE_STALENESS_MS).",
                    None,
                    G,
                )?;
                ConstGauge::new(age as f64 / 1000.0).encode(encoder)?;
            }
            single(
                &mut e,
                "spotauth_session_cache_touches_pending",
                "Last-active times queued and not yet written.",
                G,
                s.touches_pending,
            )?;
        }
        Ok(())
    }
}
