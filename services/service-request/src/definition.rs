//! A service's definition, parsed: what a commune administrator may put in the catalogue, and
//! the check of a request's attribute values against it (each bad value named).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate};
use jamaa_proto::servicerequest::v1::{
    self as pb, AttributeDatatype, DeadlineUnit, ServiceChannel, ServiceKind,
};
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_server::status::FieldViolations;
use uuid::Uuid;

use crate::calendar::DayCount;
use crate::domain::{
    self, MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES, parse_service_description, parse_service_name,
};

/// The most documents a service lists.
pub const MAX_DOCUMENTS: usize = 30;
/// The most allowed values of a list attribute.
pub const MAX_ATTRIBUTE_VALUES: usize = 100;
/// The longest deadline, in days.
pub const MAX_DEADLINE_DAYS: i32 = 365;
/// The highest fee, in centimes (one million dirhams).
pub const MAX_FEE_CENTIMES: i64 = 100_000_000;
/// The longest text answer (TEXT attributes), in characters.
pub const MAX_TEXT_ANSWER_CHARS: usize = 5000;

/// A service's deadline rule, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub count: DayCount,
    /// Days when the request is urgent (same unit).
    pub urgent_days: Option<u32>,
    /// Days one extension adds; `None`: no extension.
    pub extension_days: Option<u32>,
    pub stop_clock_while_awaiting_citizen: bool,
}

impl Deadline {
    /// The count for a request, urgent or not.
    pub fn count_for(&self, urgent: bool) -> DayCount {
        match (urgent, self.urgent_days, self.count) {
            (true, Some(days), DayCount::WorkingDays(_)) => DayCount::WorkingDays(days),
            (true, Some(days), DayCount::CalendarDays(_)) => DayCount::CalendarDays(days),
            _ => self.count,
        }
    }

    /// The policy as stored in a definition.
    pub fn from_policy(policy: Option<&pb::DeadlinePolicy>) -> Option<Deadline> {
        let policy = policy?;
        let days = u32::try_from(policy.days).ok().filter(|days| *days > 0)?;
        let count = match DeadlineUnit::try_from(policy.unit) {
            Ok(DeadlineUnit::WorkingDays) => DayCount::WorkingDays(days),
            Ok(DeadlineUnit::CalendarDays) => DayCount::CalendarDays(days),
            _ => return None,
        };
        let positive = |value: i32| u32::try_from(value).ok().filter(|days| *days > 0);
        Some(Deadline {
            count,
            urgent_days: positive(policy.urgent_days),
            extension_days: positive(policy.extension_days),
            stop_clock_while_awaiting_citizen: policy.stop_clock_while_awaiting_citizen,
        })
    }
}

