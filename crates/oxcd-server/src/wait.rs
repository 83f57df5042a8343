//! Pending proposals: each waits, keyed by its request ID, for the applier to report its result.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Sharded so that proposing tasks and the applier rarely contend on one lock.
const SHARDS: usize = 16;

pub struct WaitMap<T> {
    shards: Vec<Mutex<HashMap<u64, oneshot::Sender<T>>>>,
}

impl<T> Default for WaitMap<T> {
    fn default() -> Self {
        WaitMap {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl<T> WaitMap<T> {
    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, oneshot::Sender<T>>> {
        &self.shards[(id as usize) % SHARDS]
    }

    pub fn register(&self, id: u64) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        self.shard(id).lock().insert(id, tx);
        rx
    }

    /// Delivers a result; a no-op when nobody waits (the proposal came from another member, or
    /// its caller gave up).
    pub fn trigger(&self, id: u64, value: T) {
        if let Some(tx) = self.shard(id).lock().remove(&id) {
            let _ = tx.send(value);
        }
    }

    pub fn cancel(&self, id: u64) {
        self.shard(id).lock().remove(&id);
    }

    #[cfg(test)]
    pub fn is_registered(&self, id: u64) -> bool {
        self.shard(id).lock().contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_reaches_the_registered_waiter_only() {
        let w: WaitMap<u32> = WaitMap::default();
        let rx = w.register(7);
        w.trigger(8, 1);
        w.trigger(7, 2);
        assert_eq!(rx.await.unwrap(), 2);
        assert!(!w.is_registered(7));
    }
}
