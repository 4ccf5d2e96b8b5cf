use tonic::{Request, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

use crate::claims::{AssuranceLevel, Claims, Role};

/// The verified caller of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// The caller's commune; `None` for platform administrators.
    pub commune_id: Option<Uuid>,
    pub commune_code: Option<String>,
    pub roles: Vec<Role>,
    /// Preferred language code.
    pub language: String,
    /// How well the caller's identity is established.
    pub assurance: AssuranceLevel,
    /// The department each department-scoped role of the caller is limited to.
    pub departments: std::collections::HashMap<Role, Uuid>,
    /// For a service calling with its own credentials: its client id (`user_id` is then nil and
    /// it holds no role).
    pub service: Option<String>,
    /// The token's audience.
    pub audience: String,
    /// Whether the caller signed in with a second factor.
    pub second_factor: bool,
    /// Whether the caller must enrol a second factor before acting as staff.
    pub mfa_enrolment_required: bool,
    /// Other communes the caller is a confirmed resident of.
    pub residences: Vec<Uuid>,
    /// For a client application acting through its commune's API key: the key and its
    /// commune. Such a caller holds no role and no `commune_id`, so every check of a person's
    /// commune refuses it; only the calls made for applications read this.
    pub api_client: Option<ApiClient>,
}

/// A client application acting through an API key of a commune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub key_id: Uuid,
    pub commune_id: Uuid,
    pub commune_code: String,
}

