//! How to reach people: their addresses come from the identity service, asked with
//! notification's own service credentials (`IssueServiceToken`, then `GetContactDetails` in
//! batches of up to 500), and cached for `notification.contact_cache_seconds` so a burst of
//! messages asks once. The event consumer never calls identity: only the senders do, when a
//! message leaves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::identity::v1::{GetContactDetailsRequest, IssueServiceTokenRequest};
use jamaa_server::StartError;
use jamaa_server::client::{BalancedChannel, balanced_channel};
use jamaa_settings::{ExposeSecret, SecretString};
use jamaa_telemetry::TraceContextInterceptor;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

/// The longest one call to identity may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// `GetContactDetails` takes at most this many people per call.
const BATCH: usize = 500;
/// Entries kept at most; past it the cache starts over.
const CACHE_CAPACITY: usize = 200_000;

/// How to reach one person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub commune_id: Option<Uuid>,
    pub email: String,
    pub email_verified: bool,
    pub phone_number: String,
    pub phone_verified: bool,
    pub disabled: bool,
}

impl Contact {
    /// The person's proven address on `channel`, if they have one.
    pub fn address(&self, channel: &str) -> Option<&str> {
        match channel {
            crate::routing::EMAIL if self.email_verified && !self.email.is_empty() => {
                Some(&self.email)
            }
            crate::routing::SMS if self.phone_verified && !self.phone_number.is_empty() => {
                Some(&self.phone_number)
            }
            _ => None,
        }
    }
}

type Client = IdentityServiceClient<InterceptedService<BalancedChannel, TraceContextInterceptor>>;

/// The identity service's contact details, cached.
pub struct ContactDirectory {
    client: Client,
    client_id: String,
    client_secret: SecretString,
    ttl: Duration,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// `None`: identity does not know the person (erased, or never existed).
    cache: Mutex<HashMap<Uuid, (Instant, Option<Contact>)>>,
}

impl ContactDirectory {
    /// A directory asking identity at `url` with the service credentials `client_id` /
    /// `client_secret`, caching answers for `ttl`.
    pub fn connect(
        url: &str,
        client_id: &str,
        client_secret: SecretString,
        ttl: Duration,
        shutdown: CancellationToken,
    ) -> Result<ContactDirectory, StartError> {
        let channel = balanced_channel("notification identity_url", url, shutdown)?;
        Ok(ContactDirectory {
            client: IdentityServiceClient::with_interceptor(channel, TraceContextInterceptor),
            client_id: client_id.to_string(),
            client_secret,
            ttl,
            token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The contacts of `people` identity knows; an error when identity cannot be asked (the
    /// caller tries again later).
    pub async fn lookup(&self, people: &[Uuid]) -> Result<HashMap<Uuid, Contact>, String> {
        let now = Instant::now();
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().map_err(|_| "contact cache poisoned")?;
            for person in people {
                match cache.get(person) {
                    Some((at, Some(contact))) if now.duration_since(*at) < self.ttl => {
                        found.insert(*person, contact.clone());
                    }
                    // Known to be unknown, for now.
                    Some((at, None)) if now.duration_since(*at) < self.ttl => {}
                    _ if !missing.contains(person) => missing.push(*person),
                    _ => {}
                }
            }
        }
        for chunk in missing.chunks(BATCH) {
            let answered = self.fetch(chunk).await?;
            let mut cache = self.cache.lock().map_err(|_| "contact cache poisoned")?;
            if cache.len() + chunk.len() > CACHE_CAPACITY {
                cache.clear();
            }
            for person in chunk {
                let contact = answered.get(person).cloned();
                cache.insert(*person, (Instant::now(), contact.clone()));
                if let Some(contact) = contact {
                    found.insert(*person, contact);
                }
            }
        }
        Ok(found)
    }

    /// Forgets what the cache holds of `person` (their account changed or was erased).
    pub fn forget(&self, person: Uuid) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&person);
        }
    }

    async fn fetch(&self, people: &[Uuid]) -> Result<HashMap<Uuid, Contact>, String> {
        let mut retried = false;
        loop {
            let token = self.token(retried).await?;
            let mut request = tonic::Request::new(GetContactDetailsRequest {
                user_ids: people.iter().map(Uuid::to_string).collect(),
            });
            request.set_timeout(CALL_TIMEOUT);
            let bearer = format!("Bearer {token}")
                .parse()
                .map_err(|_| "the service token is not a header value".to_string())?;
            request.metadata_mut().insert("authorization", bearer);
            let mut client = self.client.clone();
            match tokio::time::timeout(CALL_TIMEOUT, client.get_contact_details(request)).await {
                Err(_) => return Err("identity GetContactDetails timed out".into()),
                Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated && !retried => {
                    retried = true;
                }
                Ok(Err(status)) => return Err(format!("identity GetContactDetails: {status}")),
                Ok(Ok(response)) => {
                    return Ok(response
                        .into_inner()
                        .contacts
                        .into_iter()
                        .filter_map(|contact| {
                            let id = Uuid::parse_str(&contact.user_id).ok()?;
                            Some((
                                id,
                                Contact {
                                    commune_id: Uuid::parse_str(&contact.commune_id).ok(),
                                    email: contact.email,
                                    email_verified: contact.email_verified,
                                    phone_number: contact.phone_number,
                                    phone_verified: contact.phone_verified,
                                    disabled: contact.disabled,
                                },
                            ))
                        })
                        .collect());
                }
            }
        }
    }

    /// A service token for identity: the cached one until a minute before it expires (or
    /// `renew`).
    async fn token(&self, renew: bool) -> Result<String, String> {
        let mut held = self.token.lock().await;
        if let Some((token, until)) = held.as_ref()
            && !renew
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut client = self.client.clone();
        let call = client.issue_service_token(IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.expose_secret().to_string(),
            audience: "identity".into(),
        });
        let issued = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Err(_) => return Err("identity IssueServiceToken timed out".into()),
            Ok(Err(status)) => return Err(format!("identity IssueServiceToken: {status}")),
            Ok(Ok(response)) => response.into_inner(),
        };
        let lifetime = Duration::from_secs(issued.expires_in_seconds.max(0) as u64);
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        *held = Some((issued.access_token.clone(), until));
        Ok(issued.access_token)
    }
}
