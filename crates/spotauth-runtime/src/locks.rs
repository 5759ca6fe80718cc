//! Per-user async locks for single flight, removed when nobody holds or waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{UserLock as HeldLock, UserLocks};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A map of per-user async mutexes: the `UserLocks` port.
#[derive(Debug, Default)]
pub struct LockMap {
    inner: Arc<Mutex<HashMap<UserId, Arc<AsyncMutex<()>>>>>,
}

/// A held per-user lock; dropping it releases the lock and forgets it when unused.
#[derive(Debug)]
struct UserLock {
    user: UserId,
    guard: Option<OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<UserId, Arc<AsyncMutex<()>>>>>,
}

impl LockMap {
    /// Locks `user`; `true` in the second field when another caller held it first (a join).
    async fn lock_user(&self, user: UserId) -> (UserLock, bool) {
        let mutex = {
            let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(user).or_default().clone()
        };
        let (guard, waited) = match mutex.clone().try_lock_owned() {
            Ok(g) => (g, false),
            Err(_) => (mutex.lock_owned().await, true),
        };
        (UserLock { user, guard: Some(guard), map: self.inner.clone() }, waited)
    }

    /// How many users have a lock entry (held or awaited).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[async_trait]
impl UserLocks for LockMap {
    async fn lock(&self, user: UserId) -> HeldLock {
        let (guard, joined) = self.lock_user(user).await;
        HeldLock { joined, guard: Box::new(guard) }
    }
}

impl Drop for UserLock {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody is waiting, so forget it.
        if map.get(&self.user).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_caller_waits_and_entries_are_cleaned_up() {
        let map = Arc::new(LockMap::default());
        let u = UserId::from_bytes([1; 16]);
        let first = map.lock(u).await;
        assert!(!first.joined);
        let m2 = map.clone();
        let waiter = tokio::spawn(async move { m2.lock(u).await.joined });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert!(waiter.await.unwrap(), "the second caller joined");
        assert_eq!(map.len(), 0);
    }
}
