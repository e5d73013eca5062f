//! The `mcpServers` configuration:
//!
//! ```json
//! { "mcpServers": {
//!     "everything": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"],
//!                     "env": { "DEBUG": "1" }, "cwd": "tools" },
//!     "tracker":    { "type": "http", "url": "https://mcp.example.com/mcp",
//!                     "headers": { "Authorization": "Bearer ${TRACKER_TOKEN}" }, "trusted": true },
//!     "old":        { "command": "old-server", "disabled": true }
//! } }
//! ```
//!
//! Stdio servers have `command` (and `args`, `env`, `cwd`); URL servers have `url` (and
//! `headers`, and `type`: `http` for Streamable HTTP, the default, or `sse` for the
//! legacy transport). `disabled: true` (or `enabled: false`) keeps a server configured
//! but off. `trusted: true` runs a stdio server beside rswe instead of in the session's
//! sandbox. `timeout` is how many seconds one tool call may take. `${VAR}` and `${VAR:-default}` in strings are replaced from the environment,
//! as Claude Code does. The same object works inline in `rswe.toml` under
//! `[mcp.servers.<name>]`.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What is wrong with a configuration, naming the server and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", location(.server, .field))]
pub struct ConfigError {
    pub server: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

fn location(server: &Option<String>, field: &Option<String>) -> String {
    match (server, field) {
        (Some(server), Some(field)) => format!("MCP server `{server}`, field `{field}`: "),
        (Some(server), None) => format!("MCP server `{server}`: "),
        (None, Some(field)) => format!("MCP configuration, field `{field}`: "),
        (None, None) => "MCP configuration: ".to_string(),
    }
}

/// How rswe reaches a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking over stdin and stdout.
    Stdio { command: String, args: Vec<String>, env: BTreeMap<String, String>, cwd: Option<PathBuf> },
    /// Streamable HTTP.
    Http { url: String, headers: BTreeMap<String, String> },
    /// The legacy HTTP+SSE transport.
    Sse { url: String, headers: BTreeMap<String, String> },
}

/// One configured server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The key in `mcpServers`; tools are exposed as `mcp__<name>__<tool>`.
    pub name: String,
    pub transport: Transport,
    pub enabled: bool,
    /// Runs beside rswe, with the credentials it is given, instead of in the sandbox.
    pub trusted: bool,
    /// How long one tool call may take; the session's default when `None`.
    pub timeout: Option<Duration>,
}

/// Every configured server, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct McpConfig {
    pub servers: BTreeMap<String, ServerConfig>,
}

impl McpConfig {
    /// Reads an `mcpServers` JSON file.
    pub fn from_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<McpConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            server: None,
            field: None,
            message: format!("cannot read {}: {error}", path.display()),
        })?;
        McpConfig::from_json(&text, env)
    }

    /// Parses the JSON text of an `mcpServers` file.
    pub fn from_json(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<McpConfig, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|error| ConfigError {
            server: None,
            field: None,
            message: format!("not valid JSON: {error}"),
        })?;
        let Some(root) = value.as_object() else {
            return Err(top_level("the file must hold a JSON object with `mcpServers`"));
        };
        match root.get("mcpServers") {
            Some(Value::Object(servers)) => McpConfig::from_servers(servers, env),
            Some(_) => Err(ConfigError {
                server: None,
                field: Some("mcpServers".into()),
                message: "must be an object of servers by name".into(),
            }),
            None => Err(top_level("no `mcpServers` object")),
        }
    }

    /// Takes the servers of `[mcp.servers]` in `rswe.toml`.
    pub fn from_toml(table: &toml::Table, env: &dyn Fn(&str) -> Option<String>) -> Result<McpConfig, ConfigError> {
        let json = serde_json::to_value(table).map_err(|error| top_level(&error.to_string()))?;
        match json {
            Value::Object(servers) => McpConfig::from_servers(&servers, env),
            _ => Err(top_level("[mcp.servers] must be a table of servers by name")),
        }
    }

    fn from_servers(
        servers: &Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<McpConfig, ConfigError> {
        let mut config = McpConfig::default();
        for (name, value) in servers {
            let server = parse_server(name, value, env)?;
            config.servers.insert(name.clone(), server);
        }
        Ok(config)
    }

    /// The servers that are on.
    pub fn enabled(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.values().filter(|server| server.enabled)
    }
}

