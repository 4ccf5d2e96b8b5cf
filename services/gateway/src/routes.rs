//! The route table: every HTTP operation of the gateway and what answers it. The router
//! ([`crate::router`]) and the OpenAPI document ([`crate::openapi`]) are both built from
//! [`operations`], so they cannot drift apart.
//!
//! Most operations are one unary gRPC call with ONE generic mapping ([`Operation::rpc`]):
//! the request message is read from the JSON body (proto3 JSON mapping), the query parameters the
//! operation declares, and the path parameters, each of which fills the request field of the same
//! (JSON) name, e.g. `{id}` fills `id` and `{petitionId}` fills `petitionId`. The response message
//! is answered as proto3 JSON; a gRPC error as a [`Problem`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::notification::v1::notification_service_client::NotificationServiceClient;
use jamaa_proto::participation::v1::participation_service_client::ParticipationServiceClient;
use jamaa_proto::servicerequest::v1::appointment_service_client::AppointmentServiceClient;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_server::StartError;
use jamaa_server::client::{BalancedChannel, balanced_channel, is_retryable};
use jamaa_telemetry::TraceContextInterceptor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::problem::{FieldError, Problem};
use crate::{GatewayConfig, jwks};

/// The header that carries a request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A channel that sends the current trace context with every call.
pub type TracedChannel = InterceptedService<BalancedChannel, TraceContextInterceptor>;

/// The gRPC clients of the four services (cheap to clone: they share lazily connected channels).
#[derive(Clone)]
pub struct Clients {
    pub identity: IdentityServiceClient<TracedChannel>,
    pub service_requests: ServiceRequestServiceClient<TracedChannel>,
    /// Desk appointments (served by the service-request service).
    pub appointments: AppointmentServiceClient<TracedChannel>,
    pub participation: ParticipationServiceClient<TracedChannel>,
    pub notifications: NotificationServiceClient<TracedChannel>,
    /// `grpc.health.v1` where identity runs, for readiness.
    pub identity_health: HealthClient<BalancedChannel>,
}

impl Clients {
    /// Clients of the services at `config`'s URLs, each balanced across its serving replicas
    /// (a URL may be a comma-separated list, or a name that resolves to several addresses).
    pub fn connect(
        config: &GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<Clients, StartError> {
        let channel = |setting: &str, urls: &str| balanced_channel(setting, urls, shutdown.clone());
        let identity = channel("gateway.identity_url", &config.identity_url)?;
        let traced =
            |channel: BalancedChannel| InterceptedService::new(channel, TraceContextInterceptor);
        let service_request = traced(channel(
            "gateway.service_request_url",
            &config.service_request_url,
        )?);
        Ok(Clients {
            identity: IdentityServiceClient::new(traced(identity.clone())),
            service_requests: ServiceRequestServiceClient::new(service_request.clone()),
            appointments: AppointmentServiceClient::new(service_request),
            participation: ParticipationServiceClient::new(traced(channel(
                "gateway.participation_url",
                &config.participation_url,
            )?)),
            notifications: NotificationServiceClient::new(traced(channel(
                "gateway.notification_url",
                &config.notification_url,
            )?)),
            identity_health: HealthClient::new(identity),
        })
    }
}

/// The query parameters of the Open311 resources.
const OPEN311_QUERY: &[QueryParam] = &[
    QueryParam {
        name: "jurisdiction_id",
        kind: ParamKind::String,
        description: "Required. The commune's code, e.g. BNM.",
    },
    QueryParam {
        name: "service_request_id",
        kind: ParamKind::String,
        description: "requests: only these ids, comma-separated.",
    },
    QueryParam {
        name: "service_code",
        kind: ParamKind::String,
        description: "requests: only this service's.",
    },
    QueryParam {
        name: "start_date",
        kind: ParamKind::String,
        description: "requests: filed at or after (W3C date-time; default: 90 days ago).",
    },
    QueryParam {
        name: "end_date",
        kind: ParamKind::String,
        description: "requests: filed before (W3C date-time).",
    },
    QueryParam {
        name: "status",
        kind: ParamKind::String,
        description: "requests: open or closed.",
    },
];

/// What every handler is given.
#[derive(Clone)]
pub struct AppState {
    pub clients: Clients,
    /// The deadline of each gRPC call.
    pub call_timeout: Duration,
    /// The OpenAPI document, built once from the table.
    pub openapi: Arc<Value>,
    /// Whether the last `X-Forwarded-For` address is the client's (behind one trusted proxy).
    pub trust_forwarded_for: bool,
}

/// The HTTP methods the gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
        }
    }

    /// The method as an OpenAPI path item key.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
        }
    }
}

/// The JSON type a query parameter is converted to before the request message is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Integer,
    Boolean,
    /// A string, or an enum value by name.
    String,
}

/// A query parameter an operation accepts; it fills the request field of the same name.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
}

const PAGE_SIZE: QueryParam = QueryParam {
    name: "pageSize",
    kind: ParamKind::Integer,
    description: "At most this many items (default 50, at most 200).",
};
const PAGE_TOKEN: QueryParam = QueryParam {
    name: "pageToken",
    kind: ParamKind::String,
    description: "The nextPageToken of the previous page.",
};
const PAGE: &[QueryParam] = &[PAGE_SIZE, PAGE_TOKEN];

/// How an operation is routed and documented.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub verb: Verb,
    /// An axum path; each `{name}` fills the request field `name`.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// Callers need no access token (the service lets anyone call the RPC).
    pub public: bool,
    /// The request message is read from a JSON body (else the body is ignored).
    pub body: bool,
    /// The query parameters accepted; any other is refused.
    pub query: &'static [QueryParam],
    /// Calling it twice has the effect of calling it once, so a call that failed with
    /// UNAVAILABLE (no replica, one shutting down, overload) is retried. GETs always are.
    pub idempotent: bool,
}

impl RouteSpec {
    /// A route for signed-in callers; POST reads a JSON body, GET none; no query parameters.
    pub const fn new(verb: Verb, path: &'static str, operation_id: &'static str) -> RouteSpec {
        RouteSpec {
            verb,
            path,
            operation_id,
            summary: "",
            public: false,
            body: matches!(verb, Verb::Post),
            query: &[],
            idempotent: matches!(verb, Verb::Get),
        }
    }

    pub const fn summary(self, summary: &'static str) -> RouteSpec {
        RouteSpec { summary, ..self }
    }

    /// Anyone may call it, without a token.
    pub const fn public(self) -> RouteSpec {
        RouteSpec {
            public: true,
            ..self
        }
    }

    /// Every request field comes from the path: the body is ignored.
    pub const fn without_body(self) -> RouteSpec {
        RouteSpec {
            body: false,
            ..self
        }
    }

    pub const fn query(self, query: &'static [QueryParam]) -> RouteSpec {
        RouteSpec { query, ..self }
    }

    /// Safe to retry (an idempotency key, or an effect that happens once by nature).
    pub const fn idempotent(self) -> RouteSpec {
        RouteSpec {
            idempotent: true,
            ..self
        }
    }
}