/// Checks the mutable fields of `service` (a definition sent to create or update a service),
/// recording each problem under `service.<field>`. Returns the definition to store: trimmed,
/// attributes in form order, output-only fields cleared.
pub fn parse_definition(
    service: &pb::ServiceDefinition,
    violations: &mut FieldViolations,
) -> Option<pb::ServiceDefinition> {
    let before = violations.is_empty();
    let name = violations.check("service.name", parse_service_name(service.name.as_ref()));
    let description = violations.check(
        "service.description",
        parse_service_description(service.description.as_ref()),
    );
    let next_steps = violations.check(
        "service.next_steps",
        parse_service_description(service.next_steps.as_ref()),
    );
    let kind = match ServiceKind::try_from(service.kind) {
        Ok(ServiceKind::Unspecified) => {
            violations.add("service.kind", "is required");
            None
        }
        Ok(kind) => Some(kind),
        Err(_) => {
            violations.add("service.kind", "is not a known service kind");
            None
        }
    };
    match ServiceChannel::try_from(service.channel) {
        Ok(ServiceChannel::Unspecified) => violations.add("service.channel", "is required"),
        Ok(_) => {}
        Err(_) => violations.add("service.channel", "is not a known channel"),
    }
    let department_id = if service.department_id.trim().is_empty() {
        Some(String::new())
    } else {
        violations
            .check(
                "service.department_id",
                domain::parse_id(&service.department_id),
            )
            .map(|id| id.to_string())
    };
    if !(0..=MAX_FEE_CENTIMES).contains(&service.fee_centimes) {
        violations.add(
            "service.fee_centimes",
            format!("must be between 0 and {MAX_FEE_CENTIMES}"),
        );
    }
    if service.documents.len() > MAX_DOCUMENTS {
        violations.add(
            "service.documents",
            format!("must have at most {MAX_DOCUMENTS} entries"),
        );
    }
    let mut documents = Vec::new();
    for (index, document) in service.documents.iter().enumerate() {
        if let Some(document) = violations.check(
            &format!("service.documents[{index}]"),
            parse_service_name(Some(document)),
        ) {
            documents.push(document);
        }
    }
    if let Some(policy) = &service.deadline_policy {
        check_policy(policy, violations);
    }
    let has_deadline = service
        .deadline_policy
        .as_ref()
        .is_some_and(|policy| policy.days > 0);
    if kind == Some(ServiceKind::InformationRequest) && !has_deadline {
        violations.add(
            "service.deadline_policy.days",
            "is required for an access-to-information service (law 31-13 sets 20 working days)",
        );
    }
    let attributes = parse_attribute_definitions(&service.attributes, violations);
    if !violations.is_empty() || !before {
        return None;
    }
    Some(pb::ServiceDefinition {
        id: String::new(),
        commune_id: String::new(),
        code: String::new(),
        name,
        description,
        active: false,
        create_time: None,
        kind: service.kind,
        department_id: department_id.unwrap_or_default(),
        fee_centimes: service.fee_centimes,
        channel: service.channel,
        appointment_required: service.appointment_required,
        documents,
        deadline_policy: service.deadline_policy.filter(|policy| policy.days > 0),
        attributes,
        version: 0,
        update_time: None,
        next_steps,
    })
}

fn check_policy(policy: &pb::DeadlinePolicy, violations: &mut FieldViolations) {
    let in_range = |days: i32| (0..=MAX_DEADLINE_DAYS).contains(&days);
    if !in_range(policy.days) {
        violations.add(
            "service.deadline_policy.days",
            format!("must be between 0 and {MAX_DEADLINE_DAYS}"),
        );
    }
    if !in_range(policy.urgent_days) || (policy.urgent_days > 0 && policy.urgent_days > policy.days)
    {
        violations.add(
            "service.deadline_policy.urgent_days",
            "must be between 0 and the deadline's days",
        );
    }
    if !in_range(policy.extension_days) {
        violations.add(
            "service.deadline_policy.extension_days",
            format!("must be between 0 and {MAX_DEADLINE_DAYS}"),
        );
    }
    if policy.days > 0 {
        match DeadlineUnit::try_from(policy.unit) {
            Ok(DeadlineUnit::WorkingDays | DeadlineUnit::CalendarDays) => {}
            Ok(DeadlineUnit::Unspecified) => violations.add(
                "service.deadline_policy.unit",
                "is required when days is set",
            ),
            Err(_) => violations.add(
                "service.deadline_policy.unit",
                "is not a known deadline unit",
            ),
        }
    }
}

/// An attribute code: 1 to 64 lower-case ASCII letters, digits, dashes or underscores.
fn parse_attribute_code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if (1..=64).contains(&code.len()) && code.chars().all(allowed) {
        Ok(code.to_string())
    } else {
        Err("must be 1 to 64 lower-case letters, digits, dashes or underscores".into())
    }
}

fn is_list(datatype: AttributeDatatype) -> bool {
    matches!(
        datatype,
        AttributeDatatype::Singlevaluelist | AttributeDatatype::Multivaluelist
    )
}

