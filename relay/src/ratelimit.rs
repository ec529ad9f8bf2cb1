//! A token bucket: the bytes per second one session may move through the relay.
//!
//! Readers and writers of a session's real sockets take from one bucket before they move bytes, so a
//! session over its rate is slowed down (backpressure), never cut off.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct RateLimit {
    /// Bytes per second; 0 means no limit.
    rate: u64,
    /// (tokens available, when they were counted). A std mutex: held for a few instructions, never across
    /// an await.
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(rate: u64) -> RateLimit {
        RateLimit {
            rate,
            bucket: Mutex::new((rate as f64, Instant::now())),
        }
    }

    /// Waits until `bytes` may move. A burst of up to one second's worth passes at once.
    pub async fn take(&self, bytes: usize) {
        if self.rate == 0 {
            return;
        }
        let wait = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, then) = *bucket;
            let refilled = (tokens + now.duration_since(then).as_secs_f64() * self.rate as f64)
                .min(self.rate as f64);
            let left = refilled - bytes as f64;
            *bucket = (left, now);
            if left >= 0.0 {
                None
            } else {
                Some(Duration::from_secs_f64(-left / self.rate as f64))
            }
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}
