//! The authorization matrix of participation: every RPC called by every kind of caller —
//! nobody, the petition's (or proposal's) author, a verified resident, another citizen of the
//! commune (not verified), staff roles, the administrators of the commune and of another, a
//! platform administrator, a service — on resources of one commune. A cell is let through (the
//! call succeeds) or refused (no caller, PERMISSION_DENIED, or NOT_FOUND). State-changing calls
//! get fresh resources for each cell. Nobody else sees a petition's signatories.

use std::collections::BTreeSet;

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{
    Backend, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, TestStack, authorized, spawn_stack,
};
use tonic::Code;

crate::on_both_backends!(every_participation_rpc_by_every_caller, matrix);

const CALLERS: [&str; 11] = [
    "nobody",
    "author",
    "verified_resident",
    "citizen",
    "council_secretary",
    "case_officer",
    "moderator",
    "admin",
    "other_admin",
    "platform_admin",
    "service",
];

fn request<T>(message: T, token: &str) -> tonic::Request<T> {
    if token.is_empty() {
        tonic::Request::new(message)
    } else {
        authorized(message, token)
    }
}

struct World {
    author: String,
    signers: Vec<String>,
    secretary: String,
}

impl World {
    /// A fresh petition of the author's, taken to `stage`: "draft", "collecting", "reached",
    /// "submitted", "review", "admissible".
    async fn petition(&self, stack: &TestStack, stage: &str) -> String {
        let petition = stack
            .participation()
            .create_petition(authorized(
                participation::CreatePetitionRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    title: "Une bibliothèque".into(),
                    body: "Nous demandons une bibliothèque de quartier.".into(),
                    draft: stage == "draft",
                    ..Default::default()
                },
                &self.author,
            ))
            .await
            .expect("petition")
            .into_inner()
            .petition
            .unwrap_or_default();
        let id = petition.id;
        let later = ["reached", "submitted", "review", "admissible"];
        if later.contains(&stage) {
            for signer in &self.signers {
                stack
                    .participation()
                    .sign_petition(authorized(
                        participation::SignPetitionRequest {
                            petition_id: id.clone(),
                        },
                        signer,
                    ))
                    .await
                    .expect("signed");
            }
        }
        if later[1..].contains(&stage) {
            stack
                .participation()
                .submit_petition(authorized(
                    participation::SubmitPetitionRequest { id: id.clone() },
                    &self.author,
                ))
                .await
                .expect("submitted");
        }
        if later[2..].contains(&stage) {
            stack
                .participation()
                .review_petition(authorized(
                    participation::ReviewPetitionRequest { id: id.clone() },
                    &self.secretary,
                ))
                .await
                .expect("under review");
        }
        if stage == "admissible" {
            stack
                .participation()
                .decide_petition_admissibility(authorized(
                    participation::DecidePetitionAdmissibilityRequest {
                        id: id.clone(),
                        admissible: true,
                        session: "la session de mai".into(),
                        ..Default::default()
                    },
                    &self.secretary,
                ))
                .await
                .expect("admissible");
        }
        id
    }

    /// A fresh open consultation for every resident.
    async fn consultation(&self, stack: &TestStack) -> String {
        let now = chrono::Utc::now();
        let at = |t: chrono::DateTime<chrono::Utc>| {
            Some(jamaa_proto::timestamp_from_millis(t.timestamp_millis()))
        };
        stack
            .participation()
            .create_consultation(authorized(
                participation::CreateConsultationRequest {
                    consultation: Some(participation::Consultation {
                        title: "Le marché".into(),
                        questions: vec![participation::Question {
                            text: "Quel jour ?".into(),
                            kind: participation::QuestionKind::SingleChoice as i32,
                            options: vec!["Samedi".into(), "Dimanche".into()],
                            required: true,
                        }],
                        open_time: at(now - chrono::Duration::minutes(1)),
                        close_time: at(now + chrono::Duration::days(1)),
                        ..Default::default()
                    }),
                },
                &self.secretary,
            ))
            .await
            .expect("consultation")
            .into_inner()
            .consultation
            .unwrap_or_default()
            .id
    }

    /// A fresh result for a fresh proposal.
    async fn result(&self, stack: &TestStack) -> String {
        let proposal = self.proposal(stack).await;
        stack
            .participation()
            .create_result(authorized(
                participation::CreateResultRequest {
                    result: Some(participation::WorkResult {
                        subject: participation::CommentSubject::Proposal as i32,
                        subject_id: proposal,
                        title: "Les bancs".into(),
                        ..Default::default()
                    }),
                },
                &self.secretary,
            ))
            .await
            .expect("result")
            .into_inner()
            .result
            .unwrap_or_default()
            .id
    }

    /// A fresh comment of the author's on a fresh proposal.
    async fn comment(&self, stack: &TestStack) -> String {
        let proposal = self.proposal(stack).await;
        stack
            .participation()
            .add_comment(authorized(
                participation::AddCommentRequest {
                    subject: participation::CommentSubject::Proposal as i32,
                    subject_id: proposal,
                    body: "D'accord.".into(),
                },
                &self.author,
            ))
            .await
            .expect("comment")
            .into_inner()
            .comment
            .unwrap_or_default()
            .id
    }

    /// A fresh budget (total 1,000, up to the total) with one project of the author's (100),
    /// taken to `stage`: "proposing", "reviewing", "voting" (the project feasible), "results".
    /// Returns (budget, project).
    async fn budget(&self, stack: &TestStack, stage: &str) -> (String, String) {
        let budget = stack
            .participation()
            .create_budget(authorized(
                participation::CreateBudgetRequest {
                    budget: Some(participation::Budget {
                        title: "Budget du quartier".into(),
                        total_dirhams: 1000,
                        voting_rule: participation::BudgetVotingRule::UpToTotal as i32,
                        ..Default::default()
                    }),
                },
                &self.secretary,
            ))
            .await
            .expect("budget")
            .into_inner()
            .budget
            .unwrap_or_default()
            .id;
        let project = stack
            .participation()
            .propose_budget_project(authorized(
                participation::ProposeBudgetProjectRequest {
                    budget_id: budget.clone(),
                    request_id: uuid::Uuid::now_v7().to_string(),
                    project: Some(participation::BudgetProject {
                        title: "Des arbres".into(),
                        description: "Le long de l'avenue.".into(),
                        cost_dirhams: 100,
                        ..Default::default()
                    }),
                },
                &self.author,
            ))
            .await
            .expect("project")
            .into_inner()
            .project
            .unwrap_or_default()
            .id;
        let stages = ["reviewing", "voting", "results"];
        let Some(reached) = stages.iter().position(|s| *s == stage) else {
            return (budget, project);
        };
        let phases = [
            participation::BudgetPhase::Reviewing,
            participation::BudgetPhase::Voting,
            participation::BudgetPhase::Results,
        ];
        for phase in &phases[..=reached] {
            if *phase == participation::BudgetPhase::Voting {
                stack
                    .participation()
                    .review_budget_project(authorized(
                        participation::ReviewBudgetProjectRequest {
                            id: project.clone(),
                            feasible: true,
                            cost_dirhams: 100,
                            note: String::new(),
                        },
                        &self.secretary,
                    ))
                    .await
                    .expect("reviewed");
            }
            stack
                .participation()
                .advance_budget_phase(authorized(
                    participation::AdvanceBudgetPhaseRequest {
                        id: budget.clone(),
                        phase: *phase as i32,
                    },
                    &self.secretary,
                ))
                .await
                .expect("advanced");
        }
        (budget, project)
    }

    async fn proposal(&self, stack: &TestStack) -> String {
        stack
            .participation()
            .create_proposal(authorized(
                participation::CreateProposalRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    proposal: Some(participation::Proposal {
                        title: "Des bancs".into(),
                        body: "Au jardin public.".into(),
                        category: "public-space".into(),
                        ..Default::default()
                    }),
                },
                &self.author,
            ))
            .await
            .expect("proposal")
            .into_inner()
            .proposal
            .unwrap_or_default()
            .id
    }
}

