//! Rate limits (the request-side extractor is [`crate::web::Throttled`]) on the endpoints anyone can reach without a session (login, callback) and on
//! session refresh: a budget per client ([`ClientKey`]: an IPv4 address or an IPv6 /64) and a
//! ceiling for the whole instance, both GCRA through `governor`. Limits are per instance: the
//! database is the only shared engine, and counting requests there would turn a flood into
//! database writes. The flood's lasting effect, rows, is bounded across instances by the
//! domain's pending-login limits instead.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use spotauth_domain::login::ClientKey;

/// `RATE_LIMIT_*`: the budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `RATE_LIMITS`: off only where a proxy in front already limits.
    pub enabled: bool,
    /// Requests one client may make at once.
    pub per_client_burst: u32,
    /// Requests one client may make per minute once its burst is spent.
    pub per_client_per_minute: u32,
    /// Requests the instance takes at once from everyone.
    pub global_burst: u32,
    /// Requests the instance takes per second from everyone once that burst is spent.
    pub global_per_second: u32,
}

impl Default for RateLimits {
    /// A real page never meets these (a login is two requests, a refresh one an hour); a flood
    /// from one address meets them within its first second.
    fn default() -> Self {
        RateLimits {
            enabled: true,
            per_client_burst: 30,
            per_client_per_minute: 60,
            global_burst: 300,
            global_per_second: 50,
        }
    }
}

/// The limiters of one instance.
pub struct Throttle {
    per_client: Option<DefaultKeyedRateLimiter<ClientKey>>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("clients", &self.per_client.as_ref().map(|l| l.len())).finish()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Throttle {
    /// The limiters for `limits` (none when they are turned off).
    pub fn new(limits: RateLimits) -> Self {
        let on = limits.enabled;
        let per_client = on.then(|| {
            let quota =
                Quota::per_minute(nonzero(limits.per_client_per_minute)).allow_burst(nonzero(limits.per_client_burst));
            RateLimiter::keyed(quota)
        });
        let global = on.then(|| {
            let quota = Quota::per_second(nonzero(limits.global_per_second)).allow_burst(nonzero(limits.global_burst));
            RateLimiter::direct(quota)
        });
        Throttle { per_client, global, clock: DefaultClock::default() }
    }

    /// Takes one request of `client`'s budget and the instance's, or says how long to wait. The
    /// client's own budget is checked first, so one flooding client does not spend everyone's.
    pub fn check(&self, client: &ClientKey) -> Result<(), Duration> {
        let now = self.clock.now();
        if let Some(limiter) = &self.per_client {
            limiter.check_key(client).map_err(|wait| wait.wait_time_from(now))?;
        }
        if let Some(limiter) = &self.global {
            limiter.check().map_err(|wait| wait.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Forgets clients whose budget is full again, so memory follows the clients of the last
    /// minute or so, not every address ever seen. Run periodically.
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many clients are remembered.
    pub fn clients(&self) -> usize {
        self.per_client.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::from_ip(s.parse().unwrap())
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limits = RateLimits { per_client_burst: 3, ..RateLimits::default() };
        let throttle = Throttle::new(limits);
        for _ in 0..3 {
            assert!(throttle.check(&key("203.0.113.5")).is_ok());
        }
        let wait = throttle.check(&key("203.0.113.5")).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(throttle.check(&key("203.0.113.6")).is_ok(), "another client has its own budget");
        assert_eq!(throttle.clients(), 2);
    }

    #[test]
    fn the_global_ceiling_holds_across_clients_and_off_means_off() {
        let limits = RateLimits { global_burst: 5, global_per_second: 1, ..RateLimits::default() };
        let throttle = Throttle::new(limits);
        let passed = (0..20).filter(|i| throttle.check(&key(&format!("198.51.100.{i}"))).is_ok()).count();
        assert_eq!(passed, 5);
        let off = Throttle::new(RateLimits { enabled: false, per_client_burst: 1, ..RateLimits::default() });
        assert!((0..100).all(|_| off.check(&key("203.0.113.5")).is_ok()));
    }
}
