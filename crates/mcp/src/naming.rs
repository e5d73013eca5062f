//! How a server's tools are presented to the model: names that cannot shadow a built-in
//! tool and that every provider accepts, descriptions of bounded length, and input
//! schemas in the shape providers take.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The longest tool name providers accept.
pub const MAX_TOOL_NAME: usize = 64;
/// Descriptions longer than this are cut: they are sent with every request.
pub const MAX_DESCRIPTION_CHARS: usize = 2048;

/// `mcp__<server>__<tool>`. Characters providers refuse become `_`; a name that had to be
/// changed or shortened ends in a short hash of the original, so two tools never meet.
pub fn exposed_name(server: &str, tool: &str) -> String {
    let prefix = format!("mcp__{server}__");
    let clean: String =
        tool.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean == tool && !tool.is_empty() && prefix.len() + tool.len() <= MAX_TOOL_NAME {
        return prefix + tool;
    }
    let hash = Sha256::digest(tool.as_bytes());
    let suffix: String = hash.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
    let room = MAX_TOOL_NAME.saturating_sub(prefix.len() + 1 + suffix.len());
    let kept: String = clean.chars().take(room).collect();
    format!("{prefix}{kept}_{suffix}")
}

/// The description the model sees: the server's (or its title), cut to a bounded length.
pub fn description(server: &str, tool: &str, description: Option<&str>, title: Option<&str>) -> String {
    let text = description.or(title).map(str::trim).filter(|text| !text.is_empty());
    let Some(text) = text else {
        return format!("The `{tool}` tool of the MCP server `{server}`.");
    };
    if text.chars().count() <= MAX_DESCRIPTION_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    format!("{cut}…")
}

/// Keywords providers refuse at the top of a tool's input schema (OpenAI's function
/// calling takes only a plain object there).
const TOP_LEVEL_REFUSED: [&str; 5] = ["oneOf", "anyOf", "allOf", "not", "enum"];

/// The input schema as providers accept it: an object schema with `properties`, without
/// `$schema` and without combinators at the top level. Everything below is passed through.
pub fn input_schema(schema: &Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    schema.remove("$schema");
    schema.remove("$id");
    for keyword in TOP_LEVEL_REFUSED {
        schema.remove(keyword);
    }
    schema.insert("type".to_string(), Value::String("object".to_string()));
    if !matches!(schema.get("properties"), Some(Value::Object(_))) {
        schema.insert("properties".to_string(), Value::Object(Map::new()));
    }
    if schema.get("required").is_some_and(|required| !required.is_array()) {
        schema.remove("required");
    }
    Value::Object(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_prefixed_and_kept_when_providers_accept_them() {
        assert_eq!(exposed_name("everything", "get-sum"), "mcp__everything__get-sum");
        assert_eq!(exposed_name("git", "git_status"), "mcp__git__git_status");
    }

    #[test]
    fn names_providers_refuse_are_cleaned_and_stay_distinct() {
        let dotted = exposed_name("srv", "files.read");
        let slashed = exposed_name("srv", "files/read");
        assert!(dotted.starts_with("mcp__srv__files_read_"), "{dotted}");
        assert_ne!(dotted, slashed);
        let long = exposed_name("a-rather-long-server-name", &"very_long_tool_name_".repeat(5));
        assert!(long.len() <= MAX_TOOL_NAME, "{long}");
        assert_ne!(long, exposed_name("a-rather-long-server-name", &"very_long_tool_name_".repeat(6)));
        for name in [dotted, slashed, long, exposed_name("s", "")] {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{name}");
        }
    }

    #[test]
    fn descriptions_fall_back_and_are_bounded() {
        assert_eq!(description("s", "t", Some("  Adds. "), None), "Adds.");
        assert_eq!(description("s", "t", None, Some("Title")), "Title");
        assert_eq!(description("s", "t", Some(""), None), "The `t` tool of the MCP server `s`.");
        let long = description("s", "t", Some(&"x".repeat(5000)), None);
        assert_eq!(long.chars().count(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn schemas_become_plain_objects() {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "anyOf": [{}],
            "properties": {"a": {"type": "string", "anyOf": [{"minLength": 1}]}}, "required": ["a"]});
        let Value::Object(schema) = schema else { unreachable!() };
        let clean = input_schema(&schema);
        assert_eq!(
            clean,
            json!({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"minLength": 1}]}}, "required": ["a"]})
        );
        assert_eq!(input_schema(&Map::new()), json!({"type": "object", "properties": {}}));
    }
}