fn parse_attribute_definitions(
    attributes: &[pb::ServiceAttribute],
    violations: &mut FieldViolations,
) -> Vec<pb::ServiceAttribute> {
    if attributes.len() > MAX_ATTRIBUTES {
        violations.add(
            "service.attributes",
            format!("must have at most {MAX_ATTRIBUTES} entries"),
        );
        return Vec::new();
    }
    let mut codes = HashSet::new();
    let mut parsed = Vec::new();
    for (index, attribute) in attributes.iter().enumerate() {
        let field = |name: &str| format!("service.attributes[{index}].{name}");
        let code = violations.check(&field("code"), parse_attribute_code(&attribute.code));
        if let Some(code) = &code
            && !codes.insert(code.clone())
        {
            violations.add(field("code"), format!("{code} is used twice"));
        }
        let datatype = match AttributeDatatype::try_from(attribute.datatype) {
            Ok(AttributeDatatype::Unspecified) => {
                violations.add(field("datatype"), "is required");
                None
            }
            Ok(datatype) => Some(datatype),
            Err(_) => {
                violations.add(field("datatype"), "is not a known datatype");
                None
            }
        };
        let description = violations.check(
            &field("description"),
            parse_service_name(attribute.description.as_ref()),
        );
        let mut values = Vec::new();
        let mut keys = HashSet::new();
        match datatype {
            Some(datatype) if is_list(datatype) => {
                if attribute.values.is_empty() || attribute.values.len() > MAX_ATTRIBUTE_VALUES {
                    violations.add(
                        field("values"),
                        format!("a list needs 1 to {MAX_ATTRIBUTE_VALUES} values"),
                    );
                }
                for (value_index, value) in attribute.values.iter().enumerate() {
                    let key = violations.check(
                        &format!("service.attributes[{index}].values[{value_index}].key"),
                        parse_attribute_code(&value.key),
                    );
                    let name = violations.check(
                        &format!("service.attributes[{index}].values[{value_index}].name"),
                        parse_service_name(value.name.as_ref()),
                    );
                    if let Some(key) = &key
                        && !keys.insert(key.clone())
                    {
                        violations.add(
                            format!("service.attributes[{index}].values[{value_index}].key"),
                            format!("{key} is used twice"),
                        );
                    }
                    if let (Some(key), Some(name)) = (key, name) {
                        values.push(pb::AttributeValue {
                            key,
                            name: Some(name),
                        });
                    }
                }
            }
            Some(_) if !attribute.values.is_empty() => {
                violations.add(field("values"), "only list datatypes have values");
            }
            _ => {}
        }
        if let (Some(code), Some(datatype), Some(description)) = (code, datatype, description) {
            parsed.push(pb::ServiceAttribute {
                code,
                datatype: datatype as i32,
                required: attribute.required,
                order: attribute.order,
                description: Some(description),
                values,
            });
        }
    }
    parsed.sort_by_key(|attribute| attribute.order);
    parsed
}

/// Checks a request's attribute values against the service's questions, recording each
/// problem under `attributes.<code>`. Returns the values to store (trimmed, lists normalised).
pub fn check_attribute_values(
    questions: &[pb::ServiceAttribute],
    answers: &HashMap<String, String>,
    violations: &mut FieldViolations,
) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if answers.len() > MAX_ATTRIBUTES {
        violations.add(
            "attributes",
            format!("must have at most {MAX_ATTRIBUTES} entries"),
        );
        return values;
    }
    for code in answers.keys() {
        if !questions.iter().any(|question| &question.code == code) {
            violations.add(
                format!("attributes.{code}"),
                "is not a question of this service",
            );
        }
    }
    for question in questions {
        let field = format!("attributes.{}", question.code);
        let answer = answers
            .get(&question.code)
            .map(|answer| answer.trim())
            .unwrap_or_default();
        if answer.is_empty() {
            if question.required {
                violations.add(field, "is required");
            }
            continue;
        }
        let datatype =
            AttributeDatatype::try_from(question.datatype).unwrap_or(AttributeDatatype::String);
        match check_answer(question, datatype, answer) {
            Ok(value) => {
                values.insert(question.code.clone(), value);
            }
            Err(problem) => violations.add(field, problem),
        }
    }
    values
}

