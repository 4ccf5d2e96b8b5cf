//! Password hashing (Argon2id) on a fixed set of threads of its own.
//!
//! Each hash takes about 19 MiB of memory and a core for tens of milliseconds. Run on tokio's
//! blocking pool (up to 512 threads), every thread that had hashed once kept its 19 MiB in its own
//! allocator arena: a burst of sign-ups left the process at over 600 MiB (found by the benchmark).
//! Here at most [`threads`] hashes run at once, each thread reuses its own memory, and the rest
//! wait their turn in the queue: the memory is bounded by the threads, not by the burst.

use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

type Job = Box<dyn FnOnce() + Send>;

static QUEUE: LazyLock<Mutex<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = std::sync::Arc::new(Mutex::new(receiver));
    for n in 0..threads() {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("password-hashing-{n}"))
            .spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a password-hashing thread");
        }
    }
    Mutex::new(sender)
});

/// How many hashes may run at once: the cores, at most four.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// Runs `work` (a hash or a verification) on a hashing thread and waits for its result. A
/// `work` that panics answers an error; the thread goes on.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        if let Ok(result) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            let _ = answer.send(result);
        }
    });
    QUEUE
        .lock()
        .map_err(|_| "the password-hashing queue is broken".to_string())?
        .send(job)
        .map_err(|_| "the password-hashing threads have stopped".to_string())?;
    answered
        .await
        .map_err(|_| "a password hash failed".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_hashing_threads_and_a_panic_is_an_error() {
        let name = run(|| std::thread::current().name().map(String::from))
            .await
            .expect("an answer");
        assert!(name.is_some_and(|name| name.starts_with("password-hashing-")));
        let failed = run(|| -> u32 { panic!("a broken hash") }).await;
        assert!(failed.is_err());
        // The threads are still there after a panic.
        let tasks: Vec<_> = (0..8u32)
            .map(|n| tokio::spawn(run(move || n * 2)))
            .collect();
        let mut values = Vec::new();
        for task in tasks {
            values.push(task.await.expect("joined").expect("answer"));
        }
        assert_eq!(values, (0..8).map(|n| n * 2).collect::<Vec<_>>());
    }
}
