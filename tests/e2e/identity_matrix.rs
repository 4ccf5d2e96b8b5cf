//! The authorization matrix of identity: every RPC that needs a caller, called by every kind of
//! caller — nobody, a citizen, each staff role, an administrator of the commune and of another
//! commune, a platform administrator, a service — on resources of one commune. Each cell is
//! either let through (the call succeeds, or fails on its input) or refused (no caller,
//! PERMISSION_DENIED, or NOT_FOUND for another commune's resources). Every RPC of the service
//! has a row, or is named as public or checked in another scenario.

use std::collections::BTreeSet;

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{
    Backend, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, TestStack, authorized, spawn_stack,
};
use tonic::Code;

crate::on_both_backends!(every_identity_rpc_by_every_caller, matrix);

const CALLERS: [&str; 9] = [
    "nobody",
    "citizen",
    "reception_agent",
    "case_officer",
    "council_secretary",
    "admin",
    "other_admin",
    "platform_admin",
    "service",
];

/// The resources the calls name, all in commune MTX.
struct Targets {
    commune_id: String,
    citizen_id: String,
    staff_id: String,
    /// An API key of MTX (revoking it again changes nothing).
    api_key_id: String,
}

fn request<T>(message: T, token: &str) -> tonic::Request<T> {
    if token.is_empty() {
        tonic::Request::new(message)
    } else {
        authorized(message, token)
    }
}