fn check_answer(
    question: &pb::ServiceAttribute,
    datatype: AttributeDatatype,
    answer: &str,
) -> Result<String, String> {
    let chars = answer.chars().count();
    let allowed = |key: &str| question.values.iter().any(|value| value.key == key);
    match datatype {
        AttributeDatatype::Unspecified | AttributeDatatype::String => {
            if answer.contains(['\n', '\r']) {
                Err("must be one line".into())
            } else if chars > MAX_ATTRIBUTE_VALUE_CHARS {
                Err(format!(
                    "must have at most {MAX_ATTRIBUTE_VALUE_CHARS} characters"
                ))
            } else {
                Ok(answer.to_string())
            }
        }
        AttributeDatatype::Text => {
            if chars > MAX_TEXT_ANSWER_CHARS {
                Err(format!(
                    "must have at most {MAX_TEXT_ANSWER_CHARS} characters"
                ))
            } else {
                Ok(answer.to_string())
            }
        }
        AttributeDatatype::Number => match answer.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(answer.to_string()),
            _ => Err("must be a number, e.g. 12 or 3.5".into()),
        },
        AttributeDatatype::Datetime => {
            if DateTime::parse_from_rfc3339(answer).is_ok()
                || NaiveDate::parse_from_str(answer, "%Y-%m-%d").is_ok()
            {
                Ok(answer.to_string())
            } else {
                Err("must be a date (YYYY-MM-DD) or an RFC 3339 date and time".into())
            }
        }
        AttributeDatatype::Singlevaluelist => {
            if allowed(answer) {
                Ok(answer.to_string())
            } else {
                Err(format!("must be one of: {}", keys_of(question)))
            }
        }
        AttributeDatatype::Multivaluelist => {
            let mut chosen: Vec<&str> = answer.split(',').map(str::trim).collect();
            if let Some(bad) = chosen.iter().find(|key| !allowed(key)) {
                return Err(format!("{bad:?} is not one of: {}", keys_of(question)));
            }
            let count = chosen.len();
            chosen.sort_unstable();
            chosen.dedup();
            if chosen.len() != count {
                return Err("names a value twice".into());
            }
            Ok(chosen.join(","))
        }
    }
}

