//! The demo commune created on first start, so a fresh laptop has something to try.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_settings::{ExposeSecret, SecretString};
use serde::Deserialize;
use tonic::{Code, Request};

use crate::Stack;

/// Section `[demo]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoConfig {
    /// Create the demo commune on start (idempotent).
    pub enabled: bool,
    pub commune_code: String,
    pub admin_email: String,
    pub admin_password: SecretString,
}

/// What was prepared.
pub struct DemoReport {
    pub commune_code: String,
    pub admin_email: String,
    /// The password, shown only while it is still the published laptop default.
    pub default_password: Option<String>,
    pub service_id: String,
}

/// The demo administrator's laptop default password (see `DEFAULTS`).
pub const DEFAULT_DEMO_PASSWORD: &str = "demo-admin-change-me";

impl DemoReport {
    /// How to log in, printed at start-up.
    pub fn instructions(&self, stack: &Stack) -> String {
        format!(
            "\nJamaa is running.\n  gRPC:    {grpc} (reflection and grpc.health.v1 on)\n  HTTP:    {http} (OpenAPI at {http}/openapi.json)\n  Metrics: http://127.0.0.1:{metrics}/metrics\n  Demo commune {code}: log in as its administrator {email} with password {password}\n  Try:     curl -s -X POST {http}/v1/sessions -H 'content-type: application/json' -d '{{\"email\":\"{email}\",\"password\":\"<password>\"}}'\n  Service \"pothole\" (an incident report) has id {service}\n",
            grpc = stack.grpc_url(),
            http = stack.http_url(),
            metrics = stack.metrics_port,
            code = self.commune_code,
            email = self.admin_email,
            password = self
                .default_password
                .as_deref()
                .unwrap_or("(the demo.admin_password setting)"),
            service = self.service_id,
        )
    }
}

/// Creates the demo commune, its administrator and one catalogue service unless they exist.
pub async fn ensure_demo(
    grpc_url: &str,
    demo: &DemoConfig,
    platform_admin: (Option<String>, Option<SecretString>),
) -> anyhow::Result<DemoReport> {
    let mut identity_client = IdentityServiceClient::connect(grpc_url.to_string()).await?;
    let existing = identity_client
        .get_commune(identity::GetCommuneRequest {
            code: demo.commune_code.clone(),
        })
        .await;
    match existing {
        Ok(_) => {}
        Err(status) if status.code() == Code::NotFound => {
            let (Some(email), Some(password)) = platform_admin else {
                anyhow::bail!(
                    "set identity.platform_admin_email and _password to create the demo commune"
                );
            };
            let token = login(&mut identity_client, &email, password.expose_secret()).await?;
            identity_client
                .create_commune(authorized(
                    identity::CreateCommuneRequest {
                        code: demo.commune_code.clone(),
                        name: Some(LocalizedText {
                            ar: "الجماعة التجريبية".into(),
                            fr: "Commune de démonstration".into(),
                            en: "Demo commune".into(),
                            tzm: "ⵜⴰⵎⵏⴰⴹⵜ ⵏ ⵓⵙⴽⴰⵏ".into(),
                        }),
                        population: 20_000,
                        has_arrondissements: false,
                        petition_signature_threshold: 3,
                        admin_email: demo.admin_email.clone(),
                        admin_password: demo.admin_password.expose_secret().to_string(),
                        admin_display_name: "Demo administrator".into(),
                        admin_language: Language::Fr as i32,
                    },
                    &token,
                )?)
                .await?;
        }
        Err(status) => return Err(status.into()),
    }

    let mut requests_client = ServiceRequestServiceClient::connect(grpc_url.to_string()).await?;
    let services = requests_client
        .list_services(requests::ListServicesRequest {
            commune_code: demo.commune_code.clone(),
            page_size: 1,
            page_token: String::new(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .services;
    let service_id = match services.first() {
        Some(service) => service.id.clone(),
        None => {
            let token = login(
                &mut identity_client,
                &demo.admin_email,
                demo.admin_password.expose_secret(),
            )
            .await?;
            requests_client
                .create_service(authorized(
                    requests::CreateServiceRequest {
                        service: Some(requests::ServiceDefinition {
                            code: "pothole".into(),
                            name: Some(LocalizedText {
                                ar: "حفرة في الطريق".into(),
                                fr: "Nid-de-poule".into(),
                                en: "Pothole".into(),
                                tzm: String::new(),
                            }),
                            description: None,
                            kind: requests::ServiceKind::IncidentReport as i32,
                            channel: requests::ServiceChannel::OnlineAndDesk as i32,
                            ..Default::default()
                        }),
                    },
                    &token,
                )?)
                .await?
                .into_inner()
                .service
                .map(|service| service.id)
                .unwrap_or_default()
        }
    };
    Ok(DemoReport {
        commune_code: demo.commune_code.clone(),
        admin_email: demo.admin_email.clone(),
        default_password: (demo.admin_password.expose_secret() == DEFAULT_DEMO_PASSWORD)
            .then(|| DEFAULT_DEMO_PASSWORD.to_string()),
        service_id,
    })
}

async fn login(
    client: &mut IdentityServiceClient<tonic::transport::Channel>,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    Ok(client
        .login(identity::LoginRequest {
            email: email.to_string(),
            password: password.to_string(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .access_token)
}

fn authorized<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}