async fn call(stack: &TestStack, rpc: &str, token: &str, w: &World) -> Result<(), tonic::Status> {
    let mut client = stack.participation();
    match rpc {
        "CreatePetition" => client
            .create_petition(request(
                participation::CreatePetitionRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    title: "Un marché".into(),
                    body: "Un marché couvert.".into(),
                    draft: true,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetPetition" => {
            let id = w.petition(stack, "collecting").await;
            client
                .get_petition(request(participation::GetPetitionRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ListPetitions" => client
            .list_petitions(request(
                participation::ListPetitionsRequest::default(),
                token,
            ))
            .await
            .map(|_| ()),
        "SignPetition" => {
            let id = w.petition(stack, "collecting").await;
            client
                .sign_petition(request(
                    participation::SignPetitionRequest { petition_id: id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "PublishPetition" => {
            let id = w.petition(stack, "draft").await;
            client
                .publish_petition(request(participation::PublishPetitionRequest { id }, token))
                .await
                .map(|_| ())
        }
        "SubmitPetition" => {
            let id = w.petition(stack, "reached").await;
            client
                .submit_petition(request(participation::SubmitPetitionRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ReviewPetition" => {
            let id = w.petition(stack, "submitted").await;
            client
                .review_petition(request(participation::ReviewPetitionRequest { id }, token))
                .await
                .map(|_| ())
        }
        "DecidePetitionAdmissibility" => {
            let id = w.petition(stack, "review").await;
            client
                .decide_petition_admissibility(request(
                    participation::DecidePetitionAdmissibilityRequest {
                        id,
                        admissible: false,
                        reasons: "hors compétence".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "AnswerPetition" => {
            let id = w.petition(stack, "admissible").await;
            client
                .answer_petition(request(
                    participation::AnswerPetitionRequest {
                        id,
                        decision: "Approuvé.".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ListPetitionSignatories" => {
            let id = w.petition(stack, "reached").await;
            client
                .list_petition_signatories(request(
                    participation::ListPetitionSignatoriesRequest { id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "CreateProposal" => client
            .create_proposal(request(
                participation::CreateProposalRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    proposal: Some(participation::Proposal {
                        title: "Une piste cyclable".into(),
                        body: "Le long de l'avenue.".into(),
                        category: "mobility".into(),
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetProposal" => {
            let id = w.proposal(stack).await;
            client
                .get_proposal(request(participation::GetProposalRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ListProposals" => client
            .list_proposals(request(
                participation::ListProposalsRequest::default(),
                token,
            ))
            .await
            .map(|_| ()),
        "SupportProposal" => {
            let id = w.proposal(stack).await;
            client
                .support_proposal(request(participation::SupportProposalRequest { id }, token))
                .await
                .map(|_| ())
        }
        "WithdrawProposalSupport" => {
            let id = w.proposal(stack).await;
            client
                .withdraw_proposal_support(request(
                    participation::WithdrawProposalSupportRequest { id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "AnswerProposal" => {
            let id = w.proposal(stack).await;
            client
                .answer_proposal(request(
                    participation::AnswerProposalRequest {
                        id,
                        status: participation::ProposalStatus::Evaluating as i32,
                        text: "À l'étude.".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "FollowProposal" => {
            let id = w.proposal(stack).await;
            client
                .follow_proposal(request(
                    participation::FollowProposalRequest { id, follow: true },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "CreateConsultation" => {
            let now = chrono::Utc::now();
            let at = |t: chrono::DateTime<chrono::Utc>| {
                Some(jamaa_proto::timestamp_from_millis(t.timestamp_millis()))
            };
            client
                .create_consultation(request(
                    participation::CreateConsultationRequest {
                        consultation: Some(participation::Consultation {
                            title: "Un sondage".into(),
                            questions: vec![participation::Question {
                                text: "Votre avis".into(),
                                kind: participation::QuestionKind::Rating as i32,
                                options: vec![],
                                required: true,
                            }],
                            open_time: at(now),
                            close_time: at(now + chrono::Duration::days(1)),
                            ..Default::default()
                        }),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "GetConsultation" => {
            let id = w.consultation(stack).await;
            client
                .get_consultation(request(participation::GetConsultationRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ListConsultations" => client
            .list_consultations(request(participation::ListConsultationsRequest {}, token))
            .await
            .map(|_| ()),
        "RespondToConsultation" => {
            let id = w.consultation(stack).await;
            client
                .respond_to_consultation(request(
                    participation::RespondToConsultationRequest {
                        id,
                        answers: vec![participation::Answer {
                            question_index: 0,
                            choices: vec![1],
                            ..Default::default()
                        }],
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "GetConsultationResults" => {
            let id = w.consultation(stack).await;
            client
                .get_consultation_results(request(
                    participation::GetConsultationResultsRequest { id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ExportConsultationResponses" => {
            let id = w.consultation(stack).await;
            client
                .export_consultation_responses(request(
                    participation::ExportConsultationResponsesRequest { id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "AddComment" => {
            let proposal = w.proposal(stack).await;
            client
                .add_comment(request(
                    participation::AddCommentRequest {
                        subject: participation::CommentSubject::Proposal as i32,
                        subject_id: proposal,
                        body: "Un avis.".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ListComments" => {
            let proposal = w.proposal(stack).await;
            client
                .list_comments(request(
                    participation::ListCommentsRequest {
                        subject: participation::CommentSubject::Proposal as i32,
                        subject_id: proposal,
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ReportComment" => {
            let id = w.comment(stack).await;
            client
                .report_comment(request(participation::ReportCommentRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ModerateComment" => {
            let id = w.comment(stack).await;
            client
                .moderate_comment(request(
                    participation::ModerateCommentRequest {
                        id,
                        hide: true,
                        reason: "hors sujet".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "CreateResult" => {
            let proposal = w.proposal(stack).await;
            client
                .create_result(request(
                    participation::CreateResultRequest {
                        result: Some(participation::WorkResult {
                            subject: participation::CommentSubject::Proposal as i32,
                            subject_id: proposal,
                            title: "Des bancs neufs".into(),
                            ..Default::default()
                        }),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "UpdateResult" => {
            let id = w.result(stack).await;
            client
                .update_result(request(
                    participation::UpdateResultRequest {
                        id,
                        progress: 10,
                        status: participation::ResultStatus::InProgress as i32,
                        note: "Commandés.".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "GetResult" => {
            let id = w.result(stack).await;
            client
                .get_result(request(participation::GetResultRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ListResults" => client
            .list_results(request(participation::ListResultsRequest {}, token))
            .await
            .map(|_| ()),
        "GetParticipationSettings" => client
            .get_participation_settings(request(
                participation::GetParticipationSettingsRequest {},
                token,
            ))
            .await
            .map(|_| ()),
        // The platform's defaults, so that setting them changes no other cell.
        "UpdateParticipationSettings" => client
            .update_participation_settings(request(
                participation::UpdateParticipationSettingsRequest {
                    settings: Some(participation::ParticipationSettings {
                        petition_signing_assurance: identity::AssuranceLevel::VerifiedInPerson
                            as i32,
                        petition_collecting_days: 90,
                        association_min_age_months: 36,
                        proposal_support_threshold: 100,
                        comment_report_threshold: 3,
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RegisterAssociation" => client
            .register_association(request(
                participation::RegisterAssociationRequest {
                    association: Some(participation::Association {
                        name: "Les amis du parc".into(),
                        registration_number: uuid::Uuid::now_v7().to_string(),
                        founding_date: "2015-03-01".into(),
                        representative_id: uuid::Uuid::now_v7().to_string(),
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListAssociations" => client
            .list_associations(request(participation::ListAssociationsRequest {}, token))
            .await
            .map(|_| ()),
        "CreateBudget" => client
            .create_budget(request(
                participation::CreateBudgetRequest {
                    budget: Some(participation::Budget {
                        title: "Un budget".into(),
                        total_dirhams: 500,
                        voting_rule: participation::BudgetVotingRule::AtMostK as i32,
                        max_projects: 2,
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetBudget" => {
            let (id, _) = w.budget(stack, "proposing").await;
            client
                .get_budget(request(participation::GetBudgetRequest { id }, token))
                .await
                .map(|_| ())
        }
        "ListBudgets" => client
            .list_budgets(request(participation::ListBudgetsRequest {}, token))
            .await
            .map(|_| ()),
        "AdvanceBudgetPhase" => {
            let (id, _) = w.budget(stack, "proposing").await;
            client
                .advance_budget_phase(request(
                    participation::AdvanceBudgetPhaseRequest {
                        id,
                        phase: participation::BudgetPhase::Reviewing as i32,
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ProposeBudgetProject" => {
            let (budget_id, _) = w.budget(stack, "proposing").await;
            client
                .propose_budget_project(request(
                    participation::ProposeBudgetProjectRequest {
                        budget_id,
                        request_id: uuid::Uuid::now_v7().to_string(),
                        project: Some(participation::BudgetProject {
                            title: "Une fontaine".into(),
                            description: "Sur la place.".into(),
                            cost_dirhams: 300,
                            ..Default::default()
                        }),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ListBudgetProjects" => {
            let (budget_id, _) = w.budget(stack, "proposing").await;
            client
                .list_budget_projects(request(
                    participation::ListBudgetProjectsRequest { budget_id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ReviewBudgetProject" => {
            let (_, id) = w.budget(stack, "reviewing").await;
            client
                .review_budget_project(request(
                    participation::ReviewBudgetProjectRequest {
                        id,
                        feasible: true,
                        cost_dirhams: 120,
                        note: "Devis reçu.".into(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "CastBudgetBallot" => {
            let (budget_id, project) = w.budget(stack, "voting").await;
            client
                .cast_budget_ballot(request(
                    participation::CastBudgetBallotRequest {
                        budget_id,
                        project_ids: vec![project],
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "GetBudgetResults" => {
            let (budget_id, _) = w.budget(stack, "results").await;
            client
                .get_budget_results(request(
                    participation::GetBudgetResultsRequest { budget_id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        other => panic!("no call for {other}"),
    }
}

async fn matrix(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PMX", 3).await;
    let (_, other_admin) = stack.create_commune("PMO", 3).await;
    let (_, author) = stack.register_citizen("PMX", "Amal", Language::Fr).await;
    let (_, citizen) = stack.register_citizen("PMX", "Brahim", Language::Fr).await;
    let mut signers = Vec::new();
    for name in ["v1", "v2", "v3"] {
        let (id, _) = stack.register_citizen("PMX", name, Language::Ar).await;
        signers.push(
            stack
                .verify_in_person(&admin, &id, &format!("{name}@pmx.test"))
                .await,
        );
    }
    let (resident_id, _) = stack
        .register_citizen("PMX", "Verified", Language::Ar)
        .await;
    let verified = stack
        .verify_in_person(&admin, &resident_id, "verified@pmx.test")
        .await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@pmx.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    let officer = stack
        .create_staff(&admin, "officer@pmx.test", &[identity::Role::CaseOfficer])
        .await;
    let moderator = stack
        .create_staff(&admin, "moderator@pmx.test", &[identity::Role::Moderator])
        .await;
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let service = stack
        .identity()
        .issue_service_token(identity::IssueServiceTokenRequest {
            client_id: "notification".into(),
            client_secret: "dev-notification-secret-change-me".into(),
            audience: "participation".into(),
        })
        .await
        .expect("a service token")
        .into_inner()
        .access_token;
    let tokens = [
        String::new(),
        author.clone(),
        verified,
        citizen,
        secretary.clone(),
        officer,
        moderator,
        admin,
        other_admin,
        platform,
        service,
    ];
    let world = World {
        author,
        signers,
        secretary,
    };
    let citizens = ["author", "verified_resident", "citizen"];
    let people_of_pmx = [
        "author",
        "verified_resident",
        "citizen",
        "council_secretary",
        "case_officer",
        "moderator",
        "admin",
    ];
    let bureau = ["council_secretary", "admin"];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("CreatePetition", citizens.to_vec()),
        ("GetPetition", people_of_pmx.to_vec()),
        (
            "ListPetitions",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        // Signing needs a resident verified at the desk (the author is not).
        ("SignPetition", vec!["verified_resident"]),
        ("PublishPetition", vec!["author"]),
        ("SubmitPetition", vec!["author"]),
        ("ReviewPetition", bureau.to_vec()),
        ("DecidePetitionAdmissibility", bureau.to_vec()),
        ("AnswerPetition", bureau.to_vec()),
        (
            "ListPetitionSignatories",
            vec!["author", "council_secretary"],
        ),
        ("CreateProposal", citizens.to_vec()),
        ("GetProposal", people_of_pmx.to_vec()),
        (
            "ListProposals",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("SupportProposal", citizens.to_vec()),
        ("WithdrawProposalSupport", citizens.to_vec()),
        ("AnswerProposal", bureau.to_vec()),
        ("FollowProposal", citizens.to_vec()),
        (
            "CreateConsultation",
            [&bureau[..], &["other_admin"]].concat(),
        ),
        ("GetConsultation", people_of_pmx.to_vec()),
        (
            "ListConsultations",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("RespondToConsultation", citizens.to_vec()),
        ("GetConsultationResults", people_of_pmx.to_vec()),
        ("ExportConsultationResponses", bureau.to_vec()),
        ("AddComment", people_of_pmx.to_vec()),
        (
            "ListComments",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("ReportComment", people_of_pmx.to_vec()),
        ("ModerateComment", vec!["moderator"]),
        ("CreateResult", bureau.to_vec()),
        ("UpdateResult", bureau.to_vec()),
        ("GetResult", people_of_pmx.to_vec()),
        (
            "ListResults",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        // Every commune's people read their own commune's rules; its administrator sets them.
        (
            "GetParticipationSettings",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("UpdateParticipationSettings", vec!["admin", "other_admin"]),
        ("RegisterAssociation", vec!["admin", "other_admin"]),
        (
            "ListAssociations",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("CreateBudget", [&bureau[..], &["other_admin"]].concat()),
        ("GetBudget", people_of_pmx.to_vec()),
        (
            "ListBudgets",
            [&people_of_pmx[..], &["other_admin"]].concat(),
        ),
        ("AdvanceBudgetPhase", bureau.to_vec()),
        ("ProposeBudgetProject", citizens.to_vec()),
        ("ListBudgetProjects", people_of_pmx.to_vec()),
        ("ReviewBudgetProject", bureau.to_vec()),
        // A budget's voters are verified in person unless it says otherwise.
        ("CastBudgetBallot", vec!["verified_resident"]),
        ("GetBudgetResults", people_of_pmx.to_vec()),
    ];
    // Every RPC of the service has its row (a new RPC without one fails here).
    let descriptors = <prost_types::FileDescriptorSet as prost::Message>::decode(
        jamaa_proto::FILE_DESCRIPTOR_SET,
    )
    .expect("the descriptor set");
    let methods: BTreeSet<String> = descriptors
        .file
        .iter()
        .flat_map(|file| &file.service)
        .filter(|service| service.name() == "ParticipationService")
        .flat_map(|service| &service.method)
        .map(|method| method.name().to_string())
        .collect();
    let covered: BTreeSet<String> = expected.iter().map(|(rpc, _)| rpc.to_string()).collect();
    assert_eq!(methods, covered, "every participation RPC has a row");
    let mut wrong = Vec::new();
    for (rpc, allowed) in &expected {
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        for (caller, token) in CALLERS.iter().zip(tokens.iter()) {
            let outcome = call(&stack, rpc, token, &world).await;
            if outcome.is_ok() != allowed.contains(caller) {
                wrong.push(format!("{rpc} by {caller}: {outcome:?}"));
            }
            if let Err(status) = &outcome {
                let refusal = matches!(
                    status.code(),
                    Code::Unauthenticated | Code::PermissionDenied | Code::NotFound
                );
                if !refusal {
                    wrong.push(format!("{rpc} by {caller} failed otherwise: {status:?}"));
                }
                if *caller == "nobody" && status.code() != Code::Unauthenticated {
                    wrong.push(format!("{rpc} by nobody: {status:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    stack.stop().await;
}
