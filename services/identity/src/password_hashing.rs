//! Password hashing (Argon2id, PHC strings) on a fixed set of threads of its own, each with its
//! own working memory, allocated once.
//!
//! Each hash takes about 19 MiB of memory and a core for tens of milliseconds. Allocated afresh
//! for every hash (as the argon2 crate does), that memory stayed behind in the allocator's
//! arenas, more of them the more threads hashed: a burst of sign-ups left the process at over
//! 600 MiB (found by the benchmark; freeing it between hashes does not help: the allocator
//! rarely reuses a freed 64-byte-aligned block of that size). Here at most [`threads`] hashes
//! run at once, each on a hashing thread that keeps its memory for the next one, and the rest
//! wait their turn: the memory is bounded by the threads (19 MiB each, once they have hashed),
//! not by the burst. A one-off hash at start-up ([`Memory::Fresh`]) does not keep it.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
                    let Ok(job) = job else {
                        return;
                    };
                    job();
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

fn queue(job: Job) -> Result<(), String> {
    let queue = QUEUE
        .lock()
        .map_err(|_| "the password-hashing queue is broken".to_string())?;
    queue
        .send(job)
        .map_err(|_| "the password-hashing threads have stopped".to_string())
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
    queue(job)?;
    answered
        .await
        .map_err(|_| "a password hash failed".to_string())
}

thread_local! {
    /// This thread's Argon2 working memory, kept from one hash to the next.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The memory a hash works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// The hashing thread's own, kept for the next hash: for the hashes of requests.
    Kept,
    /// Allocated for this hash and freed after it: for a one-off hash at start-up, so an idle
    /// process holds none.
    Fresh,
}

/// Runs `hash` with `blocks` Argon2 memory blocks, zeroed: this thread's own, or fresh ones.
fn with_memory<T>(kind: Memory, blocks: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
    if kind == Memory::Fresh {
        return hash(&mut vec![Block::default(); blocks]);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() == blocks {
            memory.fill(Block::default());
        } else {
            *memory = vec![Block::default(); blocks];
        }
        hash(&mut memory)
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password` with the default
/// parameters and a random salt, in `memory`. Call it on a hashing thread ([`run`]).
pub fn hash(password: &[u8], memory: Memory) -> Result<String, String> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    getrandom::fill(&mut salt).map_err(|error| format!("no randomness for a salt: {error}"))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(memory, params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, &salt, &mut output, blocks)
    })
    .map_err(|error| format!("cannot hash a password: {error}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|error| format!("cannot write the parameters: {error}"))?,
        salt: Some(Salt::new(&salt).map_err(|error| format!("salt: {error}"))?),
        hash: Some(Output::new(&output).map_err(|error| format!("output: {error}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc` (a PHC string of any Argon2 variant and parameters); false
/// for a string that is not one. Call it on a hashing thread ([`run`]).
pub fn verify(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut output = vec![0u8; expected.len()];
    let hashed = with_memory(Memory::Kept, blocks, |memory| {
        argon2.hash_password_into_with_memory(password, salt.as_ref(), &mut output, memory)
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&output).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        let ours = hash(b"correct horse battery", Memory::Kept).expect("hashed");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        assert!(verify(b"correct horse battery", &ours));
        assert!(!verify(b"correct horse battery!", &ours));
        let theirs = Argon2::default()
            .hash_password(b"another one")
            .expect("hashed")
            .to_string();
        assert!(verify(b"another one", &theirs));
        assert!(!verify(b"another", &theirs));
        // Other parameters (an older or stronger setting) are read from the string.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).expect("params"),
        )
        .hash_password(b"light")
        .expect("hashed")
        .to_string();
        assert!(verify(b"light", &light));
        assert!(!verify(b"light", "not a phc string"));
        assert_ne!(
            hash(b"same", Memory::Kept).expect("a"),
            hash(b"same", Memory::Fresh).expect("b"),
            "salted"
        );
        assert!(verify(
            b"same",
            &hash(b"same", Memory::Fresh).expect("fresh")
        ));
    }

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
