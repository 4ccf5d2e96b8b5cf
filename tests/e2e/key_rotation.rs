//! Signing-key rotation: the next key is published before it signs; tokens signed before and
//! after the rotation both verify (at identity and at another service) until they expire.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{
    Backend, Options, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, authorized, spawn_stack_with,
};
use tonic::Code;

crate::on_both_backends!(tokens_from_before_and_after_a_rotation_verify, rotation);

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("a kid")
}

async fn public_kids(stack: &jamaa_tests::TestStack) -> Vec<String> {
    stack
        .identity()
        .list_public_keys(identity::ListPublicKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys
        .into_iter()
        .map(|key| key.kid)
        .collect()
}

/// The token verifies at identity and at service-request.
async fn verifies(stack: &jamaa_tests::TestStack, token: &str) {
    stack
        .identity()
        .get_current_user(authorized(identity::GetCurrentUserRequest {}, token))
        .await
        .expect("identity accepts the token");
    stack
        .requests()
        .list_requests(authorized(requests::ListRequestsRequest::default(), token))
        .await
        .expect("service-request accepts the token");
}

async fn rotation(backend: Backend) {
    let options = Options {
        extra_env: vec![(
            "JAMAA__IDENTITY__SIGNING_KEY_LEAD_SECONDS".into(),
            "1".into(),
        )],
        ..Options::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    stack.create_commune("ROT", 3).await;
    let (_, citizen) = stack.register_citizen("ROT", "Nadia", Language::Fr).await;
    let before = kid(&citizen);
    assert_eq!(public_kids(&stack).await, vec![before.clone()]);

    // Only a platform administrator rotates.
    let denied = stack
        .identity()
        .rotate_signing_key(authorized(identity::RotateSigningKeyRequest {}, &citizen))
        .await
        .expect_err("a citizen cannot rotate keys");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let rotated = stack
        .identity()
        .rotate_signing_key(authorized(identity::RotateSigningKeyRequest {}, &platform))
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.kid, before);

    // Published at once, before it signs.
    let published = public_kids(&stack).await;
    assert!(
        published.contains(&before) && published.contains(&rotated.kid),
        "{published:?}"
    );

    // Within the lead and a reload, new tokens carry the new kid.
    let mut after = String::new();
    for _ in 0..40 {
        after = stack.login("nadia@rot.test", "citizen-password-1").await;
        if kid(&after) == rotated.kid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        kid(&after),
        rotated.kid,
        "tokens are signed with the new key"
    );

    // Both the token from before and the one from after verify everywhere.
    verifies(&stack, &citizen).await;
    verifies(&stack, &after).await;
    // The old key stays published while tokens it signed may live.
    assert!(public_kids(&stack).await.contains(&before));
    stack.stop().await;
}
