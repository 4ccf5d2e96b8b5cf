//! Protection of personal data under law 09-08: the national ID number (CIN) and one-time codes.
//!
//! - [`NationalId`]: a parsed CIN. Its `Debug` never shows the number, so it cannot reach a log
//!   by accident.
//! - [`PersonalDataKeys`]: encrypts a CIN with XChaCha20-Poly1305 (an AEAD) under the current key
//!   (`identity.personal_data.key_id`), binding it to its account (the user id is the associated
//!   data, so a ciphertext copied to another row does not decrypt); keeps older keys for
//!   decryption (rotation: add a key, make it current, re-encrypt at leisure); and computes keyed
//!   hashes (HMAC-SHA-256) — the CIN's blind index (uniqueness and lookup without decrypting)
//!   and the stored form of one-time codes.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use jamaa_settings::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::error::Error;

/// Settings of section `[identity.personal_data]`: base64 keys of 32 bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct PersonalDataConfig {
    /// The key new ciphertexts are made with; a key of `encryption_keys`.
    pub key_id: String,
    /// Every key a stored ciphertext may need, by id.
    pub encryption_keys: HashMap<String, SecretString>,
    /// The HMAC key of blind indexes and one-time codes. Changing it orphans every stored index.
    pub index_key: SecretString,
}

/// A national identity card number: one or two letters then one to six digits, e.g. `AB123456`,
/// upper-cased, without spaces.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalId(String);

impl NationalId {
    pub fn parse(raw: &str) -> Result<NationalId, String> {
        let value: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        let letters = value.chars().take_while(char::is_ascii_uppercase).count();
        let digits = &value[letters..];
        let valid = (1..=2).contains(&letters)
            && (1..=6).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit());
        if valid {
            Ok(NationalId(value))
        } else {
            Err("must be a national ID number: one or two letters then up to six digits, e.g. AB123456".into())
        }
    }

    /// The number with at least half of it hidden, showing at most two characters at each end:
    /// `AB****56`, `X**3`.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let shown = (chars.len() / 4).min(2);
        chars
            .iter()
            .enumerate()
            .map(|(index, c)| {
                if index < shown || index >= chars.len() - shown {
                    *c
                } else {
                    '*'
                }
            })
            .collect()
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NationalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NationalId({})", self.masked())
    }
}

/// The associated-data context of national IDs (the user id alone).
const NATIONAL_ID_CONTEXT: &str = "";

/// The keys that protect personal data; see the module docs.
pub struct PersonalDataKeys {
    key_id: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
    index_key: Vec<u8>,
}

impl PersonalDataKeys {
    pub fn from_config(config: &PersonalDataConfig) -> Result<PersonalDataKeys, String> {
        let mut ciphers = HashMap::new();
        for (id, key) in &config.encryption_keys {
            let bytes = decode_key(key)
                .map_err(|error| format!("identity.personal_data.encryption_keys.{id} {error}"))?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| {
                format!("identity.personal_data.encryption_keys.{id} must be 32 bytes")
            })?;
            ciphers.insert(id.clone(), cipher);
        }
        if !ciphers.contains_key(&config.key_id) {
            return Err(format!(
                "identity.personal_data.key_id {:?} names no key of identity.personal_data.encryption_keys",
                config.key_id
            ));
        }
        let index_key = decode_key(&config.index_key)
            .map_err(|error| format!("identity.personal_data.index_key {error}"))?;
        Ok(PersonalDataKeys {
            key_id: config.key_id.clone(),
            ciphers,
            index_key,
        })
    }

    /// The current key's id and `national_id` encrypted for `user_id`: nonce then ciphertext.
    pub fn encrypt(
        &self,
        user_id: Uuid,
        national_id: &NationalId,
    ) -> Result<(String, Vec<u8>), Error> {
        self.seal(
            user_id,
            NATIONAL_ID_CONTEXT,
            national_id.expose().as_bytes(),
        )
    }

    /// The national ID stored for `user_id`.
    pub fn decrypt(&self, user_id: Uuid, key_id: &str, stored: &[u8]) -> Result<NationalId, Error> {
        let plain = self.open(user_id, NATIONAL_ID_CONTEXT, key_id, stored)?;
        let text = String::from_utf8(plain)
            .map_err(|_| Error::Internal("a stored national ID is not text".into()))?;
        NationalId::parse(&text).map_err(Error::Internal)
    }

    /// Encrypts a secret of `user_id` (a national ID, a TOTP seed) under the current key, bound
    /// to the account and to `context` (the associated data is the user id then the context):
    /// the key id, and the nonce then the ciphertext.
    pub fn seal(
        &self,
        user_id: Uuid,
        context: &str,
        secret: &[u8],
    ) -> Result<(String, Vec<u8>), Error> {
        let cipher = self
            .ciphers
            .get(&self.key_id)
            .ok_or_else(|| Error::Internal("the current personal-data key is missing".into()))?;
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        let aad = [user_id.as_bytes().as_slice(), context.as_bytes()].concat();
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Internal("cannot encrypt a secret".into()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&ciphertext);
        Ok((self.key_id.clone(), stored))
    }

    /// Decrypts what [`Self::seal`] made.
    pub fn open(
        &self,
        user_id: Uuid,
        context: &str,
        key_id: &str,
        stored: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let cipher = self.ciphers.get(key_id).ok_or_else(|| {
            Error::Internal(format!("personal-data key {key_id:?} is not configured"))
        })?;
        if stored.len() < 24 {
            return Err(Error::Internal("a stored secret is truncated".into()));
        }
        let (nonce, ciphertext) = stored.split_at(24);
        let nonce = XNonce::try_from(nonce)
            .map_err(|_| Error::Internal("a stored secret is truncated".into()))?;
        let aad = [user_id.as_bytes().as_slice(), context.as_bytes()].concat();
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Internal("a stored secret does not decrypt".into()))
    }

    /// A keyed hash of a recovery code of `user_id`.
    pub fn recovery_code_hash(&self, user_id: Uuid, code: &str) -> String {
        self.keyed_hash(&["recovery-code", &user_id.to_string(), code])
    }

    /// The blind index of `national_id`: equal numbers, equal indexes; nothing else learnt.
    pub fn blind_index(&self, national_id: &NationalId) -> String {
        self.keyed_hash(&["national-id", national_id.expose()])
    }

    /// What the audit log keeps of an identifier someone typed (`kind` `email` or `phone`,
    /// normalised): a keyed hash, so entries about one identifier can be linked without the log
    /// holding it, and nobody without the key can test a guess against it.
    pub fn identifier_hash(&self, kind: &str, identifier: &str) -> String {
        self.keyed_hash(&["audit-identifier", kind, identifier])
    }

    /// The stored form of a one-time `code` sent to `user_id` for `purpose`.
    pub fn code_hash(&self, user_id: Uuid, purpose: &str, code: &str) -> String {
        self.keyed_hash(&["one-time-code", &user_id.to_string(), purpose, code])
    }

    /// HMAC-SHA-256 over the parts, each length-prefixed (no two part lists collide), in hex.
    fn keyed_hash(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.index_key) else {
            // HMAC takes keys of any length.
            return String::new();
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

fn decode_key(key: &SecretString) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(key.expose_secret().trim())
        .map_err(|_| "must be base64".to_string())?;
    if bytes.len() != 32 {
        return Err(format!("must be 32 bytes (it has {})", bytes.len()));
    }
    Ok(bytes)
}

