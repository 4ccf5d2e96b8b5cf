//! What participation asks the identity service: a commune's petition signature threshold.

use std::time::Duration;

use jamaa_proto::identity::v1::GetCommuneRequest;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_server::StartError;
use jamaa_server::client::{BalancedChannel, balanced_channel, is_retryable};
use jamaa_telemetry::TraceContextInterceptor;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::domain::SignatureThreshold;
use crate::error::Error;

/// The longest a call to identity may take, connection included.
pub const IDENTITY_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of identity's public `GetCommune`, balanced across identity's serving replicas (so
/// it can be built before identity listens: in the all-in-one, identity is the same process).
#[derive(Clone)]
pub struct CommuneDirectory {
    client: IdentityServiceClient<InterceptedService<BalancedChannel, TraceContextInterceptor>>,
}

impl CommuneDirectory {
    /// A directory asking identity at `url` (e.g. `http://127.0.0.1:50051`), until `shutdown`.
    pub fn connect(url: &str, shutdown: CancellationToken) -> Result<CommuneDirectory, StartError> {
        let channel = balanced_channel("auth.identity_url", url, shutdown)?;
        Ok(CommuneDirectory {
            client: IdentityServiceClient::with_interceptor(channel, TraceContextInterceptor),
        })
    }

    /// The petition signature threshold of the commune `code`, which must be `commune_id`.
    pub async fn petition_threshold(
        &self,
        commune_id: Uuid,
        code: &str,
    ) -> Result<SignatureThreshold, Error> {
        // GetCommune is a read: a retryable failure (a replica restarting, overload, a broken
        // connection; see `is_retryable`) is tried again after a
        // short growing pause, within the call's time budget.
        let call = async {
            let mut pause = Duration::from_millis(25);
            loop {
                let mut client = self.client.clone();
                let result = client
                    .get_commune(GetCommuneRequest {
                        code: code.to_string(),
                    })
                    .await;
                match result {
                    Err(status) if is_retryable(&status) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    other => return other,
                }
            }
        };
        let response = match tokio::time::timeout(IDENTITY_CALL_TIMEOUT, call).await {
            Err(_) => return Err(Error::IdentityUnavailable("GetCommune timed out".into())),
            Ok(Err(status)) => {
                return Err(match status.code() {
                    Code::NotFound => Error::CommuneNotFound(code.to_string()),
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::ResourceExhausted => {
                        Error::IdentityUnavailable(format!("GetCommune: {status}"))
                    }
                    _ => Error::Internal(format!("identity GetCommune failed: {status}")),
                });
            }
            Ok(Ok(response)) => response.into_inner(),
        };
        let commune = response.commune.ok_or_else(|| {
            Error::Internal("identity GetCommune answered without a commune".into())
        })?;
        if commune.id != commune_id.to_string() {
            return Err(Error::Internal(format!(
                "commune {code} is {} at identity but {commune_id} in the access token",
                commune.id
            )));
        }
        SignatureThreshold::from_commune(commune.petition_signature_threshold)
            .map_err(|problem| Error::Internal(format!("commune {code}: {problem}")))
    }
}
