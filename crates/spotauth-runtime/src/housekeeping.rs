//! Housekeeping: the data lifecycle. Deletes ended sessions and lapsed login attempts after
//! their retention, so neither the user agents and IP addresses of old sessions nor abandoned
//! logins pile up, and the Spotify tokens of users without a live session for the token
//! retention.

use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::service::AuthService;

use crate::tasks::Task;

/// How often a pass runs (plus up to 20 % jitter). Every instance runs it; the deletes are
/// idempotent, so two instances at once only repeat each other's work.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the background task.
pub fn spawn(service: Arc<AuthService>, interval: Duration) -> Task {
    Task::every(interval, move || {
        let service = service.clone();
        async move {
            match service.housekeeping().await {
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
