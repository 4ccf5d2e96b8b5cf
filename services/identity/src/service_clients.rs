//! The services' own credentials (client-credentials style): each service that calls another
//! has a client id and a secret from configuration, exchanged at identity for a short-lived token
//! for one target service. People's tokens never travel between services.

use std::collections::HashMap;

use jamaa_settings::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The configured clients, secrets kept only as SHA-256 digests.
pub struct ServiceClients {
    digests: HashMap<String, [u8; 32]>,
    platform_audience: String,
}

impl ServiceClients {
    pub fn new(clients: &HashMap<String, SecretString>, platform_audience: String) -> Self {
        ServiceClients {
            digests: clients
                .iter()
                .map(|(id, secret)| (id.clone(), digest(secret.expose_secret())))
                .collect(),
            platform_audience,
        }
    }

    /// Whether `secret` is `client_id`'s. Compares digests in constant time; an unknown client
    /// costs the same as a known one.
    pub fn authenticate(&self, client_id: &str, secret: &str) -> bool {
        let presented = digest(secret);
        let expected = self.digests.get(client_id).copied().unwrap_or([0xff; 32]);
        let differences = presented
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differences == 0 && self.digests.contains_key(client_id)
    }

    /// The `aud` of a token for `service`, or `None` when no such service exists.
    pub fn audience_for(&self, service: &str) -> Option<String> {
        jamaa_auth::SERVICES
            .contains(&service)
            .then(|| jamaa_auth::service_audience(&self.platform_audience, service))
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_secret_of_a_known_client_authenticates() {
        let clients = ServiceClients::new(
            &[(
                "notification".to_string(),
                SecretString::from("s3cret".to_string()),
            )]
            .into(),
            "jamaa".into(),
        );
        assert!(clients.authenticate("notification", "s3cret"));
        assert!(!clients.authenticate("notification", "s3cret "));
        assert!(!clients.authenticate("participation", "s3cret"));
        assert_eq!(
            clients.audience_for("identity").as_deref(),
            Some("jamaa:identity")
        );
        assert_eq!(clients.audience_for("elsewhere"), None);
    }
}
