//! Participatory budgets through gRPC on both backends: residents propose projects, the commune
//! reviews them, 50 residents vote at once, and the results are the hand-computed ones (ranking
//! by votes, ties to the cheaper, funding down the ranking while the total lasts). Both voting
//! rules, every phase guard, one ballot each, the residents told of each phase, and a result
//! (accountability) linked to a funded project.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, bad_fields, error_reason, spawn_stack};
use tonic::Code;

crate::on_both_backends!(a_budget_from_proposals_to_results, budget);

async fn create_budget(
    stack: &TestStack,
    token: &str,
    title: &str,
    total: i64,
    rule: participation::BudgetVotingRule,
    max_projects: i32,
) -> Result<participation::Budget, tonic::Status> {
    stack
        .participation()
        .create_budget(authorized(
            participation::CreateBudgetRequest {
                budget: Some(participation::Budget {
                    title: title.into(),
                    description: "Ce que la commune finance avec ses habitants.".into(),
                    total_dirhams: total,
                    voting_rule: rule as i32,
                    max_projects,
                    min_assurance: identity::AssuranceLevel::Registered as i32,
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().budget.unwrap_or_default())
}

async fn propose(
    stack: &TestStack,
    token: &str,
    budget_id: &str,
    request_id: &str,
    title: &str,
    cost: i64,
) -> Result<participation::BudgetProject, tonic::Status> {
    stack
        .participation()
        .propose_budget_project(authorized(
            participation::ProposeBudgetProjectRequest {
                budget_id: budget_id.into(),
                request_id: request_id.into(),
                project: Some(participation::BudgetProject {
                    title: title.into(),
                    description: format!("{title}, pour le quartier."),
                    cost_dirhams: cost,
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().project.unwrap_or_default())
}

async fn advance(
    stack: &TestStack,
    token: &str,
    id: &str,
    phase: participation::BudgetPhase,
) -> Result<participation::Budget, tonic::Status> {
    stack
        .participation()
        .advance_budget_phase(authorized(
            participation::AdvanceBudgetPhaseRequest {
                id: id.into(),
                phase: phase as i32,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().budget.unwrap_or_default())
}

async fn review(
    stack: &TestStack,
    token: &str,
    id: &str,
    feasible: bool,
    cost: i64,
    note: &str,
) -> Result<participation::BudgetProject, tonic::Status> {
    stack
        .participation()
        .review_budget_project(authorized(
            participation::ReviewBudgetProjectRequest {
                id: id.into(),
                feasible,
                cost_dirhams: cost,
                note: note.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().project.unwrap_or_default())
}

async fn vote(
    stack: &TestStack,
    token: &str,
    budget_id: &str,
    projects: &[&str],
) -> Result<(), tonic::Status> {
    stack
        .participation()
        .cast_budget_ballot(authorized(
            participation::CastBudgetBallotRequest {
                budget_id: budget_id.into(),
                project_ids: projects.iter().map(|id| id.to_string()).collect(),
            },
            token,
        ))
        .await
        .map(|_| ())
}

async fn results(
    stack: &TestStack,
    token: &str,
    budget_id: &str,
) -> Result<participation::GetBudgetResultsResponse, tonic::Status> {
    stack
        .participation()
        .get_budget_results(authorized(
            participation::GetBudgetResultsRequest {
                budget_id: budget_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

async fn budget(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    use participation::BudgetPhase::{Results, Reviewing, Voting};
    use participation::BudgetVotingRule::{AtMostK, UpToTotal};
    let (_, admin) = stack.create_commune("PBU", 3).await;
    let (_, other_admin) = stack.create_commune("PBO", 3).await;
    let (_, outsider) = stack
        .register_citizen("PBO", "Outsider", Language::Fr)
        .await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@pbu.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    let (_, amal) = stack.register_citizen("PBU", "Amal", Language::En).await;
    let (_, brahim) = stack.register_citizen("PBU", "Brahim", Language::Fr).await;

    // Opening: the rule's fields are checked; citizens cannot open one.
    let refused = create_budget(&stack, &secretary, "Budget 2027", 1_000_000, UpToTotal, 3)
        .await
        .expect_err("max_projects with UP_TO_TOTAL");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), vec!["budget.max_projects"]);
    let refused = create_budget(&stack, &secretary, "Budget 2027", 0, AtMostK, 0)
        .await
        .expect_err("no total, no k");
    assert_eq!(
        bad_fields(&refused),
        vec!["budget.total_dirhams", "budget.max_projects"]
    );
    assert_eq!(
        create_budget(&stack, &amal, "Budget 2027", 1_000_000, UpToTotal, 0)
            .await
            .expect_err("a citizen")
            .code(),
        Code::PermissionDenied
    );
    let budget = create_budget(&stack, &secretary, "Budget 2027", 1_000_000, UpToTotal, 0)
        .await
        .expect("a budget");
    assert_eq!(budget.phase, participation::BudgetPhase::Proposing as i32);

    // Proposing: residents propose; a cost above the total is refused; the same request_id
    // gives back the same project.
    let request = uuid::Uuid::now_v7().to_string();
    let a = propose(&stack, &amal, &budget.id, &request, "Aire de jeux", 300_000)
        .await
        .expect("A");
    let again = propose(&stack, &amal, &budget.id, &request, "Aire de jeux", 300_000)
        .await
        .expect("A again");
    assert_eq!(again.id, a.id);
    let fresh = || uuid::Uuid::now_v7().to_string();
    let b = propose(&stack, &brahim, &budget.id, &fresh(), "Bancs", 150_000)
        .await
        .expect("B");
    let c = propose(
        &stack,
        &amal,
        &budget.id,
        &fresh(),
        "Centre culturel",
        600_000,
    )
    .await
    .expect("C");
    let d = propose(&stack, &brahim, &budget.id, &fresh(), "Dos-d'âne", 200_000)
        .await
        .expect("D");
    let e = propose(&stack, &brahim, &budget.id, &fresh(), "Piscine", 900_000)
        .await
        .expect("E");
    let too_dear = propose(&stack, &amal, &budget.id, &fresh(), "Stade", 2_000_000)
        .await
        .expect_err("over the total");
    assert_eq!(bad_fields(&too_dear), vec!["project.cost_dirhams"]);
    assert_eq!(
        propose(&stack, &outsider, &budget.id, &fresh(), "Ailleurs", 10)
            .await
            .expect_err("another commune's resident")
            .code(),
        Code::NotFound
    );
    let early = vote(&stack, &amal, &budget.id, &[&a.id])
        .await
        .expect_err("no voting yet");
    assert_eq!(error_reason(&early), "BUDGET_PHASE");
    let skipped = advance(&stack, &secretary, &budget.id, Voting)
        .await
        .expect_err("phases are not skipped");
    assert_eq!(error_reason(&skipped), "BUDGET_PHASE");

    // Reviewing: no more proposals; voting waits for every review; unfeasible needs reasons.
    advance(&stack, &secretary, &budget.id, Reviewing)
        .await
        .expect("reviewing");
    let late = propose(&stack, &amal, &budget.id, &fresh(), "Trop tard", 10)
        .await
        .expect_err("proposing is over");
    assert_eq!(error_reason(&late), "BUDGET_PHASE");
    for (project, cost) in [(&a, 300_000), (&b, 150_000), (&c, 600_000)] {
        review(&stack, &secretary, &project.id, true, cost, "")
            .await
            .expect("feasible");
    }
    let pending = advance(&stack, &secretary, &budget.id, Voting)
        .await
        .expect_err("two still await review");
    assert!(pending.message().contains("2 project(s)"), "{pending:?}");
    let reviewed = review(&stack, &secretary, &d.id, true, 200_000, "Devis reçu.")
        .await
        .expect("D feasible");
    assert_eq!(
        reviewed.status,
        participation::BudgetProjectStatus::Feasible as i32
    );
    let no_reasons = review(&stack, &secretary, &e.id, false, 0, "")
        .await
        .expect_err("unfeasible without reasons");
    assert_eq!(bad_fields(&no_reasons), vec!["note"]);
    review(
        &stack,
        &secretary,
        &e.id,
        false,
        0,
        "Le terrain n'appartient pas à la commune.",
    )
    .await
    .expect("E unfeasible");
    assert_eq!(
        review(&stack, &amal, &a.id, true, 1, "")
            .await
            .expect_err("a citizen reviews")
            .code(),
        Code::PermissionDenied
    );

    // Voting: every resident hears of it, in their language.
    advance(&stack, &secretary, &budget.id, Voting)
        .await
        .expect("voting");
    stack.wait_for_notification(&amal, "Voting is open").await;
    stack.wait_for_notification(&brahim, "Le vote").await;

    // Bad ballots are refused with the field named.
    let over = vote(&stack, &amal, &budget.id, &[&a.id, &c.id, &d.id])
        .await
        .expect_err("1,100,000 > 1,000,000");
    assert_eq!(bad_fields(&over), vec!["project_ids"]);
    let unfeasible = vote(&stack, &amal, &budget.id, &[&e.id])
        .await
        .expect_err("E is not on the ballot");
    assert_eq!(bad_fields(&unfeasible), vec!["project_ids[0]"]);
    let twice = vote(&stack, &amal, &budget.id, &[&a.id, &a.id])
        .await
        .expect_err("A twice");
    assert_eq!(bad_fields(&twice), vec!["project_ids"]);
    assert_eq!(
        vote(&stack, &outsider, &budget.id, &[&a.id])
            .await
            .expect_err("another commune")
            .code(),
        Code::NotFound
    );

    // 50 residents vote at once. By hand: A = 20 + 15 = 35; C = 20 + 5 = 25; D = 15 + 10 = 25;
    // B = 15 + 10 = 25. Ranking: A, then the tie at 25 to the cheaper: B (150k), D (200k),
    // C (600k). Funding: A (700k left), B (550k left), D (350k left), C does not fit.
    let mut voters = Vec::new();
    for index in 0..50 {
        let (_, token) = stack
            .register_citizen("PBU", &format!("voter{index}"), Language::Ar)
            .await;
        voters.push(token);
    }
    let ballot = |index: usize| -> Vec<&str> {
        match index {
            0..20 => vec![&c.id, &a.id],
            20..35 => vec![&a.id, &d.id, &b.id],
            35..45 => vec![&d.id, &b.id],
            _ => vec![&c.id],
        }
    };
    let ballots: Vec<Vec<&str>> = (0..voters.len()).map(ballot).collect();
    let outcomes = futures_util::future::join_all(
        voters
            .iter()
            .zip(&ballots)
            .map(|(token, projects)| vote(&stack, token, &budget.id, projects)),
    )
    .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let second = vote(&stack, &voters[0], &budget.id, &[&b.id])
        .await
        .expect_err("a second ballot");
    assert_eq!(second.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&second), "ALREADY_VOTED");
    let counted = stack
        .participation()
        .get_budget(authorized(
            participation::GetBudgetRequest {
                id: budget.id.clone(),
            },
            &amal,
        ))
        .await
        .expect("the budget")
        .into_inner()
        .budget
        .expect("budget");
    assert_eq!(counted.ballot_count, 50);
    // Votes stay secret until the results.
    let during = stack
        .participation()
        .list_budget_projects(authorized(
            participation::ListBudgetProjectsRequest {
                budget_id: budget.id.clone(),
            },
            &amal,
        ))
        .await
        .expect("projects")
        .into_inner()
        .projects;
    assert_eq!(during.len(), 5);
    assert!(during.iter().all(|project| project.votes == 0));
    let not_yet = results(&stack, &amal, &budget.id)
        .await
        .expect_err("no results while voting");
    assert_eq!(error_reason(&not_yet), "BUDGET_PHASE");

    // Results: computed, published, told.
    advance(&stack, &secretary, &budget.id, Results)
        .await
        .expect("results");
    let published = results(&stack, &amal, &budget.id).await.expect("results");
    let table: Vec<(String, i64, bool, i32)> = published
        .projects
        .iter()
        .map(|p| (p.title.clone(), p.votes, p.selected, p.rank))
        .collect();
    assert_eq!(
        table,
        vec![
            ("Aire de jeux".to_string(), 35, true, 1),
            ("Bancs".to_string(), 25, true, 2),
            ("Dos-d'âne".to_string(), 25, true, 3),
            ("Centre culturel".to_string(), 25, false, 4),
        ]
    );
    assert_eq!(published.allocated_dirhams, 650_000);
    assert_eq!(published.budget.expect("budget").ballot_count, 50);
    let told = stack.wait_for_notification(&amal, "Funded projects").await;
    assert!(
        told.body.contains("Aire de jeux, Bancs, Dos-d'âne"),
        "{told:?}"
    );
    let after = vote(&stack, &brahim, &budget.id, &[&a.id])
        .await
        .expect_err("voting is over");
    assert_eq!(error_reason(&after), "BUDGET_PHASE");
    let ended = advance(&stack, &secretary, &budget.id, Results)
        .await
        .expect_err("no phase after RESULTS");
    assert_eq!(error_reason(&ended), "BUDGET_PHASE");
    assert_eq!(
        results(&stack, &other_admin, &budget.id)
            .await
            .expect_err("another commune")
            .code(),
        Code::NotFound
    );

    // Accountability: a result for the funded playground; its proposer hears of its progress.
    let result = stack
        .participation()
        .create_result(authorized(
            participation::CreateResultRequest {
                result: Some(participation::WorkResult {
                    subject: participation::CommentSubject::BudgetProject as i32,
                    subject_id: a.id.clone(),
                    title: "Aire de jeux du quartier".into(),
                    ..Default::default()
                }),
            },
            &secretary,
        ))
        .await
        .expect("a result for a budget project")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        result.subject,
        participation::CommentSubject::BudgetProject as i32
    );
    stack
        .participation()
        .update_result(authorized(
            participation::UpdateResultRequest {
                id: result.id.clone(),
                progress: 30,
                status: participation::ResultStatus::InProgress as i32,
                note: "Le terrain est nivelé.".into(),
            },
            &secretary,
        ))
        .await
        .expect("an update");
    stack
        .wait_for_notification(&amal, "Le terrain est nivelé.")
        .await;

    // AT_MOST_K (k = 2), total 100: P (70), Q (50), R (30). Ballots: [P, Q], [P, R], [Q], [P]
    // → P 3, Q 2, R 1. Funding: P (30 left), Q does not fit, R does (0 left).
    let small = create_budget(&stack, &admin, "Petit budget", 100, AtMostK, 2)
        .await
        .expect("an AT_MOST_K budget");
    let p = propose(&stack, &amal, &small.id, &fresh(), "P", 70)
        .await
        .expect("P");
    let q = propose(&stack, &amal, &small.id, &fresh(), "Q", 50)
        .await
        .expect("Q");
    let r = propose(&stack, &amal, &small.id, &fresh(), "R", 30)
        .await
        .expect("R");
    advance(&stack, &admin, &small.id, Reviewing)
        .await
        .expect("reviewing");
    for (project, cost) in [(&p, 70), (&q, 50), (&r, 30)] {
        review(&stack, &admin, &project.id, true, cost, "")
            .await
            .expect("feasible");
    }
    advance(&stack, &admin, &small.id, Voting)
        .await
        .expect("voting");
    let three = vote(&stack, &voters[0], &small.id, &[&p.id, &q.id, &r.id])
        .await
        .expect_err("three of at most two");
    assert_eq!(bad_fields(&three), vec!["project_ids"]);
    // Under AT_MOST_K the ballot may cost more than the total (70 + 50 = 120).
    vote(&stack, &voters[0], &small.id, &[&p.id, &q.id])
        .await
        .expect("[P, Q]");
    vote(&stack, &voters[1], &small.id, &[&p.id, &r.id])
        .await
        .expect("[P, R]");
    vote(&stack, &voters[2], &small.id, &[&q.id])
        .await
        .expect("[Q]");
    vote(&stack, &voters[3], &small.id, &[&p.id])
        .await
        .expect("[P]");
    advance(&stack, &admin, &small.id, Results)
        .await
        .expect("results");
    let small_results = results(&stack, &brahim, &small.id).await.expect("results");
    let table: Vec<(String, i64, bool)> = small_results
        .projects
        .iter()
        .map(|p| (p.title.clone(), p.votes, p.selected))
        .collect();
    assert_eq!(
        table,
        vec![
            ("P".to_string(), 3, true),
            ("Q".to_string(), 2, false),
            ("R".to_string(), 1, true),
        ]
    );
    assert_eq!(small_results.allocated_dirhams, 100);
    stack.stop().await;
}
