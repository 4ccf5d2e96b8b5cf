//! Comments and moderation through gRPC on both backends: people of the commune comment on a
//! proposal; three reports (one per person) hide a comment pending review; a moderator sees it
//! with its reports and restores or hides it with a reason, each action recorded.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, spawn_stack};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

crate::on_both_backends!(reports_hide_and_moderators_decide, comments);

async fn list(stack: &TestStack, token: &str, proposal_id: &str) -> Vec<participation::Comment> {
    stack
        .participation()
        .list_comments(authorized(
            participation::ListCommentsRequest {
                subject: participation::CommentSubject::Proposal as i32,
                subject_id: proposal_id.into(),
            },
            token,
        ))
        .await
        .expect("list")
        .into_inner()
        .comments
}

async fn comments(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("CMT", 3).await;
    let moderator = stack
        .create_staff(&admin, "moderator@cmt.test", &[identity::Role::Moderator])
        .await;
    let (_, author) = stack.register_citizen("CMT", "Ilyas", Language::Fr).await;
    let mut reporters = Vec::new();
    for name in ["p1", "p2", "p3"] {
        reporters.push(stack.register_citizen("CMT", name, Language::Fr).await.1);
    }
    let proposal = stack
        .participation()
        .create_proposal(authorized(
            participation::CreateProposalRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                proposal: Some(participation::Proposal {
                    title: "Un terrain de sport".into(),
                    body: "Près du collège.".into(),
                    category: "sport".into(),
                    ..Default::default()
                }),
            },
            &author,
        ))
        .await
        .expect("proposal")
        .into_inner()
        .proposal
        .expect("proposal");
    let unknown = stack
        .participation()
        .add_comment(authorized(
            participation::AddCommentRequest {
                subject: participation::CommentSubject::Proposal as i32,
                subject_id: uuid::Uuid::now_v7().to_string(),
                body: "?".into(),
            },
            &author,
        ))
        .await
        .expect_err("no such proposal");
    assert_eq!(unknown.code(), Code::NotFound);
    let comment = stack
        .participation()
        .add_comment(authorized(
            participation::AddCommentRequest {
                subject: participation::CommentSubject::Proposal as i32,
                subject_id: proposal.id.clone(),
                body: "Bonne idée, mais il faut de l'éclairage.".into(),
            },
            &author,
        ))
        .await
        .expect("commented")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(list(&stack, &reporters[0], &proposal.id).await.len(), 1);

    // Three people report it (one of them twice): it is hidden pending review.
    let report = |token: &str| {
        let mut client = stack.participation();
        let (id, token) = (comment.id.clone(), token.to_string());
        async move {
            client
                .report_comment(authorized(
                    participation::ReportCommentRequest { id },
                    &token,
                ))
                .await
                .expect("reported")
        }
    };
    report(&reporters[0]).await;
    report(&reporters[0]).await;
    report(&reporters[1]).await;
    assert_eq!(
        list(&stack, &author, &proposal.id).await.len(),
        1,
        "two reporters are not enough"
    );
    report(&reporters[2]).await;
    assert!(
        list(&stack, &author, &proposal.id).await.is_empty(),
        "hidden from the public"
    );
    let seen = list(&stack, &moderator, &proposal.id).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].status,
        participation::CommentStatus::PendingReview as i32
    );
    assert_eq!(seen[0].report_count, 3);

    // Only moderators decide, with a reason.
    let moderate = |token: &str, hide: bool, reason: &str| {
        let mut client = stack.participation();
        let (id, token, reason) = (comment.id.clone(), token.to_string(), reason.to_string());
        async move {
            client
                .moderate_comment(authorized(
                    participation::ModerateCommentRequest { id, hide, reason },
                    &token,
                ))
                .await
        }
    };
    assert_eq!(
        moderate(&author, false, "mine")
            .await
            .expect_err("not a moderator")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        moderate(&moderator, false, "")
            .await
            .expect_err("no reason")
            .code(),
        Code::InvalidArgument
    );
    let restored = moderate(&moderator, false, "Critique légitime.")
        .await
        .expect("restored")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(
        restored.status,
        participation::CommentStatus::Visible as i32
    );
    assert_eq!(list(&stack, &author, &proposal.id).await.len(), 1);
    moderate(&moderator, true, "Propos injurieux signalés à nouveau.")
        .await
        .expect("hidden");
    assert!(list(&stack, &author, &proposal.id).await.is_empty());
    let db = Database::connect(stack.database_url("participation").as_str())
        .await
        .expect("participation database");
    let actions = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM moderation_actions".to_string(),
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(actions, 2, "every decision is recorded");

    // Another commune's people see none of it.
    stack.create_commune("CMU", 3).await;
    let (_, stranger) = stack.register_citizen("CMU", "Rania", Language::Ar).await;
    assert!(list(&stack, &stranger, &proposal.id).await.is_empty());
    stack.stop().await;
}
