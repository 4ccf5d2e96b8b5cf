//! The identity service's public keys as a JSON Web Key Set (RFC 7517, keys per RFC 8037), for
//! clients and third parties that verify Jamaa access tokens themselves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jamaa_proto::identity::v1::ListPublicKeysResponse;
use serde::Serialize;

/// A JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonWebKeySet {
    pub keys: Vec<JsonWebKey>,
}

/// An Octet Key Pair public key (RFC 8037), e.g. Ed25519.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonWebKey {
    /// Always `OKP`.
    pub kty: &'static str,
    /// The curve, `Ed25519`.
    pub crv: String,
    /// The raw public key, base64url without padding.
    pub x: String,
    /// The key id, as in a token header's `kid`.
    pub kid: String,
    /// The JWS algorithm, `EdDSA`.
    pub alg: String,
    /// Always `sig`: the keys verify signatures.
    #[serde(rename = "use")]
    pub key_use: &'static str,
}

/// Renders `ListPublicKeys`' answer as a JWKS.
pub fn render(response: ListPublicKeysResponse) -> JsonWebKeySet {
    let keys = response
        .keys
        .into_iter()
        .map(|key| JsonWebKey {
            kty: "OKP",
            crv: key.curve,
            x: URL_SAFE_NO_PAD.encode(&key.public_key),
            kid: key.kid,
            alg: key.algorithm,
            key_use: "sig",
        })
        .collect();
    JsonWebKeySet { keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamaa_proto::identity::v1::PublicKey;

    #[test]
    fn renders_ed25519_keys() {
        let response = ListPublicKeysResponse {
            keys: vec![PublicKey {
                kid: "key-1".into(),
                algorithm: "EdDSA".into(),
                curve: "Ed25519".into(),
                public_key: vec![0xfb; 32],
            }],
        };
        let json = serde_json::to_value(render(response)).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s",
                "kid": "key-1",
                "alg": "EdDSA",
                "use": "sig",
            }]})
        );
    }

    #[test]
    fn no_keys_is_an_empty_set() {
        let json =
            serde_json::to_value(render(ListPublicKeysResponse::default())).expect("serializes");
        assert_eq!(json, serde_json::json!({"keys": []}));
    }
}
