//! Public statistics against hand-computed figures on a fixed data set, on both backends: nine
//! requests of October 2026 (their dates set in the database, as if filed then), with known
//! answers, ratings, genders and areas. Public totals; breakdowns only for the commune's
//! administrators, cells under 5 suppressed; CSV through the gateway.

use chrono::{NaiveDate, TimeZone, Utc};
use jamaa_proto::identity::v1 as identity;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{Backend, Options, TestStack, authorized, eventually, spawn_stack_with};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

crate::on_both_backends!(figures_match_a_hand_computed_data_set, figures_match);

async fn citizen(stack: &TestStack, name: &str, gender: identity::Gender) -> String {
    let email = format!("{name}@sta.test");
    stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "STA".into(),
            email: email.clone(),
            password: "citizen-password-1".into(),
            display_name: name.into(),
            preferred_language: Language::Fr as i32,
            gender: gender as i32,
            ..Default::default()
        })
        .await
        .expect("registered");
    stack.login(&email, "citizen-password-1").await
}

/// One request of the data set.
struct Case {
    name: &'static str,
    gender: identity::Gender,
    area: &'static str,
    created: (u32, u32),
    /// The answer's day and whether it was a refusal; `None`: still open.
    answered: Option<(u32, bool)>,
    due: (u32, u32),
    rating: Option<i32>,
}

const fn case(
    name: &'static str,
    gender: identity::Gender,
    area: &'static str,
    created: (u32, u32),
    answered: Option<(u32, bool)>,
    due: (u32, u32),
    rating: Option<i32>,
) -> Case {
    Case {
        name,
        gender,
        area,
        created,
        answered,
        due,
        rating,
    }
}

async fn move_status(stack: &TestStack, admin: &str, id: &str, status: requests::RequestStatus) {
    stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: id.into(),
                status: status as i32,
                note: "done".into(),
                ..Default::default()
            },
            admin,
        ))
        .await
        .expect("status");
}

