//! The gRPC face of identity: parse requests, check the caller, call [`Accounts`], map replies.

use std::sync::Arc;

use jamaa_auth::{Role, principal};
use jamaa_proto::identity::v1 as pb;
use jamaa_proto::identity::v1::identity_service_server::IdentityService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_server::status::FieldViolations;
use tonic::{Request, Response, Status};

use crate::accounts::{
    Account, Accounts, Identifier, NewAccount, NewCommune, Registration, Session, SignUpWith,
};
use crate::api_keys::ApiKeys;
use crate::audit::{self, Actor};
use crate::domain::{self, CommuneCode, DisplayName, Email, Password, PhoneNumber};
use crate::error::Error;
use crate::personal_data::NationalId;
use crate::service_clients::ServiceClients;
use crate::staff::{DepartmentCode, NewInvitation, RoleGrant};
use crate::storage::{audit_entry, commune, department};

pub struct IdentityGrpc {
    accounts: Arc<Accounts>,
    service_clients: Arc<ServiceClients>,
    api_keys: Arc<ApiKeys>,
}

impl IdentityGrpc {
    pub fn new(
        accounts: Arc<Accounts>,
        service_clients: Arc<ServiceClients>,
        api_keys: Arc<ApiKeys>,
    ) -> Self {
        IdentityGrpc {
            accounts,
            service_clients,
            api_keys,
        }
    }
}

