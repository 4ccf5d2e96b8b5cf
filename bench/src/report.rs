//! The table and the JSON of a run.

use serde::Serialize;

use crate::load::Measured;
use crate::process::Memory;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// `limit` or `scenario`.
    pub kind: &'static str,
    pub clients: usize,
    pub ops: u64,
    pub errors: u64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The stack's resident memory right after the scenario (MiB), when it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Row {
    pub fn new(name: &str, kind: &'static str, clients: usize, measured: &Measured) -> Row {
        Row {
            name: name.to_string(),
            kind,
            clients,
            ops: measured.ops,
            errors: measured.errors,
            throughput_per_s: measured.throughput(),
            p50_ms: measured.p(0.5),
            p99_ms: measured.p(0.99),
            p999_ms: measured.p(0.999),
            max_ms: measured.latency.max() as f64 / 1000.0,
            stack_rss_mib: None,
            first_error: measured.first_error.clone(),
        }
    }

    /// A row of latencies only (the event lag), no throughput.
    pub fn latencies(
        name: &str,
        clients: usize,
        latency: &hdrhistogram::Histogram<u64>,
        ops: u64,
    ) -> Row {
        let q = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
        Row {
            name: name.to_string(),
            kind: "scenario",
            clients,
            ops,
            errors: 0,
            throughput_per_s: 0.0,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: latency.max() as f64 / 1000.0,
            stack_rss_mib: None,
            first_error: None,
        }
    }
}

/// A scenario judged against its limit.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub what: String,
    /// e.g. `throughput(submit.grpc) / throughput(limit.raw_tx)`.
    pub ratio_of: String,
    pub ratio: f64,
    /// e.g. `>= 0.75`.
    pub target: String,
    pub met: bool,
}

impl Judgement {
    pub fn at_least(what: &str, ratio_of: &str, ratio: f64, target: f64) -> Judgement {
        Judgement {
            what: what.into(),
            ratio_of: ratio_of.into(),
            ratio,
            target: format!(">= {target}"),
            met: ratio >= target,
        }
    }
    pub fn at_most(what: &str, ratio_of: &str, ratio: f64, target: f64) -> Judgement {
        Judgement {
            what: what.into(),
            ratio_of: ratio_of.into(),
            ratio,
            target: format!("<= {target}"),
            met: ratio <= target,
        }
    }
    pub fn info(what: &str, ratio_of: &str, ratio: f64) -> Judgement {
        Judgement {
            what: what.into(),
            ratio_of: ratio_of.into(),
            ratio,
            target: "-".into(),
            met: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessMemory {
    pub process: String,
    pub pid: u32,
    /// After start-up, before any load.
    pub idle: Option<Memory>,
    /// At the end of the run (peak_kib: the high-water mark over the whole run).
    pub end: Option<Memory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub started_at: String,
    pub machine: String,
    pub backend: String,
    pub clients: usize,
    pub connections: usize,
    pub window_seconds: f64,
    pub rows: Vec<Row>,
    pub judgements: Vec<Judgement>,
    pub memory: Vec<ProcessMemory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<crate::scenarios::Backlog>,
    pub notes: Vec<String>,
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

impl Report {
    pub fn print(&self) {
        println!();
        println!(
            "jamaa-bench — {} — {} clients over {} connections, {:.1} s per scenario — {}",
            self.backend, self.clients, self.connections, self.window_seconds, self.machine
        );
        println!(
            "{:<22} {:>8} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>12}",
            "scenario",
            "ops",
            "errors",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "stack RSS"
        );
        for row in &self.rows {
            let throughput = if row.throughput_per_s > 0.0 {
                format!("{:.0}", row.throughput_per_s)
            } else {
                "-".into()
            };
            println!(
                "{:<22} {:>8} {:>7} {:>11} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>12}",
                row.name,
                row.ops,
                row.errors,
                throughput,
                row.p50_ms,
                row.p99_ms,
                row.p999_ms,
                row.max_ms,
                row.stack_rss_mib
                    .map(|mib| format!("{mib:.1} MiB"))
                    .unwrap_or_else(|| "-".into())
            );
            if let Some(error) = &row.first_error {
                println!("{:<22} first error: {error}", "");
            }
        }
        println!();
        println!(
            "{:<46} {:<58} {:>8} {:>8} {:>5}",
            "ratio", "of", "value", "target", "met"
        );
        for judgement in &self.judgements {
            println!(
                "{:<46} {:<58} {:>8.3} {:>8} {:>5}",
                judgement.what,
                judgement.ratio_of,
                judgement.ratio,
                judgement.target,
                if judgement.target == "-" {
                    "-"
                } else if judgement.met {
                    "yes"
                } else {
                    "NO"
                }
            );
        }
        println!();
        println!(
            "{:<30} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "process", "pid", "idle RSS", "idle anon", "end RSS", "peak RSS"
        );
        let show = |memory: Option<crate::process::Memory>,
                    field: fn(&crate::process::Memory) -> u64| {
            memory
                .map(|memory| mib(field(&memory)))
                .unwrap_or_else(|| "-".into())
        };
        for process in &self.memory {
            println!(
                "{:<30} {:>8} {:>10} {:>10} {:>10} {:>10}",
                process.process,
                process.pid,
                show(process.idle, |m| m.rss_kib),
                show(process.idle, |m| m.anon_kib),
                show(process.end, |m| m.rss_kib),
                show(process.end, |m| m.peak_kib),
            );
        }
        println!(
            "(MiB; RSS = VmRSS, anon = RssAnon: RSS less the binary's code and other file pages, \
             which processes share and the kernel can drop)"
        );
        if let Some(backlog) = &self.backlog {
            println!();
            println!(
                "event backlog: max {} waiting, {} at the end of the load, drained {} ms after it, \
                 {} never arrived; lag p99 first half {:.1} ms, second half {:.1} ms → {}",
                backlog.max,
                backlog.at_end,
                backlog.drain_ms,
                backlog.missing,
                backlog.first_half_p99_ms,
                backlog.second_half_p99_ms,
                if backlog.bounded {
                    "bounded"
                } else {
                    "NOT bounded"
                }
            );
        }
        for note in &self.notes {
            println!("note: {note}");
        }
    }
}
