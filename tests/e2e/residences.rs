//! A citizen of one commune who also resides in another: the declared residence counts once that
//! commune's desk confirms it; then they sign that commune's petitions.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, authorized, spawn_stack, token_claims};
use tonic::Code;

crate::on_both_backends!(a_second_residence_counts_once_confirmed, residences);

async fn residences(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, home_admin) = stack.create_commune("RSA", 3).await;
    let (other_id, other_admin) = stack.create_commune("RSB", 3).await;
    let other_desk = stack
        .create_staff(
            &other_admin,
            "desk@rsb.test",
            &[identity::Role::ReceptionAgent],
        )
        .await;
    let (karim_id, _) = stack.register_citizen("RSA", "Karim", Language::Fr).await;
    let karim = stack
        .verify_in_person(&home_admin, &karim_id, "karim@rsa.test")
        .await;
    let (_, leila) = stack.register_citizen("RSB", "Leila", Language::Ar).await;
    let petition = stack
        .participation()
        .create_petition(authorized(
            participation::CreatePetitionRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                title: "Un marché couvert".into(),
                body: "Nous demandons un marché couvert au centre.".into(),
                draft: false,
                ..Default::default()
            },
            &leila,
        ))
        .await
        .expect("a petition in RSB")
        .into_inner()
        .petition
        .unwrap_or_default();
    let sign = |token: String| {
        let stack = &stack;
        let petition_id = petition.id.clone();
        async move {
            stack
                .participation()
                .sign_petition(authorized(
                    participation::SignPetitionRequest { petition_id },
                    &token,
                ))
                .await
        }
    };
    let refused = sign(karim.clone())
        .await
        .expect_err("not a resident of RSB");
    assert_eq!(refused.code(), Code::NotFound);

    // Declared, not yet confirmed: still not a resident there.
    let declare = |code: &'static str| {
        let stack = &stack;
        let karim = karim.clone();
        async move {
            stack
                .identity()
                .declare_residence(authorized(
                    identity::DeclareResidenceRequest {
                        commune_code: code.into(),
                    },
                    &karim,
                ))
                .await
        }
    };
    let home = declare("RSA").await.expect_err("his own commune");
    assert!(home.message().contains("commune_code"), "{home:?}");
    declare("RSB").await.expect("declared");
    let karim = stack.login("karim@rsa.test", "citizen-password-1").await;
    assert!(token_claims(&karim)["residences"].is_null());
    let refused = sign(karim.clone()).await.expect_err("not confirmed yet");
    assert_eq!(refused.code(), Code::NotFound);

    // Only RSB's desk confirms it.
    let confirm = |token: String| {
        let stack = &stack;
        let karim_id = karim_id.clone();
        async move {
            stack
                .identity()
                .confirm_residence(authorized(
                    identity::ConfirmResidenceRequest { user_id: karim_id },
                    &token,
                ))
                .await
        }
    };
    let elsewhere = confirm(home_admin.clone()).await.expect_err("RSA's admin");
    assert_eq!(elsewhere.code(), Code::NotFound);
    let citizen = confirm(leila.clone()).await.expect_err("a citizen");
    assert_eq!(citizen.code(), Code::PermissionDenied);
    let user = confirm(other_desk.clone())
        .await
        .expect("confirmed by RSB's desk")
        .into_inner()
        .user
        .unwrap_or_default();
    assert_eq!(
        user.other_residence_commune_ids,
        std::slice::from_ref(&other_id)
    );
    let karim = stack.login("karim@rsa.test", "citizen-password-1").await;
    assert_eq!(
        token_claims(&karim)["residences"],
        serde_json::json!([other_id])
    );
    let signed = sign(karim.clone())
        .await
        .expect("a resident of RSB signs")
        .into_inner();
    assert!(signed.newly_signed);
    stack.stop().await;
}
