//! A TCP proxy that a test puts between a service and PostgreSQL or RabbitMQ to cut, restore
//! and delay connections, or slow down what flows through the open ones.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct State {
    /// Cancelled to cut every open connection; replaced on restore.
    connections: CancellationToken,
    cut: bool,
    delay: Duration,
    /// How long each chunk sent to the target is held (every connection, open or new).
    latency: Duration,
}

/// Forwards `127.0.0.1:<port>` to a target address until dropped.
pub struct FaultProxy {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Starts a proxy to `target` (e.g. `127.0.0.1:5672`) on a free local port.
    pub async fn start(target: &str) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            connections: CancellationToken::new(),
            cut: false,
            delay: Duration::ZERO,
            latency: Duration::ZERO,
        }));
        let stop = CancellationToken::new();
        let target = target.to_string();
        let (loop_state, loop_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = loop_stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else {
                    continue;
                };
                let (cut, token, delay) = match loop_state.lock() {
                    Ok(state) => (state.cut, state.connections.clone(), state.delay),
                    Err(_) => break,
                };
                if cut {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let state = loop_state.clone();
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (inbound_read, mut inbound_write) = inbound.into_split();
                    let (mut outbound_read, outbound_write) = outbound.into_split();
                    let up = to_target(inbound_read, outbound_write, state);
                    let down = tokio::io::copy(&mut outbound_read, &mut inbound_write);
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = async { tokio::try_join!(up, down) } => {}
                    }
                });
            }
        });
        Ok(FaultProxy {
            address,
            state,
            stop,
        })
    }

    /// `host:port` to connect to instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.cut = true;
            state.connections.cancel();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.cut = false;
            state.connections = CancellationToken::new();
        }
    }

    /// Delays the start of every new connection by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.delay = delay;
        }
    }

    /// Holds everything sent to the target for `latency` before passing it on, on the open
    /// connections too (a slow database or broker); `Duration::ZERO` ends it.
    pub fn set_latency(&self, latency: Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.latency = latency;
        }
    }
}

/// Forwards what the client sends to the target, each chunk held for the current latency.
async fn to_target(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        let latency = state.lock().map(|state| state.latency).unwrap_or_default();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        to.write_all(&buffer[..read]).await?;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
    }
}