fn top_level(message: &str) -> ConfigError {
    ConfigError { server: None, field: None, message: message.to_string() }
}

/// The longest server name: `mcp__<server>__<tool>` must fit the providers' 64 characters.
const MAX_NAME: usize = 32;

const KNOWN_FIELDS: [&str; 12] = [
    "type",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "disabled",
    "enabled",
    "trusted",
    "timeout",
    "description",
];

/// Fields other clients keep in the same file, which mean nothing here.
const FOREIGN_FIELDS: [&str; 3] = ["autoApprove", "alwaysAllow", "transportType"];

fn parse_server(name: &str, value: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<ServerConfig, ConfigError> {
    let error = |field: Option<&str>, message: String| ConfigError {
        server: Some(name.to_string()),
        field: field.map(str::to_string),
        message,
    };
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || name.contains("__")
    {
        return Err(error(
            None,
            format!(
                "the name must be 1 to {MAX_NAME} letters, digits, `-` or `_` (no `__`), since tools are named \
                 mcp__<server>__<tool>"
            ),
        ));
    }
    let Some(object) = value.as_object() else {
        return Err(error(None, "must be an object".into()));
    };
    // A server that is off needs none of its variables: they stay as written.
    let off = matches!(object.get("disabled"), Some(Value::Bool(true)))
        || matches!(object.get("enabled"), Some(Value::Bool(false)));
    let keep_as_written = |variable: &str| Some(format!("${{{variable}}}"));
    let env: &dyn Fn(&str) -> Option<String> = if off { &keep_as_written } else { env };
    let foreign = |key: &String| FOREIGN_FIELDS.contains(&key.as_str());
    if let Some(unknown) = object.keys().find(|key| !KNOWN_FIELDS.contains(&key.as_str()) && !foreign(key)) {
        return Err(error(Some(unknown), format!("unknown field (known: {})", KNOWN_FIELDS.join(", "))));
    }
    let string = |field: &str| -> Result<Option<String>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => expand(text, env).map(Some).map_err(|message| error(Some(field), message)),
            Some(_) => Err(error(Some(field), "must be a string".into())),
        }
    };
    let boolean = |field: &str| -> Result<Option<bool>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(error(Some(field), "must be true or false".into())),
        }
    };
    let strings = |field: &str| -> Result<Vec<String>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(text) => expand(text, env).map_err(|message| error(Some(field), message)),
                    _ => Err(error(Some(field), format!("item {i} must be a string"))),
                })
                .collect(),
            Some(_) => Err(error(Some(field), "must be a list of strings".into())),
        }
    };
    let map = |field: &str| -> Result<BTreeMap<String, String>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => {
                        expand(text, env).map(|text| (key.clone(), text)).map_err(|message| error(Some(field), message))
                    }
                    _ => Err(error(Some(field), format!("`{key}` must be a string"))),
                })
                .collect(),
            Some(_) => Err(error(Some(field), "must be an object of strings".into())),
        }
    };

    let kind = string("type")?;
    let command = string("command")?;
    let url = string("url")?;
    let transport = match (kind.as_deref(), command, url) {
        (_, Some(_), Some(_)) => {
            return Err(error(None, "has both `command` and `url`: a server is one or the other".into()));
        }
        (None | Some("stdio"), Some(command), None) => {
            if command.trim().is_empty() {
                return Err(error(Some("command"), "is empty".into()));
            }
            if object.contains_key("headers") {
                return Err(error(Some("headers"), "only URL servers take headers".into()));
            }
            Transport::Stdio {
                command,
                args: strings("args")?,
                env: map("env")?,
                cwd: string("cwd")?.map(PathBuf::from),
            }
        }
        (Some("stdio"), None, _) => return Err(error(Some("command"), "a stdio server needs a command".into())),
        (Some(kind @ ("http" | "streamable-http" | "streamableHttp" | "sse")), Some(_), None) => {
            return Err(error(Some("url"), format!("a server of type {kind:?} needs `url`, not `command`")));
        }
        (None | Some("http" | "streamable-http" | "streamableHttp" | "sse"), None, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(error(Some("url"), format!("{url:?} is not an http:// or https:// URL")));
            }
            for field in ["args", "env", "cwd"] {
                if object.contains_key(field) {
                    return Err(error(Some(field), "only stdio servers (with `command`) take this".into()));
                }
            }
            let headers = map("headers")?;
            if kind.as_deref() == Some("sse") {
                Transport::Sse { url, headers }
            } else {
                Transport::Http { url, headers }
            }
        }
        (None | Some("http" | "streamable-http" | "streamableHttp" | "sse"), None, None) => {
            return Err(error(None, "needs either `command` (a stdio server) or `url` (an HTTP server)".into()));
        }
        (Some(other), _, _) => {
            return Err(error(Some("type"), format!("{other:?} is not one of \"stdio\", \"http\", \"sse\"")));
        }
    };
    let disabled = boolean("disabled")?;
    let enabled = boolean("enabled")?;
    if disabled.is_some() && enabled.is_some() && disabled == enabled {
        return Err(error(Some("enabled"), "contradicts `disabled`".into()));
    }
    let enabled = enabled.unwrap_or(!disabled.unwrap_or(false));
    let timeout = match object.get("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::Number(seconds)) => match seconds.as_f64() {
            Some(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Some(Duration::from_secs_f64(seconds)),
            _ => return Err(error(Some("timeout"), "must be a number of seconds between 0 and 86400".into())),
        },
        Some(_) => return Err(error(Some("timeout"), "must be a number of seconds".into())),
    };
    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        enabled,
        trusted: boolean("trusted")?.unwrap_or(false),
        timeout,
    })
}

