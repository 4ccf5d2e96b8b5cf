//! `jamaa-bench`: the platform's paths measured against the physical limits, in the same run.
//!
//! ```text
//! jamaa-bench [--duration 5s] [--warmup 1s] [--clients 16] [--connections 4]
//!             [--backend postgres|sqlite] [--seed 10000] [--signers 800] [--residents 100000] [--large] [--only a,b]
//!             [--json PATH] [--stats-interval SECONDS]
//!             [--target http://host:50051 --target-http http://host:8080 [--target-pid PID]
//!              [--requests-db URL] [--notification-db URL]
//!              [--platform-email E] [--platform-password P]]
//! ```
//!
//! Without `--target` it starts the all-in-one as a child process on free ports (PostgreSQL +
//! RabbitMQ, fresh databases and a private exchange; or SQLite + in-process bus) and a bare
//! tonic echo server as another; the load runs in this process. See `docs/performance.md`.

mod alone;
mod limits;
mod load;
mod process;
mod report;
mod scenarios;
mod world;

use std::sync::Arc;
use std::time::Duration;

use jamaa_settings::{DatabaseSettings, SecretString};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::load::Measured;
use crate::process::{ChildProcess, memory};
use crate::report::{Judgement, ProcessMemory, Report, Row};
use crate::world::{Backend, Credentials, OwnStack, StackOptions, World};

struct Args {
    duration: Duration,
    warmup: Duration,
    clients: usize,
    connections: usize,
    backend: Backend,
    seed: i64,
    signers: usize,
    residents: usize,
    large: bool,
    only: Option<Vec<String>>,
    json: Option<String>,
    stats_interval: Option<u64>,
    target: Option<String>,
    target_http: Option<String>,
    target_pid: Option<u32>,
    requests_db: Option<String>,
    notification_db: Option<String>,
    platform_email: String,
    platform_password: String,
}

const USAGE: &str = "usage: jamaa-bench [--duration 5s] [--warmup 1s] [--clients 16] \
[--connections 4] [--backend postgres|sqlite] [--seed 10000] [--signers 800] [--residents 100000] [--large] [--only a,b] \
[--json PATH] [--stats-interval S] [--target URL --target-http URL [--target-pid PID] \
[--requests-db URL] [--notification-db URL] [--platform-email E] [--platform-password P]]";

fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => anyhow::bail!("unknown unit {other} in {text}"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut parsed = Args {
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        clients: 16,
        connections: 4,
        backend: Backend::Postgres,
        seed: 10_000,
        signers: 800,
        residents: 100_000,
        large: false,
        only: None,
        json: None,
        stats_interval: None,
        target: None,
        target_http: None,
        target_pid: None,
        requests_db: None,
        notification_db: None,
        platform_email: "platform@jamaa.local".into(),
        platform_password: "platform-admin-change-me".into(),
    };
    while let Some(flag) = args.next() {
        if flag == "--large" {
            parsed.large = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--duration" => parsed.duration = parse_duration(&value)?,
            "--warmup" => parsed.warmup = parse_duration(&value)?,
            "--clients" => parsed.clients = value.parse()?,
            "--connections" => parsed.connections = value.parse()?,
            "--backend" => {
                parsed.backend = match value.as_str() {
                    "postgres" => Backend::Postgres,
                    "sqlite" => Backend::Sqlite,
                    other => anyhow::bail!("unknown backend {other}"),
                }
            }
            "--seed" => parsed.seed = value.parse()?,
            "--signers" => parsed.signers = value.parse()?,
            "--residents" => parsed.residents = value.parse()?,
            "--only" => parsed.only = Some(value.split(',').map(String::from).collect()),
            "--json" => parsed.json = Some(value),
            "--stats-interval" => parsed.stats_interval = Some(value.parse()?),
            "--target" => parsed.target = Some(value),
            "--target-http" => parsed.target_http = Some(value),
            "--target-pid" => parsed.target_pid = Some(value.parse()?),
            "--requests-db" => parsed.requests_db = Some(value),
            "--notification-db" => parsed.notification_db = Some(value),
            "--platform-email" => parsed.platform_email = value,
            "--platform-password" => parsed.platform_password = value,
            other => anyhow::bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    parsed.clients = parsed.clients.max(1);
    Ok(parsed)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.peek().map(String::as_str) {
        Some("serve") => runtime.block_on(world::serve()),
        Some("echo-server") => runtime.block_on(limits::echo_server()),
        _ => runtime.block_on(run(parse_args(args)?)),
    }
}

impl Args {
    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|name| scenario.starts_with(name.as_str())))
    }
}

