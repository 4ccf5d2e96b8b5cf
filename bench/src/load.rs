//! The load generator: N clients in closed loops for a fixed time, latencies in HDR histograms.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// What one run measured.
#[derive(Clone)]
pub struct Measured {
    /// Calls that started inside the measurement window and succeeded.
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    pub latency: Histogram<u64>,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64().max(1e-9)
    }
    pub fn p(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `op(client, iteration)` in `clients` closed loops: `warmup` unrecorded, then `window`
/// recorded (every call that starts inside the window counts).
pub async fn closed_loop<F, Fut>(
    clients: usize,
    warmup: Duration,
    window: Duration,
    op: F,
) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now() + warmup;
    let end = start + window;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram();
            let (mut ops, mut errors, mut first_error) = (0u64, 0u64, None);
            let mut iteration = 0u64;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let result = op(client, iteration).await;
                iteration += 1;
                if began < start {
                    continue;
                }
                match result {
                    Ok(()) => {
                        ops += 1;
                        latency.saturating_record(began.elapsed().as_micros() as u64);
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latency, ops, errors, first_error)
        }));
    }
    let mut measured = Measured {
        ops: 0,
        errors: 0,
        first_error: None,
        window,
        latency: histogram(),
    };
    for task in tasks {
        if let Ok((latency, ops, errors, first_error)) = task.await {
            measured
                .latency
                .add(&latency)
                .expect("same histogram bounds");
            measured.ops += ops;
            measured.errors += errors;
            if measured.first_error.is_none() {
                measured.first_error = first_error;
            }
        }
    }
    measured
}
