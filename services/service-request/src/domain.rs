//! The service-request domain: values that are valid by construction (parse, don't validate) and
//! the request workflow.

use std::collections::{BTreeMap, HashMap};

use jamaa_proto::servicerequest::v1::{RequestPriority, RequestStatus, ServiceKind};
use jamaa_proto::r#type::v1::LocalizedText;
use uuid::Uuid;

/// An id given as text: required, and a UUID.
pub fn parse_id(raw: &str) -> Result<Uuid, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is required".into());
    }
    Uuid::parse_str(raw).map_err(|_| "must be a UUID".to_string())
}

/// A service's code, unique in its commune: 2 to 64 lower-case ASCII letters, digits and dashes,
/// e.g. `birth-certificate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCode(String);

impl ServiceCode {
    pub fn parse(raw: &str) -> Result<ServiceCode, String> {
        let code = raw.trim();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if (2..=64).contains(&code.len()) && code.chars().all(allowed) {
            Ok(ServiceCode(code.to_string()))
        } else {
            Err(
                "must be 2 to 64 lower-case letters, digits or dashes, e.g. birth-certificate"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest service name, in characters, in each language.
pub const MAX_SERVICE_NAME_CHARS: usize = 200;
/// The longest service description, in characters, in each language.
pub const MAX_SERVICE_DESCRIPTION_CHARS: usize = 2000;

/// A service's name: at least Arabic or French, each language at most 200 characters.
pub fn parse_service_name(name: Option<&LocalizedText>) -> Result<LocalizedText, String> {
    let name = trim_localized(name.cloned().unwrap_or_default());
    if name.ar.is_empty() && name.fr.is_empty() {
        return Err("is required (at least in Arabic or French)".into());
    }
    check_localized_length(&name, MAX_SERVICE_NAME_CHARS)?;
    Ok(name)
}

/// A service's optional description: each language at most 2000 characters.
pub fn parse_service_description(
    description: Option<&LocalizedText>,
) -> Result<LocalizedText, String> {
    let description = trim_localized(description.cloned().unwrap_or_default());
    check_localized_length(&description, MAX_SERVICE_DESCRIPTION_CHARS)?;
    Ok(description)
}

fn trim_localized(text: LocalizedText) -> LocalizedText {
    LocalizedText {
        ar: text.ar.trim().to_string(),
        fr: text.fr.trim().to_string(),
        en: text.en.trim().to_string(),
        tzm: text.tzm.trim().to_string(),
    }
}

fn check_localized_length(text: &LocalizedText, max_chars: usize) -> Result<(), String> {
    if [&text.ar, &text.fr, &text.en, &text.tzm]
        .iter()
        .any(|text| text.chars().count() > max_chars)
    {
        return Err(format!(
            "must have at most {max_chars} characters in each language"
        ));
    }
    Ok(())
}

/// What a citizen asks: required, at most 5,000 characters (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDescription(String);

impl RequestDescription {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(raw: &str) -> Result<RequestDescription, String> {
        let description = raw.trim();
        match description.chars().count() {
            0 => Err("is required".into()),
            n if n > Self::MAX_CHARS => {
                Err(format!("must have at most {} characters", Self::MAX_CHARS))
            }
            _ => Ok(RequestDescription(description.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most attributes a request may carry.
pub const MAX_ATTRIBUTES: usize = 50;
/// The longest attribute key, in characters.
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
/// The longest attribute value, in characters.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1000;

/// A request's attribute values by code: at most 50, keys 1 to 64 characters, values at most
/// 1,000 characters. Sorted by key, so their JSON is stable.
pub fn parse_attributes(raw: &HashMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    if raw.len() > MAX_ATTRIBUTES {
        return Err(format!("must have at most {MAX_ATTRIBUTES} entries"));
    }
    let mut attributes = BTreeMap::new();
    for (key, value) in raw {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_ATTRIBUTE_KEY_CHARS {
            return Err(format!(
                "keys must have 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters"
            ));
        }
        if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(format!(
                "values must have at most {MAX_ATTRIBUTE_VALUE_CHARS} characters"
            ));
        }
        attributes.insert(key.clone(), value.clone());
    }
    Ok(attributes)
}

/// A latitude in degrees, in [-90, 90].
pub fn parse_latitude(latitude: f64) -> Result<f64, String> {
    if (-90.0..=90.0).contains(&latitude) {
        Ok(latitude)
    } else {
        Err("must be between -90 and 90".into())
    }
}

/// A longitude in degrees, in [-180, 180].
pub fn parse_longitude(longitude: f64) -> Result<f64, String> {
    if (-180.0..=180.0).contains(&longitude) {
        Ok(longitude)
    } else {
        Err("must be between -180 and 180".into())
    }
}

/// The human tracking code of a request: `{COMMUNE_CODE}-{YEAR}-{SEQ:06}`, e.g. `BNM-2026-000042`.
pub fn tracking_code(commune_code: &str, year: i32, sequence: i64) -> String {
    format!("{commune_code}-{year}-{sequence:06}")
}

/// The longest public note on a status change, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// The target of a status change: a known status other than UNSPECIFIED.
pub fn parse_new_status(raw: i32) -> Result<RequestStatus, String> {
    match RequestStatus::try_from(raw) {
        Ok(RequestStatus::Unspecified) => Err("is required".into()),
        Ok(status) => Ok(status),
        Err(_) => Err("is not a known request status".into()),
    }
}

/// A list filter: UNSPECIFIED means every status.
pub fn parse_status_filter(raw: i32) -> Result<Option<RequestStatus>, String> {
    match RequestStatus::try_from(raw) {
        Ok(RequestStatus::Unspecified) => Ok(None),
        Ok(status) => Ok(Some(status)),
        Err(_) => Err("is not a known request status".into()),
    }
}

/// The public note of a change to `to`: trimmed, at most 2000 characters, required when
/// rejecting (the note gives the reason).
pub fn parse_note(raw: &str, to: RequestStatus) -> Result<String, String> {
    let note = raw.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("must have at most {MAX_NOTE_CHARS} characters"));
    }
    if note.is_empty() && to == RequestStatus::Rejected {
        return Err("is required when rejecting a request (give the reason)".into());
    }
    Ok(note.to_string())
}

/// The statuses a request in `from` may move to. CLOSED and CANCELLED are final.
pub fn next_statuses(from: RequestStatus) -> &'static [RequestStatus] {
    use RequestStatus::*;
    match from {
        Submitted => &[Received, Rejected, Cancelled],
        Received => &[InProgress, Rejected, Cancelled],
        InProgress => &[AwaitingCitizen, Resolved, Rejected],
        AwaitingCitizen => &[InProgress, Resolved, Rejected],
        Resolved => &[Closed, InProgress],
        Rejected => &[Closed],
        Closed | Cancelled | Unspecified => &[],
    }
}

/// The statuses in which a request is open (its deadline runs).
pub const OPEN_STATUSES: [RequestStatus; 4] = [
    RequestStatus::Submitted,
    RequestStatus::Received,
    RequestStatus::InProgress,
    RequestStatus::AwaitingCitizen,
];

/// Whether staff may move a request from `from` to `to`: any workflow step except cancelling,
/// which is the citizen's (CancelRequest).
pub fn staff_may_move(from: RequestStatus, to: RequestStatus) -> bool {
    to != RequestStatus::Cancelled && can_move(from, to)
}

/// Whether a request in `from` may be reopened (back to IN_PROGRESS) by its citizen, within
/// the reopening window.
pub fn can_reopen(from: RequestStatus) -> bool {
    matches!(from, RequestStatus::Resolved | RequestStatus::Closed)
}

/// Whether a request in `status` may be rated by its citizen.
pub fn can_rate(status: RequestStatus) -> bool {
    matches!(status, RequestStatus::Resolved | RequestStatus::Closed)
}

/// Whether the workflow allows moving a request from `from` to `to`.
pub fn can_move(from: RequestStatus, to: RequestStatus) -> bool {
    next_statuses(from).contains(&to)
}

/// How a status is stored: a short lower-case name.
pub fn status_to_db(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Unspecified => "unspecified",
        RequestStatus::Submitted => "submitted",
        RequestStatus::Received => "received",
        RequestStatus::InProgress => "in_progress",
        RequestStatus::AwaitingCitizen => "awaiting_citizen",
        RequestStatus::Resolved => "resolved",
        RequestStatus::Rejected => "rejected",
        RequestStatus::Closed => "closed",
        RequestStatus::Cancelled => "cancelled",
    }
}

/// The status stored as `value`, if it is one.
pub fn status_from_db(value: &str) -> Option<RequestStatus> {
    ALL_STATUSES
        .into_iter()
        .find(|status| status_to_db(*status) == value)
}

/// Every status, UNSPECIFIED first.
pub const ALL_STATUSES: [RequestStatus; 9] = [
    RequestStatus::Unspecified,
    RequestStatus::Submitted,
    RequestStatus::Received,
    RequestStatus::InProgress,
    RequestStatus::AwaitingCitizen,
    RequestStatus::Resolved,
    RequestStatus::Rejected,
    RequestStatus::Closed,
    RequestStatus::Cancelled,
];

/// A status as people read it in messages, e.g. `IN_PROGRESS`.
pub fn status_label(status: RequestStatus) -> &'static str {
    status.as_str_name().trim_start_matches("REQUEST_STATUS_")
}

/// How a service kind is stored.
pub fn kind_to_db(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Unspecified => "",
        ServiceKind::AdministrativeAct => "administrative_act",
        ServiceKind::IncidentReport => "incident_report",
        ServiceKind::InformationRequest => "information_request",
        ServiceKind::Permit => "permit",
    }
}

/// The kind stored as `value` (UNSPECIFIED for an unknown or empty one).
pub fn kind_from_db(value: &str) -> ServiceKind {
    [
        ServiceKind::AdministrativeAct,
        ServiceKind::IncidentReport,
        ServiceKind::InformationRequest,
        ServiceKind::Permit,
    ]
    .into_iter()
    .find(|kind| kind_to_db(*kind) == value)
    .unwrap_or(ServiceKind::Unspecified)
}

/// How a priority is stored.
pub fn priority_to_db(priority: RequestPriority) -> &'static str {
    match priority {
        RequestPriority::Unspecified | RequestPriority::Normal => "normal",
        RequestPriority::Low => "low",
        RequestPriority::High => "high",
        RequestPriority::Urgent => "urgent",
    }
}

/// The priority stored as `value` (NORMAL for an unknown one).
pub fn priority_from_db(value: &str) -> RequestPriority {
    match value {
        "low" => RequestPriority::Low,
        "high" => RequestPriority::High,
        "urgent" => RequestPriority::Urgent,
        _ => RequestPriority::Normal,
    }
}

/// A priority in a call: UNSPECIFIED means "keep".
pub fn parse_priority(raw: i32) -> Result<Option<RequestPriority>, String> {
    match RequestPriority::try_from(raw) {
        Ok(RequestPriority::Unspecified) => Ok(None),
        Ok(priority) => Ok(Some(priority)),
        Err(_) => Err("is not a known priority".into()),
    }
}

/// An optional id: empty means none.
pub fn parse_optional_id(raw: &str) -> Result<Option<Uuid>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_id(raw).map(Some)
    }
}

