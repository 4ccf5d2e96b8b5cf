//! An Open311 GeoReport v2 server at `/open311/v2/`, in JSON and in XML, for the
//! civic-tech tools communes already know: the discovery document, the service list and each
//! service's definition (the commune's INCIDENT_REPORT services and their attributes), the
//! public service requests (filters: `service_request_id` list, `service_code`, `start_date`,
//! `end_date`, `status`) and one request by id. `jurisdiction_id` is the commune's code.
//!
//! Mapping: a catalogue attribute is an Open311 attribute (`variable` true; our datatypes are
//! Open311's); our workflow states are `open` (submitted, received, in progress, awaiting the
//! citizen) or `closed`, with the latest public note as `status_notes`; `expected_datetime` is
//! the end of the due date (UTC); ids are strings. Texts are in the `Accept-Language` language
//! (ar, fr, en, tzm), falling back along ar → fr → en → tzm. Errors are the spec's array of
//! `{code, description}` with the HTTP status of the code (400, 404, 503).
//!
//! The two routes are in the gateway's table ([`crate::routes`]), so `/openapi.json` lists them.
//!
//! `POST requests` files a report for a client application with an API key its commune issued
//! (identity's `CreateApiKey`): the gateway exchanges the key for the application's access token
//! (`ExchangeApiKey`; 403 when unknown, revoked or of another commune) and submits the report
//! for the person reporting (`first_name`/`last_name` and `phone` are required: the commune
//! reaches the reporter by phone; `email`, `device_id`, `account_id` and `media_url` are not
//! kept). The answer is the new request's id at once; `tokens/{token}` takes that id as the
//! token and names the request (for clients that always ask).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jamaa_proto::identity::v1::GetCommuneRequest;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use serde_json::{Map, Value, json};
use tonic::Code;

use crate::routes::AppState;

/// Where the GeoReport v2 API is served.
pub const BASE: &str = "/open311/v2";

/// The two formats of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// `services.json` → ("services", JSON).
pub fn split_format(file: &str) -> Option<(&str, Format)> {
    if let Some(stem) = file.strip_suffix(".json") {
        Some((stem, Format::Json))
    } else {
        file.strip_suffix(".xml").map(|stem| (stem, Format::Xml))
    }
}

/// An Open311 error: its code is the HTTP status.
#[derive(Debug, Clone)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
}

impl Open311Error {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Open311Error {
            status,
            description: description.into(),
        }
    }

    fn from_status(status: &tonic::Status) -> Self {
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::PermissionDenied | Code::Unauthenticated => StatusCode::FORBIDDEN,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Open311Error::new(code, status.message())
    }
}

/// A reply in `format`: a JSON value, or the same as XML under `root` (array items named
/// `item`).
fn reply(format: Format, root: &str, item: &str, value: &Value) -> Response {
    match format {
        Format::Json => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            value.to_string(),
        )
            .into_response(),
        Format::Xml => (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml_document(root, item, value),
        )
            .into_response(),
    }
}

fn error_reply(format: Format, error: Open311Error) -> Response {
    let body = json!([{ "code": error.status.as_u16(), "description": error.description }]);
    let mut response = reply(format, "errors", "error", &body);
    *response.status_mut() = error.status;
    response
}

/// The XML of `value` under `root`: an array's items are `item` elements; inside them, an
/// array field `name` holds elements named by [`singular`]; `null`s are left out.
pub fn xml_document(root: &str, item: &str, value: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    match value {
        Value::Array(items) => {
            out.push_str(&format!("<{root}>"));
            for entry in items {
                write_element(&mut out, item, entry);
            }
            out.push_str(&format!("</{root}>"));
        }
        other => write_element(&mut out, root, other),
    }
    out
}

/// The element name of one entry of the array field `name`.
fn singular(name: &str) -> &str {
    match name {
        "attributes" => "attribute",
        "values" => "value",
        "endpoints" => "endpoint",
        "formats" => "format",
        other => other.strip_suffix('s').unwrap_or(other),
    }
}

