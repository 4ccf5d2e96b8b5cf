use serde::{Deserialize, Serialize};

/// The claims of a Jamaa access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before (seconds since the epoch): identity sets it to `iat`; verifiers require it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id.
    pub jti: String,
    /// The user's commune id; absent for platform administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune_id: Option<String>,
    /// The user's commune code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune_code: Option<String>,
    /// Roles in that commune, as in [`Role::as_str`].
    pub roles: Vec<String>,
    /// Preferred language: `ar`, `fr`, `en` or `tzm`.
    pub lang: String,
    /// How well the person's identity is established, as in [`AssuranceLevel::as_str`]; absent
    /// in tokens from before assurance levels existed (read as `registered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assurance: Option<String>,
    /// The department each department-scoped role is limited to: role name → department id.
    /// Roles absent here cover the whole commune.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub departments: std::collections::BTreeMap<String, String>,
    /// How the person signed in (RFC 8176): `pwd`, and `otp` with a second factor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The person's commune requires staff to use a second factor and they have none yet: staff
    /// calls are refused until they enrol.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enrolment_required: bool,
    /// Other communes (ids) the person is a confirmed resident of, besides `commune_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub residences: Vec<String>,
}

/// How well a person's identity is established, weakest first (mirrors
/// `jamaa.identity.v1.AssuranceLevel`). Services gate actions by it, e.g. signing a petition
/// needs [`AssuranceLevel::VerifiedInPerson`] by default.
///
/// Extension point: a national e-ID provider over OpenID Connect would add a level above
/// `VerifiedInPerson` (README, "Assurance levels").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AssuranceLevel {
    /// Signed up; nothing checked.
    Registered,
    /// Proved they receive messages at their e-mail address (a one-time code).
    ContactVerified,
    /// A reception agent checked their national identity card at the desk.
    VerifiedInPerson,
}

impl AssuranceLevel {
    pub const ALL: [AssuranceLevel; 3] = [
        AssuranceLevel::Registered,
        AssuranceLevel::ContactVerified,
        AssuranceLevel::VerifiedInPerson,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssuranceLevel::Registered => "registered",
            AssuranceLevel::ContactVerified => "contact_verified",
            AssuranceLevel::VerifiedInPerson => "verified_in_person",
        }
    }

    pub fn parse(value: &str) -> Option<AssuranceLevel> {
        AssuranceLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == value)
    }

    pub fn to_proto(self) -> jamaa_proto::identity::v1::AssuranceLevel {
        use jamaa_proto::identity::v1::AssuranceLevel as P;
        match self {
            AssuranceLevel::Registered => P::Registered,
            AssuranceLevel::ContactVerified => P::ContactVerified,
            AssuranceLevel::VerifiedInPerson => P::VerifiedInPerson,
        }
    }

    pub fn from_proto(level: jamaa_proto::identity::v1::AssuranceLevel) -> Option<AssuranceLevel> {
        use jamaa_proto::identity::v1::AssuranceLevel as P;
        Some(match level {
            P::Unspecified => return None,
            P::Registered => AssuranceLevel::Registered,
            P::ContactVerified => AssuranceLevel::ContactVerified,
            P::VerifiedInPerson => AssuranceLevel::VerifiedInPerson,
        })
    }
}

/// What a person may do in a commune (mirrors `jamaa.identity.v1.Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Citizen,
    CommuneAdmin,
    ReceptionAgent,
    CaseOfficer,
    DepartmentHead,
    CouncilSecretary,
    Moderator,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Citizen,
        Role::CommuneAdmin,
        Role::ReceptionAgent,
        Role::CaseOfficer,
        Role::DepartmentHead,
        Role::CouncilSecretary,
        Role::Moderator,
        Role::PlatformAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::CommuneAdmin => "commune_admin",
            Role::ReceptionAgent => "reception_agent",
            Role::CaseOfficer => "case_officer",
            Role::DepartmentHead => "department_head",
            Role::CouncilSecretary => "council_secretary",
            Role::Moderator => "moderator",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// Whether the role is held by commune staff.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Citizen | Role::PlatformAdmin)
    }

    pub fn to_proto(self) -> jamaa_proto::identity::v1::Role {
        use jamaa_proto::identity::v1::Role as P;
        match self {
            Role::Citizen => P::Citizen,
            Role::CommuneAdmin => P::CommuneAdmin,
            Role::ReceptionAgent => P::ReceptionAgent,
            Role::CaseOfficer => P::CaseOfficer,
            Role::DepartmentHead => P::DepartmentHead,
            Role::CouncilSecretary => P::CouncilSecretary,
            Role::Moderator => P::Moderator,
            Role::PlatformAdmin => P::PlatformAdmin,
        }
    }

    pub fn from_proto(role: jamaa_proto::identity::v1::Role) -> Option<Role> {
        use jamaa_proto::identity::v1::Role as P;
        Some(match role {
            P::Unspecified => return None,
            P::Citizen => Role::Citizen,
            P::CommuneAdmin => Role::CommuneAdmin,
            P::ReceptionAgent => Role::ReceptionAgent,
            P::CaseOfficer => Role::CaseOfficer,
            P::DepartmentHead => Role::DepartmentHead,
            P::CouncilSecretary => Role::CouncilSecretary,
            P::Moderator => Role::Moderator,
            P::PlatformAdmin => Role::PlatformAdmin,
        })
    }
}