async fn figures_match(backend: Backend) {
    let options = Options {
        extra_env: vec![(
            "JAMAA__SERVICE_REQUEST__STATISTICS_INTERVAL_SECONDS".into(),
            "1".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("STA", 3).await;
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "pothole".into(),
                    name: Some(LocalizedText {
                        fr: "Nid-de-poule".into(),
                        ..Default::default()
                    }),
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    deadline_policy: Some(requests::DeadlinePolicy {
                        unit: requests::DeadlineUnit::WorkingDays as i32,
                        days: 10,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("service")
        .into_inner()
        .service
        .expect("service");

    use identity::Gender::{Female, Male, Unspecified};
    // October 2026: the 1st is a Thursday; no holiday that month. Due dates are 10 working days.
    let cases = [
        case(
            "f1",
            Female,
            "Nord",
            (10, 1),
            Some((2, false)),
            (10, 15),
            Some(5),
        ), // 1 day
        case(
            "f2",
            Female,
            "Nord",
            (10, 1),
            Some((5, false)),
            (10, 15),
            Some(4),
        ), // 2 days
        case(
            "f3",
            Female,
            "Nord",
            (10, 5),
            Some((9, false)),
            (10, 19),
            None,
        ), // 4 days
        case(
            "f4",
            Female,
            "Sud",
            (10, 5),
            Some((26, true)),
            (10, 19),
            None,
        ), // 15, late
        case("f5", Female, "Sud", (10, 12), None, (10, 26), None), // open
        case(
            "f6",
            Female,
            "Sud",
            (10, 12),
            Some((13, false)),
            (10, 26),
            Some(3),
        ), // 1 day
        case(
            "m1",
            Male,
            "Nord",
            (10, 1),
            Some((8, false)),
            (10, 15),
            Some(2),
        ), // 5 days
        case("m2", Male, "Nord", (10, 2), None, (10, 16), None),   // open
        case(
            "u1",
            Unspecified,
            "Sud",
            (10, 7),
            Some((7, false)),
            (10, 21),
            None,
        ), // 0 days
    ];
    let db = Database::connect(stack.database_url("service_request").as_str())
        .await
        .expect("database");
    let backend_kind = db.get_database_backend();
    let placeholder = |n: usize| match backend_kind {
        sea_orm::DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    for case in &cases {
        let token = citizen(&stack, case.name, case.gender).await;
        let request = stack
            .requests()
            .submit_request(authorized(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: service.id.clone(),
                    description: "A hole.".into(),
                    area: case.area.into(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("filed")
            .into_inner()
            .request
            .expect("request");
        if let Some((_, refused)) = case.answered {
            move_status(
                &stack,
                &admin,
                &request.id,
                requests::RequestStatus::Received,
            )
            .await;
            move_status(
                &stack,
                &admin,
                &request.id,
                requests::RequestStatus::InProgress,
            )
            .await;
            let last = if refused {
                requests::RequestStatus::Rejected
            } else {
                requests::RequestStatus::Resolved
            };
            move_status(&stack, &admin, &request.id, last).await;
        }
        if let Some(rating) = case.rating {
            stack
                .requests()
                .rate_request(authorized(
                    requests::RateRequestRequest {
                        id: request.id.clone(),
                        rating,
                        comment: String::new(),
                    },
                    &token,
                ))
                .await
                .expect("rated");
        }
        // As if filed and answered in October (09:00 local, 08:00 UTC).
        let at = |(month, day): (u32, u32)| {
            Utc.with_ymd_and_hms(2026, month, day, 8, 0, 0)
                .single()
                .expect("a time")
        };
        let created = at(case.created);
        let answered = case.answered.map(|(day, _)| at((10, day)));
        let due = NaiveDate::from_ymd_opt(2026, case.due.0, case.due.1).expect("date");
        let sql = format!(
            "UPDATE requests SET created_at = {}, answered_at = {}, due_date = {}, updated_at = {} WHERE id = {}",
            placeholder(1),
            placeholder(2),
            placeholder(3),
            placeholder(4),
            placeholder(5)
        );
        db.execute_raw(Statement::from_sql_and_values(
            backend_kind,
            sql,
            [
                created.into(),
                answered.into(),
                due.into(),
                Utc::now().into(),
                uuid::Uuid::parse_str(&request.id).expect("uuid").into(),
            ],
        ))
        .await
        .expect("time travel");
    }

    let query = |breakdown: requests::StatisticsBreakdown| requests::GetRequestStatisticsRequest {
        commune_code: "STA".into(),
        start_month: "2026-10".into(),
        end_month: "2026-10".into(),
        breakdown: breakdown as i32,
        ..Default::default()
    };
    // Public, no token: per service and the total, the same here.
    let rows = eventually(
        std::time::Duration::from_secs(30),
        "october's figures",
        || async {
            let rows = stack
                .requests()
                .get_request_statistics(query(requests::StatisticsBreakdown::None))
                .await
                .ok()?
                .into_inner()
                .rows;
            rows.iter()
                .any(|row| row.received == 9 && row.open_backlog == 2)
                .then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(
            (row.received, row.resolved, row.rejected, row.open_backlog),
            (9, 6, 1, 2)
        );
        // Answer days 0, 1, 1, 2, 4, 5, 15: median the 4th (2), p90 the 7th (15).
        assert_eq!(row.median_working_days, Some(2));
        assert_eq!(row.p90_working_days, Some(15));
        let on_time = row.on_time_share.expect("on time");
        assert!((on_time - 6.0 / 7.0).abs() < 1e-9, "{on_time}");
        assert_eq!(row.mean_satisfaction, Some(3.5));
        assert!(!row.suppressed);
    }
    assert_eq!(rows[0].service_code, "pothole");
    assert_eq!(rows[1].service_code, "");

    // Breakdowns are for the commune's administrators; small cells are withheld.
    let (_, nosy) = stack.register_citizen("STA", "nosy", Language::Fr).await;
    let refused = stack
        .requests()
        .get_request_statistics(authorized(
            query(requests::StatisticsBreakdown::Gender),
            &nosy,
        ))
        .await
        .expect_err("a citizen");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let by_gender = stack
        .requests()
        .get_request_statistics(authorized(
            query(requests::StatisticsBreakdown::Gender),
            &admin,
        ))
        .await
        .expect("the administrator")
        .into_inner()
        .rows;
    let female = by_gender
        .iter()
        .find(|row| row.service_code == "pothole" && row.group == "female")
        .expect("female");
    assert_eq!(
        (
            female.received,
            female.resolved,
            female.rejected,
            female.open_backlog
        ),
        (6, 4, 1, 1)
    );
    // Days 1, 1, 2, 4, 15: median the 3rd (2), p90 the 5th (15); 4 of 5 on time; (5+4+3)/3.
    assert_eq!(
        (female.median_working_days, female.p90_working_days),
        (Some(2), Some(15))
    );
    assert_eq!(female.on_time_share, Some(0.8));
    assert_eq!(female.mean_satisfaction, Some(4.0));
    for group in ["male", "unknown"] {
        let small = by_gender
            .iter()
            .find(|row| row.service_code == "pothole" && row.group == group)
            .unwrap_or_else(|| panic!("{group}"));
        assert!(small.suppressed, "{small:?}");
        assert_eq!((small.received, small.median_working_days), (0, None));
    }
    let by_area = stack
        .requests()
        .get_request_statistics(authorized(
            query(requests::StatisticsBreakdown::Area),
            &admin,
        ))
        .await
        .expect("the administrator")
        .into_inner()
        .rows;
    let nord = by_area
        .iter()
        .find(|row| row.service_code == "pothole" && row.group == "Nord")
        .expect("Nord");
    // f1, f2, f3, m1 answered in 1, 2, 4, 5 days, all on time; m2 open; ratings 5, 4, 2.
    assert_eq!((nord.received, nord.resolved, nord.open_backlog), (5, 4, 1));
    assert_eq!(
        (nord.median_working_days, nord.p90_working_days),
        (Some(2), Some(5))
    );
    assert_eq!(nord.on_time_share, Some(1.0));
    let mean = nord.mean_satisfaction.expect("mean");
    assert!((mean - 11.0 / 3.0).abs() < 1e-9, "{mean}");
    assert!(
        by_area
            .iter()
            .find(|row| row.service_code == "pothole" && row.group == "Sud")
            .expect("Sud")
            .suppressed
    );

    // The CSV export through the gateway.
    let url = format!(
        "http://127.0.0.1:{}/v1/communes/STA/statistics/export?startMonth=2026-10&endMonth=2026-10&format=EXPORT_FORMAT_CSV",
        stack.stack.http_port
    );
    let (status, content_type, body) = jamaa_tests::send("GET", &url, &[], String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let csv = String::from_utf8(body.to_vec()).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("service_code,group,received"));
    assert_eq!(lines[1], "pothole,,9,6,1,2,15,0.857,3.500,2,false");
    assert_eq!(lines[2], ",,9,6,1,2,15,0.857,3.500,2,false");
    let (status, content_type, body) = jamaa_tests::send(
        "GET",
        &url.replace("EXPORT_FORMAT_CSV", "EXPORT_FORMAT_JSON"),
        &[],
        String::new(),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let rows = json.as_array().expect("an array");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["serviceCode"], "pothole");
    assert_eq!(rows[0]["received"], "9");
    assert_eq!(rows[0]["medianWorkingDays"], 2);
    stack.stop().await;
}

crate::on_both_backends!(a_burst_bigger_than_a_roll_page_is_counted_whole, burst);

/// More requests changed within the roller's overlap (10 s) than one page of a roll reads
/// (`ROLL_BATCH`): a bulk import, or a busy minute. A page of one service's requests, then a few
/// of another service a millisecond later: the second service is counted too. (The roller used
/// to read the same first page again and again, and never saw the second service's month.)
/// The first service's month is also more than one page of a recount (`RECOMPUTE_PAGE`): two
/// citizens, one female and one male, filed alternately, every fourth request answered; the
/// gender breakdown counts every page.
async fn burst(backend: Backend) {
    use jamaa_service_request::storage::{citizen_profile, service_request};
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let options = Options {
        extra_env: vec![(
            "JAMAA__SERVICE_REQUEST__STATISTICS_INTERVAL_SECONDS".into(),
            "1".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (commune_id, admin) = stack.create_commune("BUR", 3).await;
    let bulk = stack.create_service(&admin, "bulk").await;
    let late = stack.create_service(&admin, "late").await;
    let commune_id = uuid::Uuid::parse_str(&commune_id).expect("commune id");
    let page = jamaa_service_request::statistics::ROLL_BATCH as usize;
    let db = Database::connect(stack.database_url("service_request").as_str())
        .await
        .expect("service-request's database");
    let now = Utc::now();
    let later = now + chrono::Duration::milliseconds(1);
    assert!(jamaa_service_request::statistics::RECOMPUTE_PAGE < page as u64);
    let (female, male) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (user_id, gender) in [(female, "female"), (male, "male")] {
        citizen_profile::ActiveModel {
            user_id: Set(user_id),
            gender: Set(gender.into()),
        }
        .insert(&db)
        .await
        .expect("a citizen's profile");
    }
    let row = |n: usize, service: &requests::ServiceDefinition, at: chrono::DateTime<Utc>| {
        let answered = n.is_multiple_of(4);
        service_request::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            commune_id: Set(commune_id),
            citizen_id: Set(if n.is_multiple_of(2) { female } else { male }),
            client_request_id: Set(uuid::Uuid::now_v7()),
            service_id: Set(uuid::Uuid::parse_str(&service.id).expect("service id")),
            service_code: Set(service.code.clone()),
            tracking_code: Set(format!("BUR-{}-{n}", service.code)),
            description: Set("Imported".into()),
            attributes: Set("{}".into()),
            status: Set(if answered { "resolved" } else { "received" }.into()),
            answered_at: Set(answered.then_some(at)),
            resolved_at: Set(answered.then_some(at)),
            version: Set(1),
            created_at: Set(at),
            updated_at: Set(at),
            service_version: Set(1),
            service_kind: Set("incident_report".into()),
            urgent: Set(false),
            extended: Set(false),
            priority: Set("normal".into()),
            language: Set("fr".into()),
            ..Default::default()
        }
    };
    for chunk in (0..page).collect::<Vec<_>>().chunks(500) {
        service_request::Entity::insert_many(chunk.iter().map(|n| row(*n, &bulk, now)))
            .exec_without_returning(&db)
            .await
            .expect("imported");
    }
    service_request::Entity::insert_many((0..50).map(|n| row(n, &late, later)))
        .exec_without_returning(&db)
        .await
        .expect("imported");
    let month = now.format("%Y-%m").to_string();
    let received = |code: &'static str| {
        let month = month.clone();
        let mut client = stack.requests();
        async move {
            let rows = client
                .get_request_statistics(requests::GetRequestStatisticsRequest {
                    commune_code: "BUR".into(),
                    service_code: code.into(),
                    start_month: month.clone(),
                    end_month: month,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .rows;
            Some(
                rows.iter()
                    .filter(|row| row.service_code.is_empty())
                    .map(|row| row.received)
                    .sum::<i64>(),
            )
        }
    };
    let late_counted = eventually(
        std::time::Duration::from_secs(60),
        "the second service counted",
        || async { received("late").await.filter(|count| *count >= 50) },
    )
    .await;
    assert_eq!(late_counted, 50);
    let bulk_counted = eventually(
        std::time::Duration::from_secs(60),
        "the whole first service counted",
        || async { received("bulk").await.filter(|count| *count >= page as i64) },
    )
    .await;
    assert_eq!(bulk_counted, page as i64);
    let by_gender = stack
        .requests()
        .get_request_statistics(authorized(
            requests::GetRequestStatisticsRequest {
                commune_code: "BUR".into(),
                service_code: "bulk".into(),
                start_month: month.clone(),
                end_month: month.clone(),
                breakdown: requests::StatisticsBreakdown::Gender as i32,
            },
            &admin,
        ))
        .await
        .expect("the administrator")
        .into_inner()
        .rows;
    let figures = |group: &str| {
        by_gender
            .iter()
            .find(|row| row.service_code == "bulk" && row.group == group)
            .map(|row| (row.received, row.resolved, row.open_backlog))
    };
    let half = page as i64 / 2;
    // Even rows are the female citizen's, and every fourth (a multiple of 4 is even) answered.
    assert_eq!(figures("female"), Some((half, half / 2, half / 2)));
    assert_eq!(figures("male"), Some((half, 0, half)));
    assert_eq!(
        figures("unknown")
            .map(|(received, ..)| received)
            .unwrap_or(0),
        0
    );
    let _ = db.close().await;
    stack.stop().await;
}