fn write_element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            out.push_str(&format!("<{name}>"));
            for (field, inner) in fields {
                write_element(out, field, inner);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Array(items) => {
            out.push_str(&format!("<{name}>"));
            for entry in items {
                write_element(out, singular(name), entry);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::String(text) => {
            out.push_str(&format!("<{name}>{}</{name}>", escape(text)));
        }
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// `text` escaped for XML character data; characters XML 1.0 forbids are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The language `Accept-Language` asks for first among ours; Arabic otherwise.
fn language_of(headers: &HeaderMap) -> Language {
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_lowercase();
    accepted
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().split('-').next().unwrap_or_default().to_string())
        .find_map(|tag| match tag.as_str() {
            "ar" => Some(Language::Ar),
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            "tzm" | "zgh" | "ber" => Some(Language::Tzm),
            _ => None,
        })
        .unwrap_or(Language::Ar)
}

fn text(value: &Option<LocalizedText>, language: Language) -> String {
    value
        .as_ref()
        .map(|text| text.get(language).to_string())
        .unwrap_or_default()
}

/// The single value of query parameter `name`, if given and not empty.
fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn jurisdiction(query: &[(String, String)]) -> Result<String, Open311Error> {
    param(query, "jurisdiction_id")
        .map(str::to_uppercase)
        .ok_or_else(|| {
            Open311Error::new(
                StatusCode::BAD_REQUEST,
                "jurisdiction_id is required: the commune's code, e.g. BNM",
            )
        })
}

fn call<T>(state: &AppState, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(state.call_timeout);
    request
}

/// NOT_FOUND unless commune `code` exists.
async fn check_commune(state: &AppState, code: &str) -> Result<(), Open311Error> {
    let mut identity = state.clients.identity.clone();
    identity
        .get_commune(call(
            state,
            GetCommuneRequest {
                code: code.to_string(),
            },
        ))
        .await
        .map(|_| ())
        .map_err(|status| {
            if status.code() == Code::NotFound {
                Open311Error::new(
                    StatusCode::NOT_FOUND,
                    format!("jurisdiction {code} is not a commune of this platform"),
                )
            } else {
                Open311Error::from_status(&status)
            }
        })
}

/// The commune's active INCIDENT_REPORT services (every page).
async fn incident_services(
    state: &AppState,
    code: &str,
) -> Result<Vec<requests::ServiceDefinition>, Open311Error> {
    let mut client = state.clients.service_requests.clone();
    let mut services = Vec::new();
    let mut page_token = String::new();
    for _ in 0..50 {
        let page = client
            .list_services(call(
                state,
                requests::ListServicesRequest {
                    commune_code: code.to_string(),
                    page_size: 200,
                    page_token: page_token.clone(),
                    include_inactive: false,
                },
            ))
            .await
            .map_err(|status| Open311Error::from_status(&status))?
            .into_inner();
        services.extend(
            page.services
                .into_iter()
                .filter(|service| service.kind == requests::ServiceKind::IncidentReport as i32),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(services)
}

fn service_json(service: &requests::ServiceDefinition, language: Language) -> Value {
    json!({
        "service_code": service.code,
        "service_name": text(&service.name, language),
        "description": text(&service.description, language),
        "metadata": !service.attributes.is_empty(),
        "type": "realtime",
        "keywords": "",
        "group": "",
    })
}

fn datatype(raw: i32) -> &'static str {
    use requests::AttributeDatatype as D;
    match D::try_from(raw).unwrap_or(D::String) {
        D::Number => "number",
        D::Datetime => "datetime",
        D::Text => "text",
        D::Singlevaluelist => "singlevaluelist",
        D::Multivaluelist => "multivaluelist",
        D::String | D::Unspecified => "string",
    }
}

fn definition_json(service: &requests::ServiceDefinition, language: Language) -> Value {
    let mut attributes = service.attributes.clone();
    attributes.sort_by_key(|attribute| attribute.order);
    json!({
        "service_code": service.code,
        "attributes": attributes.iter().map(|attribute| json!({
            "variable": true,
            "code": attribute.code,
            "datatype": datatype(attribute.datatype),
            "required": attribute.required,
            "datatype_description": "",
            "order": attribute.order,
            "description": text(&attribute.description, language),
            "values": attribute.values.iter().map(|value| json!({
                "key": value.key,
                "name": text(&value.name, language),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn datetime(at: Option<jamaa_proto::Timestamp>) -> Value {
    at.and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
        .map(|at| Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

fn request_json(report: &requests::PublicRequest, language: Language) -> Value {
    let mut fields = Map::new();
    let mut put = |key: &str, value: Value| {
        fields.insert(key.to_string(), value);
    };
    put("service_request_id", json!(report.request_id));
    put("status", json!(if report.open { "open" } else { "closed" }));
    put("status_notes", json!(report.status_note));
    put("service_name", json!(text(&report.service_name, language)));
    put("service_code", json!(report.service_code));
    put("description", json!(report.description));
    put("agency_responsible", json!(""));
    put("service_notice", json!(report.tracking_code));
    put("requested_datetime", datetime(report.create_time));
    put("updated_datetime", datetime(report.update_time));
    put(
        "expected_datetime",
        if report.due_date.is_empty() {
            Value::Null
        } else {
            json!(format!("{}T23:59:59Z", report.due_date))
        },
    );
    put("address", json!(report.address));
    put("address_id", json!(""));
    put("zipcode", json!(""));
    if let Some(location) = &report.location {
        put("lat", json!(location.latitude));
        put("long", json!(location.longitude));
    }
    put("media_url", json!(""));
    Value::Object(fields)
}

/// `/open311/v2/{discovery|services|requests}.{json|xml}`.
pub async fn top_level(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let Some((stem, format)) = split_format(&file) else {
        return error_reply(
            Format::Json,
            Open311Error::new(
                StatusCode::NOT_FOUND,
                format!("{BASE}/{file} does not exist: resources end with .json or .xml"),
            ),
        );
    };
    let language = language_of(&headers);
    let outcome = match stem {
        "discovery" => Ok(discovery(&headers, format)),
        "services" => services(&state, &query, language, format).await,
        "requests" => requests_list(&state, &query, language, format).await,
        other => Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            format!("{BASE}/{other} does not exist"),
        )),
    };
    outcome.unwrap_or_else(|error| error_reply(format, error))
}

/// `/open311/v2/{services|requests}/{id}.{json|xml}`.
pub async fn item(
    State(state): State<AppState>,
    Path((collection, file)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let Some((id, format)) = split_format(&file) else {
        return error_reply(
            Format::Json,
            Open311Error::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{BASE}/{collection}/{file} does not exist: resources end with .json or .xml"
                ),
            ),
        );
    };
    let language = language_of(&headers);
    let outcome = match collection.as_str() {
        "services" => service_definition(&state, &query, id, language, format).await,
        "requests" => one_request(&state, &query, id, language, format).await,
        "tokens" => token(&state, &query, id, format).await,
        other => Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            format!("{BASE}/{other}/… does not exist"),
        )),
    };
    outcome.unwrap_or_else(|error| error_reply(format, error))
}

fn discovery(headers: &HeaderMap, format: Format) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let document = json!({
        "changeset": "2026-12-03T00:00:00Z",
        "contact": "Your commune's desk, or the platform's operators.",
        "key_service": "Posting requests needs an API key issued by the commune (not yet available).",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": format!("http://{host}{BASE}"),
            "changeset": "2026-12-03T00:00:00Z",
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    });
    reply(format, "discovery", "discovery", &document)
}

async fn services(
    state: &AppState,
    query: &[(String, String)],
    language: Language,
    format: Format,
) -> Result<Response, Open311Error> {
    let code = jurisdiction(query)?;
    check_commune(state, &code).await?;
    let services = incident_services(state, &code).await?;
    let list: Vec<Value> = services
        .iter()
        .map(|service| service_json(service, language))
        .collect();
    Ok(reply(format, "services", "service", &Value::Array(list)))
}

async fn service_definition(
    state: &AppState,
    query: &[(String, String)],
    service_code: &str,
    language: Language,
    format: Format,
) -> Result<Response, Open311Error> {
    let code = jurisdiction(query)?;
    check_commune(state, &code).await?;
    let services = incident_services(state, &code).await?;
    let service = services
        .iter()
        .find(|service| service.code == service_code)
        .ok_or_else(|| {
            Open311Error::new(
                StatusCode::NOT_FOUND,
                format!("jurisdiction {code} has no service {service_code}"),
            )
        })?;
    Ok(reply(
        format,
        "service_definition",
        "service_definition",
        &definition_json(service, language),
    ))
}

/// A date-time parameter (W3C / RFC 3339).
fn date_param(
    query: &[(String, String)],
    name: &str,
) -> Result<Option<jamaa_proto::Timestamp>, Open311Error> {
    let Some(raw) = param(query, name) else {
        return Ok(None);
    };
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| Some(jamaa_proto::timestamp_from_millis(at.timestamp_millis())))
        .map_err(|_| {
            Open311Error::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a date-time like 2026-12-01T00:00:00Z"),
            )
        })
}

async fn requests_list(
    state: &AppState,
    query: &[(String, String)],
    language: Language,
    format: Format,
) -> Result<Response, Open311Error> {
    let code = jurisdiction(query)?;
    check_commune(state, &code).await?;
    let ids: Vec<String> = param(query, "service_request_id")
        .map(|ids| {
            ids.split(',')
                .map(|id| id.trim().to_string())
                .filter(|id| !id.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let state_filter = match param(query, "status") {
        None => requests::PublicRequestState::Unspecified,
        Some("open") => requests::PublicRequestState::Open,
        Some("closed") => requests::PublicRequestState::Closed,
        Some(other) => {
            return Err(Open311Error::new(
                StatusCode::BAD_REQUEST,
                format!("status must be open or closed, not {other}"),
            ));
        }
    };
    let start_time = date_param(query, "start_date")?;
    let end_time = date_param(query, "end_date")?;
    // Without ids or dates, the spec's default: the last 90 days.
    let start_time = match (&start_time, ids.is_empty()) {
        (None, true) => Some(jamaa_proto::timestamp_from_millis(
            (chrono::Utc::now() - chrono::Duration::days(90)).timestamp_millis(),
        )),
        _ => start_time,
    };
    let mut client = state.clients.service_requests.clone();
    let reports = client
        .list_public_requests(call(
            state,
            requests::ListPublicRequestsRequest {
                commune_code: code,
                request_ids: ids,
                service_code: param(query, "service_code").unwrap_or_default().to_string(),
                start_time,
                end_time,
                state: state_filter as i32,
                page_size: 200,
                page_token: String::new(),
            },
        ))
        .await
        .map_err(|status| Open311Error::from_status(&status))?
        .into_inner()
        .requests;
    let list: Vec<Value> = reports
        .iter()
        .map(|report| request_json(report, language))
        .collect();
    Ok(reply(
        format,
        "service_requests",
        "request",
        &Value::Array(list),
    ))
}

async fn one_request(
    state: &AppState,
    query: &[(String, String)],
    id: &str,
    language: Language,
    format: Format,
) -> Result<Response, Open311Error> {
    let code = jurisdiction(query)?;
    check_commune(state, &code).await?;
    let mut client = state.clients.service_requests.clone();
    let reports = client
        .list_public_requests(call(
            state,
            requests::ListPublicRequestsRequest {
                commune_code: code.clone(),
                request_ids: vec![id.to_string()],
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .map_err(|status| Open311Error::from_status(&status))?
        .into_inner()
        .requests;
    if reports.is_empty() {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            format!("jurisdiction {code} has no public service request {id}"),
        ));
    }
    let list: Vec<Value> = reports
        .iter()
        .map(|report| request_json(report, language))
        .collect();
    Ok(reply(
        format,
        "service_requests",
        "request",
        &Value::Array(list),
    ))
}

/// `tokens/{token}`: our `POST requests` answers the new request's id at once, so its token is
/// that id; the answer names the request it stands for.
async fn token(
    state: &AppState,
    query: &[(String, String)],
    token: &str,
    format: Format,
) -> Result<Response, Open311Error> {
    let code = jurisdiction(query)?;
    check_commune(state, &code).await?;
    let mut client = state.clients.service_requests.clone();
    let reports = client
        .list_public_requests(call(
            state,
            requests::ListPublicRequestsRequest {
                commune_code: code.clone(),
                request_ids: vec![token.to_string()],
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .map_err(|status| Open311Error::from_status(&status))?
        .into_inner()
        .requests;
    let Some(report) = reports.first() else {
        return Err(Open311Error::new(
            StatusCode::NOT_FOUND,
            format!("jurisdiction {code} has no token {token}"),
        ));
    };
    let answer = json!([{ "service_request_id": report.request_id, "token": token }]);
    Ok(reply(format, "service_requests", "request", &answer))
}

/// `POST /open311/v2/requests.{json|xml}`: files a report for the application whose
/// `api_key` the commune issued (form-urlencoded: `api_key`, `jurisdiction_id`,
/// `service_code`, `lat` and `long` or `address_string`, `description`, `first_name`,
/// `last_name`, `phone`, `attribute[code]` and `attribute[code][]`).
pub async fn post_request(
    State(state): State<AppState>,
    Path(file): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let format = split_format(&file).map_or(Format::Json, |(_, format)| format);
    match split_format(&file) {
        Some(("requests", format)) => submit(&state, &body, format)
            .await
            .unwrap_or_else(|error| error_reply(format, error)),
        _ => error_reply(
            format,
            Open311Error::new(
                StatusCode::NOT_FOUND,
                format!("{BASE}/{file} takes no POST: post to requests.json or requests.xml"),
            ),
        ),
    }
}

/// The form's fields; `attribute[code]` and `attribute[code][]` gathered by code (several
/// values joined with commas, as multi-value answers are).
struct Form {
    fields: Vec<(String, String)>,
    attributes: std::collections::HashMap<String, String>,
}

fn parse_form(body: &[u8]) -> Result<Form, Open311Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        Open311Error::new(
            StatusCode::BAD_REQUEST,
            "the body must be application/x-www-form-urlencoded",
        )
    })?;
    let mut fields = Vec::new();
    let mut attributes: std::collections::HashMap<String, String> = Default::default();
    for (key, value) in pairs {
        let Some(code) = key
            .strip_prefix("attribute[")
            .map(|rest| rest.strip_suffix("[]").unwrap_or(rest))
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            fields.push((key, value));
            continue;
        };
        let value = value.trim().to_string();
        attributes
            .entry(code.to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    Ok(Form { fields, attributes })
}

fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, Open311Error> {
    param(&form.fields, name)
        .ok_or_else(|| Open311Error::new(StatusCode::BAD_REQUEST, format!("{name} is required")))
}

fn coordinate(form: &Form, name: &str) -> Result<Option<f64>, Open311Error> {
    param(&form.fields, name)
        .map(|raw| {
            raw.parse::<f64>().map_err(|_| {
                Open311Error::new(StatusCode::BAD_REQUEST, format!("{name} must be a number"))
            })
        })
        .transpose()
}

async fn submit(state: &AppState, body: &[u8], format: Format) -> Result<Response, Open311Error> {
    let form = parse_form(body)?;
    let api_key = required(&form, "api_key")?;
    let code = required(&form, "jurisdiction_id")?.to_uppercase();
    let service_code = required(&form, "service_code")?;
    let (latitude, longitude) = (coordinate(&form, "lat")?, coordinate(&form, "long")?);
    let address = param(&form.fields, "address_string").unwrap_or_default();
    let location = match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Some(jamaa_proto::r#type::v1::GeoPoint {
            latitude,
            longitude,
        }),
        (None, None) if !address.is_empty() => None,
        _ => {
            return Err(Open311Error::new(
                StatusCode::BAD_REQUEST,
                "a location is required: lat and long, or address_string",
            ));
        }
    };
    let full_name = [
        param(&form.fields, "first_name"),
        param(&form.fields, "last_name"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let phone = param(&form.fields, "phone").unwrap_or_default();
    if full_name.is_empty() || phone.is_empty() {
        return Err(Open311Error::new(
            StatusCode::BAD_REQUEST,
            "first_name or last_name, and phone, are required: the commune reaches the reporter by phone",
        ));
    }
    // The key becomes an access token of its application, for its commune only.
    let mut identity = state.clients.identity.clone();
    let exchanged = identity
        .exchange_api_key(call(
            state,
            jamaa_proto::identity::v1::ExchangeApiKeyRequest {
                api_key: api_key.to_string(),
            },
        ))
        .await
        .map_err(|status| match status.code() {
            Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument => {
                Open311Error::new(StatusCode::FORBIDDEN, "the api_key is not valid")
            }
            _ => Open311Error::from_status(&status),
        })?
        .into_inner();
    if exchanged.commune_code != code {
        return Err(Open311Error::new(
            StatusCode::FORBIDDEN,
            format!("this api_key is not for jurisdiction {code}"),
        ));
    }
    let services = incident_services(state, &code).await?;
    let service = services
        .iter()
        .find(|service| service.code == service_code)
        .ok_or_else(|| {
            Open311Error::new(
                StatusCode::NOT_FOUND,
                format!("jurisdiction {code} has no service {service_code}"),
            )
        })?;
    let mut request = call(
        state,
        requests::SubmitRequestRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            service_id: service.id.clone(),
            description: param(&form.fields, "description")
                .unwrap_or_default()
                .to_string(),
            attributes: form.attributes.clone(),
            location,
            address: address.to_string(),
            walk_in: Some(requests::WalkInCitizen {
                full_name,
                phone: phone.to_string(),
                citizen_id: String::new(),
            }),
            ..Default::default()
        },
    );
    let bearer = format!("Bearer {}", exchanged.access_token);
    let value = bearer.parse().map_err(|_| {
        Open311Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot pass the token on",
        )
    })?;
    request.metadata_mut().insert("authorization", value);
    let mut client = state.clients.service_requests.clone();
    let filed = client
        .submit_request(request)
        .await
        .map_err(|status| Open311Error::from_status(&status))?
        .into_inner();
    let filed_request = filed.request.unwrap_or_default();
    let answer = json!([{
        "service_request_id": filed_request.id,
        "service_notice": filed_request.tracking_code,
        "account_id": "",
    }]);
    Ok(reply(format, "service_requests", "request", &answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_the_suffix() {
        assert_eq!(
            split_format("services.json"),
            Some(("services", Format::Json))
        );
        assert_eq!(split_format("abc.xml"), Some(("abc", Format::Xml)));
        assert_eq!(split_format("services"), None);
    }

    #[test]
    fn xml_nests_arrays_and_escapes_text() {
        let value = json!([{
            "service_code": "pothole",
            "description": "<b>&'\"\u{1}",
            "metadata": true,
            "missing": null,
            "attributes": [{"code": "depth", "values": [{"key": "1"}]}],
        }]);
        assert_eq!(
            xml_document("services", "service", &value),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service>\
             <attributes><attribute><code>depth</code><values><value><key>1</key></value>\
             </values></attribute></attributes>\
             <description>&lt;b&gt;&amp;&apos;&quot;</description><metadata>true</metadata>\
             <service_code>pothole</service_code></service></services>"
        );
    }

    #[test]
    fn accept_language_picks_ours() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            "de-DE, fr-MA;q=0.8".parse().expect("header"),
        );
        assert_eq!(language_of(&headers), Language::Fr);
        assert_eq!(language_of(&HeaderMap::new()), Language::Ar);
    }
}
