//! The OpenAPI 3.1 document, made from the route table and the types' JSON schemas.

use super::{Body, routes};
use axum::Json;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

pub async fn document() -> Json<Value> {
    Json(openapi())
}

/// The whole document.
pub fn openapi() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = generator.subschema_for::<super::error::ErrorBody>();
    let mut paths = Map::new();
    for route in routes() {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(route.operation_id));
        operation.insert("summary".into(), json!(route.summary));
        operation.insert("tags".into(), json!([route.tag]));
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if let Some(query) = route.query {
            parameters.extend(query_parameters(query(&mut generator).to_value()));
        }
        if matches!(route.response, Body::Stream) {
            parameters.push(json!({
                "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string" },
                "description": "Resume after this event id (sent by reconnecting EventSource clients)"
            }));
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(request) = route.request {
            operation.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": request(&mut generator) } } }),
            );
        }
        let mut responses = Map::new();
        let (status, success) = match route.response {
            Body::Json(status, schema) => (
                status,
                json!({ "description": "Success", "content": { "application/json": { "schema": schema(&mut generator) } } }),
            ),
            Body::Stream => (
                200,
                json!({ "description": "Server-sent events", "content": { "text/event-stream": { "schema": { "type": "string" } } } }),
            ),
            Body::Empty(status) => (status, json!({ "description": "Done" })),
            Body::Text(media_type) => (200, json!({ "description": "Success", "content": { media_type: {} } })),
        };
        responses.insert(status.to_string(), success);
        let error_response = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": error.clone() } } });
        if route.request.is_some() || route.query.is_some() {
            responses.insert("400".into(), error_response("The request is invalid"));
        }
        if !route.public {
            responses.insert("401".into(), error_response("No valid API key"));
            operation.insert("security".into(), json!([{ "bearer": [] }, { "apiKey": [] }]));
        }
        if route.path.contains("{id}") {
            responses.insert("404".into(), error_response("No such session or key"));
        }
        if route.request.is_some() {
            responses.insert("413".into(), error_response("The body is larger than the server accepts"));
        }
        operation.insert("responses".into(), Value::Object(responses));
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        if let Some(entry) = entry.as_object_mut() {
            entry.insert(route.method.as_str().to_ascii_lowercase(), Value::Object(operation));
        }
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rswe",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted autonomous software-engineering agents. Authenticate with \
                `Authorization: Bearer <key>` or `x-api-key: <key>` (create keys with `rswe keys create`)."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key" }
            }
        }
    })
}

/// A query struct's properties as OpenAPI parameters.
fn query_parameters(schema: Value) -> Vec<Value> {
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| {
            let mut parameter = json!({
                "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": property
            });
            if let Some(description) = property.get("description") {
                parameter["description"] = description.clone();
            }
            parameter
        })
        .collect()
}
