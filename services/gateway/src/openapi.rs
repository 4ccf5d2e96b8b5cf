//! The OpenAPI 3.1 document, built from the route table ([`crate::routes::operations`]), so it
//! lists exactly the routes the router serves.
//!
//! Message bodies are described loosely for now: each proto message is an `object` schema whose
//! description names the message (its fields follow the proto3 JSON mapping: lowerCamelCase
//! names, enums by name, int64 as strings, timestamps in RFC 3339).

use serde_json::{Map, Value, json};

use crate::routes::{Operation, ParamKind, ResponseBody};

/// The name of the bearer-token security scheme.
const BEARER: &str = "bearerAuth";

/// The OpenAPI document describing `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Problem".to_string(), problem_schema());
    for operation in operations {
        for message in operation.request.iter().chain(match &operation.response {
            ResponseBody::Message(name) => Some(name),
            _ => None,
        }) {
            schemas.insert(message.clone(), message_schema(message));
        }
        let item = paths
            .entry(operation.spec.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(
                operation.spec.verb.openapi_key().to_string(),
                describe(operation),
            );
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jamaa API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP/JSON API of Jamaa, the platform of Moroccan communes. Bodies follow \
                the proto3 JSON mapping of the gRPC messages named in each schema. Errors are \
                problem details (RFC 9457).",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The accessToken from POST /v1/sessions.",
                },
            },
        },
        "security": [{BEARER: []}],
    })
}

/// One operation object.
fn describe(operation: &Operation) -> Value {
    let spec = &operation.spec;
    let mut parameters: Vec<Value> = path_parameters(spec.path)
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": {"type": "string"},
            })
        })
        .collect();
    parameters.extend(spec.query.iter().map(|param| {
        let schema_type = match param.kind {
            ParamKind::Integer => "integer",
            ParamKind::Boolean => "boolean",
            ParamKind::String => "string",
        };
        json!({
            "name": param.name,
            "in": "query",
            "required": false,
            "description": param.description,
            "schema": {"type": schema_type},
        })
    }));

    let success = match &operation.response {
        ResponseBody::Message(name) => json!({
            "description": format!("A {name}."),
            "content": {"application/json": {"schema": schema_ref(name)}},
        }),
        ResponseBody::Json(description) => json!({
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }),
        ResponseBody::Text(description) => json!({
            "description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }),
        ResponseBody::File(description) => json!({
            "description": description,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }),
    };
    let mut object = json!({
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "parameters": parameters,
        "responses": {
            "200": success,
            "default": {
                "description": "A problem (RFC 9457).",
                "content": {"application/problem+json": {"schema": schema_ref("Problem")}},
            },
        },
    });
    if let (true, Some(request), Value::Object(fields)) =
        (spec.body, &operation.request, &mut object)
    {
        fields.insert(
            "requestBody".to_string(),
            json!({
                "required": true,
                "content": {"application/json": {"schema": schema_ref(request)}},
            }),
        );
    }
    if let (true, Value::Object(fields)) = (spec.public, &mut object) {
        fields.insert("security".to_string(), json!([]));
    }
    object
}

/// The `{name}`s of a path.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn message_schema(name: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("The proto3 JSON mapping of the protobuf message `{name}`."),
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "Problem details (RFC 9457).",
        "required": ["type", "title", "status", "detail", "code", "errors"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": "https://jamaa.ma/problems/ followed by the error reason, e.g. NOT_FOUND.",
            },
            "title": {"type": "string"},
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "The gRPC code name, e.g. INVALID_ARGUMENT."},
            "errors": {
                "type": "array",
                "description": "The bad fields of the request.",
                "items": {
                    "type": "object",
                    "required": ["field", "description"],
                    "properties": {
                        "field": {"type": "string"},
                        "description": {"type": "string"},
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::operations;

    #[test]
    fn every_route_is_documented() {
        let operations = operations();
        let document = document(&operations);
        assert_eq!(document["openapi"], "3.1.0");
        for operation in &operations {
            let spec = &operation.spec;
            let described = &document["paths"][spec.path][spec.verb.openapi_key()];
            assert_eq!(
                described["operationId"],
                spec.operation_id,
                "{} {}",
                spec.verb.openapi_key(),
                spec.path
            );
            assert_eq!(
                described.get("security") == Some(&json!([])),
                spec.public,
                "{}",
                spec.operation_id
            );
        }
        let documented: usize = document["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .values()
                    .filter_map(Value::as_object)
                    .map(Map::len)
                    .sum()
            })
            .unwrap_or_default();
        assert_eq!(documented, operations.len());
    }

    #[test]
    fn the_document_is_valid_json_with_its_references() {
        let document = document(&operations());
        let text = serde_json::to_string(&document).expect("serializes");
        let parsed: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(
            parsed["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let schemas = parsed["components"]["schemas"]
            .as_object()
            .expect("schemas");
        for name in [
            "Problem",
            "jamaa.identity.v1.CreateCommuneRequest",
            "jamaa.servicerequest.v1.ListRequestsResponse",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        // Every $ref points at a schema.
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        let get_request = &parsed["paths"]["/v1/requests/{id}"]["get"];
        assert_eq!(get_request["parameters"][0]["name"], "id");
        assert_eq!(get_request["parameters"][0]["in"], "path");
        let list = &parsed["paths"]["/v1/notifications"]["get"];
        assert_eq!(list["parameters"][2]["name"], "unreadOnly");
        assert_eq!(list["parameters"][2]["schema"]["type"], "boolean");
    }

    #[test]
    fn operation_ids_are_unique() {
        let operations = operations();
        let mut ids: Vec<&str> = operations
            .iter()
            .map(|operation| operation.spec.operation_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), operations.len());
    }
}
