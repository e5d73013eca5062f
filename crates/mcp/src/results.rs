//! A tool call's result, as the model receives it: text, images (checked and downscaled
//! like any image the agent sees), embedded resources, structured content, errors.
//!
//! Works on the wire form of `CallToolResult`, which every protocol version shares.

use base64::Engine;
use rswe_protocol::ToolResultContent;
use rswe_tools::{ToolOutput, image_for_model};
use serde_json::Value;

/// Images kept from one result; more are described, not sent.
const MAX_IMAGES: usize = 8;

/// Maps a `CallToolResult` (as JSON). Blocking: images are decoded and may be re-encoded.
pub fn tool_output(result: &Value) -> ToolOutput {
    let mut content = Vec::new();
    let mut images = 0;
    let blocks = result.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for block in blocks {
        let part = match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => text(str_field(block, "text").unwrap_or_default()),
            "image" => image(
                str_field(block, "data").unwrap_or_default(),
                str_field(block, "mimeType").unwrap_or("image"),
                &mut images,
            ),
            "audio" => {
                let bytes = base64_len(str_field(block, "data").unwrap_or_default());
                let mime = str_field(block, "mimeType").unwrap_or("audio");
                text(&format!("[audio ({mime}, {bytes} bytes): not shown]"))
            }
            "resource" => resource(block.get("resource").unwrap_or(&Value::Null), &mut images),
            "resource_link" => {
                let uri = str_field(block, "uri").unwrap_or_default();
                let name = str_field(block, "name").unwrap_or(uri);
                match str_field(block, "description") {
                    Some(description) => text(&format!("[resource link: {name} <{uri}> — {description}]")),
                    None => text(&format!("[resource link: {name} <{uri}>]")),
                }
            }
            other => text(&format!("[content of type {other:?}: not shown]")),
        };
        content.push(part);
    }
    let mut content = merge_texts(content);
    let has_text = content.iter().any(|part| matches!(part, ToolResultContent::Text { text } if !text.is_empty()));
    if let Some(structured) = result.get("structuredContent").filter(|value| !value.is_null())
        && !has_text
    {
        content.push(text(&structured.to_string()));
    }
    ToolOutput { content, is_error: result.get("isError").and_then(Value::as_bool).unwrap_or(false), effects: vec![] }
}

/// Consecutive text parts as one, so that the result is bounded as a whole (and, with at
/// most [`MAX_IMAGES`] images, has at most `2 × MAX_IMAGES + 1` parts).
fn merge_texts(content: Vec<ToolResultContent>) -> Vec<ToolResultContent> {
    let mut merged: Vec<ToolResultContent> = Vec::new();
    for part in content {
        match (merged.last_mut(), part) {
            (Some(ToolResultContent::Text { text: previous }), ToolResultContent::Text { text }) => {
                previous.push('\n');
                previous.push_str(&text);
            }
            (_, part) => merged.push(part),
        }
    }
    merged
}

fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

fn text(text: &str) -> ToolResultContent {
    ToolResultContent::Text { text: text.to_string() }
}

/// The decoded size of base64 text, roughly.
fn base64_len(data: &str) -> usize {
    data.len() / 4 * 3
}

/// An image (base64 `data`) as the model may see it, or a note saying why not.
fn image(data: &str, mime: &str, images: &mut usize) -> ToolResultContent {
    if *images >= MAX_IMAGES {
        return text(&format!("[{mime} image: not shown, the result had more than {MAX_IMAGES} images]"));
    }
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(bytes) => bytes,
        Err(error) => return text(&format!("[{mime} image the server sent is not valid base64: {error}]")),
    };
    match image_for_model(bytes) {
        Ok(source) => {
            *images += 1;
            ToolResultContent::Image { source }
        }
        Err(why) => text(&format!("[{mime} image the server sent could not be shown: {why}]")),
    }
}

fn resource(resource: &Value, images: &mut usize) -> ToolResultContent {
    let uri = str_field(resource, "uri").unwrap_or_default();
    let mime = str_field(resource, "mimeType");
    let label = match mime {
        Some(mime) => format!("[resource {uri} ({mime})]"),
        None => format!("[resource {uri}]"),
    };
    if let Some(body) = str_field(resource, "text") {
        return text(&format!("{label}\n{body}"));
    }
    let blob = str_field(resource, "blob").unwrap_or_default();
    if let Some(mime) = mime.filter(|mime| mime.starts_with("image/")) {
        return image(blob, mime, images);
    }
    text(&format!("{label}: {} bytes of binary data, not shown", base64_len(blob)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A 1×1 PNG.
    const PIXEL: &str =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    #[test]
    fn every_kind_of_content_reaches_the_model_in_a_form_it_reads() {
        let result = json!({"content": [
            {"type": "text", "text": "sum is 3"},
            {"type": "image", "data": PIXEL, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://static/1", "mimeType": "text/plain", "text": "hello"}},
            {"type": "resource", "resource": {"uri": "test://blob", "mimeType": "application/octet-stream", "blob": "AAAA"}},
            {"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt", "description": "a file"},
            {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
            {"type": "image", "data": "not base64!", "mimeType": "image/png"}
        ]});
        let output = tool_output(&result);
        assert!(!output.is_error);
        let texts: Vec<String> = output
            .content
            .iter()
            .map(|part| match part {
                ToolResultContent::Text { text } => text.clone(),
                ToolResultContent::Image { source } => format!("<{}>", source.media_type),
            })
            .collect();
        assert_eq!(texts.len(), 3, "text runs are merged: {texts:?}");
        assert_eq!(texts[0], "sum is 3");
        assert_eq!(texts[1], "<image/png>");
        let rest: Vec<&str> = texts[2].lines().collect();
        assert_eq!(rest[0], "[resource test://static/1 (text/plain)]");
        assert_eq!(rest[1], "hello");
        assert_eq!(rest[2], "[resource test://blob (application/octet-stream)]: 3 bytes of binary data, not shown");
        assert_eq!(rest[3], "[resource link: a.txt <file:///a.txt> — a file]");
        assert_eq!(rest[4], "[audio (audio/wav, 3 bytes): not shown]");
        assert!(rest[5].starts_with("[image/png image the server sent is not valid base64"), "{}", rest[5]);
    }

    #[test]
    fn a_result_of_many_parts_is_bounded() {
        let blocks: Vec<Value> = (0..50_000)
            .flat_map(|i| {
                [
                    json!({"type": "text", "text": format!("line {i}")}),
                    json!({"type": "image", "data": PIXEL, "mimeType": "image/png"}),
                ]
            })
            .collect();
        let output = tool_output(&json!({ "content": blocks }));
        assert_eq!(output.content.len(), 2 * MAX_IMAGES + 1);
        assert!(output.text_content().ends_with("the result had more than 8 images]"));
    }

    #[test]
    fn errors_and_structured_content_are_kept() {
        let output = tool_output(&json!({"content": [{"type": "text", "text": "no such city"}], "isError": true}));
        assert!(output.is_error);
        assert_eq!(output.text_content(), "no such city");
        let output = tool_output(&json!({"content": [], "structuredContent": {"temperature": 21}}));
        assert_eq!(output.text_content(), r#"{"temperature":21}"#);
        let output =
            tool_output(&json!({"content": [{"type": "text", "text": "21 degrees"}], "structuredContent": {"t": 21}}));
        assert_eq!(output.text_content(), "21 degrees");
    }
}
