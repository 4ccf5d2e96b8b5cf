//! Channels from one service to another that balance across every ready replica.
//!
//! A Kubernetes ClusterIP Service balances connections, not calls: an HTTP/2 client would stay on
//! one pod. [`balanced_channel`] instead resolves every address behind each URL (a headless
//! Service gives one per pod; a comma-separated list names replicas explicitly), asks each
//! replica's `grpc.health.v1` every second, and balances calls (power of two choices) across the
//! replicas that answer SERVING. A replica that turns NOT_SERVING (its shutdown began) or stops
//! answering leaves the set; it comes back when it serves again.

use crate::BoxFuture;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::StartError;

/// How often replicas are resolved and asked for their health.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);
/// How long a call waits for a serving replica when there is none.
const NO_REPLICA_WAIT: Duration = Duration::from_secs(3);

/// A channel balancing across the SERVING replicas behind `urls` (comma-separated `http://` URLs),
/// kept up to date until `shutdown`.
pub fn balanced_channel(
    setting: &str,
    urls: &str,
    shutdown: CancellationToken,
) -> Result<BalancedChannel, StartError> {
    let targets = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| parse_target(setting, url))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err(StartError::Other(format!("{setting} names no URL")));
    }
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let ready_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let balanced = BalancedChannel {
        channel,
        ready: ready_count.clone(),
    };
    tokio::spawn(async move {
        let mut ready: HashSet<SocketAddr> = HashSet::new();
        let mut health_channels: HashMap<SocketAddr, Channel> = HashMap::new();
        loop {
            let serving = serving_replicas(&targets, &mut health_channels).await;
            for added in serving.difference(&ready) {
                let endpoint = replica_endpoint(*added);
                if changes
                    .send(Change::Insert(*added, endpoint))
                    .await
                    .is_err()
                {
                    return;
                }
                tracing::info!(replica = %added, "replica serving: added");
            }
            for removed in ready.difference(&serving) {
                if changes.send(Change::Remove(*removed)).await.is_err() {
                    return;
                }
                tracing::info!(replica = %removed, "replica not serving: removed");
            }
            ready = serving;
            ready_count.store(ready.len(), std::sync::atomic::Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    });
    Ok(balanced)
}

/// `(host, port)` of an `http://host:port` URL.
fn parse_target(setting: &str, url: &str) -> Result<(String, u16), StartError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|error| StartError::Other(format!("{setting} {url:?} is not a URL: {error}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(StartError::Other(format!(
            "{setting} {url:?}: service-to-service calls use http:// (TLS belongs to the mesh)"
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| StartError::Other(format!("{setting} {url:?} has no host")))?;
    Ok((
        host.trim_matches(['[', ']']).to_string(),
        uri.port_u16().unwrap_or(80),
    ))
}

fn replica_endpoint(address: SocketAddr) -> Endpoint {
    Endpoint::from(
        http::Uri::builder()
            .scheme("http")
            .authority(address.to_string())
            .path_and_query("/")
            .build()
            .unwrap_or_default(),
    )
    .connect_timeout(Duration::from_secs(2))
    .tcp_nodelay(true)
}

/// Every resolved address behind `targets` whose health check answers SERVING. Health channels
/// are kept per address (one connection each), and dropped with addresses that disappear.
async fn serving_replicas(
    targets: &[(String, u16)],
    health_channels: &mut HashMap<SocketAddr, Channel>,
) -> HashSet<SocketAddr> {
    let mut addresses = HashSet::new();
    for (host, port) in targets {
        match tokio::net::lookup_host((host.as_str(), *port)).await {
            Ok(resolved) => addresses.extend(resolved),
            Err(error) => tracing::warn!(%host, %error, "cannot resolve a service"),
        }
    }
    health_channels.retain(|address, _| addresses.contains(address));
    let checks = addresses.into_iter().map(|address| {
        let channel = health_channels
            .entry(address)
            .or_insert_with(|| replica_endpoint(address).connect_lazy())
            .clone();
        async move {
            let mut client = HealthClient::new(channel);
            let check = client.check(HealthCheckRequest {
                service: String::new(),
            });
            let status = tokio::time::timeout(CHECK_TIMEOUT, check).await;
            let serving = matches!(status, Ok(Ok(response))
                if response.get_ref().status == ServingStatus::Serving as i32);
            serving.then_some(address)
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Whether a failed call may succeed if tried again: UNAVAILABLE (no replica, a replica shutting
/// down, overload), or a broken connection — a status that did not come from a service (no
/// Jamaa `ErrorInfo`) with code UNKNOWN, INTERNAL or CANCELLED. A service's own INTERNAL always
/// carries an `ErrorInfo` and is not retried.
pub fn is_retryable(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    match status.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled => {
            status.get_error_details().error_info().is_none()
        }
        _ => false,
    }
}

/// A [`Channel`] that answers UNAVAILABLE at once when no replica is serving, instead of waiting
/// for one until the call's deadline.
#[derive(Clone)]
pub struct BalancedChannel {
    channel: Channel,
    ready: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BalancedChannel {
    /// How many replicas are serving now.
    pub fn ready_replicas(&self) -> usize {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for BalancedChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if self.ready_replicas() > 0 {
            return Box::pin(tower::Service::call(&mut self.channel, request));
        }
        // None serving right now (starting up, or all restarting): wait briefly for one, then
        // answer UNAVAILABLE rather than hold the call until its deadline.
        let (channel, ready) = (self.channel.clone(), self.ready.clone());
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + NO_REPLICA_WAIT;
            while ready.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                if tokio::time::Instant::now() >= deadline {
                    let status = crate::status::with_reason(
                        tonic::Code::Unavailable,
                        "NO_REPLICA_SERVING",
                        "the service is unavailable right now; please retry",
                    );
                    return Ok(status.into_http());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tower::ServiceExt::oneshot(channel, request).await
        })
    }
}
