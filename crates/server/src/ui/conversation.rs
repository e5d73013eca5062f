//! A session's log as the conversation people read.
//!
//! [`Transcript`] reads logged events in order and says, for each, what changes on the
//! page: fragments to append, tool cards to replace, and the panels (status, todo list,
//! links, cost). The session page renders a whole log through it; the live stream
//! renders each new event through it and the page's script applies the same changes, so
//! a page loaded now and a page that watched it happen show the same thing.

use super::format;
use super::markdown;
use super::templates::render;
use minijinja::value::Serde;
use minijinja::{Value, context};
use rswe_protocol::{ContentBlock, Event, EventKind, ImageSource, SessionStatus, TodoItem, ToolResultContent};
use serde::Serialize;
use std::collections::HashMap;

/// Tools whose call is shown another way (`send_message` is the agent's message).
const HIDDEN_TOOLS: &[&str] = &["send_message"];

/// Images shown inline; anything else is not put in a `data:` URL.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// What one event changes in the conversation.
#[derive(Debug)]
pub struct Piece {
    /// The fragment's element id, when it has one.
    pub id: Option<String>,
    /// Replaces the element with this id (a tool card getting its result); appended when
    /// there is none.
    pub replaces: bool,
    template: &'static str,
    context: Value,
}

/// A rendered [`Piece`], as the page's script applies it.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// `append` or `replace`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub html: String,
}

impl Piece {
    pub fn render(&self) -> Op {
        let html = render(self.template, self.context.clone()).unwrap_or_else(|error| {
            tracing::error!(%error, "could not render an event");
            r#"<div class="event error">This event could not be shown.</div>"#.to_string()
        });
        Op { op: if self.replaces { "replace" } else { "append" }, id: self.id.clone(), html }
    }
}

/// The conversation's fragments, in order, with replacements applied.
#[derive(Debug, Default)]
pub struct Page {
    nodes: Vec<(Option<String>, String)>,
}

impl Page {
    pub fn apply(&mut self, op: Op) {
        if op.op == "replace"
            && let Some(id) = &op.id
            && let Some(node) = self.nodes.iter_mut().rev().find(|(node_id, _)| node_id.as_ref() == Some(id))
        {
            node.1 = op.html;
            return;
        }
        self.nodes.push((op.id, op.html));
    }

    pub fn html(&self) -> String {
        let mut out = String::new();
        // Nothing between fragments: the page's script appends them the same way.
        for (_, html) in &self.nodes {
            out.push_str(html);
        }
        out
    }
}

/// A file the agent sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentFile {
    pub seq: u64,
    pub path: String,
    pub message: Option<String>,
    pub size: u64,
}

/// What the log says so far, beyond the conversation.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Tool calls without a result yet: id → (name, input).
    tools: HashMap<String, (String, serde_json::Value)>,
    pub status: SessionStatus,
    pub title: Option<String>,
    /// The text of the first person's message, for a title when there is none.
    pub first_message: Option<String>,
    pub todo: Vec<TodoItem>,
    pub files: Vec<SentFile>,
    pub pull_requests: Vec<String>,
    pub cost: f64,
    pub cost_unknown: bool,
    pub last_seq: u64,
}

/// Which panels an event changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Changed {
    pub todo: bool,
    pub links: bool,
    pub title: bool,
    pub cost: bool,
}

impl Transcript {
    /// A transcript of a session that is `status` before its first event.
    pub fn new(status: SessionStatus, title: Option<String>) -> Self {
        Transcript {
            tools: HashMap::new(),
            status,
            title,
            first_message: None,
            todo: Vec::new(),
            files: Vec::new(),
            pull_requests: Vec::new(),
            cost: 0.0,
            cost_unknown: false,
            last_seq: 0,
        }
    }