async fn connect_db(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    Ok(sea_orm::Database::connect(
        sea_orm::ConnectOptions::new(url.to_string())
            .max_connections(max_connections)
            .sqlx_logging(false)
            .to_owned(),
    )
    .await?)
}

/// Waits (up to 60 s) until the service-request outbox is empty, then a moment more, so one
/// scenario's events do not weigh on the next.
async fn settle(
    requests_db: Option<&DatabaseConnection>,
    notification_db: Option<&DatabaseConnection>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    if let Some(db) = requests_db {
        while tokio::time::Instant::now() < deadline {
            if count_rows(
                db,
                "SELECT COUNT(*) AS n FROM outbox_events WHERE sent_at_ms IS NULL",
            )
            .await
                == 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Published is not consumed: wait until the notification service stops processing (its
    // inbox holds still for a second), so one scenario's backlog does not weigh on the next.
    if let Some(db) = notification_db {
        let mut seen = count_rows(db, "SELECT COUNT(*) AS n FROM inbox_events").await;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = count_rows(db, "SELECT COUNT(*) AS n FROM inbox_events").await;
            if now == seen {
                break;
            }
            seen = now;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn count_rows(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .ok()
    .flatten()
    .and_then(|row| row.try_get::<i64>("", "n").ok())
    .unwrap_or(0)
}

struct Run {
    /// The stack's process, read after each scenario.
    stack_pid: Option<u32>,
    rows: Vec<Row>,
    measured: std::collections::HashMap<String, Measured>,
    notes: Vec<String>,
}

impl Run {
    fn add(&mut self, name: &str, kind: &'static str, clients: usize, measured: Measured) {
        eprintln!(
            "  {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            measured.throughput(),
            measured.p(0.5),
            measured.p(0.99),
            measured.errors
        );
        if let Some(error) = &measured.first_error {
            eprintln!("  first error: {error}");
        }
        let mut row = Row::new(name, kind, clients, &measured);
        row.stack_rss_mib = self
            .stack_pid
            .and_then(memory)
            .map(|memory| memory.rss_kib as f64 / 1024.0);
        self.rows.push(row);
        self.measured.insert(name.to_string(), measured);
    }
    fn get(&self, name: &str) -> Option<&Measured> {
        self.measured.get(name).filter(|measured| measured.ops > 0)
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started_at = chrono::Utc::now().to_rfc3339();
    let (clients, warmup, window) = (args.clients, args.warmup, args.duration);
    let stats_interval = args
        .stats_interval
        .unwrap_or(if args.large { 1 } else { 10 });
    eprintln!("jamaa-bench: starting the processes");
    let mut echo = ChildProcess::spawn("echo", "echo-server", &[], Duration::from_secs(30)).await?;
    let echo_url = format!(
        "http://127.0.0.1:{}",
        echo.ready.first().map(String::as_str).unwrap_or("0")
    );

    let mut own = match &args.target {
        Some(_) => None,
        None => Some(
            OwnStack::start(&StackOptions {
                backend: args.backend,
                stats_interval_seconds: stats_interval,
            })
            .await?,
        ),
    };
    let (grpc_url, http_url, stack_pid) = match (&own, &args.target) {
        (Some(own), _) => (
            own.grpc_url.clone(),
            own.http_url.clone(),
            Some(own.process.pid()),
        ),
        (None, Some(target)) => (
            target.clone(),
            args.target_http
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--target needs --target-http"))?,
            args.target_pid,
        ),
        (None, None) => anyhow::bail!("no stack"),
    };
    let channels = world::channels(&grpc_url, args.connections)?;
    world::wait_serving(channels[0].clone(), Duration::from_secs(120)).await?;
    // Idle: once the start-up work (migrations, the platform administrator's password hash)
    // is over.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_stack = stack_pid.and_then(memory);
    let idle_echo = memory(echo.pid());

    let requests_db_url = own
        .as_ref()
        .and_then(|own| own.database_urls.get("service_request").cloned())
        .or(args.requests_db.clone());
    let notification_db_url = own
        .as_ref()
        .and_then(|own| own.database_urls.get("notification").cloned())
        .or(args.notification_db.clone());
    let requests_db = match &requests_db_url {
        Some(url) => Some(connect_db(url, 4).await?),
        None => None,
    };
    let notification_db = match &notification_db_url {
        Some(url) => Some(connect_db(url, 2).await?),
        None => None,
    };

    eprintln!("jamaa-bench: preparing a commune and {clients} citizens");
    let world = Arc::new(
        World::prepare(
            channels.clone(),
            http_url,
            &Credentials {
                platform_email: args.platform_email.clone(),
                platform_password: args.platform_password.clone(),
            },
            clients,
        )
        .await?,
    );
    let mut run = Run {
        stack_pid,
        rows: Vec::new(),
        measured: Default::default(),
        notes: Vec::new(),
    };

    // The limits.
    if args.wants("limit.echo") {
        eprintln!("jamaa-bench: limit.echo");
        let echo_channels = world::channels(&echo_url, args.connections)?;
        world::wait_serving(echo_channels[0].clone(), Duration::from_secs(10)).await?;
        let measured = limits::echo(echo_channels, clients, warmup, window).await;
        run.add("limit.echo", "limit", clients, measured);
    }
    let raw_database = match args.backend {
        Backend::Postgres => jamaa_testkit::TestDatabase::create("bench_raw").await,
        Backend::Sqlite => None,
    };
    if args.wants("limit.raw_tx") {
        eprintln!("jamaa-bench: limit.raw_tx");
        let sqlite_dir =
            std::env::temp_dir().join(format!("jamaa-bench-raw-{}", uuid::Uuid::new_v4()));
        let url = match (&raw_database, args.backend) {
            (Some(database), _) => database.url.clone(),
            (None, Backend::Sqlite) => {
                std::fs::create_dir_all(&sqlite_dir)?;
                format!("sqlite://{}/raw.db", sqlite_dir.display())
            }
            (None, Backend::Postgres) => anyhow::bail!("PostgreSQL is not available"),
        };
        // The same pool size as the service's (databases.service_request.max_connections).
        let db = jamaa_db::connect::<jamaa_service_request::storage::Migrator>(&DatabaseSettings {
            url: SecretString::from(url),
            max_connections: 10,
            migrate_on_start: true,
        })
        .await?;
        let measured = limits::raw_transaction(db.clone(), clients, warmup, window).await;
        run.add("limit.raw_tx", "limit", clients, measured);
        let _ = db.close().await;
        let _ = std::fs::remove_dir_all(&sqlite_dir);
    }
    if let Some(database) = raw_database {
        database.drop_database().await;
    }
    let amqp_url = own.as_ref().and_then(|own| own.amqp_url.clone());
    if args.wants("limit.broker") {
        match &amqp_url {
            Some(url) => {
                eprintln!("jamaa-bench: limit.broker");
                let measured = limits::broker_round_trip(url, 32, clients, warmup, window).await?;
                run.add("limit.broker", "limit", clients, measured);
            }
            None => run
                .notes
                .push("limit.broker skipped: the stack does not use RabbitMQ".into()),
        }
    }

    // The platform.
    let filed = scenarios::filed(clients);
    if args.wants("submit.grpc") {
        eprintln!("jamaa-bench: submit.grpc");
        let measured =
            scenarios::submit_grpc(world.clone(), filed.clone(), clients, warmup, window).await;
        run.add("submit.grpc", "scenario", clients, measured);
        settle(requests_db.as_ref(), notification_db.as_ref()).await;
    }
    if args.wants("submit.http") {
        eprintln!("jamaa-bench: submit.http");
        let measured =
            scenarios::submit_http(world.clone(), filed.clone(), clients, warmup, window).await;
        run.add("submit.http", "scenario", clients, measured);
        settle(requests_db.as_ref(), notification_db.as_ref()).await;
    }
    if filed
        .iter()
        .all(|list| list.lock().is_ok_and(|l| l.is_empty()))
    {
        // The reads need requests: file a few.
        let measured = scenarios::submit_grpc(
            world.clone(),
            filed.clone(),
            clients,
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .await;
        eprintln!("  (filed {} requests for the reads)", measured.ops);
        settle(requests_db.as_ref(), notification_db.as_ref()).await;
    }
    if args.wants("read.grpc") {
        eprintln!("jamaa-bench: read.grpc");
        let measured = scenarios::read(world.clone(), filed.clone(), clients, warmup, window).await;
        run.add("read.grpc", "scenario", clients, measured);
    }
    if args.wants("list.citizen") {
        eprintln!("jamaa-bench: list.citizen");
        let measured = scenarios::list(world.clone(), false, 20, clients, warmup, window).await;
        run.add("list.citizen", "scenario", clients, measured);
    }
    if args.wants("petition.burst") {
        eprintln!("jamaa-bench: petition.burst");
        let (measured, counted) =
            scenarios::petition_burst(world.clone(), args.signers, clients).await?;
        run.notes.push(format!(
            "petition.burst: {} residents signed one petition ({} errors) in {:.2} s; the petition counts {counted}",
            measured.ops,
            measured.errors,
            measured.window.as_secs_f64()
        ));
        if counted != measured.ops as i64 {
            anyhow::bail!(
                "petition.burst: {} signatures accepted, the petition counts {counted}",
                measured.ops
            );
        }
        run.add("petition.burst", "scenario", clients, measured);
        settle(requests_db.as_ref(), notification_db.as_ref()).await;
    }
    let mut backlog = None;
    let mut fan_out_growth = None;
    if args.wants("status.change") {
        match (&requests_db, &notification_db) {
            (Some(requests_db), Some(notification_db)) => {
                eprintln!("jamaa-bench: status.change → inbox");
                let lag = scenarios::status_changes(
                    world.clone(),
                    filed.clone(),
                    requests_db.clone(),
                    notification_db.clone(),
                    clients,
                    warmup,
                    window,
                )
                .await?;
                run.add("status.change", "scenario", clients, lag.changes.clone());
                let lag_row = Row::latencies("event.lag", clients, &lag.lag, lag.lag.len());
                eprintln!(
                    "  event.lag: p50 {:.2} ms, p99 {:.2} ms over {} events",
                    lag_row.p50_ms, lag_row.p99_ms, lag_row.ops
                );
                run.rows.push(lag_row);
                run.measured.insert(
                    "event.lag".into(),
                    Measured {
                        ops: lag.lag.len(),
                        errors: 0,
                        first_error: None,
                        window,
                        latency: lag.lag,
                    },
                );
                backlog = Some(lag.backlog);
                settle(Some(requests_db), Some(notification_db)).await;
            }
            _ => run.notes.push(
                "status.change skipped: it reads the lag from the databases \
                 (--requests-db and --notification-db with --target)"
                    .into(),
            ),
        }
    }

    if args.wants("announcement") {
        match &notification_db {
            Some(db) => {
                eprintln!("jamaa-bench: announcement to {} residents", args.residents);
                let fan_out =
                    scenarios::announcement_fan_out(&world, db, stack_pid, args.residents).await?;
                let grown = fan_out.grown_kib as f64 / 1024.0;
                run.notes.push(format!(
                    "announcement: {} residents ({} seeded), {} inbox rows in {:.2} s; the stack's RSS grew {grown:.1} MiB at its peak",
                    fan_out.audience,
                    args.residents,
                    fan_out.rows,
                    fan_out.measured.window.as_secs_f64()
                ));
                if fan_out.rows != fan_out.audience {
                    anyhow::bail!(
                        "announcement: {} inbox rows for {} residents",
                        fan_out.rows,
                        fan_out.audience
                    );
                }
                run.add("announcement", "scenario", 1, fan_out.measured);
                fan_out_growth = Some(grown);
            }
            None => run.notes.push(
                "announcement skipped: it seeds the residents in notification's database \
                 (--notification-db with --target)"
                    .into(),
            ),
        }
    }

    // Statistics and the staff list over many stored requests.
    let mut sizes = vec![("10k", args.seed)];
    if args.large {
        sizes.push(("1m", 1_000_000));
    }
    if args.wants("stats") || args.wants("list.staff") {
        match &requests_db {
            Some(db) => {
                let seeded_service = jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient::new(channels[0].clone())
                    .create_service(world::authorized(
                        jamaa_proto::servicerequest::v1::CreateServiceRequest {
                            service: Some(world::service_definition("seeded")),
                        },
                        &world.admin,
                    ))
                    .await?
                    .into_inner()
                    .service
                    .ok_or_else(|| anyhow::anyhow!("no service in the answer"))?;
                let commune_id = uuid::Uuid::parse_str(&world.commune_id)?;
                let service_id = uuid::Uuid::parse_str(&seeded_service.id)?;
                let mut stored = 0i64;
                for (label, size) in sizes {
                    let seeding = std::time::Instant::now();
                    eprintln!("jamaa-bench: seeding {} requests", size - stored);
                    scenarios::seed(db, commune_id, service_id, &world.commune_code, stored, size - stored)
                        .await?;
                    stored = size;
                    let seeded_in = seeding.elapsed();
                    let rolling = std::time::Instant::now();
                    let deadline = rolling + Duration::from_secs(if size > 100_000 { 1800 } else { 120 });
                    let (mut last_count, mut last_change) = (-1, std::time::Instant::now());
                    loop {
                        let counted = scenarios::counted(&world, "seeded").await;
                        if counted >= size {
                            break;
                        }
                        if counted != last_count {
                            (last_count, last_change) = (counted, std::time::Instant::now());
                        } else if last_change.elapsed() > Duration::from_secs(15) {
                            // A roll under way when the seeding reset the roller kept its
                            // watermark: reset it again.
                            scenarios::restart_statistics(db).await?;
                            last_change = std::time::Instant::now();
                        }
                        if std::time::Instant::now() > deadline {
                            anyhow::bail!("the statistics counted {counted} of the {size} seeded requests in time");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    run.notes.push(format!(
                        "{label}: seeded {size} requests in {:.1} s; the statistics counted them {:.1} s later",
                        seeded_in.as_secs_f64(),
                        rolling.elapsed().as_secs_f64()
                    ));
                    let _ = db
                        .execute_unprepared("ANALYZE requests")
                        .await;
                    if args.wants("stats") {
                        eprintln!("jamaa-bench: stats.{label}");
                        let measured = scenarios::statistics(world.clone(), clients, warmup, window).await;
                        run.add(&format!("stats.{label}"), "scenario", clients, measured);
                    }
                    if args.wants("list.staff") {
                        eprintln!("jamaa-bench: list.staff.{label}");
                        let measured = scenarios::list(world.clone(), true, 50, clients, warmup, window).await;
                        run.add(&format!("list.staff.{label}"), "scenario", clients, measured);
                    }
                }
            }
            None => run.notes.push(
                "stats and list.staff skipped: seeding writes to the database (--requests-db with --target)".into(),
            ),
        }
    }

    // Judgements.
    let mut judgements = Vec::new();
    let throughput = |name: &str| run.get(name).map(Measured::throughput);
    let p = |name: &str, q: f64| run.get(name).map(|measured| measured.p(q));
    if let (Some(submit), Some(limit)) = (throughput("submit.grpc"), throughput("limit.raw_tx")) {
        judgements.push(Judgement::at_least(
            "submit (gRPC) vs raw transaction",
            "throughput(submit.grpc) / throughput(limit.raw_tx)",
            submit / limit,
            0.75,
        ));
    }
    if let (Some(http), Some(grpc)) = (throughput("submit.http"), throughput("submit.grpc")) {
        judgements.push(Judgement::at_least(
            "submit (HTTP) vs submit (gRPC)",
            "throughput(submit.http) / throughput(submit.grpc)",
            http / grpc,
            0.85,
        ));
    }
    if let (Some(read), Some(echo)) = (throughput("read.grpc"), throughput("limit.echo")) {
        judgements.push(Judgement::at_least(
            "read vs raw echo",
            "throughput(read.grpc) / throughput(limit.echo)",
            read / echo,
            0.6,
        ));
    }
    if let (Some(list), Some(echo)) = (throughput("list.citizen"), throughput("limit.echo")) {
        judgements.push(Judgement::info(
            "citizen's list vs raw echo",
            "throughput(list.citizen) / throughput(limit.echo)",
            list / echo,
        ));
    }
    if let (Some(change), Some(limit)) = (throughput("status.change"), throughput("limit.raw_tx")) {
        judgements.push(Judgement::info(
            "status change vs raw transaction",
            "throughput(status.change) / throughput(limit.raw_tx)",
            change / limit,
        ));
    }
    if let (Some(burst), Some(limit)) = (throughput("petition.burst"), throughput("limit.raw_tx")) {
        judgements.push(Judgement::info(
            "petition signatures vs raw transaction",
            "throughput(petition.burst) / throughput(limit.raw_tx)",
            burst / limit,
        ));
    }
    if let (Some(lag), Some(broker)) = (p("event.lag", 0.99), p("limit.broker", 0.99)) {
        judgements.push(Judgement::at_most(
            "event lag vs raw broker round trip",
            "p99(event.lag) / p99(limit.broker)",
            lag / broker,
            10.0,
        ));
    }
    for what in ["stats", "list.staff"] {
        if let (Some(large), Some(small)) = (
            p(&format!("{what}.1m"), 0.5),
            p(&format!("{what}.10k"), 0.5),
        ) {
            judgements.push(Judgement::at_most(
                &format!("{what} at 1M vs at 10k"),
                &format!("p50({what}.1m) / p50({what}.10k)"),
                large / small,
                1.5,
            ));
        }
        if let (Some(large), Some(small)) = (
            p(&format!("{what}.1m"), 0.99),
            p(&format!("{what}.10k"), 0.99),
        ) {
            judgements.push(Judgement::info(
                &format!("{what} at 1M vs at 10k (p99)"),
                &format!("p99({what}.1m) / p99({what}.10k)"),
                large / small,
            ));
        }
    }
    if let Some(grown) = fan_out_growth {
        judgements.push(Judgement {
            what: "announcement: the stack's memory growth (MiB)".into(),
            ratio_of: "peak VmRSS during the fan-out − VmRSS before it".into(),
            ratio: grown,
            target: "<= 64".into(),
            met: grown <= 64.0,
        });
    }
    if let Some(idle) = idle_stack {
        let mib = idle.rss_kib as f64 / 1024.0;
        judgements.push(Judgement {
            what: "idle RSS of the all-in-one (MiB)".into(),
            ratio_of: "VmRSS 3 s after SERVING, before load".into(),
            ratio: mib,
            target: "<= 40".into(),
            met: mib <= 40.0,
        });
    }

    let mut memory_rows = vec![
        ProcessMemory {
            process: "jamaa (all-in-one)".into(),
            pid: stack_pid.unwrap_or(0),
            idle: idle_stack,
            end: stack_pid.and_then(memory),
        },
        ProcessMemory {
            process: "echo server".into(),
            pid: echo.pid(),
            idle: idle_echo,
            end: memory(echo.pid()),
        },
        ProcessMemory {
            process: "load (bench)".into(),
            pid: std::process::id(),
            idle: None,
            end: memory(std::process::id()),
        },
    ];
    if stack_pid.is_none() {
        run.notes
            .push("stack memory not read: give --target-pid with --target".into());
    }

    // Each service alone, as in production, once the all-in-one has stopped (nothing else may
    // consume from the queues meanwhile).
    echo.stop(Duration::from_secs(5));
    if let Some(own) = own.as_mut()
        && args.wants("alone")
    {
        own.process.stop(Duration::from_secs(10));
        match alone::binaries() {
            Some(binaries) => {
                eprintln!("jamaa-bench: each service alone, idle");
                let environment = alone::Environment {
                    database_urls: &own.database_urls,
                    events_url: own.amqp_url.clone().unwrap_or_else(|| "memory://".into()),
                    exchange: own.exchange.clone(),
                    data_dir: &own.data_dir,
                };
                match alone::idle_memory(&binaries, &environment).await {
                    Ok(services) => {
                        for service in services {
                            if let Some(idle) = service.idle {
                                let mib = idle.rss_kib as f64 / 1024.0;
                                judgements.push(Judgement {
                                    what: format!("idle RSS, {} alone (MiB)", service.process),
                                    ratio_of: "VmRSS 2 s after its health check answers".into(),
                                    ratio: mib,
                                    target: "<= 20".into(),
                                    met: mib <= 20.0,
                                });
                            }
                            memory_rows.push(ProcessMemory {
                                process: format!("{} (alone)", service.process),
                                pid: service.pid,
                                idle: service.idle,
                                end: None,
                            });
                        }
                    }
                    Err(error) => run
                        .notes
                        .push(format!("services alone not measured: {error}")),
                }
            }
            None => run.notes.push(
                "services alone not measured: the jamaa-<service> binaries are not beside \
                 jamaa-bench (scripts/bench builds them)"
                    .into(),
            ),
        }
    }
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at,
        machine: machine(),
        backend: match (&args.target, args.backend) {
            (Some(target), _) => format!("target {target}"),
            (None, Backend::Postgres) => "PostgreSQL + RabbitMQ".into(),
            (None, Backend::Sqlite) => "SQLite + in-process bus".into(),
        },
        clients,
        connections: args.connections,
        window_seconds: window.as_secs_f64(),
        rows: run.rows,
        judgements,
        memory: memory_rows,
        backlog,
        notes: run.notes,
    };
    report.print();
    if let Some(path) = &args.json {
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("JSON: {path}");
    }

    if let Some(own) = own {
        own.stop().await;
    }
    Ok(())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(String::from))
        .unwrap_or_default();
    format!("{cores} cores, load {load} at the end")
}
