//! A commune's staff: departments; an invitation (event) accepted by the invitee, who sets a
//! password; roles granted (limited to a department) and revoked, reaching the token; every
//! change audited; other communes and non-administrators refused.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_testkit::SmtpSink;
use jamaa_tests::{Backend, TestStack, authorized, error_reason, token_claims};
use tonic::Code;

crate::on_both_backends!(invite_accept_grant_and_revoke, staff);

async fn department(
    stack: &TestStack,
    admin: &str,
    code: &str,
) -> Result<identity::Department, tonic::Status> {
    stack
        .identity()
        .create_department(authorized(
            identity::CreateDepartmentRequest {
                code: code.into(),
                name: Some(LocalizedText {
                    fr: code.to_lowercase(),
                    ..LocalizedText::default()
                }),
            },
            admin,
        ))
        .await
        .map(|response| response.into_inner().department.unwrap_or_default())
}

fn grant(role: identity::Role, department_id: &str) -> identity::RoleGrant {
    identity::RoleGrant {
        role: role as i32,
        department_id: department_id.into(),
    }
}

async fn invite(
    stack: &TestStack,
    admin: &str,
    email: &str,
    roles: Vec<identity::RoleGrant>,
) -> Result<identity::InviteStaffMemberResponse, tonic::Status> {
    stack
        .identity()
        .invite_staff_member(authorized(
            identity::InviteStaffMemberRequest {
                email: email.into(),
                display_name: "Hind".into(),
                preferred_language: Language::En as i32,
                roles,
            },
            admin,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The invitation code in the one e-mail sent to `address`, once it arrived.
async fn invitation_code(sink: &SmtpSink, address: &str) -> String {
    let text = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the invitation e-mail",
        || async { sink.texts_to(address).into_iter().next() },
    )
    .await;
    crate::email::word_after(&text, "Invitation code: ")
}

async fn accept(
    stack: &TestStack,
    token: &str,
) -> Result<identity::AcceptInvitationResponse, tonic::Status> {
    stack
        .identity()
        .accept_invitation(identity::AcceptInvitationRequest {
            token: token.into(),
            password: "my own staff secret".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn grant_role(
    stack: &TestStack,
    admin: &str,
    user_id: &str,
    grant: identity::RoleGrant,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .grant_role(authorized(
            identity::GrantRoleRequest {
                user_id: user_id.into(),
                grant: Some(grant),
            },
            admin,
        ))
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

async fn revoke_role(
    stack: &TestStack,
    admin: &str,
    user_id: &str,
    role: identity::Role,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .revoke_role(authorized(
            identity::RevokeRoleRequest {
                user_id: user_id.into(),
                role: role as i32,
            },
            admin,
        ))
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

async fn staff(backend: Backend) {
    let sink = SmtpSink::start().await.expect("an SMTP server on loopback");
    let options = jamaa_tests::Options {
        extra_env: vec![("JAMAA__NOTIFICATION__EMAIL__SMTP_URL".into(), sink.url())],
        ..Default::default()
    };
    let Some(stack) = jamaa_tests::spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("STF", 3).await;
    let (_, other_admin) = stack.create_commune("STO", 3).await;
    let officer = stack
        .create_staff(&admin, "officer@stf.test", &[identity::Role::CaseOfficer])
        .await;

    // Departments.
    let urbanism = department(&stack, &admin, "URBANISM")
        .await
        .expect("created");
    let civil = department(&stack, &admin, "CIVIL_STATUS")
        .await
        .expect("created");
    let elsewhere = department(&stack, &other_admin, "URBANISM")
        .await
        .expect("the same code in another commune");
    let taken = department(&stack, &admin, "URBANISM")
        .await
        .expect_err("taken");
    assert_eq!(taken.code(), Code::AlreadyExists);
    let bad = department(&stack, &admin, "urban planning")
        .await
        .expect_err("bad code");
    assert!(bad.message().contains("code"), "{bad:?}");
    let refused = department(&stack, &officer, "ROADS")
        .await
        .expect_err("officer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let (status, _, listed) = stack
        .http("GET", "/v1/communes/STF/departments", None, None)
        .await;
    assert_eq!(status, 200, "{listed}");
    let codes: Vec<&str> = listed["departments"]
        .as_array()
        .map(|all| all.iter().filter_map(|d| d["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(codes, ["CIVIL_STATUS", "URBANISM"]);

    // Invitations: checked roles and departments, administrators only.
    for (what, roles, field) in [
        (
            "another commune's department",
            vec![grant(identity::Role::CaseOfficer, &elsewhere.id)],
            "roles[0].department_id",
        ),
        (
            "a citizen role",
            vec![grant(identity::Role::Citizen, "")],
            "roles[0].role",
        ),
        ("no role", vec![], "roles"),
    ] {
        let refused = invite(&stack, &admin, "hind@stf.test", roles)
            .await
            .expect_err(what);
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}");
        assert!(refused.message().contains(field), "{what}: {refused:?}");
    }
    let refused = invite(
        &stack,
        &officer,
        "hind@stf.test",
        vec![grant(identity::Role::CaseOfficer, "")],
    )
    .await
    .expect_err("an officer invites");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let taken = invite(
        &stack,
        &admin,
        "officer@stf.test",
        vec![grant(identity::Role::CaseOfficer, "")],
    )
    .await
    .expect_err("the e-mail has an account");
    assert_eq!(taken.code(), Code::AlreadyExists);
    let invitation = invite(
        &stack,
        &admin,
        "hind@stf.test",
        vec![
            grant(identity::Role::CaseOfficer, &urbanism.id),
            grant(identity::Role::ReceptionAgent, ""),
        ],
    )
    .await
    .expect("invited");

    // The invitee accepts with the token the event carried.
    assert!(!invitation.invitation_id.is_empty());
    let token = invitation_code(&sink, "hind@stf.test").await;
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    let bad = accept(&stack, "not-the-token")
        .await
        .expect_err("bad token");
    assert_eq!(error_reason(&bad), "BAD_INVITATION");
    let accepted = accept(&stack, &token).await.expect("accepted");
    let hind = accepted.user.clone().unwrap_or_default();
    let claims = token_claims(&accepted.access_token);
    let roles = claims["roles"].to_string();
    assert!(
        roles.contains("case_officer") && roles.contains("reception_agent"),
        "{claims}"
    );
    assert_eq!(claims["departments"]["case_officer"], urbanism.id.as_str());
    assert_eq!(claims["commune_code"], "STF");
    let again = accept(&stack, &token).await.expect_err("used");
    assert_eq!(error_reason(&again), "BAD_INVITATION");
    stack.login("hind@stf.test", "my own staff secret").await;

    // Roles granted and revoked by the commune's administrator only.
    let user = grant_role(
        &stack,
        &admin,
        &hind.id,
        grant(identity::Role::DepartmentHead, &civil.id),
    )
    .await
    .expect("granted");
    assert!(user.role_grants.iter().any(|g| {
        g.role == identity::Role::DepartmentHead as i32 && g.department_id == civil.id
    }));
    let user = revoke_role(&stack, &admin, &hind.id, identity::Role::ReceptionAgent)
        .await
        .expect("revoked");
    assert!(
        !user
            .roles
            .contains(&(identity::Role::ReceptionAgent as i32))
    );
    revoke_role(&stack, &admin, &hind.id, identity::Role::ReceptionAgent)
        .await
        .expect("revoking again changes nothing");
    let token = stack.login("hind@stf.test", "my own staff secret").await;
    let claims = token_claims(&token);
    assert!(
        !claims["roles"].to_string().contains("reception_agent"),
        "{claims}"
    );
    assert_eq!(claims["departments"]["department_head"], civil.id.as_str());

    let (karim_id, _) = stack.register_citizen("STF", "Karim", Language::Ar).await;
    let admin_id = token_claims(&admin)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (what, caller, user_id, grant, code, reason) in [
        (
            "a citizen's account",
            &admin,
            karim_id.as_str(),
            grant(identity::Role::Moderator, ""),
            Code::FailedPrecondition,
            "NOT_STAFF",
        ),
        (
            "another commune's administrator",
            &other_admin,
            hind.id.as_str(),
            grant(identity::Role::Moderator, ""),
            Code::NotFound,
            "",
        ),
        (
            "a case officer",
            &officer,
            hind.id.as_str(),
            grant(identity::Role::Moderator, ""),
            Code::PermissionDenied,
            "",
        ),
        (
            "another commune's department",
            &admin,
            hind.id.as_str(),
            grant(identity::Role::Moderator, &elsewhere.id),
            Code::InvalidArgument,
            "",
        ),
    ] {
        let refused = grant_role(&stack, caller, user_id, grant)
            .await
            .expect_err(what);
        assert_eq!(refused.code(), code, "{what}: {refused:?}");
        if !reason.is_empty() {
            assert_eq!(error_reason(&refused), reason, "{what}");
        }
    }
    let own = revoke_role(&stack, &admin, &admin_id, identity::Role::CommuneAdmin)
        .await
        .expect_err("own admin role");
    assert_eq!(error_reason(&own), "CANNOT_REVOKE_OWN_ADMIN");

    // Every change is in the commune's audit log.
    let log = jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "the audit entries",
        || async {
            let entries = stack
                .identity()
                .list_audit_entries(authorized(
                    identity::ListAuditEntriesRequest {
                        page_size: 200,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner()
                .entries;
            entries
                .iter()
                .any(|e| e.action == "role.revoke")
                .then_some(entries)
        },
    )
    .await;
    for action in [
        "department.create",
        "staff.invite",
        "staff.accept_invitation",
        "role.grant",
        "role.revoke",
    ] {
        assert!(log.iter().any(|e| e.action == action), "{action} audited");
    }
    assert!(log.iter().any(|e| e.action == "role.grant"
        && e.target == format!("users/{}", hind.id)
        && e.detail_json.contains(&civil.id)));
    stack.stop().await;
}