    /// Takes in the next event: what it adds to the conversation, and which panels change.
    pub fn apply(&mut self, event: &Event) -> (Vec<Piece>, Changed) {
        self.last_seq = self.last_seq.max(event.seq);
        let mut changed = Changed::default();
        let mut pieces = Vec::new();
        let seq = event.seq;
        let at = event.at_ms;
        match &event.kind {
            EventKind::UserMessage { content, author } => {
                // The service marks the session working as it logs a person's message.
                self.status = SessionStatus::Working;
                let (text, images) = text_and_images(content);
                let system = author.as_deref() == Some("rswe");
                if self.first_message.is_none() && !system && !text.trim().is_empty() {
                    self.first_message = Some(text.clone());
                }
                pieces.push(piece(
                    Some(format!("m-{seq}")),
                    context! { kind => "user", seq, at, author, system, text, images },
                ));
            }
            EventKind::AssistantMessage { content, model, cost_usd, .. } => {
                self.add_cost(*cost_usd);
                changed.cost = true;
                let mut text = String::new();
                let mut thinking = Vec::new();
                let mut part = 0;
                let mut flush = |text: &mut String, thinking: &mut Vec<String>, pieces: &mut Vec<Piece>| {
                    if text.trim().is_empty() && thinking.is_empty() {
                        return;
                    }
                    let id = if part == 0 { format!("m-{seq}") } else { format!("m-{seq}-{part}") };
                    part += 1;
                    pieces.push(piece(
                        Some(id),
                        context! { kind => "assistant", seq, at, model, text => std::mem::take(text),
                        thinking => std::mem::take(thinking) },
                    ));
                };
                for block in content {
                    match block {
                        ContentBlock::Text { text: more } => push_paragraph(&mut text, more),
                        ContentBlock::Thinking { thinking: more, .. } if !more.trim().is_empty() => {
                            thinking.push(more.clone())
                        }
                        ContentBlock::ToolUse { id, name, input } => {
                            flush(&mut text, &mut thinking, &mut pieces);
                            self.tools.insert(id.clone(), (name.clone(), input.clone()));
                            if !HIDDEN_TOOLS.contains(&name.as_str()) {
                                pieces.push(tool_piece(id, name, Some(input), None, false));
                            }
                        }
                        _ => {}
                    }
                }
                flush(&mut text, &mut thinking, &mut pieces);
                changed.links = self.find_pull_requests(content.iter().filter_map(|block| match block {
                    ContentBlock::Text { text } => Some(text.as_str()),
                    _ => None,
                }));
            }
            EventKind::ToolResult { tool_use_id, name, content, is_error, duration_ms } => {
                let call = self.tools.remove(tool_use_id);
                let (name, input) = match &call {
                    Some((name, input)) => (name.as_str(), Some(input)),
                    None => (name.as_str(), None),
                };
                let texts: Vec<&str> = content
                    .iter()
                    .filter_map(|part| match part {
                        ToolResultContent::Text { text } => Some(text.as_str()),
                        ToolResultContent::Image { .. } => None,
                    })
                    .collect();
                changed.links = self.find_pull_requests(texts.iter().copied());
                if !HIDDEN_TOOLS.contains(&name) {
                    let result = ToolResult { content, is_error: *is_error, duration_ms: *duration_ms };
                    pieces.push(tool_piece(tool_use_id, name, input, Some(result), true));
                }
            }
            EventKind::AgentMessage { text } => {
                changed.links = self.find_pull_requests([text.as_str()]);
                pieces.push(piece(Some(format!("m-{seq}")), context! { kind => "agent", seq, at, text }));
            }
            EventKind::FileSent { path, message, size } => {
                self.files.push(SentFile { seq, path: path.clone(), message: message.clone(), size: *size });
                changed.links = true;
                pieces.push(piece(Some(format!("m-{seq}")), context! { kind => "file", seq, at, path, message, size }));
            }
            EventKind::TitleChanged { title } => {
                self.title = Some(title.clone());
                changed.title = true;
            }
            EventKind::TodoUpdated { items } => {
                self.todo = items.clone();
                changed.todo = true;
            }
            EventKind::StatusChanged { status, reason } => {
                self.status = *status;
                if *status != SessionStatus::Working {
                    let (name, label) = format::status(*status, false);
                    pieces.push(piece(
                        Some(format!("m-{seq}")),
                        context! { kind => "status", seq, at, status => name, label, reason },
                    ));
                }
            }
            EventKind::Interrupted { by } => {
                pieces.push(piece(Some(format!("m-{seq}")), context! { kind => "interrupted", seq, at, by }));
            }
            EventKind::Error { class, message } => {
                pieces.push(piece(Some(format!("m-{seq}")), context! { kind => "error", seq, at, class, message }));
            }
            EventKind::ContextCompacted { summary, tokens_before, tokens_after, cost_usd, .. } => {
                self.add_cost(*cost_usd);
                changed.cost = true;
                pieces.push(piece(
                    Some(format!("m-{seq}")),
                    context! { kind => "compaction", seq, at, summary, tokens_before, tokens_after },
                ));
            }
            EventKind::Other(_) => {}
        }
        (pieces, changed)
    }

