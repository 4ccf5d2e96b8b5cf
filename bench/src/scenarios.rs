//! The platform's paths under load: submit (gRPC and HTTP), read, list, status change → inbox
//! (event lag and backlog), statistics and the staff list over many stored requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use hdrhistogram::Histogram;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::servicerequest::v1::RequestStatus;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde::Serialize;

use crate::load::{Measured, closed_loop, histogram};
use crate::world::{World, authorized};

/// The requests each client filed: (id, status the benchmark last moved it to).
pub type Filed = Arc<Vec<Mutex<Vec<(String, RequestStatus)>>>>;

pub fn filed(clients: usize) -> Filed {
    Arc::new((0..clients).map(|_| Mutex::new(Vec::new())).collect())
}

fn remember(filed: &Filed, client: usize, id: String) {
    if let Some(list) = filed.get(client)
        && let Ok(mut list) = list.lock()
    {
        list.push((id, RequestStatus::Submitted));
    }
}

pub async fn submit_grpc(
    world: Arc<World>,
    filed: Filed,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    closed_loop(clients, warmup, window, move |client, _| {
        let (world, filed) = (world.clone(), filed.clone());
        async move {
            let token = &world.citizens[client % world.citizens.len()].1;
            let answer = world
                .requests(client)
                .submit_request(authorized(
                    requests::SubmitRequestRequest {
                        request_id: uuid::Uuid::now_v7().to_string(),
                        service_id: world.service_id.clone(),
                        description: "Pothole on the main road".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            let id = answer.request.map(|request| request.id).unwrap_or_default();
            remember(&filed, client, id);
            Ok(())
        }
    })
    .await
}

pub async fn submit_http(
    world: Arc<World>,
    filed: Filed,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    closed_loop(clients, warmup, window, move |client, _| {
        let (world, filed) = (world.clone(), filed.clone());
        async move {
            let token = &world.citizens[client % world.citizens.len()].1;
            let body = serde_json::json!({
                "requestId": uuid::Uuid::now_v7().to_string(),
                "serviceId": world.service_id,
                "description": "Pothole on the main road",
            })
            .to_string();
            let (status, body) = world
                .http_call(http::Method::POST, "/v1/requests", token, Some(body))
                .await?;
            if status != 200 {
                return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            let json: serde_json::Value =
                serde_json::from_slice(&body).map_err(|error| error.to_string())?;
            let id = json["request"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            remember(&filed, client, id);
            Ok(())
        }
    })
    .await
}

fn pick(filed: &Filed, client: usize, iteration: u64) -> Option<String> {
    let list = filed.get(client)?.lock().ok()?;
    if list.is_empty() {
        return None;
    }
    Some(list[(iteration as usize * 7919) % list.len()].0.clone())
}

/// GetRequest of one of the client's own requests.
pub async fn read(
    world: Arc<World>,
    filed: Filed,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    closed_loop(clients, warmup, window, move |client, iteration| {
        let (world, filed) = (world.clone(), filed.clone());
        async move {
            let id = pick(&filed, client, iteration).ok_or("no request filed")?;
            let token = &world.citizens[client % world.citizens.len()].1;
            world
                .requests(client)
                .get_request(authorized(requests::GetRequestRequest { id }, token))
                .await
                .map(|_| ())
                .map_err(|status| status.to_string())
        }
    })
    .await
}

/// ListRequests as `token_of(client)`: the first page of `page_size`.
pub async fn list(
    world: Arc<World>,
    as_staff: bool,
    page_size: i32,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    closed_loop(clients, warmup, window, move |client, _| {
        let world = world.clone();
        async move {
            let token = if as_staff {
                world.officer.clone()
            } else {
                world.citizens[client % world.citizens.len()].1.clone()
            };
            let answer = world
                .requests(client)
                .list_requests(authorized(
                    requests::ListRequestsRequest {
                        page_size,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            if answer.requests.is_empty() {
                return Err("an empty list".into());
            }
            Ok(())
        }
    })
    .await
}

/// The public statistics of the commune over the last twelve months.
pub async fn statistics(
    world: Arc<World>,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    closed_loop(clients, warmup, window, move |client, _| {
        let world = world.clone();
        async move {
            let (start_month, end_month) = last_twelve_months();
            world
                .requests(client)
                .get_request_statistics(requests::GetRequestStatisticsRequest {
                    commune_code: world.commune_code.clone(),
                    start_month,
                    end_month,
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|status| status.to_string())
        }
    })
    .await
}

fn last_twelve_months() -> (String, String) {
    let today = Utc::now().date_naive();
    let (mut year, mut month) = (today.year(), today.month() as i32 - 11);
    if month <= 0 {
        month += 12;
        year -= 1;
    }
    (
        format!("{year:04}-{month:02}"),
        format!("{:04}-{:02}", today.year(), today.month()),
    )
}

/// The requests the commune's statistics count in the service `service_code`.
pub async fn counted(world: &World, service_code: &str) -> i64 {
    let (start_month, end_month) = last_twelve_months();
    world
        .requests(0)
        .get_request_statistics(requests::GetRequestStatisticsRequest {
            commune_code: world.commune_code.clone(),
            service_code: service_code.to_string(),
            start_month,
            end_month,
            ..Default::default()
        })
        .await
        .map(|answer| {
            answer
                .into_inner()
                .rows
                .iter()
                .filter(|row| row.service_code.is_empty())
                .map(|row| row.received)
                .sum()
        })
        .unwrap_or(0)
}

/// The next step of the benchmark's workflow loop: submitted → received → in progress →
/// resolved → in progress → …
fn next_status(status: RequestStatus) -> RequestStatus {
    match status {
        RequestStatus::Submitted => RequestStatus::Received,
        RequestStatus::Received | RequestStatus::Resolved => RequestStatus::InProgress,
        _ => RequestStatus::Resolved,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    /// Status changes made but not yet in an inbox, sampled every 250 ms.
    pub max: i64,
    pub at_end: i64,
    /// From the end of the load until the last notification arrived.
    pub drain_ms: u64,
    /// Changes without a notification after draining (should be 0).
    pub missing: i64,
    /// Lag p99 over the first and the second half of the run (a growing lag is a growing
    /// backlog).
    pub first_half_p99_ms: f64,
    pub second_half_p99_ms: f64,
    pub bounded: bool,
}

pub struct Lag {
    pub changes: Measured,
    pub lag: Histogram<u64>,
    pub backlog: Backlog,
}

fn raw(backend: DatabaseBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}

async fn notified_since(db: &DatabaseConnection, since: DateTime<Utc>) -> i64 {
    let backend = db.get_database_backend();
    db.query_one_raw(raw(
        backend,
        "SELECT COUNT(DISTINCT event_id) AS n FROM notifications \
         WHERE event_type LIKE '%RequestStatusChanged' AND created_at >= $1",
        vec![since.into()],
    ))
    .await
    .ok()
    .flatten()
    .and_then(|row| row.try_get::<i64>("", "n").ok())
    .unwrap_or(0)
}

/// Status changes by the case officer at full rate; each must reach its citizen's inbox. The
/// lag of each event is measured from the databases: the notification's `created_at` minus the
/// outbox row's `occurred_at_ms`.
pub async fn status_changes(
    world: Arc<World>,
    filed: Filed,
    requests_db: DatabaseConnection,
    notification_db: DatabaseConnection,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Lag> {
    let started = Utc::now();
    let made = Arc::new(AtomicU64::new(0));
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let (made, db, stop) = (made.clone(), notification_db.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let notified = notified_since(&db, started).await;
                samples.push(made.load(Ordering::SeqCst) as i64 - notified);
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            samples
        })
    };
    let counter = made.clone();
    let changes = closed_loop(clients, warmup, window, move |client, iteration| {
        let (world, filed, counter) = (world.clone(), filed.clone(), counter.clone());
        async move {
            let (index, id, to) = {
                let list = filed
                    .get(client)
                    .and_then(|list| list.lock().ok())
                    .ok_or("no list")?;
                if list.is_empty() {
                    return Err("no request filed".into());
                }
                let index = iteration as usize % list.len();
                let (id, status) = &list[index];
                (index, id.clone(), next_status(*status))
            };
            world
                .requests(client)
                .change_request_status(authorized(
                    requests::ChangeRequestStatusRequest {
                        id,
                        status: to as i32,
                        note: "Une équipe est en route.".into(),
                        ..Default::default()
                    },
                    &world.officer,
                ))
                .await
                .map_err(|status| status.to_string())?;
            counter.fetch_add(1, Ordering::SeqCst);
            if let Some(mut list) = filed.get(client).and_then(|list| list.lock().ok()) {
                list[index].1 = to;
            }
            Ok(())
        }
    })
    .await;
    let load_ended = std::time::Instant::now();
    let total = made.load(Ordering::SeqCst) as i64;
    let mut notified = notified_since(&notification_db, started).await;
    let drain_deadline = load_ended + Duration::from_secs(60);
    while notified < total && std::time::Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        notified = notified_since(&notification_db, started).await;
    }
    let drain_ms = load_ended.elapsed().as_millis() as u64;
    sampling.cancel();
    let samples = sampler.await.unwrap_or_default();

    // Lags, joined by event id.
    let since_ms = started.timestamp_millis();
    let occurred: HashMap<uuid::Uuid, i64> = requests_db
        .query_all_raw(raw(
            requests_db.get_database_backend(),
            "SELECT id, occurred_at_ms FROM outbox_events \
             WHERE event_type = 'jamaa.events.v1.RequestStatusChanged' AND occurred_at_ms >= $1",
            vec![since_ms.into()],
        ))
        .await?
        .iter()
        .filter_map(|row| {
            Some((
                row.try_get::<uuid::Uuid>("", "id").ok()?,
                row.try_get::<i64>("", "occurred_at_ms").ok()?,
            ))
        })
        .collect();
    let arrived: Vec<(uuid::Uuid, DateTime<Utc>)> = notification_db
        .query_all_raw(raw(
            notification_db.get_database_backend(),
            "SELECT event_id, MIN(created_at) AS at FROM notifications \
             WHERE event_type LIKE '%RequestStatusChanged' AND created_at >= $1 \
             GROUP BY event_id",
            vec![started.into()],
        ))
        .await?
        .iter()
        .filter_map(|row| {
            Some((
                row.try_get::<uuid::Uuid>("", "event_id").ok()?,
                row.try_get::<DateTime<Utc>>("", "at").ok()?,
            ))
        })
        .collect();
    let mut lags: Vec<(i64, u64)> = arrived
        .iter()
        .filter_map(|(id, at)| {
            let occurred = occurred.get(id)?;
            Some((
                *occurred,
                ((at.timestamp_micros() - occurred * 1000).max(1)) as u64,
            ))
        })
        .collect();
    lags.sort_unstable();
    let mut lag = histogram();
    for (_, micros) in &lags {
        lag.saturating_record(*micros);
    }
    let half_p99 = |part: &[(i64, u64)]| {
        let mut h = histogram();
        for (_, micros) in part {
            h.saturating_record(*micros);
        }
        h.value_at_quantile(0.99) as f64 / 1000.0
    };
    let (first, second) = lags.split_at(lags.len() / 2);
    let (first_half_p99_ms, second_half_p99_ms) = (half_p99(first), half_p99(second));
    let at_end = samples.last().copied().unwrap_or(0);
    let max = samples.iter().copied().max().unwrap_or(0);
    // Bounded: the consumer keeps pace — never more than a second of changes waits (at the
    // end of the load or at any sample), the last ones arrive within a second of it, and the
    // lag does not grow from the first half of the run to the second.
    let per_second = changes.throughput().max(1.0) as i64;
    let allowed = per_second.max(4 * clients as i64);
    let bounded = at_end <= allowed
        && max <= allowed
        && drain_ms <= 1000
        && second_half_p99_ms <= 2.0 * first_half_p99_ms + 50.0;
    Ok(Lag {
        changes,
        lag,
        backlog: Backlog {
            max,
            at_end,
            drain_ms,
            missing: total - notified,
            first_half_p99_ms,
            second_half_p99_ms,
            bounded,
        },
    })
}

/// Seeds `count` requests of service `service_id` (code `seeded`) in the commune, directly in
/// the database: filed over the last 330 days (inside the statistics' twelve months), `updated_at` spaced 2 ms apart (the statistics
/// roller reads changes in batches of 20,000 with a 10 s overlap), then asks the roller to
/// start over.
pub async fn seed(
    db: &DatabaseConnection,
    commune_id: uuid::Uuid,
    service_id: uuid::Uuid,
    prefix: &str,
    from: i64,
    count: i64,
) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let chunk = 100_000;
    let mut start = from;
    let end = from + count;
    match backend {
        DatabaseBackend::Postgres => {
            while start < end {
                let stop = (start + chunk).min(end) - 1;
                db.execute_raw(raw(
                    backend,
                    "INSERT INTO requests (id, commune_id, citizen_id, client_request_id, \
                     service_id, service_code, tracking_code, description, attributes, status, \
                     version, created_at, updated_at, service_version, service_kind, urgent, \
                     extended, priority, language) \
                     SELECT gen_random_uuid(), $1, gen_random_uuid(), gen_random_uuid(), $2, \
                     'seeded', $3 || '-SEED-' || g, 'Seeded request', '{}', \
                     CASE g % 3 WHEN 0 THEN 'submitted' WHEN 1 THEN 'received' \
                     ELSE 'in_progress' END, 1, \
                     $4::timestamptz - ($5 - g) * (interval '330 days' / $5), \
                     $4::timestamptz - ($5 - g) * interval '2 milliseconds', \
                     1, 'incident_report', false, false, 'normal', 'fr' \
                     FROM generate_series($6::bigint, $7::bigint) AS g",
                    vec![
                        commune_id.into(),
                        service_id.into(),
                        prefix.into(),
                        now.into(),
                        end.into(),
                        start.into(),
                        stop.into(),
                    ],
                ))
                .await?;
                start = stop + 1;
            }
        }
        _ => {
            use jamaa_service_request::storage::service_request;
            use sea_orm::{EntityTrait, Set};
            while start < end {
                let stop = (start + 500).min(end);
                let rows = (start..stop).map(|g| {
                    let age = end - g;
                    let created = now - chrono::Duration::seconds(330 * 86_400 * age / end);
                    let updated = now - chrono::Duration::milliseconds(2 * age);
                    service_request::ActiveModel {
                        id: Set(uuid::Uuid::now_v7()),
                        commune_id: Set(commune_id),
                        citizen_id: Set(uuid::Uuid::now_v7()),
                        client_request_id: Set(uuid::Uuid::now_v7()),
                        service_id: Set(service_id),
                        service_code: Set("seeded".into()),
                        tracking_code: Set(format!("{prefix}-SEED-{g}")),
                        description: Set("Seeded request".into()),
                        attributes: Set("{}".into()),
                        status: Set("received".into()),
                        version: Set(1),
                        created_at: Set(created),
                        updated_at: Set(updated),
                        service_version: Set(1),
                        service_kind: Set("incident_report".into()),
                        urgent: Set(false),
                        extended: Set(false),
                        priority: Set("normal".into()),
                        language: Set("fr".into()),
                        ..Default::default()
                    }
                });
                service_request::Entity::insert_many(rows)
                    .exec_without_returning(db)
                    .await?;
                start = stop;
            }
        }
    }
    restart_statistics(db).await
}

/// Makes the statistics roller start again from the first request (seeded rows carry past
/// `updated_at` stamps, behind its watermark). A roll under way when this runs writes its own
/// watermark back, so the caller repeats it if the count stalls.
pub async fn restart_statistics(db: &DatabaseConnection) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(raw(
        backend,
        "DELETE FROM stats_cursors WHERE name = $1",
        vec!["request_stats".into()],
    ))
    .await?;
    Ok(())
}

/// A burst of petition signatures: `signers` verified residents (registered, verified at the
/// desk and signed in beforehand, unmeasured) sign one open petition, `clients` at a time, each
/// once, as fast as the platform takes them. Measured from the first signature to the last;
/// the petition's own count must then be `signers` (nothing lost, nothing doubled).
pub async fn petition_burst(
    world: Arc<World>,
    signers: usize,
    clients: usize,
) -> anyhow::Result<(Measured, i64)> {
    use jamaa_proto::participation::v1 as participation;
    use jamaa_proto::participation::v1::participation_service_client::ParticipationServiceClient;

    eprintln!("  preparing {signers} verified residents");
    let tokens = Arc::new(world.verified_residents(signers).await?);
    let agent = &world.citizens[0].1;
    let petition = ParticipationServiceClient::new(world.channel(0))
        .create_petition(authorized(
            participation::CreatePetitionRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                title: "Un parc pour le quartier".into(),
                body: "Nous demandons au conseil d'inscrire ce point à l'ordre du jour.".into(),
                draft: false,
                ..Default::default()
            },
            agent,
        ))
        .await?
        .into_inner()
        .petition
        .ok_or_else(|| anyhow::anyhow!("no petition in the answer"))?;

    let next = Arc::new(AtomicU64::new(0));
    let began = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (world, tokens, next, id) = (
            world.clone(),
            tokens.clone(),
            next.clone(),
            petition.id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latency = histogram();
            let (mut ops, mut errors, mut first_error) = (0u64, 0u64, None);
            let mut petitions = ParticipationServiceClient::new(world.channel(client));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(token) = tokens.get(n) else {
                    break;
                };
                let started = std::time::Instant::now();
                let signed = petitions
                    .sign_petition(authorized(
                        participation::SignPetitionRequest {
                            petition_id: id.clone(),
                        },
                        token,
                    ))
                    .await;
                match signed {
                    Ok(_) => {
                        ops += 1;
                        latency.saturating_record(started.elapsed().as_micros() as u64);
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert(status.to_string());
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
        window: Duration::ZERO,
        latency: histogram(),
    };
    for task in tasks {
        let (latency, ops, errors, first_error) = task.await?;
        measured.latency.add(&latency)?;
        measured.ops += ops;
        measured.errors += errors;
        if measured.first_error.is_none() {
            measured.first_error = first_error;
        }
    }
    measured.window = began.elapsed();
    let counted = ParticipationServiceClient::new(world.channel(0))
        .get_petition(authorized(
            participation::GetPetitionRequest {
                id: petition.id.clone(),
            },
            agent,
        ))
        .await?
        .into_inner()
        .petition
        .map(|petition| petition.signature_count)
        .unwrap_or(-1);
    Ok((measured, counted))
}

/// What an announcement to many residents took.
pub struct FanOut {
    pub measured: Measured,
    /// Inbox rows the announcement wrote (one per resident, none twice).
    pub rows: u64,
    /// The commune's residents as notification knows them: the seeded ones and the bench's
    /// own citizens.
    pub audience: u64,
    /// How much the stack's resident memory grew at its peak during the fan-out (KiB).
    pub grown_kib: u64,
}

/// An announcement to every resident of a commune with `residents` of them (seeded directly in
/// notification's database, as its `CitizenRegistered` events would have left them): from the
/// call that creates it to its state PUBLISHED, with every inbox row written; the stack's
/// resident memory sampled every 20 ms meanwhile.
pub async fn announcement_fan_out(
    world: &World,
    notification_db: &DatabaseConnection,
    stack_pid: Option<u32>,
    residents: usize,
) -> anyhow::Result<FanOut> {
    use jamaa_notification::storage::{notification, recipient};
    use jamaa_proto::notification::v1 as pb;
    use jamaa_proto::notification::v1::notification_service_client::NotificationServiceClient;
    use jamaa_proto::r#type::v1::LocalizedText;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

    let commune = uuid::Uuid::parse_str(&world.commune_id)?;
    let languages = ["ar", "fr", "en", "tzm"];
    let ids: Vec<uuid::Uuid> = (0..residents).map(|_| uuid::Uuid::new_v4()).collect();
    for chunk in ids.chunks(1000) {
        let rows = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| recipient::ActiveModel {
                user_id: Set(*id),
                commune_id: Set(commune),
                language: Set(languages[i % 4].to_string()),
                resident: Set(true),
            });
        recipient::Entity::insert_many(rows)
            .exec_without_returning(notification_db)
            .await?;
    }

    let audience = recipient::Entity::find()
        .filter(recipient::Column::CommuneId.eq(commune))
        .filter(recipient::Column::Resident.eq(true))
        .count(notification_db)
        .await?;

    let rss = move || {
        stack_pid
            .and_then(crate::process::memory)
            .map(|memory| memory.rss_kib)
            .unwrap_or(0)
    };
    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let text = |ar: &str, fr: &str, en: &str| LocalizedText {
        ar: ar.into(),
        fr: fr.into(),
        en: en.into(),
        ..LocalizedText::default()
    };
    let mut client = NotificationServiceClient::new(world.channel(0));
    let began = std::time::Instant::now();
    let announcement = client
        .create_announcement(authorized(
            pb::CreateAnnouncementRequest {
                announcement: Some(pb::Announcement {
                    title: Some(text("اجتماع عام", "Réunion publique", "Public meeting")),
                    body: Some(text(
                        "الخميس في الساعة 18.",
                        "Jeudi à 18 h.",
                        "Thursday at 6 pm.",
                    )),
                    audience_kind: pb::AudienceKind::AllResidents as i32,
                    ..Default::default()
                }),
                request_id: uuid::Uuid::now_v7().to_string(),
            },
            &world.admin,
        ))
        .await?
        .into_inner()
        .announcement
        .ok_or_else(|| anyhow::anyhow!("no announcement in the answer"))?;
    let deadline = began + Duration::from_secs(600);
    loop {
        let state = client
            .get_announcement(authorized(
                pb::GetAnnouncementRequest {
                    id: announcement.id.clone(),
                },
                &world.admin,
            ))
            .await?
            .into_inner()
            .announcement
            .map(|announcement| announcement.state)
            .unwrap_or_default();
        if state == pb::AnnouncementState::Published as i32 {
            break;
        }
        if std::time::Instant::now() > deadline {
            sampling.abort();
            anyhow::bail!("the announcement was not published within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = began.elapsed();
    sampling.abort();
    let event_id = uuid::Uuid::parse_str(&announcement.id)?;
    let rows = notification::Entity::find()
        .filter(notification::Column::EventId.eq(event_id))
        .count(notification_db)
        .await?;
    let mut latency = histogram();
    latency.saturating_record(elapsed.as_micros() as u64);
    Ok(FanOut {
        measured: Measured {
            ops: rows,
            errors: 0,
            first_error: None,
            window: elapsed,
            latency,
        },
        rows,
        audience,
        grown_kib: peak.load(Ordering::Relaxed).saturating_sub(baseline),
    })
}
