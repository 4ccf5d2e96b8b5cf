//! A TCP proxy that a test puts between a service and PostgreSQL or RabbitMQ to cut, restore
//! and delay connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct State {
    /// Cancelled to cut every open connection; replaced on restore.
    connections: CancellationToken,
    cut: bool,
    delay: Duration,
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
                let Ok((mut inbound, _)) = accepted else {
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
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
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
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
    }
}