    fn add_cost(&mut self, cost: Option<f64>) {
        match cost {
            Some(cost) if cost.is_finite() && cost >= 0.0 => self.cost += cost,
            _ => self.cost_unknown = true,
        }
    }

    /// Remembers the pull requests named in texts; whether there were new ones.
    fn find_pull_requests<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) -> bool {
        let mut found = false;
        for text in texts {
            for url in markdown::pull_requests(text) {
                if !self.pull_requests.contains(&url) {
                    self.pull_requests.push(url);
                    found = true;
                }
            }
        }
        found
    }

    /// The todo panel's content.
    pub fn todo_html(&self) -> String {
        let done = self.todo.iter().filter(|item| matches!(item.status, rswe_protocol::TodoStatus::Completed)).count();
        panel(context! { panel => "todo", items => Value::from(Serde(&self.todo)), done })
    }

    /// The links panel: pull requests and sent files.
    pub fn links_html(&self) -> String {
        panel(context! {
            panel => "links",
            pull_requests => self.pull_requests.iter().map(|url| {
                let label = url.trim_start_matches("https://github.com/").replacen("/pull/", "#", 1);
                context! { url, label }
            }).collect::<Vec<_>>(),
            files => Value::from(Serde(&self.files)),
        })
    }

    pub fn cost_text(&self) -> String {
        format::usd(self.cost, self.cost_unknown)
    }
}

fn panel(context: Value) -> String {
    render("panels.html", context).unwrap_or_else(|error| {
        tracing::error!(%error, "could not render a panel");
        String::new()
    })
}

fn piece(id: Option<String>, event: Value) -> Piece {
    Piece { id: id.clone(), replaces: false, template: "event.html", context: context! { e => event, id } }
}

struct ToolResult<'a> {
    content: &'a [ToolResultContent],
    is_error: bool,
    duration_ms: u64,
}

/// An element id from a tool call's id.
pub fn tool_dom_id(tool_use_id: &str) -> String {
    let safe: String =
        tool_use_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    format!("tool-{safe}")
}

#[derive(Serialize)]
struct Argument {
    name: String,
    value: String,
    /// Shown as a block (`<pre>`) rather than inline.
    block: bool,
}

fn tool_piece(
    id: &str,
    name: &str,
    input: Option<&serde_json::Value>,
    result: Option<ToolResult<'_>>,
    replaces: bool,
) -> Piece {
    let dom_id = tool_dom_id(id);
    let summary = input.map(|input| tool_summary(name, input)).unwrap_or_default();
    let arguments: Vec<Argument> = match input {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                let (value, block) = match value {
                    serde_json::Value::String(text) => (text.clone(), text.contains('\n') || text.len() > 100),
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                        (serde_json::to_string_pretty(value).unwrap_or_default(), true)
                    }
                    other => (other.to_string(), false),
                };
                Argument { name: key.clone(), value, block }
            })
            .collect(),
        Some(other) => vec![Argument { name: "input".into(), value: other.to_string(), block: true }],
        None => Vec::new(),
    };
    let (status, output, images, duration_ms, exit_code) = match &result {
        None => ("running", String::new(), Vec::new(), None, None),
        Some(result) => {
            let mut output = String::new();
            let mut images = Vec::new();
            for part in result.content {
                match part {
                    ToolResultContent::Text { text } => {
                        if !output.is_empty() {
                            output.push('\n');
                        }
                        output.push_str(text);
                    }
                    ToolResultContent::Image { source } => images.extend(image_url(source)),
                }
            }
            let exit_code = if name == "shell" { exit_code(&output) } else { None };
            (if result.is_error { "error" } else { "done" }, output, images, Some(result.duration_ms), exit_code)
        }
    };
    Piece {
        id: Some(dom_id.clone()),
        replaces,
        template: "tool_card.html",
        context: context! {
            t => context! {
                id, dom_id, name, summary, status, output, images, duration_ms, exit_code,
                arguments => Value::from(Serde(&arguments)),
            }
        },
    }
}

