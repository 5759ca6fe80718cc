//! Housekeeping: the data lifecycle. Deletes ended sessions and lapsed login attempts after
//! their retention, so neither the user agents and IP addresses of old sessions nor abandoned
//! logins pile up, and the Spotify tokens of users without a live session for the token
//! retention.

use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::service::{AuthError, AuthService, Housekeeping};

use crate::tasks::Task;

/// How often a pass runs (plus up to 20 % jitter). Every instance runs it; the deletes are
/// idempotent, so two instances at once only repeat each other's work.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the background task.
pub fn spawn(service: Arc<AuthService>, interval: Duration) -> Task {
    spawn_reporting(service, interval, Arc::new(|_| {}))
}

/// What a pass did (or why it failed), for whoever counts them (metrics).
pub type Report = Arc<dyn Fn(&Result<Housekeeping, AuthError>) + Send + Sync>;

/// [`spawn`], telling `report` about every pass.
pub fn spawn_reporting(service: Arc<AuthService>, interval: Duration, report: Report) -> Task {
    Task::every(interval, move || {
        let (service, report) = (service.clone(), report.clone());
        async move {
            let pass = service.housekeeping().await;
            report(&pass);
            match pass {
                Ok(done) if done.sessions + done.login_flows + done.disconnected_users > 0 => {
                    tracing::info!(
                        sessions = done.sessions,
                        login_flows = done.login_flows,
                        disconnected_users = done.disconnected_users,
                        "housekeeping pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping pass failed"),
            }
        }
    })
}
