//! Load shedding: at most `max_concurrent_requests` calls run at once in a server; a call beyond
//! that is refused at once with RESOURCE_EXHAUSTED (reason `OVERLOADED`; clients may retry
//! after a backoff, but the gateway does not retry it at once, so an overload is not multiplied)
//! instead of queueing without bound: memory stays bounded by the limit, not by the offered load.
//! Health checks are never shed, so an overloaded pod is not also restarted.

use crate::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::body::Body;

/// Paths that are never shed.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// The layer; one per server, so its limit holds across all connections.
#[derive(Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
}

impl LoadShedLayer {
    pub fn new(max_concurrent_requests: usize) -> Self {
        LoadShedLayer {
            permits: Arc::new(Semaphore::new(max_concurrent_requests.max(1))),
        }
    }
}

impl<S> tower::Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B> tower::Service<http::Request<B>> for LoadShed<S>
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
        let permit = if request.uri().path().starts_with(HEALTH_PREFIX) {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::warn!(path = %request.uri().path(), "at capacity: call shed");
                    let status = crate::status::with_reason(
                        tonic::Code::ResourceExhausted,
                        "OVERLOADED",
                        "the service is at capacity; retry shortly",
                    );
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            }
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}
