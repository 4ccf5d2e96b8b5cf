//! Per-client rate limits at the door: one token bucket per client address and one per bearer
//! token, each refilled continuously at its configured rate per minute with room for a minute's
//! burst. A request that finds its bucket empty is answered 429 with `Retry-After` (the seconds
//! until a token is back) and never reaches the services. Health probes and `/metrics` are not
//! limited.
//!
//! Buckets live in this process: with several gateway replicas each enforces the limit on what
//! it receives (a client spread by the load balancer over n replicas gets up to n times the
//! rate). Tokens are keyed by a hash keyed per process, so neither tokens nor addresses are
//! kept in clear.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::problem::Problem;

/// Buckets kept per limiter before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// One token bucket per key.
pub struct Limiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Limiter {
    /// A limiter of `per_minute` requests a minute per key (a burst of as many).
    pub fn per_minute(per_minute: u32) -> Limiter {
        let capacity = f64::from(per_minute.max(1));
        Limiter {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `key`'s bucket at `now`; when it is empty, how long until one is back.
    pub fn take(&self, key: u64, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            let (capacity, per_second) = (self.capacity, self.per_second);
            buckets.retain(|_, bucket| refilled(*bucket, now, capacity, per_second) < capacity);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let tokens = refilled(*bucket, now, self.capacity, self.per_second);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                updated: now,
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

fn refilled(bucket: Bucket, now: Instant, capacity: f64, per_second: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

/// The gateway's limits: per client address and per bearer token (either may be off).
pub struct RateLimits {
    per_address: Option<Limiter>,
    per_token: Option<Limiter>,
    trust_forwarded_for: bool,
    keys: RandomState,
}

impl RateLimits {
    /// Limits of `per_address` and `per_token` requests a minute; 0 turns one off.
    pub fn new(per_address: u32, per_token: u32, trust_forwarded_for: bool) -> RateLimits {
        RateLimits {
            per_address: (per_address > 0).then(|| Limiter::per_minute(per_address)),
            per_token: (per_token > 0).then(|| Limiter::per_minute(per_token)),
            trust_forwarded_for,
            keys: RandomState::new(),
        }
    }

    /// Whether a request from `address` with `authorization` may pass at `now`; else how long
    /// to wait.
    fn check(
        &self,
        address: Option<&str>,
        authorization: Option<&[u8]>,
        now: Instant,
    ) -> Result<(), Duration> {
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            limiter.take(self.keys.hash_one(("address", address)), now)?;
        }
        if let (Some(limiter), Some(token)) = (&self.per_token, authorization) {
            limiter.take(self.keys.hash_one(("token", token)), now)?;
        }
        Ok(())
    }
}

/// Paths never limited: probes and scrapes.
fn exempt(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/livez" | crate::METRICS_PATH
    )
}

/// The middleware: 429 with `Retry-After` over a limit; otherwise the request goes on.
pub async fn enforce(
    State(limits): State<Arc<RateLimits>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let address =
        crate::routes::client_address(request.headers(), peer, limits.trust_forwarded_for);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match limits.check(address.as_deref(), authorization, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX);
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::ResourceExhausted,
                "RATE_LIMITED",
                format!("too many requests from this client; try again in {seconds} s"),
            );
            problem.retry_after_seconds = NonZeroU32::new(seconds);
            problem.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = Limiter::per_minute(60);
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limiter.take(1, start).is_ok());
        }
        let wait = limiter.take(1, start).expect_err("the burst is spent");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(limiter.take(2, start).is_ok());
        // One per second comes back.
        assert!(limiter.take(1, start + Duration::from_millis(1100)).is_ok());
        assert!(
            limiter
                .take(1, start + Duration::from_millis(1100))
                .is_err()
        );
    }

    #[test]
    fn addresses_and_tokens_are_limited_apart() {
        let limits = RateLimits::new(2, 1, false);
        let now = Instant::now();
        assert!(
            limits
                .check(Some("10.0.0.1"), Some(b"Bearer a"), now)
                .is_ok()
        );
        // The token's one a minute is spent, from any address.
        assert!(
            limits
                .check(Some("10.0.0.2"), Some(b"Bearer a"), now)
                .is_err()
        );
        assert!(
            limits
                .check(Some("10.0.0.1"), Some(b"Bearer b"), now)
                .is_ok()
        );
        // The address's two are spent, whatever the token.
        assert!(limits.check(Some("10.0.0.1"), None, now).is_err());
        let off = RateLimits::new(0, 0, false);
        for _ in 0..1000 {
            assert!(off.check(Some("10.0.0.1"), Some(b"Bearer a"), now).is_ok());
        }
    }
}
