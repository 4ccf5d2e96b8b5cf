//! Child processes of the benchmark (the stack, the echo server) and their memory.
//!
//! A child is this same binary in another mode (`serve`, `echo-server`): it prints one line
//! `JAMAA_BENCH_READY <fields…>` on stdout when it listens, and stops when its stdin closes (so
//! it never outlives the benchmark). Plain `std::process` and threads: the workspace's tokio has
//! no `process` feature, and the child is measured, not the parent.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

pub const READY: &str = "JAMAA_BENCH_READY";

pub struct ChildProcess {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    /// The words after `JAMAA_BENCH_READY`.
    pub ready: Vec<String>,
}

impl ChildProcess {
    /// Starts `current_exe <mode>` with `env` added, and waits (up to `timeout`) for its ready line.
    pub async fn spawn(
        name: &str,
        mode: &str,
        env: &[(String, String)],
        timeout: Duration,
    ) -> anyhow::Result<ChildProcess> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg(mode)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut ready_tx = Some(ready_tx);
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(READY) {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(rest.split_whitespace().map(String::from).collect());
                    }
                } else {
                    eprintln!("{line}");
                }
            }
        });
        let ready: Vec<String> = match tokio::time::timeout(timeout, ready_rx).await {
            Ok(Ok(ready)) => ready,
            _ => {
                let _ = child.kill();
                anyhow::bail!("{name} did not get ready within {timeout:?}");
            }
        };
        Ok(ChildProcess {
            child,
            stdin,
            ready,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes stdin (the child shuts down) and waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) {
        self.stdin.take();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// VmRSS: resident now (KiB).
    pub rss_kib: u64,
    /// VmHWM: the peak resident size so far (KiB).
    pub peak_kib: u64,
    /// RssAnon: the resident memory that is the process's own (KiB): VmRSS less the mapped
    /// files (the binary's code, shared libraries), which are shared and can be dropped.
    pub anon_kib: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:")?,
    })
}

/// In a child: blocks a thread until stdin closes, then cancels `token`.
pub fn stop_when_stdin_closes(token: tokio_util::sync::CancellationToken) {
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        token.cancel();
    });
}
