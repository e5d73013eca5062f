//! The JSON API under `/api/v1`. One table ([`routes`]) names every operation: the
//! router, the OpenAPI document and the tests that check authentication all read it.

pub mod error;
pub mod events;
mod openapi;
pub mod sessions;
pub mod types;

use crate::AppState;
use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};
use schemars::{JsonSchema, Schema, SchemaGenerator};

pub use error::ApiError;

/// Makes a schema for a type, for the OpenAPI document.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route answers with on success.
#[derive(Clone, Copy)]
pub enum Body {
    Json(u16, SchemaFn),
    /// Server-sent events.
    Stream,
    Empty(u16),
    /// Text of some kind (the OpenAPI document itself).
    Text(&'static str),
}

/// One operation of the API.
pub struct ApiRoute {
    pub method: Method,
    /// The path, with `{name}` parameters as both axum and OpenAPI write them.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Answers without a key.
    pub public: bool,
    pub query: Option<SchemaFn>,
    pub request: Option<SchemaFn>,
    pub response: Body,
    pub handler: MethodRouter<AppState>,
}

/// Every operation of the API.
pub fn routes() -> Vec<ApiRoute> {
    use types::*;
    let route = |method: Method, path, operation_id, summary, tag, handler| ApiRoute {
        method,
        path,
        operation_id,
        summary,
        tag,
        public: false,
        query: None,
        request: None,
        response: Body::Empty(204),
        handler,
    };
    vec![
        ApiRoute {
            request: Some(schema::<CreateSessionRequest>),
            response: Body::Json(201, schema::<SessionView>),
            ..route(
                Method::POST,
                "/api/v1/sessions",
                "createSession",
                "Start a session with a task",
                "sessions",
                post(sessions::create),
            )
        },
        ApiRoute {
            query: Some(schema::<ListQuery>),
            response: Body::Json(200, schema::<SessionList>),
            ..route(
                Method::GET,
                "/api/v1/sessions",
                "listSessions",
                "List sessions, most recently updated first",
                "sessions",
                get(sessions::list),
            )
        },
        ApiRoute {
            response: Body::Stream,
            ..route(
                Method::GET,
                "/api/v1/sessions/stream",
                "streamSessions",
                "Live changes of the session list (SSE); resumes after Last-Event-ID",
                "sessions",
                get(events::stream_sessions),
            )
        },
        ApiRoute {
            response: Body::Json(200, schema::<SessionView>),
            ..route(Method::GET, "/api/v1/sessions/{id}", "getSession", "Get a session", "sessions", get(sessions::get))
        },
        route(
            Method::DELETE,
            "/api/v1/sessions/{id}",
            "deleteSession",
            "Stop a session and delete it with its workspace",
            "sessions",
            delete(sessions::remove),
        ),
        ApiRoute {
            request: Some(schema::<PostMessageRequest>),
            response: Body::Json(202, schema::<MessagePosted>),
            ..route(
                Method::POST,
                "/api/v1/sessions/{id}/messages",
                "postMessage",
                "Send a message: wakes an idle session, steers a working one at its next step",
                "sessions",
                post(sessions::post_message),
            )
        },
        ApiRoute {
            response: Body::Empty(202),
            ..route(
                Method::POST,
                "/api/v1/sessions/{id}/interrupt",
                "interruptSession",
                "Interrupt the agent at its next safe point",
                "sessions",
                post(sessions::interrupt),
            )
        },
        ApiRoute {
            response: Body::Empty(202),
            ..route(
                Method::POST,
                "/api/v1/sessions/{id}/stop",
                "stopSession",
                "Stop the session and release its sandbox; a later message starts it again",
                "sessions",
                post(sessions::stop),
            )
        },
        ApiRoute {
            query: Some(schema::<EventsQuery>),
            response: Body::Json(200, schema::<EventList>),
            ..route(
                Method::GET,
                "/api/v1/sessions/{id}/events",
                "listEvents",
                "The session's log, in order, after a sequence number",
                "events",
                get(events::list),
            )
        },
        ApiRoute {
            query: Some(schema::<EventsQuery>),
            response: Body::Stream,
            ..route(
                Method::GET,
                "/api/v1/sessions/{id}/events/stream",
                "streamEvents",
                "The session's events live (SSE), from Last-Event-ID or `after`",
                "events",
                get(events::stream),
            )
        },
        ApiRoute {
            response: Body::Json(200, schema::<rswe_store::SessionUsage>),
            ..route(
                Method::GET,
                "/api/v1/sessions/{id}/usage",
                "sessionUsage",
                "Tokens and cost of a session, per model",
                "usage",
                get(sessions::usage),
            )
        },
        ApiRoute {
            query: Some(schema::<UsageQuery>),
            response: Body::Json(200, schema::<UsageReport>),
            ..route(
                Method::GET,
                "/api/v1/usage",
                "usage",
                "Tokens and cost per day, month, model and session over a period",
                "usage",
                get(sessions::usage_report),
            )
        },
        ApiRoute {
            response: Body::Json(200, schema::<ModelList>),
            ..route(
                Method::GET,
                "/api/v1/models",
                "listModels",
                "The models sessions can use",
                "models",
                get(sessions::models),
            )
        },
        ApiRoute {
            response: Body::Json(200, schema::<crate::auth::KeyList>),
            ..route(Method::GET, "/api/v1/keys", "listKeys", "List API keys", "keys", get(crate::auth::list_keys))
        },
        ApiRoute {
            request: Some(schema::<crate::auth::CreateKeyRequest>),
            response: Body::Json(201, schema::<crate::auth::CreatedKey>),
            ..route(
                Method::POST,
                "/api/v1/keys",
                "createKey",
                "Create an API key; the key is shown only in this answer",
                "keys",
                post(crate::auth::create_key),
            )
        },
        route(
            Method::DELETE,
            "/api/v1/keys/{id}",
            "revokeKey",
            "Revoke an API key",
            "keys",
            delete(crate::auth::revoke_key),
        ),
        ApiRoute {
            public: true,
            response: Body::Text("application/json"),
            ..route(Method::GET, "/api/v1/openapi.json", "openapi", "This document", "meta", get(openapi::document))
        },
    ]
}

/// The API's router, with authentication on every route not marked public.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut protected = Router::new();
    let mut public = Router::new();
    for route in routes() {
        if route.public {
            public = public.route(route.path, route.handler);
        } else {
            protected = protected.route(route.path, route.handler);
        }
    }
    let protected =
        protected.route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::require_api));
    public.merge(protected)
}