impl Principal {
    pub(crate) fn from_claims(claims: &Claims) -> Option<Principal> {
        if let Some(client) = claims.sub.strip_prefix(crate::SERVICE_SUBJECT_PREFIX) {
            return Some(Principal {
                user_id: Uuid::nil(),
                commune_id: None,
                commune_code: None,
                roles: Vec::new(),
                language: String::new(),
                assurance: AssuranceLevel::Registered,
                departments: std::collections::HashMap::new(),
                service: Some(client.to_string()),
                audience: claims.aud.clone(),
                second_factor: false,
                mfa_enrolment_required: false,
                residences: Vec::new(),
                api_client: None,
            });
        }
        if let Some(key) = claims.sub.strip_prefix(crate::API_CLIENT_SUBJECT_PREFIX) {
            let key = Uuid::parse_str(key).ok()?;
            let client = ApiClient {
                key_id: key,
                commune_id: Uuid::parse_str(claims.commune_id.as_deref()?).ok()?,
                commune_code: claims.commune_code.clone()?,
            };
            return Some(Principal {
                user_id: key,
                commune_id: None,
                commune_code: None,
                roles: Vec::new(),
                language: String::new(),
                assurance: AssuranceLevel::Registered,
                departments: std::collections::HashMap::new(),
                service: None,
                audience: claims.aud.clone(),
                second_factor: false,
                mfa_enrolment_required: false,
                residences: Vec::new(),
                api_client: Some(client),
            });
        }
        Some(Principal {
            api_client: None,
            service: None,
            audience: claims.aud.clone(),
            second_factor: claims.amr.iter().any(|method| method == "otp"),
            mfa_enrolment_required: claims.mfa_enrolment_required,
            residences: claims
                .residences
                .iter()
                .map(|id| Uuid::parse_str(id).ok())
                .collect::<Option<_>>()?,
            user_id: Uuid::parse_str(&claims.sub).ok()?,
            commune_id: match &claims.commune_id {
                Some(id) => Some(Uuid::parse_str(id).ok()?),
                None => None,
            },
            commune_code: claims.commune_code.clone(),
            roles: claims
                .roles
                .iter()
                .filter_map(|role| Role::parse(role))
                .collect(),
            language: claims.lang.clone(),
            assurance: match &claims.assurance {
                Some(level) => AssuranceLevel::parse(level)?,
                None => AssuranceLevel::Registered,
            },
            departments: claims
                .departments
                .iter()
                .map(|(role, id)| Some((Role::parse(role)?, Uuid::parse_str(id).ok()?)))
                .collect::<Option<_>>()?,
        })
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The department `role` is limited to for the caller; `None`: the whole commune (or the
    /// caller lacks the role).
    pub fn department_for(&self, role: Role) -> Option<Uuid> {
        self.departments.get(&role).copied()
    }

    /// Whether the caller resides in `commune_id`: their own commune, or a confirmed other
    /// residence.
    pub fn resides_in(&self, commune_id: Uuid) -> bool {
        self.commune_id == Some(commune_id) || self.residences.contains(&commune_id)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.has_role(Role::PlatformAdmin)
    }

    /// The caller's commune, or PERMISSION_DENIED for callers without one.
    pub fn commune(&self) -> Result<Uuid, Status> {
        self.commune_id
            .ok_or_else(|| Status::permission_denied("this action needs an account in a commune"))
    }

    /// Requires the caller to be a citizen; returns their commune.
    pub fn require_citizen(&self) -> Result<Uuid, Status> {
        if !self.has_role(Role::Citizen) {
            return Err(Status::permission_denied("only citizens may do this"));
        }
        self.commune()
    }

    /// Requires the caller to hold one of `roles` in their commune; returns that commune.
    pub fn require_staff(&self, roles: &[Role]) -> Result<Uuid, Status> {
        if self.mfa_enrolment_required {
            let mut details = ErrorDetails::new();
            details.set_error_info(
                "SECOND_FACTOR_ENROLMENT_REQUIRED",
                "jamaa.ma",
                std::collections::HashMap::new(),
            );
            return Err(Status::with_error_details(
                tonic::Code::PermissionDenied,
                "your commune requires staff to sign in with a second factor: enrol an \
                 authenticator app (EnrollTotp), then sign in again",
                details,
            ));
        }
        if !roles.iter().any(|role| self.has_role(*role)) {
            let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
            return Err(Status::permission_denied(format!(
                "this action needs one of the roles: {}",
                names.join(", ")
            )));
        }
        self.commune()
    }

    /// Requires the caller to be one of the services `clients`, with a token for `service` (this
    /// one): people's tokens and tokens meant for another service are refused. Returns the
    /// client id.
    pub fn require_service(&self, service: &str, clients: &[&str]) -> Result<&str, Status> {
        let Some(client) = self.service.as_deref() else {
            return Err(Status::permission_denied(
                "this is an internal call: only services, with their own credentials, make it",
            ));
        };
        let for_this_service = self
            .audience
            .rsplit_once(':')
            .is_some_and(|(_, target)| target == service);
        if !for_this_service || !clients.contains(&client) {
            return Err(Status::permission_denied(format!(
                "service {client} may not make this call to {service}"
            )));
        }
        Ok(client)
    }

    /// Requires the caller's identity to be established at `level` at least: PERMISSION_DENIED
    /// with reason `ASSURANCE_TOO_LOW` otherwise, saying what to do.
    pub fn require_assurance(&self, level: AssuranceLevel) -> Result<(), Status> {
        if self.assurance >= level {
            return Ok(());
        }
        let how = match level {
            AssuranceLevel::Registered => "sign up",
            AssuranceLevel::ContactVerified => "verify your e-mail address with the code we sent",
            AssuranceLevel::VerifiedInPerson => {
                "have your national identity card checked at your commune's desk"
            }
        };
        let mut details = ErrorDetails::new();
        details.set_error_info(
            "ASSURANCE_TOO_LOW",
            "jamaa.ma",
            std::collections::HashMap::from([("required".to_string(), level.as_str().to_string())]),
        );
        Err(Status::with_error_details(
            tonic::Code::PermissionDenied,
            format!(
                "this action needs an identity verified at level {}: {how}, then sign in again",
                level.as_str()
            ),
            details,
        ))
    }

    /// Whether the caller is staff (any staff role) of `commune_id`, able to act as such.
    pub fn is_staff_of(&self, commune_id: Uuid) -> bool {
        !self.mfa_enrolment_required
            && self.commune_id == Some(commune_id)
            && self.roles.iter().any(|role| role.is_staff())
    }
}

/// The authenticated caller of `request`, or UNAUTHENTICATED.
pub fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    request.extensions().get::<Principal>().ok_or_else(|| {
        Status::unauthenticated("sign in first: this call needs a bearer access token")
    })
}
