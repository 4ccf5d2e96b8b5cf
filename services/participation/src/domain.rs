//! Participation's domain: parsed petition input (parse, don't validate), a petition's status,
//! and the rule that decides when a petition reaches its signature threshold.

use jamaa_proto::participation::v1 as pb;
use uuid::Uuid;

/// The longest petition title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
/// The longest petition body, in characters.
pub const BODY_MAX_CHARS: usize = 10_000;

/// A petition's title: 1 to 200 characters, trimmed, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PetitionTitle(String);

impl PetitionTitle {
    pub fn parse(raw: &str) -> Result<PetitionTitle, String> {
        let title = raw.trim();
        match title.chars().count() {
            0 => Err("is required".into()),
            n if n > TITLE_MAX_CHARS => {
                Err(format!("must have at most {TITLE_MAX_CHARS} characters"))
            }
            _ if title.chars().any(char::is_control) => {
                Err("must not contain control characters or line breaks".into())
            }
            _ => Ok(PetitionTitle(title.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a petition asks of the council: 1 to 10,000 characters, trimmed; line breaks and tabs
/// are kept, other control characters refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PetitionBody(String);

impl PetitionBody {
    pub fn parse(raw: &str) -> Result<PetitionBody, String> {
        let body = raw.trim();
        let allowed_control = |c: char| matches!(c, '\n' | '\r' | '\t');
        match body.chars().count() {
            0 => Err("is required".into()),
            n if n > BODY_MAX_CHARS => {
                Err(format!("must have at most {BODY_MAX_CHARS} characters"))
            }
            _ if body.chars().any(|c| c.is_control() && !allowed_control(c)) => {
                Err("must not contain control characters other than line breaks and tabs".into())
            }
            _ => Ok(PetitionBody(body.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A required UUID from the wire (a `request_id` or a petition id).
pub fn parse_uuid(raw: &str) -> Result<Uuid, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    Uuid::parse_str(raw).map_err(|_| "must be a UUID".to_string())
}

/// The number of signatures a petition needs, fixed when it opens: at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureThreshold(i32);

impl SignatureThreshold {
    /// The threshold read from the commune (`Commune.petition_signature_threshold`, computed by
    /// identity from organic law 113-14). Refuses values below 1: such a commune is misconfigured.
    pub fn from_commune(value: i32) -> Result<SignatureThreshold, String> {
        if value >= 1 {
            Ok(SignatureThreshold(value))
        } else {
            Err(format!(
                "the commune's petition signature threshold must be at least 1, not {value}"
            ))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Whether a petition must be marked as having reached its threshold now: it has not reached it
/// yet and `signature_count` signatures are enough. A petition reaches its threshold once; later
/// signatures still count but never make it reach it again.
pub fn threshold_newly_reached(
    already_reached: bool,
    signature_count: i64,
    signature_threshold: i32,
) -> bool {
    !already_reached && signature_count >= i64::from(signature_threshold)
}

/// Where a petition stands (stored as [`PetitionStatus::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PetitionStatus {
    /// Written, not open for signatures yet.
    Draft,
    /// Gathering signatures.
    Collecting,
    /// Has as many signatures as its threshold asks.
    ThresholdReached,
    Submitted,
    UnderReview,
    Admissible,
    Inadmissible,
    Answered,
    Expired,
}

impl PetitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PetitionStatus::Draft => "draft",
            PetitionStatus::Collecting => "collecting",
            PetitionStatus::ThresholdReached => "threshold_reached",
            PetitionStatus::Submitted => "submitted",
            PetitionStatus::UnderReview => "under_review",
            PetitionStatus::Admissible => "admissible",
            PetitionStatus::Inadmissible => "inadmissible",
            PetitionStatus::Answered => "answered",
            PetitionStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<PetitionStatus> {
        [
            PetitionStatus::Draft,
            PetitionStatus::Collecting,
            PetitionStatus::ThresholdReached,
            PetitionStatus::Submitted,
            PetitionStatus::UnderReview,
            PetitionStatus::Admissible,
            PetitionStatus::Inadmissible,
            PetitionStatus::Answered,
            PetitionStatus::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    pub fn to_proto(self) -> pb::PetitionStatus {
        match self {
            PetitionStatus::Draft => pb::PetitionStatus::Draft,
            PetitionStatus::Collecting => pb::PetitionStatus::Collecting,
            PetitionStatus::ThresholdReached => pb::PetitionStatus::ThresholdReached,
            PetitionStatus::Submitted => pb::PetitionStatus::Submitted,
            PetitionStatus::UnderReview => pb::PetitionStatus::UnderReview,
            PetitionStatus::Admissible => pb::PetitionStatus::Admissible,
            PetitionStatus::Inadmissible => pb::PetitionStatus::Inadmissible,
            PetitionStatus::Answered => pb::PetitionStatus::Answered,
            PetitionStatus::Expired => pb::PetitionStatus::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_bounded_and_single_line() {
        assert_eq!(
            PetitionTitle::parse("  Éclairage public  ").map(|t| t.0),
            Ok("Éclairage public".into())
        );
        assert!(PetitionTitle::parse("").is_err());
        assert!(PetitionTitle::parse("   ").is_err());
        assert!(PetitionTitle::parse("two\nlines").is_err());
        // Limits are in characters, not bytes: 200 Arabic letters are fine.
        assert!(PetitionTitle::parse(&"ع".repeat(TITLE_MAX_CHARS)).is_ok());
        assert!(PetitionTitle::parse(&"a".repeat(TITLE_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn bodies_keep_line_breaks_and_are_bounded() {
        assert_eq!(
            PetitionBody::parse(" first\n\tsecond ").map(|b| b.0),
            Ok("first\n\tsecond".into())
        );
        assert!(PetitionBody::parse("").is_err());
        assert!(PetitionBody::parse("bell\u{7}").is_err());
        assert!(PetitionBody::parse(&"ⵣ".repeat(BODY_MAX_CHARS)).is_ok());
        assert!(PetitionBody::parse(&"a".repeat(BODY_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn uuids_are_required_and_checked() {
        let id = Uuid::now_v7();
        assert_eq!(parse_uuid(&id.to_string()), Ok(id));
        assert_eq!(parse_uuid(""), Err("is required".to_string()));
        assert_eq!(parse_uuid("not-a-uuid"), Err("must be a UUID".to_string()));
    }

    #[test]
    fn thresholds_are_positive() {
        assert_eq!(
            SignatureThreshold::from_commune(100).map(SignatureThreshold::get),
            Ok(100)
        );
        assert!(SignatureThreshold::from_commune(0).is_err());
        assert!(SignatureThreshold::from_commune(-5).is_err());
    }

    #[test]
    fn a_petition_reaches_its_threshold_once() {
        assert!(!threshold_newly_reached(false, 99, 100));
        assert!(threshold_newly_reached(false, 100, 100));
        // A signature that was invisible to a concurrent check is caught by the next one.
        assert!(threshold_newly_reached(false, 101, 100));
        // Already reached: more signatures never fire it again.
        assert!(!threshold_newly_reached(true, 100, 100));
        assert!(!threshold_newly_reached(true, 500, 100));
    }

    #[test]
    fn statuses_round_trip() {
        for status in [PetitionStatus::Collecting, PetitionStatus::ThresholdReached] {
            assert_eq!(PetitionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PetitionStatus::parse("closed"), None);
        assert_eq!(
            PetitionStatus::ThresholdReached.to_proto(),
            pb::PetitionStatus::ThresholdReached
        );
    }
}