/// The exit code a shell result reports in its first lines (`exit code 1 · 2.1s`).
fn exit_code(output: &str) -> Option<i64> {
    output.lines().take(3).find_map(|line| {
        let rest = &line[line.find("exit code ")? + "exit code ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
        digits.parse().ok()
    })
}

/// One line saying what a tool call does: the command, the file, the pattern.
pub fn tool_summary(name: &str, input: &serde_json::Value) -> String {
    let field = |key: &str| input.get(key).and_then(serde_json::Value::as_str).unwrap_or("");
    let text = match name {
        "shell" => match (field("command"), field("action"), field("background_id")) {
            ("", "", _) => String::new(),
            ("", action, id) => format!("{action} {id}"),
            (command, _, _) => command.to_string(),
        },
        "editor" => format!("{} {}", field("command"), field("path")),
        "search" => match field("path") {
            "" => field("pattern").to_string(),
            path => format!("{} in {path}", field("pattern")),
        },
        "find_files" => match field("path") {
            "" => field("glob").to_string(),
            path => format!("{} in {path}", field("glob")),
        },
        "read_image" | "send_file" => field("path").to_string(),
        "think" => field("thought").to_string(),
        "set_title" => field("title").to_string(),
        "todo" => match input.get("items").and_then(serde_json::Value::as_array) {
            Some(items) => format!("{} items", items.len()),
            None => String::new(),
        },
        _ => {
            input.as_object().and_then(|map| map.values().find_map(serde_json::Value::as_str)).unwrap_or("").to_string()
        }
    };
    one_line(&text, 160)
}

/// The first line of a text, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    let more = text.trim().lines().nth(1).is_some();
    let mut out: String = line.chars().take(max).collect();
    if more || line.chars().count() > max {
        out.push_str(" …");
    }
    out
}

fn image_url(source: &ImageSource) -> Option<String> {
    let valid = IMAGE_TYPES.contains(&source.media_type.as_str())
        && source.data.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    valid.then(|| format!("data:{};base64,{}", source.media_type, source.data))
}

/// Appends a text block to a message's text, a blank line between blocks.
fn push_paragraph(text: &mut String, more: &str) {
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(more);
}

