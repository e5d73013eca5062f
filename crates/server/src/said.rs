//! What a session says to the person, as the channels (Slack, GitHub) pass it on: the
//! agent's messages, the final answer of each turn, failures, and files it sent. The rest
//! of the log (tool calls and results, statuses) stays in the web view.

use rswe_protocol::{ContentBlock, EventKind};

/// One thing the session said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Said<'a> {
    /// A message the agent sent while working (`send_message`).
    Message(&'a str),
    /// The final answer of a turn: the text of an answer that calls no tool.
    Answer(String),
    /// Something went wrong.
    Failure(&'a str),
    /// A file the agent sent (`send_file`), with its note.
    File { path: &'a str, message: Option<&'a str> },
}

/// What an event says to the person, if anything.
pub(crate) fn said(kind: &EventKind) -> Option<Said<'_>> {
    match kind {
        EventKind::AgentMessage { text } => Some(Said::Message(text)),
        EventKind::AssistantMessage { content, .. } => {
            let calls_tools = content.iter().any(|block| matches!(block, ContentBlock::ToolUse { .. }));
            let text: Vec<&str> = content
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            let text = text.join("\n\n");
            (!calls_tools && !text.trim().is_empty()).then_some(Said::Answer(text))
        }
        EventKind::Error { message, .. } => Some(Said::Failure(message)),
        EventKind::FileSent { path, message, .. } => Some(Said::File { path, message: message.as_deref() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: Vec<ContentBlock>) -> EventKind {
        EventKind::AssistantMessage {
            content,
            model: "m".into(),
            stop_reason: "end_turn".into(),
            usage: Default::default(),
            cost_usd: None,
            request_seq: None,
        }
    }

    #[test]
    fn only_what_is_meant_for_the_person_is_said() {
        assert_eq!(said(&EventKind::AgentMessage { text: "hi".into() }), Some(Said::Message("hi")));
        let two = answer(vec![ContentBlock::text("one"), ContentBlock::text("two")]);
        assert_eq!(said(&two), Some(Said::Answer("one\n\ntwo".into())));
        let working = answer(vec![
            ContentBlock::text("Let me look."),
            ContentBlock::ToolUse { id: "t1".into(), name: "shell".into(), input: serde_json::json!({}) },
        ]);
        assert_eq!(said(&working), None, "an answer that calls tools is work in progress");
        assert_eq!(said(&answer(vec![ContentBlock::text("  ")])), None);
        assert_eq!(
            said(&EventKind::Error { class: "model".into(), message: "down".into() }),
            Some(Said::Failure("down"))
        );
        let file = EventKind::FileSent { path: "/w/a.txt".into(), message: Some("here".into()), size: 1 };
        assert_eq!(said(&file), Some(Said::File { path: "/w/a.txt", message: Some("here") }));
        assert_eq!(said(&EventKind::TitleChanged { title: "t".into() }), None);
    }
}