/// What a successful operation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// A proto message (full name) as proto3 JSON.
    Message(String),
    /// Other JSON, described.
    Json(&'static str),
    /// Plain text, described.
    Text(&'static str),
    /// A file whose type the service chooses (e.g. CSV or JSON), described.
    File(&'static str),
}

/// One HTTP operation: its route, its request and response, and its handler.
pub struct Operation {
    pub spec: RouteSpec,
    /// The proto message (full name) the request is read into, if any.
    pub request: Option<String>,
    pub response: ResponseBody,
    pub(crate) handler: MethodRouter<AppState>,
}

/// Every operation of the gateway.
pub fn operations() -> Vec<Operation> {
    use Verb::{Get, Post};
    let list_requests = &[
        PAGE_SIZE,
        PAGE_TOKEN,
        QueryParam {
            name: "status",
            kind: ParamKind::String,
            description: "Only requests in this status, e.g. REQUEST_STATUS_IN_PROGRESS.",
        },
        QueryParam {
            name: "assigneeId",
            kind: ParamKind::String,
            description: "Staff: only requests assigned to this agent.",
        },
    ];
    let list_services = &[
        PAGE_SIZE,
        PAGE_TOKEN,
        QueryParam {
            name: "includeInactive",
            kind: ParamKind::Boolean,
            description: "Also the inactive services (the commune's staff only).",
        },
    ];
    const STATISTICS_QUERY: [QueryParam; 4] = [
        QueryParam {
            name: "serviceCode",
            kind: ParamKind::String,
            description: "Only this service.",
        },
        QueryParam {
            name: "startMonth",
            kind: ParamKind::String,
            description: "The first month, YYYY-MM.",
        },
        QueryParam {
            name: "endMonth",
            kind: ParamKind::String,
            description: "The last month, YYYY-MM.",
        },
        QueryParam {
            name: "breakdown",
            kind: ParamKind::String,
            description: "STATISTICS_BREAKDOWN_NONE (default), _GENDER or _AREA.",
        },
    ];
    let statistics_query = &STATISTICS_QUERY;
    let statistics_export_query = &[
        STATISTICS_QUERY[0],
        STATISTICS_QUERY[1],
        STATISTICS_QUERY[2],
        STATISTICS_QUERY[3],
        QueryParam {
            name: "format",
            kind: ParamKind::String,
            description: "EXPORT_FORMAT_CSV or EXPORT_FORMAT_JSON.",
        },
    ];
    let list_notifications = &[
        PAGE_SIZE,
        PAGE_TOKEN,
        QueryParam {
            name: "unreadOnly",
            kind: ParamKind::Boolean,
            description: "Only unread notifications.",
        },
    ];
    let list_deliveries = &[
        QueryParam {
            name: "userId",
            kind: ParamKind::String,
            description: "Staff: the person (default: the caller).",
        },
        PAGE_SIZE,
        PAGE_TOKEN,
    ];
    let sms_receipt = &[QueryParam {
        name: "receiptToken",
        kind: ParamKind::String,
        description: "The receipt token the platform gave its SMS provider.",
    }];
    let list_templates = &[QueryParam {
        name: "language",
        kind: ParamKind::String,
        description: "LANGUAGE_AR, LANGUAGE_FR, LANGUAGE_EN or LANGUAGE_TZM: only this one.",
    }];
    const AUDIT_CHAIN: QueryParam = QueryParam {
        name: "communeId",
        kind: ParamKind::String,
        description: "Platform administrators: the commune's id, or \"platform\" for the platform's chain.",
    };
    let list_audit_entries = &[AUDIT_CHAIN, PAGE_SIZE, PAGE_TOKEN];
    vec![
        // identity
        Operation::rpc(
            RouteSpec::new(Post, "/v1/communes", "CreateCommune")
                .summary("Creates a commune and its first commune administrator. Platform administrators only."),
            |mut clients: Clients, request| async move { clients.identity.create_commune(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{code}", "GetCommune")
                .summary("Gets a commune's public profile by its code.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.get_commune(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/citizens", "RegisterCitizen")
                .summary("Registers a citizen resident in a commune, with an e-mail or a mobile phone number ({communeCode, email | phoneNumber, password, displayName, preferredLanguage}).")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.register_citizen(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/staff", "CreateStaffMember")
                .summary("Adds a staff member to the caller's commune. Commune administrators only."),
            |mut clients: Clients, request| async move { clients.identity.create_staff_member(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/sessions", "Login")
                .summary("Exchanges an e-mail or phone number and password for an access token and a refresh token ({email | phoneNumber, password}).")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.login(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/sessions/refresh", "RefreshSession")
                .summary("Exchanges a refresh token for a new access token; the refresh token rotates.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.refresh_session(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/sessions/logout", "Logout")
                .summary("Ends the session a refresh token belongs to; other sessions stay open.")
                .public()
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.logout(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/password", "ChangePassword")
                .summary("Changes the caller's password ({currentPassword, newPassword}); every session ends and a new one is answered."),
            |mut clients: Clients, request| async move { clients.identity.change_password(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/password-resets", "RequestPasswordReset")
                .summary("Sends a password-reset code to the account with this e-mail (or, by SMS, phone number), if any; the same answer either way ({email | phoneNumber}).")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.request_password_reset(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/password-resets/confirm", "ResetPassword")
                .summary("Sets a new password with the reset code ({email | phoneNumber, code, newPassword}); every session ends.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.reset_password(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/communes:update", "UpdateCommune")
                .summary("Updates a commune's profile and policies ({commune: {code, …}, updateMask: \"region,timeZone\"}). Platform administrators; commune administrators for their own.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.update_commune(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/me/personal-data", "ExportPersonalData")
                .summary("Exports everything identity holds about the caller, as JSON (law 09-08)."),
            |mut clients: Clients, request| async move { clients.identity.export_personal_data(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/erase", "EraseAccount")
                .summary("Erases the caller's account ({password}): personal data removed, records kept detached (law 09-08)."),
            |mut clients: Clients, request| async move { clients.identity.erase_account(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/totp", "EnrollTotp")
                .summary("Starts enrolling an authenticator app: answers the seed and the otpauth URI."),
            |mut clients: Clients, request| async move { clients.identity.enroll_totp(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/totp/confirm", "ConfirmTotp")
                .summary("Confirms the authenticator app with a first code ({code}); answers the recovery codes, once."),
            |mut clients: Clients, request| async move { clients.identity.confirm_totp(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/departments", "CreateDepartment")
                .summary("Creates a department of the caller's commune ({code, name}). Commune administrators."),
            |mut clients: Clients, request| async move { clients.identity.create_department(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/departments", "ListDepartments")
                .summary("Lists a commune's departments.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.list_departments(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/invitations", "InviteStaffMember")
                .summary("Invites a person to the caller's commune's staff with roles ({email, displayName, roles: [{role, departmentId}]}). Commune administrators."),
            |mut clients: Clients, request| async move { clients.identity.invite_staff_member(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/invitations/accept", "AcceptInvitation")
                .summary("Accepts a staff invitation ({token, password}): creates the account and signs it in.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.accept_invitation(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/roles", "GrantRole")
                .summary("Grants a staff role, optionally limited to a department ({grant: {role, departmentId}}). Commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.grant_role(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/roles/revoke", "RevokeRole")
                .summary("Revokes a staff role ({role}). Commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.revoke_role(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/second-factor/reset", "ResetSecondFactor")
                .summary("Removes a staff member's second factor and ends their sessions. Commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.reset_second_factor(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/residences", "DeclareResidence")
                .summary("Declares that the caller also resides in another commune ({communeCode}); it counts once that commune's desk confirms it.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.declare_residence(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/residence/confirm", "ConfirmResidence")
                .summary("Confirms a citizen's declared residence in the caller's commune. Reception agents and commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.confirm_residence(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/disable", "DisableUser")
                .summary("Disables an account and ends all its sessions. Commune administrators (their commune) and platform administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.disable_user(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/me", "GetCurrentUser").summary("Gets the authenticated caller's own account."),
            |mut clients: Clients, request| async move { clients.identity.get_current_user(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/verification-code", "SendVerificationCode")
                .summary("Sends the caller a new one-time code proving their e-mail address (10 minutes, 5 tries; at most one a minute)."),
            |mut clients: Clients, request| async move { clients.identity.send_verification_code(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/verify-contact", "VerifyContact")
                .summary("Checks the one-time code: the caller's assurance level becomes at least contact-verified."),
            |mut clients: Clients, request| async move { clients.identity.verify_contact(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/phone-number", "SetPhoneNumber")
                .summary("Sets or replaces the caller's mobile number ({phoneNumber}: 0612345678, +212 6 12 34 56 78, any +<country code><number>): stored unverified in E.164 form; a one-time code is sent to it by SMS (10 minutes, 5 tries; at most one a minute)."),
            |mut clients: Clients, request| async move { clients.identity.set_phone_number(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/phone-number:verify", "VerifyPhoneNumber")
                .summary("Checks the code sent to the caller's phone number ({code}): the number becomes verified. A number another account verified is refused."),
            |mut clients: Clients, request| async move { clients.identity.verify_phone_number(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/phone-number:remove", "RemovePhoneNumber")
                .without_body()
                .summary("Removes the caller's phone number; codes sent to it stop working.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.remove_phone_number(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/users/{userId}/verify-in-person", "VerifyInPerson")
                .summary("Records that a reception agent checked a citizen's national ID card: the level becomes verified-in-person. Reception agents and commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.verify_in_person(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/signing-keys:rotate", "RotateSigningKey")
                .without_body()
                .summary("Stores the next token signing key: published at once, signing after the lead time. Platform administrators."),
            |mut clients: Clients, request| async move { clients.identity.rotate_signing_key(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/api-keys", "CreateApiKey")
                .summary("Issues an API key of the caller's commune for one client application ({clientName}); the key (secret) is in this answer only. Commune administrators."),
            |mut clients: Clients, request| async move { clients.identity.create_api_key(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/api-keys", "ListApiKeys")
                .summary("Lists the commune's API keys, newest first (never their secrets). Commune administrators."),
            |mut clients: Clients, request| async move { clients.identity.list_api_keys(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/api-keys/{id}/revoke", "RevokeApiKey")
                .without_body()
                .summary("Revokes an API key of the commune: it exchanges no more. Commune administrators.")
                .idempotent(),
            |mut clients: Clients, request| async move { clients.identity.revoke_api_key(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/api-keys:exchange", "ExchangeApiKey")
                .summary("Exchanges an API key ({apiKey}) for a short-lived access token of its application.")
                .public(),
            |mut clients: Clients, request| async move { clients.identity.exchange_api_key(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/audit-entries", "ListAuditEntries")
                .summary("Lists audit entries, newest first. Commune staff: their commune's; platform administrators: any chain (commune_id, or \"platform\").")
                .query(list_audit_entries),
            |mut clients: Clients, request| async move { clients.identity.list_audit_entries(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/audit-chain/check", "CheckAuditChain")
                .summary("Recomputes an audit chain's hashes and says whether any entry was changed, removed or reordered. Commune administrators (their commune) and platform administrators.")
                .query(&[AUDIT_CHAIN]),
            |mut clients: Clients, request| async move { clients.identity.check_audit_chain(request).await },
        ),
        Operation::rpc_rendered(
            RouteSpec::new(Get, "/.well-known/jwks.json", "ListPublicKeys")
                .summary("The public keys that verify access tokens, as a JSON Web Key Set.")
                .public(),
            ResponseBody::Json("A JSON Web Key Set (RFC 7517) of Ed25519 keys (RFC 8037): {keys: [{kty, crv, x, kid, alg, use}]}."),
            |mut clients: Clients, request| async move { clients.identity.list_public_keys(request).await },
            |response| serde_json::to_value(jwks::render(response)),
        ),
        // service requests: the catalogue
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/services", "ListServices")
                .summary("Lists a commune's services: the active ones (public), or all with includeInactive (its staff).")
                .query(list_services)
                .public(),
            |mut clients: Clients, request| async move { clients.service_requests.list_services(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/public-requests", "ListPublicRequests")
                .summary("A commune's public reports (its incident-report services only), newest first, without personal data.")
                .query(&[
                    QueryParam {
                        name: "serviceCode",
                        kind: ParamKind::String,
                        description: "Only this service's reports.",
                    },
                    QueryParam {
                        name: "state",
                        kind: ParamKind::String,
                        description: "PUBLIC_REQUEST_STATE_OPEN or PUBLIC_REQUEST_STATE_CLOSED (default: both).",
                    },
                    QueryParam {
                        name: "startTime",
                        kind: ParamKind::String,
                        description: "Filed at or after (RFC 3339).",
                    },
                    QueryParam {
                        name: "endTime",
                        kind: ParamKind::String,
                        description: "Filed before (RFC 3339).",
                    },
                    QueryParam {
                        name: "pageSize",
                        kind: ParamKind::Integer,
                        description: "At most this many (default 50, at most 200).",
                    },
                    QueryParam {
                        name: "pageToken",
                        kind: ParamKind::String,
                        description: "From a previous response's nextPageToken.",
                    },
                ])
                .public(),
            |mut clients: Clients, request| async move {
                clients.service_requests.list_public_requests(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services", "CreateService")
                .summary("Adds a service ({service: {code, name, kind, channel, attributes, deadlinePolicy, …}}) to the caller's commune catalogue, version 1. Commune administrators only."),
            |mut clients: Clients, request| async move { clients.service_requests.create_service(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services:update", "UpdateService")
                .summary("Replaces a service's definition ({service: {id, …}}) with a new version; filed requests keep theirs. Commune administrators of its commune."),
            |mut clients: Clients, request| async move { clients.service_requests.update_service(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/services/{id}", "GetService")
                .summary("Gets a service at its current version, or an earlier one with ?version=N.")
                .query(&[QueryParam {
                    name: "version",
                    kind: ParamKind::Integer,
                    description: "An earlier version; 0 or absent for the current one.",
                }])
                .public(),
            |mut clients: Clients, request| async move { clients.service_requests.get_service(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services/{id}/activate", "ActivateService")
                .summary("Lets citizens file requests for a service again. Commune administrators of its commune."),
            |mut clients: Clients, request| async move { clients.service_requests.activate_service(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services/{id}/deactivate", "DeactivateService")
                .summary("Stops new requests for a service; filed ones go on. Commune administrators of its commune."),
            |mut clients: Clients, request| async move { clients.service_requests.deactivate_service(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services:importStarter", "ImportStarterCatalogue")
                .summary("Adds the platform's starter catalogue to the caller's commune, skipping codes it has. Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.service_requests.import_starter_catalogue(request).await
            },
        ),
        // service requests: requests and their workflow
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests", "SubmitRequest")
                .idempotent()
                .summary("Files a request: a citizen for themself, or a reception agent for a walk-in (walkIn). Idempotent by requestId. Answers with the receipt (tracking code, secret, due date)."),
            |mut clients: Clients, request| async move { clients.service_requests.submit_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/requests", "ListRequests")
                .summary("Lists requests: a citizen's own, or the staff member's commune's (or department's).")
                .query(list_requests),
            |mut clients: Clients, request| async move { clients.service_requests.list_requests(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/requests/{id}", "GetRequest")
                .summary("Gets a request: its citizen, or staff of its commune (internal notes for staff only)."),
            |mut clients: Clients, request| async move { clients.service_requests.get_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/request-status/{trackingCode}", "GetPublicRequestStatus")
                .summary("Reads a request's public status with the tracking code and the receipt's secret (?secret=…), without an account.")
                .query(&[QueryParam {
                    name: "secret",
                    kind: ParamKind::String,
                    description: "The secret printed on the receipt.",
                }])
                .public(),
            |mut clients: Clients, request| async move {
                clients.service_requests.get_public_request_status(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/status", "ChangeRequestStatus")
                .summary("Moves a request along its workflow ({status, note, internalNote, legalGround, etag}). Staff of its commune."),
            |mut clients: Clients, request| async move {
                clients.service_requests.change_request_status(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/cancel", "CancelRequest")
                .summary("Withdraws a request before work starts ({reason}). Its citizen."),
            |mut clients: Clients, request| async move { clients.service_requests.cancel_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/reopen", "ReopenRequest")
                .summary("Reopens a resolved request within the reopening window ({reason}). Its citizen."),
            |mut clients: Clients, request| async move { clients.service_requests.reopen_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/assign", "AssignRequest")
                .summary("Assigns a request ({departmentId, assigneeId, priority, etag}). Staff of its commune."),
            |mut clients: Clients, request| async move { clients.service_requests.assign_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/extend", "ExtendRequestDeadline")
                .summary("Extends a request's deadline once ({reason}, told to the citizen). Staff of its commune."),
            |mut clients: Clients, request| async move {
                clients.service_requests.extend_request_deadline(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/rating", "RateRequest")
                .summary("Rates a resolved request 1 to 5 ({rating, comment}), once. Its citizen."),
            |mut clients: Clients, request| async move { clients.service_requests.rate_request(request).await },
        ),
        // service requests: attachments, response templates, appeals
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{requestId}/attachments", "AddAttachment")
                .summary("Attaches a file ({fileName, contentType, data: base64}) to a request: JPEG, PNG or PDF, checked against the bytes, at most 3 MiB (the gateway's body limit may be lower). Its citizen, or staff who may see it."),
            |mut clients: Clients, request| async move { clients.service_requests.add_attachment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/requests/{requestId}/attachments", "ListAttachments")
                .summary("Lists a request's attachments, without their bytes."),
            |mut clients: Clients, request| async move { clients.service_requests.list_attachments(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/requests/{requestId}/attachments/{id}", "GetAttachment")
                .summary("Gets one attachment with its bytes (base64)."),
            |mut clients: Clients, request| async move { clients.service_requests.get_attachment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/response-templates", "CreateResponseTemplate")
                .summary("Adds a response template ({template: {status, serviceId, name, text}}). Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.service_requests.create_response_template(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/response-templates", "ListResponseTemplates")
                .summary("Lists the commune's response templates (?status=…). Staff of the commune.")
                .query(&[QueryParam {
                    name: "status",
                    kind: ParamKind::String,
                    description: "Only those for this status, e.g. REQUEST_STATUS_RESOLVED.",
                }]),
            |mut clients: Clients, request| async move {
                clients.service_requests.list_response_templates(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/response-templates/{id}/delete", "DeleteResponseTemplate")
                .summary("Removes a response template. Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.service_requests.delete_response_template(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/appeals", "FileAppeal")
                .summary("Appeals an access-to-information request under law 31-13 ({level, reason}). Its citizen."),
            |mut clients: Clients, request| async move { clients.service_requests.file_appeal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/appeals/{appealId}/decision", "RecordAppealDecision")
                .summary("Records the decision on an appeal ({decision, upheld}). Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.service_requests.record_appeal_decision(request).await
            },
        ),
        // service requests: duplicates and followers
        Operation::rpc(
            RouteSpec::new(Post, "/v1/services/{serviceId}/nearby-requests/search", "ListNearbyRequests")
                .summary("The open requests of a service near a point ({location: {latitude, longitude}, radiusMeters}), nearest first, to follow one instead of filing a duplicate.")
                .public(),
            |mut clients: Clients, request| async move {
                clients.service_requests.list_nearby_requests(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/follow", "FollowRequest")
                .summary("Follows a request of the caller's commune: its changes reach the follower. Citizens."),
            |mut clients: Clients, request| async move { clients.service_requests.follow_request(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/requests/{id}/unfollow", "UnfollowRequest")
                .summary("Stops following a request. Citizens."),
            |mut clients: Clients, request| async move { clients.service_requests.unfollow_request(request).await },
        ),
        // service requests: public statistics
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/statistics", "GetRequestStatistics")
                .summary("Statistics of a commune's requests over months (received, answered, median and p90 working days, on-time share, satisfaction, backlog), per service and in total. Public; breakdown=STATISTICS_BREAKDOWN_GENDER or _AREA for the commune's administrators and council secretary, cells under 5 suppressed.")
                .query(statistics_query)
                .public(),
            |mut clients: Clients, request| async move {
                clients.service_requests.get_request_statistics(request).await
            },
        ),
        Operation::rpc_file(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/statistics/export", "ExportRequestStatistics")
                .summary("The same statistics as a file: format=EXPORT_FORMAT_CSV (text/csv) or EXPORT_FORMAT_JSON (application/json).")
                .query(statistics_export_query)
                .public(),
            "The statistics as CSV (RFC 4180, a header line) or as a JSON array of StatisticsRow.",
            |mut clients: Clients, request| async move {
                clients.service_requests.export_request_statistics(request).await
            },
            |response: jamaa_proto::servicerequest::v1::ExportRequestStatisticsResponse| {
                (response.content_type, response.data)
            },
        ),
        // service requests: the working-day calendar
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/closed-days", "ListClosedDays")
                .summary("Lists the days a commune is closed in a year (?year=…): fixed and moving national holidays, local closures.")
                .query(&[QueryParam {
                    name: "year",
                    kind: ParamKind::Integer,
                    description: "The year, e.g. 2026.",
                }])
                .public(),
            |mut clients: Clients, request| async move { clients.service_requests.list_closed_days(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/closed-days", "CreateClosedDay")
                .summary("Adds a closed day ({closedDay: {date, name}}): a commune's closure (its administrators) or a moving national holiday (platform administrators)."),
            |mut clients: Clients, request| async move { clients.service_requests.create_closed_day(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/closed-days/{id}/delete", "DeleteClosedDay")
                .summary("Removes a configured closed day. Who may create it may delete it."),
            |mut clients: Clients, request| async move { clients.service_requests.delete_closed_day(request).await },
        ),
        // desk appointments
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/offices", "ListOffices")
                .summary("Lists a commune's offices with their opening hours.")
                .public(),
            |mut clients: Clients, request| async move { clients.appointments.list_offices(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/offices", "CreateOffice")
                .summary("Adds an office ({office: {name, address, openingHours: [{weekday, opens, closes}]}}). Commune administrators."),
            |mut clients: Clients, request| async move { clients.appointments.create_office(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/offices/{officeId}/slots", "CreateSlots")
                .summary("Opens slots for a service ({serviceId, startDate, endDate, slotMinutes, capacity}) on the commune's working days within opening hours. Commune administrators and reception agents."),
            |mut clients: Clients, request| async move { clients.appointments.create_slots(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/offices/{officeId}/slots", "ListSlots")
                .summary("Lists an office's slots for a service between two dates.")
                .query(&[
                    QueryParam {
                        name: "serviceId",
                        kind: ParamKind::String,
                        description: "The service.",
                    },
                    QueryParam {
                        name: "startDate",
                        kind: ParamKind::String,
                        description: "The first date, YYYY-MM-DD.",
                    },
                    QueryParam {
                        name: "endDate",
                        kind: ParamKind::String,
                        description: "The last date, YYYY-MM-DD (at most 92 days later).",
                    },
                    QueryParam {
                        name: "availableOnly",
                        kind: ParamKind::Boolean,
                        description: "Only slots with a free place.",
                    },
                ])
                .public(),
            |mut clients: Clients, request| async move { clients.appointments.list_slots(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/appointments", "BookAppointment")
                .idempotent()
                .summary("Books a slot ({appointmentId, slotId, requestId}), never beyond its capacity. Citizens. Idempotent by appointmentId."),
            |mut clients: Clients, request| async move { clients.appointments.book_appointment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/appointments", "ListAppointments")
                .summary("Lists appointments: a citizen's own, or (desk staff) an office's on a date.")
                .query(&[
                    QueryParam {
                        name: "officeId",
                        kind: ParamKind::String,
                        description: "Staff: the office.",
                    },
                    QueryParam {
                        name: "date",
                        kind: ParamKind::String,
                        description: "Staff: the date, YYYY-MM-DD.",
                    },
                ]),
            |mut clients: Clients, request| async move { clients.appointments.list_appointments(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/appointments/{appointmentId}/move", "MoveAppointment")
                .summary("Moves a booked appointment to another slot ({slotId}) of the same office and service. Its citizen."),
            |mut clients: Clients, request| async move { clients.appointments.move_appointment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/appointments/{appointmentId}/cancel", "CancelAppointment")
                .summary("Cancels a booked appointment. Its citizen, or the desk."),
            |mut clients: Clients, request| async move { clients.appointments.cancel_appointment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/appointments/{appointmentId}/outcome", "RecordAppointmentOutcome")
                .summary("Records at the desk that the citizen arrived, was served or did not come ({status}). Reception agents and commune administrators."),
            |mut clients: Clients, request| async move {
                clients.appointments.record_appointment_outcome(request).await
            },
        ),
        // notifications
        Operation::rpc(
            RouteSpec::new(Get, "/v1/notifications", "ListNotifications")
                .summary("Lists the caller's notifications, newest first.")
                .query(list_notifications),
            |mut clients: Clients, request| async move { clients.notifications.list_notifications(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/notifications/{id}/read", "MarkNotificationRead")
                .idempotent()
                .summary("Marks one of the caller's notifications read.")
                .without_body(),
            |mut clients: Clients, request| async move {
                clients.notifications.mark_notification_read(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/notifications:markAllRead", "MarkAllNotificationsRead")
                .idempotent()
                .summary("Marks all the caller's notifications read.")
                .without_body(),
            |mut clients: Clients, request| async move {
                clients.notifications.mark_all_notifications_read(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/me/notification-preferences", "GetNotificationPreferences")
                .summary("The caller's notification preferences: channels per topic, daily digest, quiet hours, language, followed areas and announcement topics."),
            |mut clients: Clients, request| async move {
                clients.notifications.get_notification_preferences(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/me/notification-preferences:update", "UpdateNotificationPreferences")
                .idempotent()
                .summary("Changes the caller's notification preferences ({preferences: {…}, updateMask: \"topics,quietHours\"})."),
            |mut clients: Clients, request| async move {
                clients.notifications.update_notification_preferences(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/deliveries", "ListDeliveries")
                .summary("The e-mails and SMS sent to the caller, or (staff of their commune) to a person ({userId}), newest first.")
                .query(list_deliveries),
            |mut clients: Clients, request| async move { clients.notifications.list_deliveries(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/sms/receipts", "RecordSmsReceipt")
                .public()
                .idempotent()
                .summary("The SMS provider's delivery receipt ({providerMessageId, status, error}), with the receipt token the platform gave it (?receiptToken=…).")
                .query(sms_receipt),
            |mut clients: Clients, request| async move { clients.notifications.record_sms_receipt(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/notification-templates", "ListTemplates")
                .summary("The message templates as the caller's commune sends them, with placeholders and SMS length. Commune administrators.")
                .query(list_templates),
            |mut clients: Clients, request| async move { clients.notifications.list_templates(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/notification-templates:update", "UpdateTemplate")
                .idempotent()
                .summary("Overrides one template for the caller's commune ({template: {kind, language, title, body}}). Commune administrators."),
            |mut clients: Clients, request| async move { clients.notifications.update_template(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/notification-templates:deleteOverride", "DeleteTemplateOverride")
                .idempotent()
                .summary("Removes the commune's override of a template ({kind, language}). Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.notifications.delete_template_override(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/notification-templates:preview", "PreviewTemplate")
                .idempotent()
                .summary("Renders a template, or a draft ({kind, language, title, body}), with sample data: inbox text, e-mail HTML, SMS text and length. Commune administrators."),
            |mut clients: Clients, request| async move { clients.notifications.preview_template(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/announcements", "CreateAnnouncement")
                .idempotent()
                .summary("Publishes an announcement of the caller's commune, now or at publishTime. Commune administrators and council secretaries. Idempotent by requestId."),
            |mut clients: Clients, request| async move { clients.notifications.create_announcement(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/announcements/{id}", "GetAnnouncement")
                .public()
                .summary("Gets an announcement: published ones for anyone, others for the commune's staff."),
            |mut clients: Clients, request| async move { clients.notifications.get_announcement(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/communes/{communeCode}/announcements", "ListAnnouncements")
                .public()
                .summary("A commune's announcements, newest first (the public: published ones).")
                .query(PAGE),
            |mut clients: Clients, request| async move { clients.notifications.list_announcements(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/announcements/{id}/cancel", "CancelAnnouncement")
                .idempotent()
                .summary("Cancels a scheduled announcement. Its commune's administrators and council secretaries.")
                .without_body(),
            |mut clients: Clients, request| async move { clients.notifications.cancel_announcement(request).await },
        ),
        // participation
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions", "CreatePetition")
                .idempotent()
                .summary("Opens a petition in the caller's commune. Citizens. Idempotent by requestId."),
            |mut clients: Clients, request| async move { clients.participation.create_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/petitions", "ListPetitions")
                .summary("Lists the petitions of the caller's commune, newest first.")
                .query(PAGE),
            |mut clients: Clients, request| async move { clients.participation.list_petitions(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/petitions/{id}", "GetPetition").summary("Gets a petition of the caller's commune."),
            |mut clients: Clients, request| async move { clients.participation.get_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{petitionId}/signatures", "SignPetition")
                .idempotent()
                .summary("Signs a petition; once per citizen (signing again changes nothing).")
                .without_body(),
            |mut clients: Clients, request| async move { clients.participation.sign_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{id}/publish", "PublishPetition")
                .without_body()
                .summary("Opens a draft petition for signatures until the collecting window ends. Its agent."),
            |mut clients: Clients, request| async move { clients.participation.publish_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{id}/submit", "SubmitPetition")
                .without_body()
                .summary("Submits a petition that reached its threshold to the council; the decision is due within three months. Its agent."),
            |mut clients: Clients, request| async move { clients.participation.submit_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{id}/review", "ReviewPetition")
                .without_body()
                .summary("Takes a submitted petition under review by the council's bureau. Council secretaries and commune administrators."),
            |mut clients: Clients, request| async move { clients.participation.review_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{id}/admissibility", "DecidePetitionAdmissibility")
                .summary("Decides admissibility ({admissible, session} or {admissible: false, reasons}). Council secretaries and commune administrators."),
            |mut clients: Clients, request| async move {
                clients.participation.decide_petition_admissibility(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/petitions/{id}/answer", "AnswerPetition")
                .summary("Records the council's decision on an admissible petition ({decision}). Council secretaries and commune administrators."),
            |mut clients: Clients, request| async move { clients.participation.answer_petition(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/petitions/{id}/signatories", "ListPetitionSignatories")
                .summary("The signatories, for the petition's agent and the council secretary only; each reading is recorded."),
            |mut clients: Clients, request| async move {
                clients.participation.list_petition_signatories(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/proposals", "CreateProposal")
                .idempotent()
                .summary("Proposes an idea ({requestId, proposal: {title, body, category, latitude, longitude}}). Citizens."),
            |mut clients: Clients, request| async move { clients.participation.create_proposal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/proposals", "ListProposals")
                .summary("Lists the caller's commune's proposals, newest first (?category=…).")
                .query(&[
                    PAGE_SIZE,
                    PAGE_TOKEN,
                    QueryParam {
                        name: "category",
                        kind: ParamKind::String,
                        description: "Only this category.",
                    },
                ]),
            |mut clients: Clients, request| async move { clients.participation.list_proposals(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/proposals/{id}", "GetProposal")
                .summary("Gets a proposal of the caller's commune."),
            |mut clients: Clients, request| async move { clients.participation.get_proposal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/proposals/{id}/support", "SupportProposal")
                .idempotent()
                .without_body()
                .summary("Supports a proposal, once per resident."),
            |mut clients: Clients, request| async move { clients.participation.support_proposal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/proposals/{id}/support/withdraw", "WithdrawProposalSupport")
                .without_body()
                .summary("Withdraws one's support while the proposal is open."),
            |mut clients: Clients, request| async move {
                clients.participation.withdraw_proposal_support(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/proposals/{id}/answer", "AnswerProposal")
                .summary("Answers a proposal ({status, text}). Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.answer_proposal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/proposals/{id}/follow", "FollowProposal")
                .summary("Follows ({follow: true}) or stops following ({follow: false}) a proposal."),
            |mut clients: Clients, request| async move { clients.participation.follow_proposal(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/consultations", "CreateConsultation")
                .summary("Opens a consultation ({consultation: {title, questions, openTime, closeTime, minAssurance, freeTextPublic}}). Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.create_consultation(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/consultations", "ListConsultations")
                .summary("Lists the caller's commune's consultations, newest first."),
            |mut clients: Clients, request| async move { clients.participation.list_consultations(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/consultations/{id}", "GetConsultation")
                .summary("Gets a consultation of the caller's commune."),
            |mut clients: Clients, request| async move { clients.participation.get_consultation(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/consultations/{id}/responses", "RespondToConsultation")
                .summary("Answers a consultation once ({answers: [{questionIndex, choices, rating, text}]}). Residents of its audience."),
            |mut clients: Clients, request| async move {
                clients.participation.respond_to_consultation(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/consultations/{id}/results", "GetConsultationResults")
                .summary("The live results; free-text answers for staff unless public."),
            |mut clients: Clients, request| async move {
                clients.participation.get_consultation_results(request).await
            },
        ),
        Operation::rpc_file(
            RouteSpec::new(Get, "/v1/consultations/{id}/responses/export", "ExportConsultationResponses")
                .summary("Every response as CSV. Commune administrators and council secretaries."),
            "Every response as CSV (RFC 4180, a header line).",
            |mut clients: Clients, request| async move {
                clients.participation.export_consultation_responses(request).await
            },
            |response: jamaa_proto::participation::v1::ExportConsultationResponsesResponse| {
                (response.content_type, response.data)
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/comments", "AddComment")
                .summary("Comments on a petition, proposal, consultation or budget project ({subject, subjectId, body})."),
            |mut clients: Clients, request| async move { clients.participation.add_comment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/comments", "ListComments")
                .summary("The visible comments on a subject (?subject=COMMENT_SUBJECT_PROPOSAL&subjectId=…); moderators see all.")
                .query(&[
                    QueryParam {
                        name: "subject",
                        kind: ParamKind::String,
                        description: "COMMENT_SUBJECT_PETITION, _PROPOSAL, _CONSULTATION or _BUDGET_PROJECT.",
                    },
                    QueryParam {
                        name: "subjectId",
                        kind: ParamKind::String,
                        description: "The petition's, proposal's, consultation's or budget project's id.",
                    },
                ]),
            |mut clients: Clients, request| async move { clients.participation.list_comments(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/comments/{id}/report", "ReportComment")
                .without_body()
                .summary("Reports a comment, once per person."),
            |mut clients: Clients, request| async move { clients.participation.report_comment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/comments/{id}/moderation", "ModerateComment")
                .summary("Hides ({hide: true}) or restores a comment with a reason. Moderators."),
            |mut clients: Clients, request| async move { clients.participation.moderate_comment(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/results", "CreateResult")
                .summary("Records what the commune does about a petition, proposal or budget project ({result: {subject, subjectId, title, description}}). Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.create_result(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/results", "ListResults")
                .summary("Lists the commune's results, newest first."),
            |mut clients: Clients, request| async move { clients.participation.list_results(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/results/{id}", "GetResult")
                .summary("Gets a result with its dated updates."),
            |mut clients: Clients, request| async move { clients.participation.get_result(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/results/{id}/updates", "UpdateResult")
                .summary("Adds a dated update ({progress, status, note}); the author and followers hear of it. Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.update_result(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/participation-settings", "GetParticipationSettings")
                .summary("The caller's commune's participation rules (its own or the platform's)."),
            |mut clients: Clients, request| async move {
                clients.participation.get_participation_settings(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/participation-settings", "UpdateParticipationSettings")
                .summary("Sets the commune's participation rules ({settings: {petitionSigningAssurance, petitionCollectingDays, associationMinAgeMonths, proposalSupportThreshold, commentReportThreshold}}). Commune administrators."),
            |mut clients: Clients, request| async move {
                clients.participation.update_participation_settings(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/associations", "RegisterAssociation")
                .summary("Registers an association and its legal representative ({association: {name, registrationNumber, foundingDate, representativeId}}). Commune administrators and reception agents."),
            |mut clients: Clients, request| async move { clients.participation.register_association(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/associations", "ListAssociations")
                .summary("Lists the commune's registered associations."),
            |mut clients: Clients, request| async move { clients.participation.list_associations(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/budgets", "CreateBudget")
                .summary("Opens a participatory budget ({budget: {title, description, totalDirhams, votingRule, maxProjects, minAssurance}}). Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.create_budget(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/budgets", "ListBudgets")
                .summary("Lists the commune's participatory budgets, newest first."),
            |mut clients: Clients, request| async move { clients.participation.list_budgets(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/budgets/{id}", "GetBudget")
                .summary("Gets a participatory budget of the caller's commune."),
            |mut clients: Clients, request| async move { clients.participation.get_budget(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/budgets/{id}/phase", "AdvanceBudgetPhase")
                .summary("Moves a budget to its next phase ({phase}); entering RESULTS publishes them. Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move { clients.participation.advance_budget_phase(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/budgets/{budgetId}/projects", "ProposeBudgetProject")
                .summary("Proposes a project while the budget is PROPOSING ({requestId, project: {title, description, costDirhams}}). Residents."),
            |mut clients: Clients, request| async move {
                clients.participation.propose_budget_project(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/budgets/{budgetId}/projects", "ListBudgetProjects")
                .summary("Lists a budget's projects (with votes and selection once the results are out)."),
            |mut clients: Clients, request| async move {
                clients.participation.list_budget_projects(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/budget-projects/{id}/review", "ReviewBudgetProject")
                .summary("Records a project's feasibility review ({feasible, costDirhams, note}). Commune administrators and council secretaries."),
            |mut clients: Clients, request| async move {
                clients.participation.review_budget_project(request).await
            },
        ),
        Operation::rpc(
            RouteSpec::new(Post, "/v1/budgets/{budgetId}/ballots", "CastBudgetBallot")
                .summary("Casts the caller's one ballot ({projectIds}) while the budget is VOTING. Eligible residents."),
            |mut clients: Clients, request| async move { clients.participation.cast_budget_ballot(request).await },
        ),
        Operation::rpc(
            RouteSpec::new(Get, "/v1/budgets/{budgetId}/results", "GetBudgetResults")
                .summary("The published results: projects ranked by votes, the funded ones and the amount allocated."),
            |mut clients: Clients, request| async move { clients.participation.get_budget_results(request).await },
        ),
        // the gateway itself
        Operation::custom(
            RouteSpec::new(Get, "/openapi.json", "GetOpenApi")
                .summary("This OpenAPI document.")
                .public(),
            ResponseBody::Json("An OpenAPI 3.1 document."),
            openapi_document,
        ),
        Operation::custom(
            RouteSpec::new(Get, "/open311/v2/{file}", "GetOpen311Collection")
                .summary("Open311 GeoReport v2: discovery.{json,xml}, services.{json,xml} or requests.{json,xml} (?jurisdiction_id=<commune code>; requests: service_request_id, service_code, start_date, end_date, status). Errors as the spec's [{code, description}].")
                .query(OPEN311_QUERY)
                .public(),
            ResponseBody::File("The GeoReport v2 resource, as JSON or XML by its extension."),
            crate::open311::top_level,
        ),
        Operation::custom(
            RouteSpec::new(Post, "/open311/v2/{file}", "PostOpen311Request")
                .summary("Open311 GeoReport v2: requests.{json,xml} files a report (form-urlencoded: api_key, jurisdiction_id, service_code, lat and long or address_string, description, first_name, last_name, phone, attribute[code], attribute[code][]). The api_key is issued per commune and application.")
                .public(),
            ResponseBody::File("[{service_request_id, service_notice}] as JSON or XML by the extension."),
            crate::open311::post_request,
        ),
        Operation::custom(
            RouteSpec::new(Get, "/open311/v2/{collection}/{file}", "GetOpen311Item")
                .summary("Open311 GeoReport v2: services/{service_code}.{json,xml} (a service definition), requests/{service_request_id}.{json,xml} or tokens/{token}.{json,xml} (?jurisdiction_id=<commune code>).")
                .query(&OPEN311_QUERY[..1])
                .public(),
            ResponseBody::File("The GeoReport v2 resource, as JSON or XML by its extension."),
            crate::open311::item,
        ),
        Operation::custom(
            RouteSpec::new(Get, "/healthz", "Liveness")
                .summary("Liveness: the gateway is running.")
                .public(),
            ResponseBody::Text("ok"),
            liveness,
        ),
        Operation::custom(
            RouteSpec::new(Get, "/readyz", "Readiness")
                .summary("Readiness: 200 when the identity service reports SERVING, 503 otherwise.")
                .public(),
            ResponseBody::Text("ready, or why not"),
            readiness,
        ),
    ]
}

impl Operation {
    /// An operation answered by one unary gRPC call, its response message answered as JSON.
    fn rpc<Req, Resp, F, Fut>(spec: RouteSpec, call: F) -> Operation
    where
        Req: prost::Name + DeserializeOwned + Clone + Send + 'static,
        Resp: prost::Name + Serialize + Send + 'static,
        F: Fn(Clients, tonic::Request<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>> + Send + 'static,
    {
        let response = ResponseBody::Message(Resp::full_name());
        Operation::rpc_rendered(spec, response, call, |message: Resp| {
            serde_json::to_value(message)
        })
    }

    /// Like [`Operation::rpc`], with the response message rendered by `render`.
    fn rpc_rendered<Req, Resp, F, Fut, R>(
        spec: RouteSpec,
        response: ResponseBody,
        call: F,
        render: R,
    ) -> Operation
    where
        Req: prost::Name + DeserializeOwned + Clone + Send + 'static,
        Resp: Send + 'static,
        F: Fn(Clients, tonic::Request<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>> + Send + 'static,
        R: Fn(Resp) -> Result<Value, serde_json::Error> + Clone + Send + Sync + 'static,
    {
        let handler = move |State(state): State<AppState>,
                            path: Result<Path<HashMap<String, String>>, PathRejection>,
                            query: Result<Query<Vec<(String, String)>>, QueryRejection>,
                            peer: Option<Extension<ConnectInfo<SocketAddr>>>,
                            headers: HeaderMap,
                            body: Result<Bytes, BytesRejection>| {
            let call = call.clone();
            let render = render.clone();
            async move {
                let client_address = client_address(
                    &headers,
                    peer.map(|Extension(ConnectInfo(address))| address),
                    state.trust_forwarded_for,
                );
                let input = RequestInput {
                    path,
                    query,
                    headers,
                    body,
                    client_address,
                };
                match call_rpc(spec, state, input, call, render).await {
                    Ok(json) => Json(json).into_response(),
                    Err(problem) => problem.into_response(),
                }
            }
        };
        Operation {
            spec,
            request: Some(Req::full_name()),
            response,
            handler: on(spec.verb.filter(), handler),
        }
    }

    /// An RPC whose response is a file: `render` gives its content type and bytes.
    fn rpc_file<Req, Resp, F, Fut, R>(
        spec: RouteSpec,
        description: &'static str,
        call: F,
        render: R,
    ) -> Operation
    where
        Req: prost::Name + DeserializeOwned + Clone + Send + 'static,
        Resp: Send + 'static,
        F: Fn(Clients, tonic::Request<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>> + Send + 'static,
        R: Fn(Resp) -> (String, Vec<u8>) + Clone + Send + Sync + 'static,
    {
        let handler = move |State(state): State<AppState>,
                            path: Result<Path<HashMap<String, String>>, PathRejection>,
                            query: Result<Query<Vec<(String, String)>>, QueryRejection>,
                            peer: Option<Extension<ConnectInfo<SocketAddr>>>,
                            headers: HeaderMap,
                            body: Result<Bytes, BytesRejection>| {
            let call = call.clone();
            let render = render.clone();
            async move {
                let client_address = client_address(
                    &headers,
                    peer.map(|Extension(ConnectInfo(address))| address),
                    state.trust_forwarded_for,
                );
                let input = RequestInput {
                    path,
                    query,
                    headers,
                    body,
                    client_address,
                };
                let rendered = call_rpc(spec, state, input, call, |response| {
                    Ok::<_, serde_json::Error>(render(response))
                })
                .await;
                match rendered {
                    Ok((content_type, bytes)) => {
                        ([(axum::http::header::CONTENT_TYPE, content_type)], bytes).into_response()
                    }
                    Err(problem) => problem.into_response(),
                }
            }
        };
        Operation {
            spec,
            request: Some(Req::full_name()),
            response: ResponseBody::File(description),
            handler: on(spec.verb.filter(), handler),
        }
    }

    /// An operation answered by the gateway itself.
    fn custom<H, T>(spec: RouteSpec, response: ResponseBody, handler: H) -> Operation
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Operation {
            spec,
            request: None,
            response,
            handler: on(spec.verb.filter(), handler),
        }
    }
}

/// The parts of an HTTP request a gRPC call is made of.
struct RequestInput {
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    /// The client's address, passed to the services (throttling, audit).
    client_address: Option<String>,
}

/// The client's IP address: behind a trusted proxy, the last `X-Forwarded-For` entry (the one
/// that proxy appended: entries before it are whatever the client sent, and spoofable); else
/// the connection's peer.
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<String> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim)
        .filter(|value| value.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string);
    forwarded.or_else(|| peer.map(|address| address.ip().to_string()))
}

/// Reads the request message, makes the call, renders the response.
async fn call_rpc<Req, Resp, F, Fut, R, T>(
    spec: RouteSpec,
    state: AppState,
    input: RequestInput,
    call: F,
    render: R,
) -> Result<T, Problem>
where
    Req: prost::Name + DeserializeOwned + Clone,
    F: Fn(Clients, tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    R: Fn(Resp) -> Result<T, serde_json::Error>,
{
    let fields = request_fields(&spec, input.path, input.query, &input.headers, input.body)?;
    let message: Req = serde_json::from_value(Value::Object(fields)).map_err(|error| {
        Problem::malformed(format!(
            "the request does not fit {}: {error}",
            Req::full_name()
        ))
    })?;
    let response = call_with_retries(
        &spec,
        &state,
        &input.headers,
        input.client_address.as_deref(),
        message,
        &call,
    )
    .await?;
    render(response.into_inner()).map_err(|error| {
        tracing::error!(%error, "could not render a response as JSON");
        Problem::from_status(&tonic::Status::internal("rendering"))
    })
}

/// Calls the service; an idempotent call that fails with UNAVAILABLE is tried again after a short,
/// growing pause (with jitter), as long as the deadline allows. Each try gets what is left of the
/// deadline.
async fn call_with_retries<Req, Resp, F, Fut>(
    spec: &RouteSpec,
    state: &AppState,
    headers: &HeaderMap,
    client_address: Option<&str>,
    message: Req,
    call: &F,
) -> Result<tonic::Response<Resp>, Problem>
where
    Req: Clone,
    F: Fn(Clients, tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + state.call_timeout;
    let mut pause = Duration::from_millis(25);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let request = grpc_request(message.clone(), headers, client_address, left)?;
        match call(state.clients.clone(), request).await {
            Ok(response) => return Ok(response),
            Err(status) if spec.idempotent && is_retryable(&status) && left > pause * 2 => {
                tracing::debug!(operation = spec.operation_id, %status, "retrying");
                let jitter = Duration::from_millis(
                    u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|t| t.subsec_nanos())
                            .unwrap_or_default(),
                    ) % 25,
                );
                tokio::time::sleep(pause + jitter).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(status) => return Err(Problem::from_status(&status)),
        }
    }
}

/// The request message's JSON fields: the body's (when the operation reads one), then the query
/// parameters, then the path parameters (later ones win).
fn request_fields(
    spec: &RouteSpec,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, Problem> {
    let mut fields = if spec.body {
        let body = body.map_err(|rejection| Problem::from_body_rejection(&rejection))?;
        body_fields(headers, &body)?
    } else {
        Map::new()
    };
    let Query(query) = query.map_err(|rejection| Problem::from_query_rejection(&rejection))?;
    fields.extend(query_fields(spec.query, query)?);
    let Path(path) = path.map_err(|rejection| Problem::from_path_rejection(&rejection))?;
    fields.extend(
        path.into_iter()
            .map(|(name, value)| (name, Value::String(value))),
    );
    Ok(fields)
}

/// The fields of a JSON object body; an empty body is `{}`.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or_default();
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/json" && !media_type.ends_with("+json") {
            return Err(Problem::unsupported_media_type(content_type));
        }
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Problem::malformed("the body must be a JSON object")),
        Err(error) => Err(Problem::malformed(format!(
            "the body is not valid JSON: {error}"
        ))),
    }
}

/// The query parameters as JSON fields of the declared types; unknown or ill-typed ones are
/// refused, each named.
fn query_fields(
    accepted: &[QueryParam],
    query: Vec<(String, String)>,
) -> Result<Map<String, Value>, Problem> {
    let mut fields = Map::new();
    let mut errors = Vec::new();
    for (name, text) in query {
        let Some(param) = accepted.iter().find(|param| param.name == name) else {
            let expected: Vec<&str> = accepted.iter().map(|param| param.name).collect();
            let description = if expected.is_empty() {
                "is not a parameter of this operation (it takes none)".to_string()
            } else {
                format!(
                    "is not a parameter of this operation (it takes {})",
                    expected.join(", ")
                )
            };
            errors.push(FieldError {
                field: name,
                description,
            });
            continue;
        };
        let value = match param.kind {
            ParamKind::String => Some(Value::String(text)),
            ParamKind::Integer => text.parse::<i64>().ok().map(Value::from),
            ParamKind::Boolean => match text.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
        };
        match value {
            Some(value) => {
                fields.insert(name, value);
            }
            None => errors.push(FieldError {
                field: name,
                description: match param.kind {
                    ParamKind::Boolean => "must be true or false".to_string(),
                    _ => "must be an integer".to_string(),
                },
            }),
        }
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(Problem::invalid_fields(errors))
    }
}

/// The gRPC request: the message, the caller's `authorization` unchanged, the request id, the
/// client's address (whatever the client sent under that name is replaced), and the deadline.
fn grpc_request<Req>(
    message: Req,
    headers: &HeaderMap,
    client_address: Option<&str>,
    timeout: Duration,
) -> Result<tonic::Request<Req>, Problem> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    if let Some(value) =
        client_address.and_then(|address| AsciiMetadataValue::try_from(address).ok())
    {
        request
            .metadata_mut()
            .insert(jamaa_server::CLIENT_ADDRESS_HEADER, value);
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = AsciiMetadataValue::try_from(value.as_bytes()).map_err(|_| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                tonic::Code::Unauthenticated,
                "BAD_AUTHORIZATION_HEADER",
                "the authorization header must be `Bearer <token>`",
            )
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(value) = headers.get(REQUEST_ID_HEADER)
        && let Ok(value) = AsciiMetadataValue::try_from(value.as_bytes())
    {
        request.metadata_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(request)
}

async fn openapi_document(State(state): State<AppState>) -> Response {
    Json(state.openapi.as_ref()).into_response()
}

async fn liveness() -> &'static str {
    "ok"
}

/// 200 when identity's `grpc.health.v1` says SERVING, 503 otherwise.
async fn readiness(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let service = jamaa_proto::identity::v1::identity_service_server::SERVICE_NAME;
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    request.set_timeout(state.call_timeout);
    match state.clients.identity_health.clone().check(request).await {
        Ok(response) if response.get_ref().status() == ServingStatus::Serving => {
            (StatusCode::OK, "ready")
        }
        Ok(response) => {
            tracing::warn!(status = ?response.get_ref().status(), "not ready: identity is not serving");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: identity is not serving",
            )
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "not ready: identity is unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: identity is unreachable",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_peer_unless_a_trusted_proxy_forwards_it() {
        let mut headers = HeaderMap::new();
        // A client sent 198.51.100.4 itself; the proxy appended the address it saw.
        headers.insert(
            "x-forwarded-for",
            "198.51.100.4, 203.0.113.9".parse().expect("value"),
        );
        let peer = Some(SocketAddr::from(([10, 0, 0, 9], 41000)));
        assert_eq!(
            client_address(&headers, peer, false).as_deref(),
            Some("10.0.0.9")
        );
        assert_eq!(
            client_address(&headers, peer, true).as_deref(),
            Some("203.0.113.9")
        );
        headers.insert("x-forwarded-for", "not-an-address".parse().expect("value"));
        assert_eq!(
            client_address(&headers, peer, true).as_deref(),
            Some("10.0.0.9")
        );
        assert_eq!(client_address(&HeaderMap::new(), None, true), None);
    }

    #[test]
    fn every_rpc_of_the_public_services_has_an_operation() {
        // Service-to-service calls stay off the HTTP API.
        const INTERNAL: [&str; 2] = ["IssueServiceToken", "GetContactDetails"];
        let descriptors = <prost_types::FileDescriptorSet as prost::Message>::decode(
            jamaa_proto::FILE_DESCRIPTOR_SET,
        )
        .expect("the descriptor set");
        let routed: std::collections::BTreeSet<&str> = operations()
            .iter()
            .map(|operation| operation.spec.operation_id)
            .collect();
        let missing: Vec<String> = descriptors
            .file
            .iter()
            .filter(|file| file.package().starts_with("jamaa."))
            .flat_map(|file| &file.service)
            .flat_map(|service| &service.method)
            .map(|method| method.name().to_string())
            .filter(|name| !INTERNAL.contains(&name.as_str()) && !routed.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "RPCs without an HTTP operation: {missing:?}"
        );
    }

    #[test]
    fn query_parameters_are_typed() {
        let accepted = [
            PAGE_SIZE,
            PAGE_TOKEN,
            QueryParam {
                name: "unreadOnly",
                kind: ParamKind::Boolean,
                description: "",
            },
        ];
        let query = vec![
            ("pageSize".to_string(), "10".to_string()),
            ("pageToken".to_string(), "abc".to_string()),
            ("unreadOnly".to_string(), "true".to_string()),
        ];
        let fields = query_fields(&accepted, query).expect("valid parameters");
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({"pageSize": 10, "pageToken": "abc", "unreadOnly": true})
        );
    }

    #[test]
    fn bad_query_parameters_are_named() {
        let query = vec![
            ("page_size".to_string(), "10".to_string()),
            ("pageSize".to_string(), "ten".to_string()),
        ];
        let problem = query_fields(PAGE, query).expect_err("refused");
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        let fields: Vec<&str> = problem
            .errors
            .iter()
            .map(|error| error.field.as_str())
            .collect();
        assert_eq!(fields, ["page_size", "pageSize"]);
    }

    #[test]
    fn bodies_must_be_json_objects() {
        let mut headers = HeaderMap::new();
        assert!(body_fields(&headers, b"").expect("empty is {}").is_empty());
        assert_eq!(
            body_fields(&headers, b"[1]").expect_err("array").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            body_fields(&headers, b"{oops").expect_err("syntax").status,
            StatusCode::BAD_REQUEST
        );
        headers.insert(
            header::CONTENT_TYPE,
            "text/plain".parse().expect("header value"),
        );
        assert_eq!(
            body_fields(&headers, b"{}").expect_err("not json").status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
                .parse()
                .expect("header value"),
        );
        assert!(body_fields(&headers, b"{}").is_ok());
    }

    #[test]
    fn proto_json_fills_the_request_message() {
        use jamaa_proto::servicerequest::v1::{ListRequestsRequest, RequestStatus};
        let fields = query_fields(
            &[
                PAGE_SIZE,
                QueryParam {
                    name: "status",
                    kind: ParamKind::String,
                    description: "",
                },
            ],
            vec![
                ("pageSize".to_string(), "5".to_string()),
                (
                    "status".to_string(),
                    "REQUEST_STATUS_IN_PROGRESS".to_string(),
                ),
            ],
        )
        .expect("valid parameters");
        let request: ListRequestsRequest =
            serde_json::from_value(Value::Object(fields)).expect("fits");
        assert_eq!(request.page_size, 5);
        assert_eq!(request.status(), RequestStatus::InProgress);
    }

    #[test]
    fn only_transport_failures_and_unavailable_are_retried() {
        assert!(is_retryable(&tonic::Status::unavailable("no replica")));
        assert!(is_retryable(&tonic::Status::internal("h2 protocol error")));
        assert!(is_retryable(&tonic::Status::unknown("connection reset")));
        assert!(!is_retryable(&jamaa_server::status::internal(
            "a service's own failure"
        )));
        assert!(!is_retryable(&tonic::Status::not_found("request")));
        assert!(!is_retryable(&tonic::Status::invalid_argument("id")));
    }

    #[test]
    fn the_authorization_header_is_passed_through() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Bearer abc.def.ghi".parse().expect("header value"),
        );
        headers.insert(REQUEST_ID_HEADER, "req-1".parse().expect("header value"));
        let request = grpc_request((), &headers, Some("203.0.113.7"), Duration::from_secs(5))
            .expect("request");
        assert_eq!(
            request
                .metadata()
                .get(jamaa_server::CLIENT_ADDRESS_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("203.0.113.7")
        );
        let metadata = request.metadata();
        assert_eq!(
            metadata.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer abc.def.ghi")
        );
        assert_eq!(
            metadata
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("req-1")
        );
        assert_eq!(
            metadata.get("grpc-timeout").and_then(|v| v.to_str().ok()),
            Some("5000000u")
        );
    }
}