/// A URL as messages and logs show it: without a user name, password or query, which
/// may hold credentials.
pub fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.split(['?', '@']).next().unwrap_or_default().to_string();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        parsed.set_query(Some("..."));
    }
    parsed.to_string()
}

/// Replaces `${VAR}` and `${VAR:-default}` from the environment. A variable that is not
/// set and has no default is an error, so a missing token is found at start-up.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without a closing `}}` in {text:?}"));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{inner}}}` is not a variable name"));
        }
        match (env(name).filter(|value| !value.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("the environment variable {name} is not set (or is empty)")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k3n".into()),
            "HOME" => Some("/home/dev".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<McpConfig, ConfigError> {
        McpConfig::from_json(text, &env)
    }

    #[test]
    fn the_common_format_reads_as_people_write_it() {
        let config = parse(
            r#"{ "mcpServers": {
                "everything": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"],
                                "env": { "DATA": "${HOME}/data" }, "cwd": "tools" },
                "tracker": { "type": "http", "url": "https://mcp.example.com/mcp",
                             "headers": { "Authorization": "Bearer ${TOKEN}" }, "trusted": true },
                "legacy": { "type": "sse", "url": "http://127.0.0.1:3001/sse", "disabled": true },
                "plain": { "url": "http://127.0.0.1:3911/mcp", "headers": { "X-Env": "${STAGE:-dev}" } }
            } }"#,
        )
        .unwrap();
        let everything = &config.servers["everything"];
        assert_eq!(
            everything.transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "@modelcontextprotocol/server-everything".into()],
                env: BTreeMap::from([("DATA".into(), "/home/dev/data".into())]),
                cwd: Some(PathBuf::from("tools")),
            }
        );
        assert!(everything.enabled && !everything.trusted);
        let tracker = &config.servers["tracker"];
        assert!(tracker.trusted);
        assert!(
            matches!(&tracker.transport, Transport::Http { headers, .. } if headers["Authorization"] == "Bearer t0k3n")
        );
        assert!(matches!(config.servers["legacy"].transport, Transport::Sse { .. }));
        assert!(
            matches!(&config.servers["plain"].transport, Transport::Http { headers, .. } if headers["X-Env"] == "dev")
        );
        let enabled: Vec<&str> = config.enabled().map(|s| s.name.as_str()).collect();
        assert_eq!(enabled, ["everything", "plain", "tracker"]);
    }

    #[test]
    fn mistakes_name_the_server_and_the_field() {
        let cases = [
            (
                r#"{"mcpServers": {"a": {"command": "x", "args": "-y"}}}"#,
                "MCP server `a`, field `args`: must be a list of strings",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "args": [1]}}}"#,
                "MCP server `a`, field `args`: item 0 must be a string",
            ),
            (r#"{"mcpServers": {"a": {"comand": "x"}}}"#, "MCP server `a`, field `comand`: unknown field"),
            (r#"{"mcpServers": {"a": {"url": "ftp://x"}}}"#, "MCP server `a`, field `url`: \"ftp://x\" is not an http"),
            (
                r#"{"mcpServers": {"a": {"command": "x", "url": "http://x"}}}"#,
                "MCP server `a`: has both `command` and `url`",
            ),
            (r#"{"mcpServers": {"a": {}}}"#, "MCP server `a`: needs either `command`"),
            (
                r#"{"mcpServers": {"a": {"type": "grpc", "url": "http://x"}}}"#,
                "MCP server `a`, field `type`: \"grpc\" is not one of",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "http://x", "env": {}}}}"#,
                "MCP server `a`, field `env`: only stdio servers",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "headers": {}}}}"#,
                "MCP server `a`, field `headers`: only URL servers",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "env": {"K": "${MISSING}"}}}}"#,
                "MCP server `a`, field `env`: the environment variable MISSING is not set",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "disabled": "yes"}}}"#,
                "MCP server `a`, field `disabled`: must be true or false",
            ),
            (r#"{"mcpServers": {"a b": {"command": "x"}}}"#, "MCP server `a b`: the name must be"),
            (r#"{"mcpServers": {"a__b": {"command": "x"}}}"#, "MCP server `a__b`: the name must be"),
            (r#"{"mcpServers": []}"#, "MCP configuration, field `mcpServers`: must be an object"),
            (r#"{"servers": {}}"#, "MCP configuration: no `mcpServers` object"),
            ("{", "MCP configuration: not valid JSON"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text}\n  gave: {error}\n  want: {expected}…");
        }
    }

    #[test]
    fn a_server_that_is_off_needs_none_of_its_variables() {
        let config = parse(r#"{"mcpServers": {"a": {"command": "x", "env": {"K": "${MISSING}"}, "disabled": true}}}"#);
        let config = config.unwrap();
        assert!(!config.servers["a"].enabled);
        assert!(matches!(&config.servers["a"].transport, Transport::Stdio { env, .. } if env["K"] == "${MISSING}"));
        let error = parse(r#"{"mcpServers": {"a": {"type": "http", "command": "x"}}}"#).unwrap_err().to_string();
        assert_eq!(error, "MCP server `a`, field `url`: a server of type \"http\" needs `url`, not `command`");
    }

    #[test]
    fn timeouts_are_seconds_and_other_clients_fields_are_tolerated() {
        let config = parse(
            r#"{"mcpServers": {"a": {"command": "x", "timeout": 2.5, "autoApprove": ["echo"], "alwaysAllow": []}}}"#,
        )
        .unwrap();
        assert_eq!(config.servers["a"].timeout, Some(Duration::from_millis(2500)));
        for bad in [r#""10""#, "0", "-3"] {
            let text = format!(r#"{{"mcpServers": {{"a": {{"command": "x", "timeout": {bad}}}}}}}"#);
            let error = parse(&text).unwrap_err().to_string();
            assert!(error.starts_with("MCP server `a`, field `timeout`: must be a number"), "{error}");
        }
    }

    #[test]
    fn inline_toml_takes_the_same_fields() {
        let table: toml::Table = toml::from_str(
            "[time]\ncommand = \"uvx\"\nargs = [\"mcp-server-time\"]\n\n[web]\nurl = \"http://127.0.0.1:3911/mcp\"\nenabled = false\n",
        )
        .unwrap();
        let config = McpConfig::from_toml(&table, &env).unwrap();
        assert!(matches!(&config.servers["time"].transport, Transport::Stdio { command, .. } if command == "uvx"));
        assert!(!config.servers["web"].enabled);
        let bad: toml::Table = toml::from_str("[time]\ncommand = 3\n").unwrap();
        let error = McpConfig::from_toml(&bad, &env).unwrap_err().to_string();
        assert_eq!(error, "MCP server `time`, field `command`: must be a string");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(shown_url("https://user:pw@mcp.example.com/mcp?token=abc"), "https://mcp.example.com/mcp?...");
        assert_eq!(shown_url("http://127.0.0.1:3911/mcp"), "http://127.0.0.1:3911/mcp");
    }

    #[test]
    fn variables_expand_with_defaults_and_refuse_what_is_missing() {
        assert_eq!(expand("a ${TOKEN} b", &env).unwrap(), "a t0k3n b");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("no variables", &env).unwrap(), "no variables");
        assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE is not set"));
        assert!(expand("${oops", &env).is_err());
        assert!(expand("${bad name}", &env).is_err());
    }
}
