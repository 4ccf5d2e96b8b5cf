//! Proposals through gRPC on both backends: a citizen proposes; 50 residents support it at once
//! and every support counts once (the same citizen twice counts once); a support is withdrawn
//! while open; at the threshold (45) the proposal goes to official review; the commune answers
//! (then supports close) and its author and followers hear of it.

use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, Options, TestStack, authorized, error_reason, spawn_stack_with};
use tonic::Code;

crate::on_both_backends!(supports_count_once_and_answers_reach_followers, proposals);

async fn support(
    stack: &TestStack,
    token: &str,
    id: &str,
) -> Result<participation::SupportProposalResponse, tonic::Status> {
    stack
        .participation()
        .support_proposal(authorized(
            participation::SupportProposalRequest { id: id.into() },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

async fn proposals(backend: Backend) {
    let options = Options {
        extra_env: vec![(
            "JAMAA__PARTICIPATION__PROPOSAL_SUPPORT_THRESHOLD".into(),
            "45".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PRO", 3).await;
    let (_, author) = stack.register_citizen("PRO", "Asmae", Language::Fr).await;
    let (_, follower) = stack.register_citizen("PRO", "Yassir", Language::Fr).await;

    let bad = stack
        .participation()
        .create_proposal(authorized(
            participation::CreateProposalRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                proposal: Some(participation::Proposal {
                    title: "Un jardin partagé".into(),
                    body: "Sur le terrain vague.".into(),
                    category: "Green Spaces!".into(),
                    ..Default::default()
                }),
            },
            &author,
        ))
        .await
        .expect_err("a bad category");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let proposal = stack
        .participation()
        .create_proposal(authorized(
            participation::CreateProposalRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                proposal: Some(participation::Proposal {
                    title: "Un jardin partagé".into(),
                    body: "Sur le terrain vague de la rue 12.".into(),
                    category: "green-spaces".into(),
                    latitude: 34.02,
                    longitude: -6.84,
                    ..Default::default()
                }),
            },
            &author,
        ))
        .await
        .expect("proposed")
        .into_inner()
        .proposal
        .expect("proposal");
    assert_eq!(proposal.status, participation::ProposalStatus::Open as i32);
    assert_eq!(proposal.support_threshold, 45);
    stack
        .participation()
        .follow_proposal(authorized(
            participation::FollowProposalRequest {
                id: proposal.id.clone(),
                follow: true,
            },
            &follower,
        ))
        .await
        .expect("followed");

    // A support withdrawn while open no longer counts.
    let first = support(&stack, &follower, &proposal.id)
        .await
        .expect("supported");
    assert!(first.newly_supported);
    let again = support(&stack, &follower, &proposal.id)
        .await
        .expect("again");
    assert!(!again.newly_supported);
    assert_eq!(again.proposal.expect("proposal").support_count, 1);
    let withdrawn = stack
        .participation()
        .withdraw_proposal_support(authorized(
            participation::WithdrawProposalSupportRequest {
                id: proposal.id.clone(),
            },
            &follower,
        ))
        .await
        .expect("withdrawn")
        .into_inner()
        .proposal
        .expect("proposal");
    assert_eq!(withdrawn.support_count, 0);

    // 50 residents at once: 50 supports, and the proposal goes to review.
    let mut supporters = Vec::new();
    for index in 0..50 {
        let (_, token) = stack
            .register_citizen("PRO", &format!("supporter{index}"), Language::Ar)
            .await;
        supporters.push(token);
    }
    let outcomes = futures_util::future::join_all(
        supporters
            .iter()
            .map(|token| support(&stack, token, &proposal.id)),
    )
    .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let reviewed = stack
        .participation()
        .get_proposal(authorized(
            participation::GetProposalRequest {
                id: proposal.id.clone(),
            },
            &author,
        ))
        .await
        .expect("get")
        .into_inner()
        .proposal
        .expect("proposal");
    assert_eq!(reviewed.support_count, 50);
    assert_eq!(
        reviewed.status,
        participation::ProposalStatus::InReview as i32
    );

    // Only staff answer; the author and the follower hear of it.
    let refused = stack
        .participation()
        .answer_proposal(authorized(
            participation::AnswerProposalRequest {
                id: proposal.id.clone(),
                status: participation::ProposalStatus::Accepted as i32,
                text: "x".into(),
            },
            &author,
        ))
        .await
        .expect_err("a citizen");
    assert_eq!(refused.code(), Code::PermissionDenied);
    stack
        .participation()
        .answer_proposal(authorized(
            participation::AnswerProposalRequest {
                id: proposal.id.clone(),
                status: participation::ProposalStatus::Accepted as i32,
                text: "Les travaux commencent en mars.".into(),
            },
            &admin,
        ))
        .await
        .expect("answered");
    let late = support(&stack, &author, &proposal.id)
        .await
        .expect_err("answered");
    assert_eq!(error_reason(&late), "NOT_COLLECTING");
    for token in [&author, &follower] {
        let notice = stack
            .wait_for_notification(token, "Les travaux commencent en mars.")
            .await;
        assert!(notice.body.contains("acceptée"), "{notice:?}");
    }
    // Another commune's citizens do not see it.
    stack.create_commune("PRQ", 3).await;
    let (_, stranger) = stack.register_citizen("PRQ", "Hamid", Language::Ar).await;
    let hidden = stack
        .participation()
        .get_proposal(authorized(
            participation::GetProposalRequest {
                id: proposal.id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("another commune's proposal");
    assert_eq!(hidden.code(), Code::NotFound);
    stack.stop().await;
}