/// Keys for unit tests: `k1` and the current `k2`.
#[cfg(test)]
pub(crate) fn test_keys() -> PersonalDataKeys {
    let key = |byte: u8| SecretString::from(STANDARD.encode([byte; 32]));
    let config = PersonalDataConfig {
        key_id: "k2".into(),
        encryption_keys: [("k1".to_string(), key(1)), ("k2".to_string(), key(2))].into(),
        index_key: key(3),
    };
    match PersonalDataKeys::from_config(&config) {
        Ok(keys) => keys,
        Err(error) => panic!("test keys: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> PersonalDataKeys {
        test_keys()
    }

    #[test]
    fn national_ids_parse_normalised_and_mask() {
        let id = NationalId::parse(" ab 123456 ").expect("valid");
        assert_eq!(id.expose(), "AB123456");
        assert_eq!(id.masked(), "AB****56");
        assert_eq!(NationalId::parse("A1").expect("valid").masked(), "**");
        assert_eq!(NationalId::parse("X123").expect("valid").masked(), "X**3");
        assert_eq!(
            NationalId::parse("B12345").expect("valid").masked(),
            "B****5"
        );
        assert!(format!("{id:?}").contains("AB****56") && !format!("{id:?}").contains("123456"));
        for bad in ["", "123456", "ABC123", "AB1234567", "AB12-34", "ÉA1234"] {
            assert!(NationalId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn encryption_round_trips_is_bound_to_its_account_and_never_repeats() {
        let keys = keys();
        let id = NationalId::parse("BK654321").expect("valid");
        let user = Uuid::now_v7();
        let (key_id, first) = keys.encrypt(user, &id).expect("encrypt");
        let (_, second) = keys.encrypt(user, &id).expect("encrypt");
        assert_eq!(key_id, "k2");
        assert_ne!(first, second, "a fresh nonce each time");
        assert!(!first.windows(8).any(|window| window == b"BK654321"));
        assert_eq!(keys.decrypt(user, &key_id, &first).expect("decrypt"), id);
        assert!(keys.decrypt(Uuid::now_v7(), &key_id, &first).is_err());
        assert!(keys.decrypt(user, "k1", &first).is_err());
    }

    #[test]
    fn blind_indexes_match_for_equal_numbers_only() {
        let keys = keys();
        let a = NationalId::parse("BK654321").expect("valid");
        let b = NationalId::parse("bk 654321").expect("valid");
        let c = NationalId::parse("BK654322").expect("valid");
        assert_eq!(keys.blind_index(&a), keys.blind_index(&b));
        assert_ne!(keys.blind_index(&a), keys.blind_index(&c));
        assert_eq!(keys.blind_index(&a).len(), 64);
    }

    #[test]
    fn bad_configuration_is_refused_with_the_setting_named() {
        let error = PersonalDataKeys::from_config(&PersonalDataConfig {
            key_id: "missing".into(),
            encryption_keys: [(
                "k1".to_string(),
                SecretString::from(STANDARD.encode([1; 32])),
            )]
            .into(),
            index_key: SecretString::from(STANDARD.encode([3; 32])),
        })
        .err()
        .unwrap_or_default();
        assert!(error.contains("identity.personal_data.key_id"), "{error}");
        let error = PersonalDataKeys::from_config(&PersonalDataConfig {
            key_id: "k1".into(),
            encryption_keys: [(
                "k1".to_string(),
                SecretString::from(STANDARD.encode([1; 16])),
            )]
            .into(),
            index_key: SecretString::from(STANDARD.encode([3; 32])),
        })
        .err()
        .unwrap_or_default();
        assert!(error.contains("32 bytes"), "{error}");
    }
}