/// The longest walk-in name, in characters.
pub const MAX_FULL_NAME_CHARS: usize = 200;

/// A walk-in citizen's full name: required, at most 200 characters, one line.
pub fn parse_full_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > MAX_FULL_NAME_CHARS || name.contains(['\n', '\r']) {
        return Err(format!(
            "must be one line of at most {MAX_FULL_NAME_CHARS} characters"
        ));
    }
    Ok(name.to_string())
}

/// A phone number: an optional leading `+`, then 6 to 15 digits; spaces, dots and dashes
/// between them are dropped. Stored as `+` and digits, or digits.
pub fn parse_phone(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", raw),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' => {}
            _ => return Err("must be a phone number: digits, optionally after a +".into()),
        }
    }
    if !(6..=15).contains(&digits.len()) {
        return Err("must have 6 to 15 digits".into());
    }
    Ok(format!("{plus}{digits}"))
}

/// A reason or comment: trimmed, at most 2,000 characters, required when `required`.
pub fn parse_reason(raw: &str, required: bool) -> Result<String, String> {
    let reason = raw.trim();
    if reason.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("must have at most {MAX_NOTE_CHARS} characters"));
    }
    if required && reason.is_empty() {
        return Err("is required".into());
    }
    Ok(reason.to_string())
}