fn keys_of(question: &pb::ServiceAttribute) -> String {
    question
        .values
        .iter()
        .map(|value| value.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The department a definition names, if any.
pub fn department_of(definition: &pb::ServiceDefinition) -> Option<Uuid> {
    Uuid::parse_str(&definition.department_id).ok()
}

/// A definition's name, for receipts.
pub fn name_of(definition: &pb::ServiceDefinition) -> LocalizedText {
    definition.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(fr: &str) -> Option<LocalizedText> {
        Some(LocalizedText {
            fr: fr.into(),
            ..Default::default()
        })
    }

    fn question(code: &str, datatype: AttributeDatatype, required: bool) -> pb::ServiceAttribute {
        let values = if is_list(datatype) {
            ["red", "green", "blue"]
                .into_iter()
                .map(|key| pb::AttributeValue {
                    key: key.into(),
                    name: text(key),
                })
                .collect()
        } else {
            Vec::new()
        };
        pb::ServiceAttribute {
            code: code.into(),
            datatype: datatype as i32,
            required,
            order: 0,
            description: text(code),
            values,
        }
    }

    fn valid_definition() -> pb::ServiceDefinition {
        pb::ServiceDefinition {
            name: text("Signalement"),
            kind: ServiceKind::IncidentReport as i32,
            channel: ServiceChannel::Online as i32,
            attributes: vec![question("colour", AttributeDatatype::Singlevaluelist, true)],
            ..Default::default()
        }
    }

    fn fields(violations: FieldViolations) -> Vec<String> {
        let status = violations.into_status();
        let details = tonic_types::StatusExt::get_error_details(&status);
        details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|violation| violation.field.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_valid_definition_parses() {
        let mut violations = FieldViolations::new();
        let parsed = parse_definition(&valid_definition(), &mut violations);
        assert!(violations.is_empty());
        let parsed = parsed.expect("parsed");
        assert_eq!(parsed.attributes.len(), 1);
    }

    #[test]
    fn each_bad_field_of_a_definition_is_named() {
        let mut definition = valid_definition();
        definition.kind = 0;
        definition.channel = 42;
        definition.fee_centimes = -1;
        definition.department_id = "nope".into();
        definition.deadline_policy = Some(pb::DeadlinePolicy {
            unit: 0,
            days: 20,
            urgent_days: 30,
            extension_days: 0,
            stop_clock_while_awaiting_citizen: false,
        });
        definition.attributes = vec![
            question("colour", AttributeDatatype::Singlevaluelist, true),
            question("colour", AttributeDatatype::Number, false),
            pb::ServiceAttribute {
                values: vec![],
                ..question("shades", AttributeDatatype::Multivaluelist, false)
            },
        ];
        let mut violations = FieldViolations::new();
        assert!(parse_definition(&definition, &mut violations).is_none());
        let fields = fields(violations);
        for expected in [
            "service.kind",
            "service.channel",
            "service.fee_centimes",
            "service.department_id",
            "service.deadline_policy.unit",
            "service.deadline_policy.urgent_days",
            "service.attributes[1].code",
            "service.attributes[2].values",
        ] {
            assert!(
                fields.contains(&expected.to_string()),
                "{expected} in {fields:?}"
            );
        }
    }

    #[test]
    fn information_requests_need_a_deadline() {
        let mut definition = valid_definition();
        definition.kind = ServiceKind::InformationRequest as i32;
        let mut violations = FieldViolations::new();
        assert!(parse_definition(&definition, &mut violations).is_none());
        assert_eq!(fields(violations), ["service.deadline_policy.days"]);
    }

    #[test]
    fn answers_are_checked_against_their_datatype() {
        let questions = vec![
            question("colour", AttributeDatatype::Singlevaluelist, true),
            question("shades", AttributeDatatype::Multivaluelist, false),
            question("count", AttributeDatatype::Number, false),
            question("when", AttributeDatatype::Datetime, false),
            question("street", AttributeDatatype::String, false),
        ];
        let good: HashMap<String, String> = [
            ("colour", "red"),
            ("shades", " blue, red "),
            ("count", "3.5"),
            ("when", "2026-12-03"),
            ("street", "Rue 5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut violations = FieldViolations::new();
        let values = check_attribute_values(&questions, &good, &mut violations);
        assert!(violations.is_empty());
        assert_eq!(values["shades"], "blue,red");

        let bad: HashMap<String, String> = [
            ("shades", "red,pink"),
            ("count", "three"),
            ("when", "tomorrow"),
            ("street", "two\nlines"),
            ("unknown", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut violations = FieldViolations::new();
        check_attribute_values(&questions, &bad, &mut violations);
        let mut fields = fields(violations);
        fields.sort();
        assert_eq!(
            fields,
            [
                "attributes.colour",
                "attributes.count",
                "attributes.shades",
                "attributes.street",
                "attributes.unknown",
                "attributes.when",
            ]
        );
    }

    #[test]
    fn urgency_shortens_only_policies_that_say_so() {
        let deadline = Deadline::from_policy(Some(&pb::DeadlinePolicy {
            unit: DeadlineUnit::WorkingDays as i32,
            days: 20,
            urgent_days: 3,
            extension_days: 20,
            stop_clock_while_awaiting_citizen: false,
        }))
        .expect("a deadline");
        assert_eq!(deadline.count_for(false), DayCount::WorkingDays(20));
        assert_eq!(deadline.count_for(true), DayCount::WorkingDays(3));
        assert_eq!(deadline.extension_days, Some(20));
        assert_eq!(Deadline::from_policy(None), None);
    }
}