/// A message's text (its text blocks, in order) and its images as `data:` URLs.
fn text_and_images(content: &[ContentBlock]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut images = Vec::new();
    for block in content {
        match block {
            ContentBlock::Text { text: more } => push_paragraph(&mut text, more),
            ContentBlock::Image { source } => images.extend(image_url(source)),
            _ => {}
        }
    }
    (text, images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rswe_protocol::{SessionId, Usage};
    use serde_json::json;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event { session_id: SessionId::parse("s1").unwrap(), seq, at_ms: 1_700_000_000_000, kind }
    }

    fn render_all(events: &[Event]) -> (Transcript, String) {
        let mut transcript = Transcript::new(SessionStatus::Idle, None);
        let mut page = Page::default();
        for event in events {
            for piece in transcript.apply(event).0 {
                page.apply(piece.render());
            }
        }
        (transcript, page.html())
    }

    fn assistant(content: Vec<ContentBlock>, cost: Option<f64>) -> EventKind {
        EventKind::AssistantMessage {
            content,
            model: "anthropic/x".into(),
            stop_reason: "end_turn".into(),
            usage: Usage::default(),
            cost_usd: cost,
            request_seq: None,
        }
    }

    #[test]
    fn a_conversation_renders_with_tool_cards_merged() {
        let events = vec![
            event(1, EventKind::UserMessage { content: vec![ContentBlock::text("Fix **it**")], author: None }),
            event(
                2,
                assistant(
                    vec![
                        ContentBlock::text("Looking."),
                        ContentBlock::ToolUse {
                            id: "toolu_1".into(),
                            name: "shell".into(),
                            input: json!({ "command": "cat README.md\necho done" }),
                        },
                    ],
                    Some(0.25),
                ),
            ),
            event(
                3,
                EventKind::ToolResult {
                    tool_use_id: "toolu_1".into(),
                    name: "shell".into(),
                    content: vec![ToolResultContent::Text {
                        text: "exit code 2 · 1s\nstdout:\n<script>alert(1)</script>".into(),
                    }],
                    is_error: false,
                    duration_ms: 1_200,
                },
            ),
            event(4, assistant(vec![ContentBlock::text("Opened https://github.com/o/r/pull/7")], None)),
            event(5, EventKind::StatusChanged { status: SessionStatus::Waiting, reason: None }),
        ];
        let (transcript, html) = render_all(&events);
        assert!(html.contains("<strong>it</strong>"), "{html}");
        assert_eq!(html.matches("class=\"tool-card").count(), 1, "the result replaced the running card: {html}");
        assert!(html.contains("data-status=\"done\""), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "tool output is escaped: {html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("cat README.md …"), "the summary is the command's first line: {html}");
        assert!(html.contains("exit 2"), "{html}");
        assert!(html.contains("1.2 s"), "{html}");
        assert_eq!(transcript.status, SessionStatus::Waiting);
        assert_eq!(transcript.cost_text(), "$0.25+");
        assert_eq!(transcript.pull_requests, vec!["https://github.com/o/r/pull/7".to_string()]);
        assert!(transcript.tools.is_empty());
        assert!(transcript.links_html().contains("https:&#x2f;&#x2f;github.com&#x2f;o&#x2f;r&#x2f;pull&#x2f;7"));
    }

    #[test]
    fn a_result_without_its_call_still_shows() {
        let events = vec![event(
            7,
            EventKind::ToolResult {
                tool_use_id: "x\"><b>".into(),
                name: "editor".into(),
                content: vec![ToolResultContent::Text { text: "ok".into() }],
                is_error: true,
                duration_ms: 5,
            },
        )];
        let (_, html) = render_all(&events);
        assert!(html.contains("id=\"tool-x___b_\""), "{html}");
        assert!(html.contains("data-status=\"error\""), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn todo_title_files_and_compactions() {
        let events = vec![
            event(
                1,
                EventKind::TodoUpdated {
                    items: vec![TodoItem {
                        id: "1".into(),
                        content: "<i>write</i> tests".into(),
                        status: rswe_protocol::TodoStatus::InProgress,
                    }],
                },
            ),
            event(2, EventKind::TitleChanged { title: "New title".into() }),
            event(
                3,
                EventKind::FileSent { path: "out/report.pdf".into(), message: Some("the report".into()), size: 2048 },
            ),
            event(
                4,
                EventKind::ContextCompacted {
                    summary: "We did *things*".into(),
                    keep_first: 1,
                    until_seq: 3,
                    tokens_before: 150_000,
                    tokens_after: 20_000,
                    model: "m".into(),
                    usage: Usage::default(),
                    cost_usd: Some(0.5),
                },
            ),
            event(5, EventKind::Error { class: "model".into(), message: "it <broke>".into() }),
            event(6, EventKind::Interrupted { by: Some("web".into()) }),
        ];
        let (transcript, html) = render_all(&events);
        assert_eq!(transcript.title.as_deref(), Some("New title"));
        assert!(transcript.todo_html().contains("&lt;i&gt;write&lt;&#x2f;i&gt; tests"));
        assert!(transcript.links_html().contains("out&#x2f;report.pdf"));
        assert!(html.contains("out&#x2f;report.pdf") && html.contains("2 KB"), "{html}");
        assert!(html.contains("<details class=\"event compaction\""), "{html}");
        assert!(html.contains("<em>things</em>"), "{html}");
        assert!(html.contains("150k") && html.contains("20k"), "{html}");
        assert!(html.contains("it &lt;broke&gt;"), "{html}");
        assert!(html.contains("Interrupted by web"), "{html}");
        assert_eq!(transcript.cost_text(), "$0.50");
    }

    #[test]
    fn summaries_say_what_a_call_does() {
        assert_eq!(tool_summary("shell", &json!({ "command": "cargo test" })), "cargo test");
        assert_eq!(tool_summary("shell", &json!({ "action": "log", "background_id": "b1" })), "log b1");
        assert_eq!(tool_summary("editor", &json!({ "command": "view", "path": "src/lib.rs" })), "view src/lib.rs");
        assert_eq!(tool_summary("search", &json!({ "pattern": "fn main", "path": "src" })), "fn main in src");
        assert_eq!(tool_summary("mystery", &json!({ "n": 1, "what": "this" })), "this");
        assert_eq!(exit_code("exit code 137, i.e. killed · 2s"), Some(137));
        assert_eq!(exit_code("stdout:\nall good"), None);
    }

    #[test]
    fn images_only_with_known_types_and_clean_data() {
        let good = ImageSource { media_type: "image/png".into(), data: "iVBORw0K+/=".into() };
        assert!(image_url(&good).is_some());
        let svg = ImageSource { media_type: "image/svg+xml".into(), data: "PHN2Zz4=".into() };
        assert!(image_url(&svg).is_none());
        let quote = ImageSource { media_type: "image/png".into(), data: "a\"onerror=x".into() };
        assert!(image_url(&quote).is_none());
    }
}
