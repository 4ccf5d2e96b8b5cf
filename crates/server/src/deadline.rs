//! Deadlines: every call ends by the earlier of the caller's deadline (the `grpc-timeout`
//! header) and the server's own limit (`server.request_timeout_seconds`). A call past it is
//! answered DEADLINE_EXCEEDED (reason `DEADLINE_EXCEEDED`) and its handler is dropped where it
//! stands, so the work it began stops (an open database transaction rolls back, nothing is
//! published). tonic's own server timeout answers CANCELLED instead, which tells a caller the
//! wrong thing; this layer replaces it.

use crate::BoxFuture;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;

/// tokio's timers fire on millisecond ticks.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// The layer, with the server's own limit.
#[derive(Clone)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        DeadlineLayer { limit }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let asked = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        // tonic's own timeout wraps every layer and starts its clock on the caller's deadline
        // just before this one; it answers CANCELLED. This one must fire first, so its clock
        // starts here (not when the future is first polled, which a busy server may delay) and
        // it ends `TIMER_RESOLUTION` early, so both never fall in different ticks the wrong way.
        let started = tokio::time::Instant::now();
        let deadline = match asked {
            Some(asked) if asked <= self.limit => asked.saturating_sub(TIMER_RESOLUTION),
            _ => self.limit,
        };
        let path = request.uri().path().to_string();
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(started + deadline, future).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::info!(%path, ?deadline, "the call's deadline passed: its work stops");
                    let status = crate::status::with_reason(
                        tonic::Code::DeadlineExceeded,
                        "DEADLINE_EXCEEDED",
                        "the call did not finish before its deadline",
                    );
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`), per the
/// gRPC over HTTP/2 specification. `None` for anything else (the server's limit then applies).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount.checked_mul(3600)?),
        'M' => Duration::from_secs(amount.checked_mul(60)?),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real tonic server, whose own timeout (CANCELLED) races this layer on every call
    /// with a deadline: 400 calls at once to a handler slower than their deadlines (5–24 ms) are
    /// all answered DEADLINE_EXCEEDED. (The race was lost rarely, under a loaded machine — once
    /// in a full CI run; this test fails at once without the layer, not reliably on the race.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_callers_deadline_is_answered_deadline_exceeded_never_tonics_cancelled() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let slow = tower::ServiceBuilder::new().map_future(|future| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            future.await
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(DeadlineLayer::new(Duration::from_secs(30)))
                .layer(slow)
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        // Not tonic's channel: it gives up at the deadline itself (CANCELLED), hiding the server.
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let origin: http::Uri = format!("http://{address}").parse().expect("an origin");
        let calls = (0..400).map(|n| {
            let mut client = HealthClient::with_origin(http.clone(), origin.clone());
            async move {
                let mut request = tonic::Request::new(HealthCheckRequest::default());
                request.set_timeout(Duration::from_millis(5 + n % 20));
                client.check(request).await
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        let codes: Vec<tonic::Code> = answers
            .iter()
            .map(|answer| answer.as_ref().expect_err("past its deadline").code())
            .collect();
        let wrong = codes
            .iter()
            .filter(|code| **code != tonic::Code::DeadlineExceeded)
            .count();
        assert_eq!(wrong, 0, "{codes:?}");
    }

    #[test]
    fn grpc_timeouts_parse_by_the_specification() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789m", "5x", "-5m", "5 m", "٥m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