/// Makes call `rpc` as the holder of `token`; `Ok` when let through.
async fn call(stack: &TestStack, rpc: &str, token: &str, t: &Targets) -> Result<(), tonic::Status> {
    let mut client = stack.identity();
    let result = match rpc {
        "CreateCommune" => client
            .create_commune(request(
                identity::CreateCommuneRequest {
                    code: "MTXNEW".into(),
                    name: Some(LocalizedText {
                        fr: "Nouvelle".into(),
                        ..Default::default()
                    }),
                    population: 1000,
                    admin_email: "admin@mtxnew.test".into(),
                    admin_password: "admin-password-1".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "UpdateCommune" => client
            .update_commune(request(
                identity::UpdateCommuneRequest {
                    commune: Some(identity::Commune {
                        code: "MTX".into(),
                        region: "Souss-Massa".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(jamaa_proto::FieldMask {
                        paths: vec!["region".into()],
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CreateStaffMember" => client
            .create_staff_member(request(
                identity::CreateStaffMemberRequest {
                    email: format!("new-{}@mtx.test", uuid::Uuid::now_v7().simple()),
                    password: "staff-password-1".into(),
                    display_name: "New".into(),
                    preferred_language: 0,
                    roles: vec![identity::Role::Moderator as i32],
                },
                token,
            ))
            .await
            .map(|_| ()),
        "DisableUser" => client
            .disable_user(request(
                identity::DisableUserRequest {
                    user_id: t.citizen_id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "VerifyInPerson" => client
            .verify_in_person(request(
                identity::VerifyInPersonRequest {
                    user_id: t.citizen_id.clone(),
                    national_id: "MX123456".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CreateApiKey" => client
            .create_api_key(request(
                identity::CreateApiKeyRequest {
                    client_name: "Another app".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListApiKeys" => client
            .list_api_keys(request(identity::ListApiKeysRequest {}, token))
            .await
            .map(|_| ()),
        "RevokeApiKey" => client
            .revoke_api_key(request(
                identity::RevokeApiKeyRequest {
                    id: t.api_key_id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListAuditEntries" => client
            .list_audit_entries(request(
                identity::ListAuditEntriesRequest {
                    commune_id: t.commune_id.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CheckAuditChain" => client
            .check_audit_chain(request(
                identity::CheckAuditChainRequest {
                    commune_id: t.commune_id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RotateSigningKey" => client
            .rotate_signing_key(request(identity::RotateSigningKeyRequest {}, token))
            .await
            .map(|_| ()),
        "CreateDepartment" => client
            .create_department(request(
                identity::CreateDepartmentRequest {
                    code: "ROADS".into(),
                    name: Some(LocalizedText {
                        fr: "Voirie".into(),
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "InviteStaffMember" => client
            .invite_staff_member(request(
                identity::InviteStaffMemberRequest {
                    email: format!("invitee-{}@mtx.test", uuid::Uuid::now_v7().simple()),
                    display_name: "Invitee".into(),
                    preferred_language: 0,
                    roles: vec![identity::RoleGrant {
                        role: identity::Role::Moderator as i32,
                        department_id: String::new(),
                    }],
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GrantRole" => client
            .grant_role(request(
                identity::GrantRoleRequest {
                    user_id: t.staff_id.clone(),
                    grant: Some(identity::RoleGrant {
                        role: identity::Role::Moderator as i32,
                        department_id: String::new(),
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RevokeRole" => client
            .revoke_role(request(
                identity::RevokeRoleRequest {
                    user_id: t.staff_id.clone(),
                    role: identity::Role::Moderator as i32,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetContactDetails" => client
            .get_contact_details(request(
                identity::GetContactDetailsRequest {
                    user_ids: vec![t.citizen_id.clone()],
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ResetSecondFactor" => client
            .reset_second_factor(request(
                identity::ResetSecondFactorRequest {
                    user_id: t.staff_id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetCurrentUser" => client
            .get_current_user(request(identity::GetCurrentUserRequest {}, token))
            .await
            .map(|_| ()),
        "ExportPersonalData" => client
            .export_personal_data(request(identity::ExportPersonalDataRequest {}, token))
            .await
            .map(|_| ()),
        "SetPhoneNumber" => client
            .set_phone_number(request(
                identity::SetPhoneNumberRequest {
                    phone_number: "0612345678".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        // A wrong code (INVALID_ARGUMENT) once the number is set, or no number to verify.
        "VerifyPhoneNumber" => client
            .verify_phone_number(request(
                identity::VerifyPhoneNumberRequest {
                    code: "000000".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RemovePhoneNumber" => client
            .remove_phone_number(request(identity::RemovePhoneNumberRequest {}, token))
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    };
    match result {
        Ok(()) => Ok(()),
        // Let through, then stopped by its input or the resource's state.
        Err(status)
            if matches!(
                status.code(),
                Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition
            ) =>
        {
            Ok(())
        }
        Err(status) => Err(status),
    }
}

async fn matrix(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (commune_id, admin) = stack.create_commune("MTX", 3).await;
    let (_, other_admin) = stack.create_commune("MTO", 3).await;
    let (citizen_id, citizen) = stack.register_citizen("MTX", "Amina", Language::Fr).await;
    let staff = |email: &'static str, role: identity::Role| {
        let stack = &stack;
        let admin = admin.clone();
        async move { stack.create_staff(&admin, email, &[role]).await }
    };
    let agent = staff("agent@mtx.test", identity::Role::ReceptionAgent).await;
    let officer = staff("officer@mtx.test", identity::Role::CaseOfficer).await;
    let secretary = staff("secretary@mtx.test", identity::Role::CouncilSecretary).await;
    let staff_id = jamaa_tests::token_claims(&secretary)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let service = stack
        .identity()
        .issue_service_token(identity::IssueServiceTokenRequest {
            client_id: "notification".into(),
            client_secret: "dev-notification-secret-change-me".into(),
            audience: "identity".into(),
        })
        .await
        .expect("a service token")
        .into_inner()
        .access_token;
    let api_key_id = stack
        .identity()
        .create_api_key(authorized(
            identity::CreateApiKeyRequest {
                client_name: "Open311 app".into(),
            },
            &admin,
        ))
        .await
        .expect("an API key")
        .into_inner()
        .api_key
        .unwrap_or_default()
        .id;
    let tokens = [
        String::new(),
        citizen,
        agent,
        officer,
        secretary,
        admin,
        other_admin,
        platform,
        service,
    ];
    let targets = Targets {
        commune_id,
        citizen_id,
        staff_id,
        api_key_id,
    };
    let staff_of_mtx = [
        "reception_agent",
        "case_officer",
        "council_secretary",
        "admin",
    ];
    let people = [
        "citizen",
        "reception_agent",
        "case_officer",
        "council_secretary",
        "admin",
        "other_admin",
        "platform_admin",
    ];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("CreateCommune", vec!["platform_admin"]),
        ("UpdateCommune", vec!["admin", "platform_admin"]),
        // Each administrator adds staff to their own commune.
        ("CreateStaffMember", vec!["admin", "other_admin"]),
        ("CreateDepartment", vec!["admin", "other_admin"]),
        ("InviteStaffMember", vec!["admin", "other_admin"]),
        ("VerifyInPerson", vec!["reception_agent", "admin"]),
        ("GrantRole", vec!["admin"]),
        ("RevokeRole", vec!["admin"]),
        (
            "ListAuditEntries",
            [&staff_of_mtx[..], &["platform_admin"]].concat(),
        ),
        ("CheckAuditChain", vec!["admin", "platform_admin"]),
        ("RotateSigningKey", vec!["platform_admin"]),
        ("GetContactDetails", vec!["service"]),
        // Each administrator manages their own commune's keys.
        ("CreateApiKey", vec!["admin", "other_admin"]),
        ("ListApiKeys", vec!["admin", "other_admin"]),
        ("RevokeApiKey", vec!["admin"]),
        ("ResetSecondFactor", vec!["admin"]),
        ("GetCurrentUser", people.to_vec()),
        ("ExportPersonalData", people.to_vec()),
        // Each person their own number; services and applications have none.
        ("SetPhoneNumber", people.to_vec()),
        ("VerifyPhoneNumber", people.to_vec()),
        ("RemovePhoneNumber", people.to_vec()),
        // Last: it disables the citizen.
        ("DisableUser", vec!["admin", "platform_admin"]),
    ];
    // Every RPC of the service has its row here or is named below with where its callers are
    // checked (a new RPC in neither fails here).
    let elsewhere: BTreeSet<&str> = [
        // Public: anyone may call them.
        "GetCommune",
        "RegisterCitizen",
        "Login",
        "RefreshSession",
        "Logout",
        "ListPublicKeys",
        "RequestPasswordReset",
        "ResetPassword",
        "ListDepartments",
        "AcceptInvitation",
        "IssueServiceToken",
        "ExchangeApiKey",
        // The caller's own account: assurance.rs, passwords.rs, second_factor.rs, privacy.rs.
        "SendVerificationCode",
        "VerifyContact",
        "ChangePassword",
        "EnrollTotp",
        "ConfirmTotp",
        "EraseAccount",
        // residences.rs: by the citizen; confirmed by the commune's desk only.
        "DeclareResidence",
        "ConfirmResidence",
    ]
    .into_iter()
    .collect();
    let descriptors = <prost_types::FileDescriptorSet as prost::Message>::decode(
        jamaa_proto::FILE_DESCRIPTOR_SET,
    )
    .expect("the descriptor set");
    let methods: BTreeSet<String> = descriptors
        .file
        .iter()
        .flat_map(|file| &file.service)
        .filter(|service| service.name() == "IdentityService")
        .flat_map(|service| &service.method)
        .map(|method| method.name().to_string())
        .collect();
    let covered: BTreeSet<String> = expected
        .iter()
        .map(|(rpc, _)| rpc.to_string())
        .chain(elsewhere.iter().map(|rpc| rpc.to_string()))
        .collect();
    assert_eq!(
        methods, covered,
        "every identity RPC has a row (or is named as checked elsewhere)"
    );
    let mut wrong = Vec::new();
    for (rpc, allowed) in &expected {
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        for (caller, token) in CALLERS.iter().zip(tokens.iter()) {
            let outcome = call(&stack, rpc, token, &targets).await;
            let let_through = outcome.is_ok();
            if let_through != allowed.contains(caller) {
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
