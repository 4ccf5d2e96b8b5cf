//! Accountability through gRPC on both backends: the commune records what it does about a
//! proposal, with dated progress updates that the author and the followers hear of.

use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, authorized, spawn_stack};
use tonic::Code;

crate::on_both_backends!(progress_reaches_the_author_and_followers, results);

async fn results(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("RES", 3).await;
    let (_, author) = stack.register_citizen("RES", "Hanane", Language::Fr).await;
    let (_, follower) = stack.register_citizen("RES", "Anas", Language::Fr).await;
    let proposal = stack
        .participation()
        .create_proposal(authorized(
            participation::CreateProposalRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                proposal: Some(participation::Proposal {
                    title: "Un jardin partagé".into(),
                    body: "Sur le terrain vague.".into(),
                    category: "green-spaces".into(),
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
    let draft = participation::WorkResult {
        subject: participation::CommentSubject::Proposal as i32,
        subject_id: proposal.id.clone(),
        title: "Le jardin de la rue 12".into(),
        ..Default::default()
    };
    let refused = stack
        .participation()
        .create_result(authorized(
            participation::CreateResultRequest {
                result: Some(draft.clone()),
            },
            &author,
        ))
        .await
        .expect_err("citizens do not record results");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let result = stack
        .participation()
        .create_result(authorized(
            participation::CreateResultRequest {
                result: Some(draft),
            },
            &admin,
        ))
        .await
        .expect("recorded")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        (result.progress, result.status),
        (0, participation::ResultStatus::Planned as i32)
    );
    let update = |progress: i32| {
        let mut client = stack.participation();
        let (id, admin) = (result.id.clone(), admin.clone());
        async move {
            client
                .update_result(authorized(
                    participation::UpdateResultRequest {
                        id,
                        progress,
                        status: participation::ResultStatus::InProgress as i32,
                        note: "Les plantations ont commencé.".into(),
                    },
                    &admin,
                ))
                .await
        }
    };
    assert_eq!(
        update(120).await.expect_err("over 100").code(),
        Code::InvalidArgument
    );
    let updated = update(40)
        .await
        .expect("updated")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(updated.progress, 40);
    assert_eq!(updated.updates.len(), 1);
    for token in [&author, &follower] {
        let notice = stack
            .wait_for_notification(token, "Les plantations ont commencé.")
            .await;
        assert!(notice.title.contains("40 %"), "{notice:?}");
    }
    let listed = stack
        .participation()
        .list_results(authorized(participation::ListResultsRequest {}, &follower))
        .await
        .expect("public to the commune")
        .into_inner()
        .results;
    assert_eq!(listed.len(), 1);
    stack.create_commune("RET", 3).await;
    let (_, stranger) = stack.register_citizen("RET", "Ziad", Language::Ar).await;
    let hidden = stack
        .participation()
        .get_result(authorized(
            participation::GetResultRequest {
                id: result.id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("another commune's result");
    assert_eq!(hidden.code(), Code::NotFound);
    stack.stop().await;
}