/// The longest address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;

/// An optional address: trimmed, at most 500 characters; empty means none.
pub fn parse_address(raw: &str) -> Result<Option<String>, String> {
    let address = raw.trim();
    if address.chars().count() > MAX_ADDRESS_CHARS {
        return Err(format!("must have at most {MAX_ADDRESS_CHARS} characters"));
    }
    Ok((!address.is_empty()).then(|| address.to_string()))
}

/// An optional area (district, arrondissement): trimmed, one line, at most 64 characters.
pub fn parse_area(raw: &str) -> Result<Option<String>, String> {
    let area = raw.trim();
    if area.chars().count() > 64 || area.contains(['\n', '\r']) {
        return Err("must be one line of at most 64 characters".into());
    }
    Ok((!area.is_empty()).then(|| area.to_string()))
}

/// A month written `YYYY-MM`: its first day.
pub fn parse_month(raw: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| "must be a month written YYYY-MM".to_string())
}

/// A satisfaction rating: 1 to 5.
pub fn parse_rating(raw: i32) -> Result<i32, String> {
    if (1..=5).contains(&raw) {
        Ok(raw)
    } else {
        Err("must be between 1 and 5".into())
    }
}

/// A civil date written `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "must be a date written YYYY-MM-DD".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn ids_are_required_uuids() {
        let id = Uuid::now_v7();
        assert_eq!(parse_id(&id.to_string()), Ok(id));
        assert_eq!(parse_id(""), Err("is required".to_string()));
        assert!(parse_id("not-a-uuid").is_err());
    }

    #[test]
    fn service_codes_are_lower_case_letters_digits_and_dashes() {
        for good in ["birth-certificate", "ab", "permit-2", &"a".repeat(64)] {
            assert!(
                ServiceCode::parse(good).is_ok(),
                "{good} should be accepted"
            );
        }
        for bad in [
            "",
            "a",
            "Birth",
            "birth_certificate",
            "naïve",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(ServiceCode::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn service_names_need_arabic_or_french() {
        let french = LocalizedText {
            fr: " Acte de naissance ".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_service_name(Some(&french)).map(|n| n.fr),
            Ok("Acte de naissance".into())
        );
        let english = LocalizedText {
            en: "Birth certificate".into(),
            ..Default::default()
        };
        assert!(parse_service_name(Some(&english)).is_err());
        assert!(parse_service_name(None).is_err());
        let long = LocalizedText {
            ar: "ا".repeat(201),
            ..Default::default()
        };
        assert!(parse_service_name(Some(&long)).is_err());
        assert!(parse_service_description(None).is_ok());
    }

    #[test]
    fn descriptions_are_required_and_bounded() {
        assert!(RequestDescription::parse("  ").is_err());
        assert!(RequestDescription::parse(&"x".repeat(5000)).is_ok());
        assert!(RequestDescription::parse(&"x".repeat(5001)).is_err());
        assert_eq!(
            RequestDescription::parse(" a pothole ").map(|d| d.0),
            Ok("a pothole".into())
        );
    }

    #[test]
    fn attributes_are_bounded() {
        let ok: HashMap<String, String> = [("street".to_string(), "Rue 5".to_string())].into();
        assert_eq!(parse_attributes(&ok).map(|a| a.len()), Ok(1));
        let too_many: HashMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(parse_attributes(&too_many).is_err());
        let long_key: HashMap<String, String> = [("k".repeat(65), String::new())].into();
        assert!(parse_attributes(&long_key).is_err());
        let empty_key: HashMap<String, String> = [(String::new(), "v".to_string())].into();
        assert!(parse_attributes(&empty_key).is_err());
        let long_value: HashMap<String, String> = [("k".to_string(), "v".repeat(1001))].into();
        assert!(parse_attributes(&long_value).is_err());
    }

    #[test]
    fn coordinates_are_in_range() {
        assert!(parse_latitude(35.76).is_ok());
        assert!(parse_latitude(-90.0).is_ok());
        assert!(parse_latitude(90.5).is_err());
        assert!(parse_latitude(f64::NAN).is_err());
        assert!(parse_longitude(-5.83).is_ok());
        assert!(parse_longitude(180.0).is_ok());
        assert!(parse_longitude(-180.1).is_err());
        assert!(parse_longitude(f64::INFINITY).is_err());
    }

    #[test]
    fn tracking_codes_are_padded() {
        assert_eq!(tracking_code("BNM", 2026, 42), "BNM-2026-000042");
        assert_eq!(tracking_code("BNM", 2026, 1_234_567), "BNM-2026-1234567");
    }

    #[test]
    fn the_workflow_allows_exactly_the_listed_steps() {
        let allowed = [
            (Submitted, Received),
            (Submitted, Rejected),
            (Submitted, Cancelled),
            (Received, InProgress),
            (Received, Rejected),
            (Received, Cancelled),
            (InProgress, AwaitingCitizen),
            (InProgress, Resolved),
            (InProgress, Rejected),
            (AwaitingCitizen, InProgress),
            (AwaitingCitizen, Resolved),
            (AwaitingCitizen, Rejected),
            (Resolved, Closed),
            (Resolved, InProgress),
            (Rejected, Closed),
        ];
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                assert_eq!(
                    can_move(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn closed_and_cancelled_are_final() {
        assert!(next_statuses(Closed).is_empty());
        assert!(next_statuses(Cancelled).is_empty());
    }

    #[test]
    fn rejecting_needs_a_note() {
        assert!(parse_note("  ", Rejected).is_err());
        assert_eq!(
            parse_note(" missing papers ", Rejected),
            Ok("missing papers".into())
        );
        assert_eq!(parse_note("", Received), Ok(String::new()));
        assert!(parse_note(&"n".repeat(2001), Received).is_err());
    }

    #[test]
    fn new_statuses_must_be_known_and_specified() {
        assert_eq!(parse_new_status(Resolved as i32), Ok(Resolved));
        assert!(parse_new_status(0).is_err());
        assert!(parse_new_status(99).is_err());
        assert_eq!(parse_status_filter(0), Ok(None));
        assert_eq!(parse_status_filter(Closed as i32), Ok(Some(Closed)));
        assert!(parse_status_filter(-1).is_err());
    }

    #[test]
    fn phones_keep_digits_and_a_leading_plus() {
        assert_eq!(
            parse_phone(" +212 6 12-34.56 78 "),
            Ok("+212612345678".into())
        );
        assert_eq!(parse_phone("0612345678"), Ok("0612345678".into()));
        assert!(parse_phone("12345").is_err());
        assert!(parse_phone("06 12 ab").is_err());
        assert!(parse_phone("+").is_err());
        assert!(parse_phone(&"1".repeat(16)).is_err());
    }

    #[test]
    fn small_values_parse() {
        assert_eq!(
            parse_full_name("  Fatima Zahra "),
            Ok("Fatima Zahra".into())
        );
        assert!(parse_full_name("").is_err());
        assert!(parse_full_name("a\nb").is_err());
        assert_eq!(parse_rating(5), Ok(5));
        assert!(parse_rating(0).is_err());
        assert!(parse_rating(6).is_err());
        assert!(parse_reason(" ", true).is_err());
        assert_eq!(parse_reason(" ", false), Ok(String::new()));
        assert_eq!(parse_address(" "), Ok(None));
        assert!(parse_address(&"a".repeat(501)).is_err());
        assert!(parse_date("2026-02-30").is_err());
        assert_eq!(parse_optional_id(""), Ok(None));
        assert!(parse_optional_id("x").is_err());
        for kind in [
            ServiceKind::AdministrativeAct,
            ServiceKind::InformationRequest,
            ServiceKind::Permit,
            ServiceKind::IncidentReport,
        ] {
            assert_eq!(kind_from_db(kind_to_db(kind)), kind);
        }
        for priority in [
            RequestPriority::Low,
            RequestPriority::Normal,
            RequestPriority::High,
            RequestPriority::Urgent,
        ] {
            assert_eq!(priority_from_db(priority_to_db(priority)), priority);
        }
    }

    #[test]
    fn statuses_round_trip_through_the_database() {
        for status in ALL_STATUSES {
            assert_eq!(status_from_db(status_to_db(status)), Some(status));
        }
        assert_eq!(status_from_db("bogus"), None);
        assert_eq!(status_label(InProgress), "IN_PROGRESS");
    }
}