/// The services that may read people's contact details.
const CONTACT_DETAILS_CLIENTS: &[&str] = &["notification"];

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    async fn create_commune(
        &self,
        request: Request<pb::CreateCommuneRequest>,
    ) -> Result<Response<pb::CreateCommuneResponse>, Status> {
        if !principal(&request)?.is_platform_admin() {
            return Err(Error::PermissionDenied(
                "only platform administrators create communes".into(),
            )
            .into());
        }
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let code = violations.check("code", CommuneCode::parse(&request.code));
        let name = violations.check("name", domain::parse_commune_name(request.name.as_ref()));
        if request.population < 0 {
            violations.add("population", "must not be negative");
        }
        if request.petition_signature_threshold < 0 {
            violations.add("petition_signature_threshold", "must not be negative");
        }
        let admin = parse_account(
            &mut violations,
            [
                "admin_email",
                "admin_password",
                "admin_display_name",
                "admin_language",
            ],
            &request.admin_email,
            &request.admin_password,
            if request.admin_display_name.trim().is_empty() {
                "Commune administrator"
            } else {
                &request.admin_display_name
            },
            request.admin_language,
        );
        let (Some(code), Some(name), Some(admin)) = (code, name, admin) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let threshold = domain::petition_threshold(
            request.population,
            request.has_arrondissements,
            request.petition_signature_threshold,
        );
        let (commune, admin) = self
            .accounts
            .create_commune(
                NewCommune {
                    code,
                    name,
                    population: request.population,
                    has_arrondissements: request.has_arrondissements,
                    petition_signature_threshold: threshold,
                    admin,
                },
                &actor,
            )
            .await?;
        Ok(Response::new(pb::CreateCommuneResponse {
            commune: Some(commune_to_proto(&commune)),
            admin: Some(account_to_proto(&admin)),
        }))
    }

    async fn get_commune(
        &self,
        request: Request<pb::GetCommuneRequest>,
    ) -> Result<Response<pb::GetCommuneResponse>, Status> {
        let request = request.into_inner();
        let code = CommuneCode::parse(&request.code)
            .map_err(|description| jamaa_server::status::invalid_argument("code", description))?;
        let commune = self.accounts.commune_by_code(&code).await?;
        Ok(Response::new(pb::GetCommuneResponse {
            commune: Some(commune_to_proto(&commune)),
        }))
    }

    async fn update_commune(
        &self,
        request: Request<pb::UpdateCommuneRequest>,
    ) -> Result<Response<pb::UpdateCommuneResponse>, Status> {
        let caller = principal(&request)?;
        let own_commune = if caller.is_platform_admin() {
            None
        } else {
            Some(caller.require_staff(&[Role::CommuneAdmin])?)
        };
        let actor = actor_of(&request);
        let request = request.into_inner();
        let Some(new) = request.commune else {
            return Err(jamaa_server::status::invalid_argument(
                "commune",
                "is required",
            ));
        };
        let paths: Vec<String> = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "update_mask",
                "name at least one field to change",
            ));
        }
        let code = CommuneCode::parse(&new.code).map_err(|description| {
            jamaa_server::status::invalid_argument("commune.code", description)
        })?;
        let mut commune = self.accounts.commune_by_code(&code).await?;
        if own_commune.is_some_and(|own| own != commune.id) {
            // Another commune is none of a commune administrator's business, not even its
            // existence.
            return Err(Error::CommuneNotFound(code.as_str().to_string()).into());
        }
        let mut violations = FieldViolations::new();
        for path in &paths {
            let field = format!("commune.{path}");
            match path.as_str() {
                "name" => {
                    if let Some(name) =
                        violations.check(&field, domain::parse_commune_name(new.name.as_ref()))
                    {
                        commune.name_ar = name.ar;
                        commune.name_fr = name.fr;
                        commune.name_en = name.en;
                        commune.name_tzm = name.tzm;
                    }
                }
                "population" => {
                    if new.population < 0 {
                        violations.add(field, "must not be negative");
                    }
                    commune.population = new.population;
                }
                "has_arrondissements" => commune.has_arrondissements = new.has_arrondissements,
                "petition_signature_threshold" => {
                    if new.petition_signature_threshold < 0 {
                        violations.add(field, "must not be negative");
                    }
                }
                "region" => commune.region = bounded_text(&mut violations, &field, &new.region),
                "languages" => {
                    let mut codes = Vec::new();
                    for raw in &new.languages {
                        match Language::try_from(*raw) {
                            Ok(language) if language != Language::Unspecified => {
                                if !codes.contains(&language.code()) {
                                    codes.push(language.code());
                                }
                            }
                            _ => violations.add(field.clone(), "holds a value that is no language"),
                        }
                    }
                    if codes.is_empty() {
                        violations.add(field, "must name at least one language");
                    }
                    commune.languages = codes.join(",");
                }
                "time_zone" => {
                    let zone = new.time_zone.trim();
                    let plausible = !zone.is_empty()
                        && zone.len() <= 64
                        && (zone == "UTC" || zone.contains('/'))
                        && zone
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
                    if !plausible {
                        violations.add(field, "must be an IANA time zone, e.g. Africa/Casablanca");
                    }
                    commune.time_zone = zone.to_string();
                }
                "contact_email" => {
                    if new.contact_email.trim().is_empty() {
                        commune.contact_email = String::new();
                    } else if let Some(email) =
                        violations.check(&field, Email::parse(&new.contact_email))
                    {
                        commune.contact_email = email.as_str().to_string();
                    }
                }
                "contact_phone" => {
                    let phone = new.contact_phone.trim();
                    if !phone
                        .chars()
                        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
                        || phone.len() > 32
                    {
                        violations.add(field, "must be a telephone number, e.g. +212 523 00 00 00");
                    }
                    commune.contact_phone = phone.to_string();
                }
                "address" => commune.address = bounded_text(&mut violations, &field, &new.address),
                "require_staff_mfa" => commune.require_staff_mfa = new.require_staff_mfa,
                _ => violations.add("update_mask", format!("{path} cannot be changed")),
            }
        }
        if paths.iter().any(|path| {
            matches!(
                path.as_str(),
                "population" | "has_arrondissements" | "petition_signature_threshold"
            )
        }) {
            let requested = if paths
                .iter()
                .any(|path| path == "petition_signature_threshold")
            {
                new.petition_signature_threshold
            } else {
                0
            };
            commune.petition_signature_threshold = domain::petition_threshold(
                commune.population,
                commune.has_arrondissements,
                requested.max(0),
            );
        }
        violations.into_result()?;
        let commune = self
            .accounts
            .update_commune(commune, &paths, &actor)
            .await?;
        Ok(Response::new(pb::UpdateCommuneResponse {
            commune: Some(commune_to_proto(&commune)),
        }))
    }

    async fn reset_second_factor(
        &self,
        request: Request<pb::ResetSecondFactorRequest>,
    ) -> Result<Response<pb::ResetSecondFactorResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let user_id = domain::parse_user_id(&request.get_ref().user_id).map_err(|description| {
            jamaa_server::status::invalid_argument("user_id", description)
        })?;
        self.accounts
            .reset_second_factor(commune_id, user_id, &actor)
            .await?;
        Ok(Response::new(pb::ResetSecondFactorResponse {}))
    }

    async fn declare_residence(
        &self,
        request: Request<pb::DeclareResidenceRequest>,
    ) -> Result<Response<pb::DeclareResidenceResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let actor = actor_of(&request);
        let code = CommuneCode::parse(&request.get_ref().commune_code).map_err(|description| {
            jamaa_server::status::invalid_argument("commune_code", description)
        })?;
        let account = self
            .accounts
            .declare_residence(user_id, &code, &actor)
            .await?;
        Ok(Response::new(pb::DeclareResidenceResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn confirm_residence(
        &self,
        request: Request<pb::ConfirmResidenceRequest>,
    ) -> Result<Response<pb::ConfirmResidenceResponse>, Status> {
        let commune_id =
            principal(&request)?.require_staff(&[Role::ReceptionAgent, Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let user_id = domain::parse_user_id(&request.get_ref().user_id).map_err(|description| {
            jamaa_server::status::invalid_argument("user_id", description)
        })?;
        let account = self
            .accounts
            .confirm_residence(commune_id, user_id, &actor)
            .await?;
        Ok(Response::new(pb::ConfirmResidenceResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn export_personal_data(
        &self,
        request: Request<pb::ExportPersonalDataRequest>,
    ) -> Result<Response<pb::ExportPersonalDataResponse>, Status> {
        let caller = principal(&request)?;
        if caller.service.is_some() {
            return Err(Error::PermissionDenied("a service has no personal data".into()).into());
        }
        let document = self
            .accounts
            .export_personal_data(caller.user_id, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::ExportPersonalDataResponse {
            json: document.to_string(),
        }))
    }

    async fn erase_account(
        &self,
        request: Request<pb::EraseAccountRequest>,
    ) -> Result<Response<pb::EraseAccountResponse>, Status> {
        let caller = principal(&request)?;
        if caller.service.is_some() {
            return Err(Error::PermissionDenied("a service has no account to erase".into()).into());
        }
        let user_id = caller.user_id;
        let actor = actor_of(&request);
        if request.get_ref().password.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "password",
                "is required, to confirm",
            ));
        }
        self.accounts
            .erase_account(user_id, &request.get_ref().password, &actor)
            .await
            .map_err(|error| match error {
                Error::WrongPassword => {
                    jamaa_server::status::invalid_argument("password", "is not your password")
                }
                other => other.into(),
            })?;
        Ok(Response::new(pb::EraseAccountResponse {}))
    }

    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let enrolment = self
            .accounts
            .enroll_totp(user_id, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::EnrollTotpResponse {
            secret: enrolment.secret_base32,
            otpauth_uri: enrolment.otpauth_uri,
        }))
    }

    async fn confirm_totp(
        &self,
        request: Request<pb::ConfirmTotpRequest>,
    ) -> Result<Response<pb::ConfirmTotpResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let code = request.get_ref().code.trim().to_string();
        if !domain::is_six_digits(&code) {
            return Err(jamaa_server::status::invalid_argument(
                "code",
                "must be the six digits the app shows",
            ));
        }
        let recovery_codes = self
            .accounts
            .confirm_totp(user_id, &code, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::ConfirmTotpResponse { recovery_codes }))
    }

    async fn register_citizen(
        &self,
        request: Request<pb::RegisterCitizenRequest>,
    ) -> Result<Response<pb::RegisterCitizenResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let commune = violations.check("commune_code", CommuneCode::parse(&request.commune_code));
        let sign_up = match parse_identifier(&mut violations, &request.email, &request.phone_number)
        {
            Some(Named::Email(email)) => violations
                .check("email", Email::parse(&email))
                .map(SignUpWith::Email),
            Some(Named::Phone(number)) => Some(SignUpWith::Phone(number)),
            None => None,
        };
        let account = parse_account_with(
            &mut violations,
            ["password", "display_name", "preferred_language"],
            sign_up,
            &request.password,
            &request.display_name,
            request.preferred_language,
        );
        let (Some(commune), Some(account)) = (commune, account) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let mut account = account;
        account.gender = match pb::Gender::try_from(request.gender) {
            Ok(pb::Gender::Female) => Some("female"),
            Ok(pb::Gender::Male) => Some("male"),
            Ok(pb::Gender::Unspecified) => None,
            Err(_) => {
                return Err(jamaa_server::status::invalid_argument(
                    "gender",
                    "must be GENDER_FEMALE, GENDER_MALE or left out",
                ));
            }
        };
        let (email, phone_number) = match &account.sign_up {
            SignUpWith::Email(email) => (email.as_str().to_string(), String::new()),
            SignUpWith::Phone(number) => (String::new(), number.as_str().to_string()),
        };
        let (display_name, language) =
            (account.display_name.as_str().to_string(), account.language);
        let user = match self
            .accounts
            .register_citizen(&commune, account, &actor)
            .await?
        {
            Registration::Created(account) => account_to_proto(&account),
            // Answered like a new account, so the answer tells nothing.
            Registration::Existing { commune } => pb::User {
                id: uuid::Uuid::now_v7().to_string(),
                commune_id: commune.id.to_string(),
                commune_code: commune.code,
                email,
                phone_number,
                display_name,
                preferred_language: language as i32,
                roles: vec![Role::Citizen.to_proto() as i32],
                create_time: Some(timestamp_from_millis(chrono::Utc::now().timestamp_millis())),
                assurance_level: jamaa_auth::AssuranceLevel::Registered.to_proto() as i32,
                role_grants: vec![pb::RoleGrant {
                    role: Role::Citizen.to_proto() as i32,
                    department_id: String::new(),
                }],
                ..Default::default()
            },
        };
        Ok(Response::new(pb::RegisterCitizenResponse {
            user: Some(user),
        }))
    }

    async fn create_staff_member(
        &self,
        request: Request<pb::CreateStaffMemberRequest>,
    ) -> Result<Response<pb::CreateStaffMemberResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let account = parse_account(
            &mut violations,
            ["email", "password", "display_name", "preferred_language"],
            &request.email,
            &request.password,
            &request.display_name,
            request.preferred_language,
        );
        let mut roles = Vec::new();
        for raw in &request.roles {
            match pb::Role::try_from(*raw).ok().and_then(Role::from_proto) {
                Some(role) if role.is_staff() => roles.push(role),
                _ => violations.add(
                    "roles",
                    "must hold only staff roles (not citizen or platform admin)",
                ),
            }
        }
        if request.roles.is_empty() {
            violations.add("roles", "at least one staff role is required");
        }
        let Some(account) = account else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        roles.dedup();
        let account = self
            .accounts
            .create_staff(commune_id, account, &roles, &actor)
            .await?;
        Ok(Response::new(pb::CreateStaffMemberResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let named = parse_identifier(&mut violations, &request.email, &request.phone_number);
        if request.password.is_empty() {
            violations.add("password", "is required");
        }
        let Some(named) = named else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let session = self
            .accounts
            .login(
                named.identifier(),
                &request.password,
                Some(request.second_factor_code.as_str()).filter(|code| !code.trim().is_empty()),
                &actor,
            )
            .await?;
        Ok(Response::new(pb::LoginResponse {
            user: Some(account_to_proto(&session.account)),
            ..session_to_proto(session)
        }))
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        if request.refresh_token.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "refresh_token",
                "is required",
            ));
        }
        let session = session_to_proto(
            self.accounts
                .refresh(&request.refresh_token, &actor)
                .await?,
        );
        Ok(Response::new(pb::RefreshSessionResponse {
            access_token: session.access_token,
            token_type: session.token_type,
            expires_in_seconds: session.expires_in_seconds,
            refresh_token: session.refresh_token,
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        if request.refresh_token.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "refresh_token",
                "is required",
            ));
        }
        self.accounts.logout(&request.refresh_token, &actor).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        let caller = principal(&request)?;
        let acting_commune = if caller.is_platform_admin() {
            None
        } else {
            Some(caller.require_staff(&[Role::CommuneAdmin])?)
        };
        let actor = actor_of(&request);
        let user_id = domain::parse_user_id(&request.get_ref().user_id).map_err(|description| {
            jamaa_server::status::invalid_argument("user_id", description)
        })?;
        let account = self
            .accounts
            .disable_user(&actor, acting_commune, user_id)
            .await?;
        Ok(Response::new(pb::DisableUserResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let account = self.accounts.account(user_id).await?;
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        if !principal(&request)?.is_platform_admin() {
            return Err(Error::PermissionDenied(
                "only platform administrators rotate signing keys".into(),
            )
            .into());
        }
        let (kid, activates_at) = self
            .accounts
            .rotate_signing_key(&actor_of(&request))
            .await?;
        Ok(Response::new(pb::RotateSigningKeyResponse {
            kid,
            activate_time: Some(timestamp_from_millis(activates_at.timestamp_millis())),
        }))
    }

    async fn list_public_keys(
        &self,
        _request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let keys = self
            .accounts
            .keys()
            .public_keys()
            .iter()
            .map(|key| pb::PublicKey {
                kid: key.kid.clone(),
                algorithm: "EdDSA".into(),
                curve: "Ed25519".into(),
                public_key: key.public_key.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListPublicKeysResponse { keys }))
    }

    async fn send_verification_code(
        &self,
        request: Request<pb::SendVerificationCodeRequest>,
    ) -> Result<Response<pb::SendVerificationCodeResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let expires_at = self.accounts.send_verification_code(user_id).await?;
        Ok(Response::new(pb::SendVerificationCodeResponse {
            expire_time: Some(timestamp_from_millis(expires_at.timestamp_millis())),
        }))
    }

    async fn verify_contact(
        &self,
        request: Request<pb::VerifyContactRequest>,
    ) -> Result<Response<pb::VerifyContactResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let code = request.get_ref().code.trim();
        if code.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "code",
                "is required",
            ));
        }
        if !domain::is_six_digits(code) {
            return Err(jamaa_server::status::invalid_argument(
                "code",
                "must be the six digits we sent",
            ));
        }
        let account = self
            .accounts
            .verify_contact(user_id, code, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::VerifyContactResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn set_phone_number(
        &self,
        request: Request<pb::SetPhoneNumberRequest>,
    ) -> Result<Response<pb::SetPhoneNumberResponse>, Status> {
        let user_id = person(&request)?;
        let actor = actor_of(&request);
        let number =
            PhoneNumber::parse(&request.get_ref().phone_number).map_err(|description| {
                jamaa_server::status::invalid_argument("phone_number", description)
            })?;
        let (account, code_expires_at) = self
            .accounts
            .set_phone_number(user_id, &number, &actor)
            .await?;
        Ok(Response::new(pb::SetPhoneNumberResponse {
            user: Some(account_to_proto(&account)),
            code_expire_time: code_expires_at
                .map(|at| timestamp_from_millis(at.timestamp_millis())),
        }))
    }

    async fn verify_phone_number(
        &self,
        request: Request<pb::VerifyPhoneNumberRequest>,
    ) -> Result<Response<pb::VerifyPhoneNumberResponse>, Status> {
        let user_id = person(&request)?;
        let code = request.get_ref().code.trim();
        if code.is_empty() {
            return Err(jamaa_server::status::invalid_argument(
                "code",
                "is required",
            ));
        }
        if !domain::is_six_digits(code) {
            return Err(jamaa_server::status::invalid_argument(
                "code",
                "must be the six digits we sent",
            ));
        }
        let account = self
            .accounts
            .verify_phone_number(user_id, code, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::VerifyPhoneNumberResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn remove_phone_number(
        &self,
        request: Request<pb::RemovePhoneNumberRequest>,
    ) -> Result<Response<pb::RemovePhoneNumberResponse>, Status> {
        let user_id = person(&request)?;
        let account = self
            .accounts
            .remove_phone_number(user_id, &actor_of(&request))
            .await?;
        Ok(Response::new(pb::RemovePhoneNumberResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let caller = principal(&request)?;
        let request = request.get_ref();
        let requested = parse_chain(&request.commune_id)?;
        let chain = if caller.is_platform_admin() {
            requested
        } else {
            let own = caller.commune()?;
            if !caller.is_staff_of(own) {
                return Err(Error::PermissionDenied(
                    "only the commune's staff read its audit log".into(),
                )
                .into());
            }
            if requested.is_some_and(|chain| chain != own) {
                return Err(Error::PermissionDenied(
                    "staff read only their own commune's audit log".into(),
                )
                .into());
            }
            Some(own)
        };
        let page = jamaa_server::PageRequest::parse(request.page_size, &request.page_token)?;
        let mut entries = self
            .accounts
            .audit_entries(chain, page.before, page.fetch_limit())
            .await?;
        let next_page_token = page.finish(&mut entries, |entry| entry.id);
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries.iter().map(audit_entry_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn check_audit_chain(
        &self,
        request: Request<pb::CheckAuditChainRequest>,
    ) -> Result<Response<pb::CheckAuditChainResponse>, Status> {
        let caller = principal(&request)?;
        let requested = parse_chain(&request.get_ref().commune_id)?;
        let chain = if caller.is_platform_admin() {
            requested.ok_or_else(|| {
                jamaa_server::status::invalid_argument(
                    "commune_id",
                    "name the chain to check: a commune id or \"platform\"",
                )
            })?
        } else {
            let own = caller.require_staff(&[Role::CommuneAdmin])?;
            if requested.is_some_and(|chain| chain != own) {
                return Err(Error::PermissionDenied(
                    "commune administrators check only their own commune's chain".into(),
                )
                .into());
            }
            own
        };
        let report = self.accounts.check_audit_chain(chain).await?;
        Ok(Response::new(pb::CheckAuditChainResponse {
            intact: report.first_broken_seq.is_none(),
            checked_entries: report.checked,
            first_broken_sequence: report.first_broken_seq.unwrap_or_default(),
            problem: report.problem,
            unsealed_entries: report.unsealed,
            head_hash: report.head_hash,
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let actor = actor_of(&request);
        let request = request.get_ref();
        let mut violations = FieldViolations::new();
        if request.current_password.is_empty() {
            violations.add("current_password", "is required");
        }
        let new = violations.check("new_password", Password::parse(&request.new_password));
        let Some(new) = new else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let session = session_to_proto(
            self.accounts
                .change_password(user_id, &request.current_password, new, &actor)
                .await?,
        );
        Ok(Response::new(pb::ChangePasswordResponse {
            access_token: session.access_token,
            token_type: session.token_type,
            expires_in_seconds: session.expires_in_seconds,
            refresh_token: session.refresh_token,
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let named = parse_identifier(&mut violations, &request.email, &request.phone_number);
        let Some(named) = named else {
            return Err(violations.into_status());
        };
        // Counted per client address whatever the e-mail (this tells nothing about accounts).
        self.accounts.count_reset_request(&actor).await?;
        // Answered at once, the same for every e-mail: the work happens after the answer, so
        // neither the answer nor its timing tells whether an account exists.
        let accounts = self.accounts.clone();
        tokio::spawn(async move {
            if let Err(error) = accounts
                .issue_password_reset(named.identifier(), &actor)
                .await
            {
                tracing::warn!(%error, "could not send a password-reset code");
            }
        });
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.get_ref();
        let mut violations = FieldViolations::new();
        let named = parse_identifier(&mut violations, &request.email, &request.phone_number);
        let code = request.code.trim();
        if !domain::is_six_digits(code) {
            violations.add("code", "must be the six digits we sent");
        }
        let new = violations.check("new_password", Password::parse(&request.new_password));
        let (Some(named), Some(new)) = (named, new) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        self.accounts
            .reset_password(named.identifier(), code, new, &actor)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn create_department(
        &self,
        request: Request<pb::CreateDepartmentRequest>,
    ) -> Result<Response<pb::CreateDepartmentResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let code = violations.check("code", DepartmentCode::parse(&request.code));
        let name = violations.check("name", domain::parse_commune_name(request.name.as_ref()));
        let (Some(code), Some(name)) = (code, name) else {
            return Err(violations.into_status());
        };
        let department = self
            .accounts
            .create_department(commune_id, code, name, &actor)
            .await?;
        Ok(Response::new(pb::CreateDepartmentResponse {
            department: Some(department_to_proto(&department)),
        }))
    }

    async fn list_departments(
        &self,
        request: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        let code = CommuneCode::parse(&request.get_ref().commune_code).map_err(|description| {
            jamaa_server::status::invalid_argument("commune_code", description)
        })?;
        let commune = self.accounts.commune_by_code(&code).await?;
        let departments = self.accounts.departments(commune.id).await?;
        Ok(Response::new(pb::ListDepartmentsResponse {
            departments: departments.iter().map(department_to_proto).collect(),
        }))
    }

    async fn invite_staff_member(
        &self,
        request: Request<pb::InviteStaffMemberRequest>,
    ) -> Result<Response<pb::InviteStaffMemberResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let email = violations.check("email", Email::parse(&request.email));
        let display_name =
            violations.check("display_name", DisplayName::parse(&request.display_name));
        let language = violations.check(
            "preferred_language",
            domain::parse_language(request.preferred_language),
        );
        if request.roles.is_empty() {
            violations.add("roles", "at least one staff role is required");
        }
        let mut roles: Vec<RoleGrant> = Vec::new();
        for (index, grant) in request.roles.iter().enumerate() {
            if let Some(grant) =
                parse_role_grant(&mut violations, &format!("roles[{index}]"), grant)
            {
                if roles.iter().any(|held| held.role == grant.role) {
                    violations.add(format!("roles[{index}].role"), "is named twice");
                }
                roles.push(grant);
            }
        }
        if let Err(index) = self.accounts.check_departments(commune_id, &roles).await {
            violations.add(
                format!("roles[{index}].department_id"),
                "is not a department of your commune",
            );
        }
        let (Some(email), Some(display_name), Some(language)) = (email, display_name, language)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let (invitation_id, expires_at) = self
            .accounts
            .invite_staff(
                commune_id,
                NewInvitation {
                    email,
                    display_name,
                    language,
                    roles,
                },
                &actor,
            )
            .await?;
        Ok(Response::new(pb::InviteStaffMemberResponse {
            invitation_id: invitation_id.to_string(),
            expire_time: Some(timestamp_from_millis(expires_at.timestamp_millis())),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        if request.token.trim().is_empty() {
            violations.add("token", "is required");
        }
        let password = violations.check("password", Password::parse(&request.password));
        let Some(password) = password else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let session = self
            .accounts
            .accept_invitation(request.token.trim(), password, &actor)
            .await?;
        let user = account_to_proto(&session.account);
        let session = session_to_proto(session);
        Ok(Response::new(pb::AcceptInvitationResponse {
            access_token: session.access_token,
            token_type: session.token_type,
            expires_in_seconds: session.expires_in_seconds,
            refresh_token: session.refresh_token,
            user: Some(user),
        }))
    }

    async fn grant_role(
        &self,
        request: Request<pb::GrantRoleRequest>,
    ) -> Result<Response<pb::GrantRoleResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let user_id = violations.check("user_id", domain::parse_user_id(&request.user_id));
        let grant = match &request.grant {
            Some(grant) => parse_role_grant(&mut violations, "grant", grant),
            None => {
                violations.add("grant", "is required");
                None
            }
        };
        if let Some(grant) = grant
            && self
                .accounts
                .check_departments(commune_id, &[grant])
                .await
                .is_err()
        {
            violations.add("grant.department_id", "is not a department of your commune");
        }
        let (Some(user_id), Some(grant)) = (user_id, grant) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let account = self
            .accounts
            .grant_role(commune_id, user_id, grant, &actor)
            .await?;
        Ok(Response::new(pb::GrantRoleResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn revoke_role(
        &self,
        request: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let user_id = violations.check("user_id", domain::parse_user_id(&request.user_id));
        let role = match pb::Role::try_from(request.role)
            .ok()
            .and_then(Role::from_proto)
        {
            Some(role) if role.is_staff() => Some(role),
            _ => {
                violations.add(
                    "role",
                    "must be a staff role (not citizen or platform admin)",
                );
                None
            }
        };
        let (Some(user_id), Some(role)) = (user_id, role) else {
            return Err(violations.into_status());
        };
        let account = self
            .accounts
            .revoke_role(commune_id, user_id, role, &actor)
            .await?;
        Ok(Response::new(pb::RevokeRoleResponse {
            user: Some(account_to_proto(&account)),
        }))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let actor = actor_of(&request);
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        for (field, value) in [
            ("client_id", &request.client_id),
            ("client_secret", &request.client_secret),
            ("audience", &request.audience),
        ] {
            if value.trim().is_empty() {
                violations.add(field, "is required");
            }
        }
        violations.into_result()?;
        let (access_token, expires_in_seconds) = self
            .accounts
            .issue_service_token(
                &self.service_clients,
                request.client_id.trim(),
                &request.client_secret,
                request.audience.trim(),
                &actor,
            )
            .await?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in_seconds,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let name = request.get_ref().client_name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(jamaa_server::status::invalid_argument(
                "client_name",
                "is required: 1 to 200 characters on one line",
            ));
        }
        let issued = self.api_keys.create(commune_id, name, &actor).await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(api_key_to_proto(&issued.key)),
            secret: issued.secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let keys = self.api_keys.list(commune_id).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.iter().map(api_key_to_proto).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let id = uuid::Uuid::parse_str(request.get_ref().id.trim())
            .map_err(|_| jamaa_server::status::invalid_argument("id", "must be a UUID"))?;
        let revoked = self.api_keys.revoke(commune_id, id, &actor).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(api_key_to_proto(&revoked)),
        }))
    }

    async fn exchange_api_key(
        &self,
        request: Request<pb::ExchangeApiKeyRequest>,
    ) -> Result<Response<pb::ExchangeApiKeyResponse>, Status> {
        let actor = actor_of(&request);
        let key = request.get_ref().api_key.trim();
        if key.is_empty() || key.len() > 128 {
            return Err(jamaa_server::status::invalid_argument(
                "api_key",
                "is required",
            ));
        }
        let (access_token, expires_in_seconds, key, commune_code) =
            self.api_keys.exchange(key, &actor).await?;
        Ok(Response::new(pb::ExchangeApiKeyResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in_seconds,
            commune_code,
            client_name: key.client_name,
        }))
    }

    async fn get_contact_details(
        &self,
        request: Request<pb::GetContactDetailsRequest>,
    ) -> Result<Response<pb::GetContactDetailsResponse>, Status> {
        principal(&request)?.require_service("identity", CONTACT_DETAILS_CLIENTS)?;
        let request = request.into_inner();
        if request.user_ids.len() > 500 {
            return Err(jamaa_server::status::invalid_argument(
                "user_ids",
                "at most 500 at a time",
            ));
        }
        let mut ids = Vec::with_capacity(request.user_ids.len());
        for (index, id) in request.user_ids.iter().enumerate() {
            ids.push(domain::parse_user_id(id).map_err(|description| {
                jamaa_server::status::invalid_argument(&format!("user_ids[{index}]"), description)
            })?);
        }
        let contacts = self
            .accounts
            .contact_details(&ids)
            .await?
            .iter()
            .map(|user| pb::ContactDetails {
                user_id: user.id.to_string(),
                commune_id: user.commune_id.map(|id| id.to_string()).unwrap_or_default(),
                email: user.email.clone().unwrap_or_default(),
                email_verified: user.email.is_some() && user.contact_verified_at.is_some(),
                display_name: user.display_name.clone(),
                preferred_language: Language::from_code(&user.preferred_language)
                    .unwrap_or(Language::Ar) as i32,
                disabled: user.disabled_at.is_some(),
                phone_number: user.phone_number.clone().unwrap_or_default(),
                phone_verified: user.phone_number.is_some() && user.phone_verified_at.is_some(),
            })
            .collect();
        Ok(Response::new(pb::GetContactDetailsResponse { contacts }))
    }

    async fn verify_in_person(
        &self,
        request: Request<pb::VerifyInPersonRequest>,
    ) -> Result<Response<pb::VerifyInPersonResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::ReceptionAgent, Role::CommuneAdmin])?;
        let actor = actor_of(&request);
        let request = request.get_ref();
        let mut violations = FieldViolations::new();
        let user_id = violations.check("user_id", domain::parse_user_id(&request.user_id));
        let national_id = violations.check("national_id", NationalId::parse(&request.national_id));
        let (Some(user_id), Some(national_id)) = (user_id, national_id) else {
            return Err(violations.into_status());
        };
        let account = self
            .accounts
            .verify_in_person(commune_id, user_id, &national_id, &actor)
            .await?;
        Ok(Response::new(pb::VerifyInPersonResponse {
            user: Some(account_to_proto(&account)),
        }))
    }
}

/// A free text of at most 200 characters, trimmed.
fn bounded_text(violations: &mut FieldViolations, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.chars().count() > 200 {
        violations.add(field, "must have at most 200 characters");
    }
    value.to_string()
}

fn api_key_to_proto(key: &crate::storage::api_key::Model) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        commune_id: key.commune_id.to_string(),
        client_name: key.client_name.clone(),
        key_start: key.key_start.clone(),
        create_time: Some(timestamp_from_millis(key.created_at.timestamp_millis())),
        revoke_time: key
            .revoked_at
            .map(|at| timestamp_from_millis(at.timestamp_millis())),
    }
}

/// The signed-in person calling: services and applications (API keys) have no account of
/// their own and are refused.
fn person<T>(request: &Request<T>) -> Result<uuid::Uuid, Status> {
    let caller = principal(request)?;
    if caller.service.is_some() || caller.api_client.is_some() {
        return Err(
            Error::PermissionDenied("only a signed-in person has a phone number".into()).into(),
        );
    }
    Ok(caller.user_id)
}

/// Who calls: the verified account, if any, and the client's address.
fn actor_of<T>(request: &Request<T>) -> Actor {
    Actor {
        user_id: principal(request).ok().map(|caller| caller.user_id),
        client_address: jamaa_server::client_address(request),
    }
}

/// The audit chain named by `commune_id` in a request: empty (none given), `platform`, or a
/// commune's id.
fn parse_chain(commune_id: &str) -> Result<Option<uuid::Uuid>, Status> {
    match commune_id.trim() {
        "" => Ok(None),
        "platform" => Ok(Some(audit::PLATFORM_CHAIN)),
        id => uuid::Uuid::parse_str(id).map(Some).map_err(|_| {
            jamaa_server::status::invalid_argument(
                "commune_id",
                "must be a commune id (a UUID) or \"platform\"",
            )
        }),
    }
}

fn audit_entry_to_proto(entry: &audit_entry::Model) -> pb::AuditEntry {
    pb::AuditEntry {
        id: entry.id.to_string(),
        commune_id: if entry.chain_id == audit::PLATFORM_CHAIN {
            String::new()
        } else {
            entry.chain_id.to_string()
        },
        sequence: entry.chain_seq.unwrap_or_default(),
        actor_id: entry.actor_id.map(|id| id.to_string()).unwrap_or_default(),
        action: entry.action.clone(),
        target: entry.target.clone(),
        outcome: entry.outcome.clone(),
        client_address: entry.client_address.clone(),
        detail_json: entry.detail.clone(),
        create_time: Some(timestamp_from_millis(entry.created_at.timestamp_millis())),
        hash: entry.hash.clone().unwrap_or_default(),
    }
}

/// Parses an account's fields, recording violations under the given field names.
fn parse_account(
    violations: &mut FieldViolations,
    [email_field, password_field, name_field, language_field]: [&str; 4],
    email: &str,
    password: &str,
    display_name: &str,
    language: i32,
) -> Option<NewAccount> {
    let email = violations.check(email_field, Email::parse(email));
    parse_account_with(
        violations,
        [password_field, name_field, language_field],
        email.map(SignUpWith::Email),
        password,
        display_name,
        language,
    )
}

/// Parses an account's fields but what it signs in with (`sign_up`, parsed already: `None`
/// when it was refused).
fn parse_account_with(
    violations: &mut FieldViolations,
    [password_field, name_field, language_field]: [&str; 3],
    sign_up: Option<SignUpWith>,
    password: &str,
    display_name: &str,
    language: i32,
) -> Option<NewAccount> {
    let password = violations.check(password_field, Password::parse(password));
    let display_name = violations.check(name_field, DisplayName::parse(display_name));
    let language = violations.check(language_field, domain::parse_language(language));
    Some(NewAccount {
        sign_up: sign_up?,
        password: password?,
        display_name: display_name?,
        language: language?,
        gender: None,
    })
}

/// What a request names an account by: the e-mail as typed, or a parsed phone number.
enum Named {
    Email(String),
    Phone(PhoneNumber),
}

impl Named {
    fn identifier(&self) -> Identifier<'_> {
        match self {
            Named::Email(email) => Identifier::Email(email),
            Named::Phone(number) => Identifier::Phone(number),
        }
    }
}

/// Exactly one of `email` and `phone_number` (fields of those names): neither, both, or a
/// number that does not parse is a violation naming the field(s). The e-mail is not parsed here
/// (a sign-in with a malformed e-mail is a sign-in with an unknown one).
fn parse_identifier(
    violations: &mut FieldViolations,
    email: &str,
    phone_number: &str,
) -> Option<Named> {
    match (email.trim().is_empty(), phone_number.trim().is_empty()) {
        (true, true) => {
            violations.add("email", "is required (or phone_number instead)");
            violations.add("phone_number", "is required (or email instead)");
            None
        }
        (false, false) => {
            violations.add(
                "phone_number",
                "must be left out when email is given: give one of email and phone_number",
            );
            None
        }
        (false, true) => Some(Named::Email(email.to_string())),
        (true, false) => violations
            .check("phone_number", PhoneNumber::parse(phone_number))
            .map(Named::Phone),
    }
}

fn session_to_proto(session: Session) -> pb::LoginResponse {
    pb::LoginResponse {
        access_token: session.access_token,
        token_type: "Bearer".into(),
        expires_in_seconds: session.expires_in_seconds,
        refresh_token: session.refresh_token,
        user: None,
    }
}

fn commune_to_proto(commune: &commune::Model) -> pb::Commune {
    pb::Commune {
        id: commune.id.to_string(),
        code: commune.code.clone(),
        name: Some(LocalizedText {
            ar: commune.name_ar.clone(),
            fr: commune.name_fr.clone(),
            en: commune.name_en.clone(),
            tzm: commune.name_tzm.clone(),
        }),
        population: commune.population,
        has_arrondissements: commune.has_arrondissements,
        petition_signature_threshold: commune.petition_signature_threshold,
        create_time: Some(timestamp_from_millis(commune.created_at.timestamp_millis())),
        region: commune.region.clone(),
        languages: commune
            .languages
            .split(',')
            .filter_map(|code| Language::from_code(code.trim()))
            .map(|language| language as i32)
            .collect(),
        time_zone: commune.time_zone.clone(),
        contact_email: commune.contact_email.clone(),
        contact_phone: commune.contact_phone.clone(),
        address: commune.address.clone(),
        require_staff_mfa: commune.require_staff_mfa,
    }
}

fn account_to_proto(account: &Account) -> pb::User {
    pb::User {
        id: account.user.id.to_string(),
        commune_id: account
            .user
            .commune_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        commune_code: account.commune_code.clone().unwrap_or_default(),
        email: account.user.email.clone().unwrap_or_default(),
        display_name: account.user.display_name.clone(),
        preferred_language: Language::from_code(&account.user.preferred_language)
            .unwrap_or(Language::Ar) as i32,
        roles: account
            .roles
            .iter()
            .map(|role| role.to_proto() as i32)
            .collect(),
        create_time: Some(timestamp_from_millis(
            account.user.created_at.timestamp_millis(),
        )),
        disabled: account.user.disabled_at.is_some(),
        assurance_level: account.assurance().to_proto() as i32,
        contact_verified: account.user.contact_verified_at.is_some(),
        national_id_masked: account.national_id_masked.clone().unwrap_or_default(),
        phone_number: account.user.phone_number.clone().unwrap_or_default(),
        phone_verified: account.user.phone_number.is_some()
            && account.user.phone_verified_at.is_some(),
        other_residence_commune_ids: account.residences.iter().map(|id| id.to_string()).collect(),
        role_grants: account
            .roles
            .iter()
            .map(|role| pb::RoleGrant {
                role: role.to_proto() as i32,
                department_id: account
                    .departments
                    .get(role)
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

fn department_to_proto(department: &department::Model) -> pb::Department {
    pb::Department {
        id: department.id.to_string(),
        commune_id: department.commune_id.to_string(),
        code: department.code.clone(),
        name: Some(LocalizedText {
            ar: department.name_ar.clone(),
            fr: department.name_fr.clone(),
            en: department.name_en.clone(),
            tzm: department.name_tzm.clone(),
        }),
        create_time: Some(timestamp_from_millis(
            department.created_at.timestamp_millis(),
        )),
    }
}

/// Parses a role grant named `field`: a staff role and an optional department id (whether the
/// department is the commune's is checked later).
fn parse_role_grant(
    violations: &mut FieldViolations,
    field: &str,
    grant: &pb::RoleGrant,
) -> Option<RoleGrant> {
    let role = match pb::Role::try_from(grant.role)
        .ok()
        .and_then(Role::from_proto)
    {
        Some(role) if role.is_staff() => Some(role),
        _ => {
            violations.add(
                format!("{field}.role"),
                "must be a staff role (not citizen or platform admin)",
            );
            None
        }
    };
    let department_id = match grant.department_id.trim() {
        "" => Some(None),
        id => match uuid::Uuid::parse_str(id) {
            Ok(id) => Some(Some(id)),
            Err(_) => {
                violations.add(
                    format!("{field}.department_id"),
                    "must be a department id (a UUID) or empty",
                );
                None
            }
        },
    };
    Some(RoleGrant {
        role: role?,
        department_id: department_id?,
    })
}
