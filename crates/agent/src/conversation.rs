//! The model's conversation, derived from the session's event log.
//!
//! The log holds what happened; this module turns it into messages a provider accepts:
//! roles alternate starting with the user, every tool call of an assistant message is
//! answered in the next user message (in the order of the calls), and people's words
//! that arrived while tools ran follow the results.

use rswe_protocol::{ContentBlock, Event, EventKind, Message, Role, ToolResultContent};
use std::collections::HashMap;

/// The text given to a tool call that never got a result (a crash or an interrupt).
pub const INTERRUPTED_RESULT: &str = "interrupted: the session stopped before this tool call finished; \
                                      its effects, if any, are unknown. Check before relying on them.";

/// The text given to a tool call skipped because the person interrupted.
pub const SKIPPED_RESULT: &str = "skipped: interrupted by the user before this tool call ran";

/// The events in the order the model met them. A person's message logged while the model
/// was answering has a lower seq than the answer, but the model never saw it: it belongs
/// after the answer (the answer records the last event its request included).
pub fn in_conversation_order(events: &[Event]) -> Vec<&Event> {
    let mut ordered: Vec<&Event> = Vec::with_capacity(events.len());
    for event in events {
        if let EventKind::AssistantMessage { request_seq: Some(included), .. } = &event.kind {
            let is_late = |e: &&Event| {
                e.seq > *included && matches!(e.kind, EventKind::UserMessage { .. } | EventKind::Interrupted { .. })
            };
            let start = ordered.iter().rposition(|e| e.seq <= *included).map_or(0, |i| i + 1);
            let late: Vec<&Event> = ordered[start..].iter().copied().filter(is_late).collect();
            if !late.is_empty() {
                ordered.retain(|e| !(e.seq > *included && is_late(e)));
                ordered.push(event);
                ordered.extend(late);
                continue;
            }
        }
        ordered.push(event);
    }
    ordered
}

/// Tool calls of the log's last assistant message that have no result yet:
/// (tool_use_id, tool name), in call order.
pub fn dangling_tool_calls(events: &[Event]) -> Vec<(String, String)> {
    let Some(last_assistant) = events.iter().rposition(|e| matches!(e.kind, EventKind::AssistantMessage { .. })) else {
        return Vec::new();
    };
    let EventKind::AssistantMessage { content, .. } = &events[last_assistant].kind else {
        return Vec::new();
    };
    let answered: Vec<&str> = events[last_assistant..]
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
            _ => None,
        })
        .collect();
    content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolUse { id, name, .. } if !answered.contains(&id.as_str()) => {
                Some((id.clone(), name.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Whether the log ends waiting for the model: the person spoke (or tool results came
/// back) after the model's last answer, or the model asked for tools.
pub fn awaits_model(events: &[Event]) -> bool {
    for event in in_conversation_order(events).into_iter().rev() {
        match &event.kind {
            EventKind::UserMessage { .. } | EventKind::ToolResult { .. } => return true,
            EventKind::AssistantMessage { content, .. } => {
                return content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
            }
            _ => {}
        }
    }
    false
}

/// Builds the conversation from the log. Tool calls without a result get an
/// "interrupted" result so the conversation is always valid.
pub fn conversation(events: &[Event]) -> Vec<Message> {
    conversation_with_origins(events).0
}

/// The conversation, and for each message the seq of the first event it came from.
/// Compactions recorded in the log are applied where they happened.
pub fn conversation_with_origins(events: &[Event]) -> (Vec<Message>, Vec<u64>) {
    let mut messages: Vec<Message> = Vec::new();
    let mut origins: Vec<u64> = Vec::new();
    let mut pending_origin: Option<u64> = None;
    // Results and words waiting to form the next user message.
    let mut results: HashMap<String, ContentBlock> = HashMap::new();
    let mut words: Vec<ContentBlock> = Vec::new();
    let mut open_calls: Vec<String> = Vec::new();

    let flush_user = |messages: &mut Vec<Message>,
                      origins: &mut Vec<u64>,
                      origin: Option<u64>,
                      results: &mut HashMap<String, ContentBlock>,
                      words: &mut Vec<ContentBlock>,
                      open_calls: &mut Vec<String>| {
        let mut content: Vec<ContentBlock> = open_calls
            .drain(..)
            .map(|id| {
                results.remove(&id).unwrap_or_else(|| ContentBlock::ToolResult {
                    tool_use_id: id,
                    content: vec![ToolResultContent::Text { text: INTERRUPTED_RESULT.into() }],
                    is_error: true,
                })
            })
            .collect();
        results.clear();
        content.append(words);
        if content.is_empty() {
            return;
        }
        match messages.last_mut() {
            Some(last) if last.role == Role::User => last.content.extend(content),
            _ => {
                messages.push(Message::new(Role::User, content));
                origins.push(origin.unwrap_or(0));
            }
        }
    };

    for event in in_conversation_order(events) {
        if matches!(
            event.kind,
            EventKind::UserMessage { .. } | EventKind::Interrupted { .. } | EventKind::ToolResult { .. }
        ) {
            pending_origin.get_or_insert(event.seq);
        }
        match &event.kind {
            EventKind::UserMessage { content, .. } => words.extend(content.iter().cloned()),
            EventKind::Interrupted { .. } => {
                words.push(ContentBlock::text("[The user interrupted you. Stop and wait for their next message.]"))
            }
            EventKind::ContextCompacted { summary, keep_first, until_seq, .. } => {
                // The cut is the assistant message that began with `until_seq`.
                let until = origins
                    .iter()
                    .position(|o| o == until_seq)
                    .or_else(|| origins.iter().position(|o| o >= until_seq))
                    .unwrap_or(messages.len());
                let before = messages.len();
                crate::context::apply_compaction(&mut messages, *keep_first, until, summary);
                let keep = (*keep_first).min(until);
                origins.drain(keep..until.min(origins.len()));
                if messages.len() > before - (until - keep) {
                    origins.insert(keep, *until_seq);
                }
            }
            EventKind::ToolResult { tool_use_id, content, is_error, .. } if open_calls.contains(tool_use_id) => {
                results.insert(
                    tool_use_id.clone(),
                    ContentBlock::ToolResult {
                        tool_use_id: tool_use_id.clone(),
                        content: content.clone(),
                        is_error: *is_error,
                    },
                );
            }
            EventKind::AssistantMessage { content, .. } => {
                flush_user(
                    &mut messages,
                    &mut origins,
                    pending_origin.take(),
                    &mut results,
                    &mut words,
                    &mut open_calls,
                );
                if content.is_empty() {
                    continue;
                }
                if messages.is_empty() || messages.last().is_some_and(|m| m.role == Role::Assistant) {
                    // A provider wants the user first and roles alternating; a log never
                    // starts this way, but a damaged one must still give a valid conversation.
                    messages.push(Message::user_text("Continue."));
                    origins.push(0);
                }
                open_calls = content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::ToolUse { id, .. } => Some(id.clone()),
                        _ => None,
                    })
                    .collect();
                messages.push(Message::new(Role::Assistant, content.clone()));
                origins.push(event.seq);
            }
            _ => {}
        }
    }
    flush_user(&mut messages, &mut origins, pending_origin.take(), &mut results, &mut words, &mut open_calls);
    (messages, origins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rswe_protocol::{SessionId, Usage};
    use serde_json::json;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event { session_id: SessionId::parse("s").unwrap(), seq, at_ms: 0, kind }
    }

    fn user(text: &str) -> EventKind {
        EventKind::UserMessage { content: vec![ContentBlock::text(text)], author: None }
    }

    fn assistant(text: &str, calls: &[&str]) -> EventKind {
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(ContentBlock::text(text));
        }
        for id in calls {
            content.push(ContentBlock::ToolUse { id: id.to_string(), name: "shell".into(), input: json!({}) });
        }
        EventKind::AssistantMessage {
            content,
            model: "m".into(),
            stop_reason: "end_turn".into(),
            usage: Usage::default(),
            cost_usd: None,
            request_seq: None,
        }
    }

    fn result(id: &str) -> EventKind {
        EventKind::ToolResult {
            tool_use_id: id.into(),
            name: "shell".into(),
            content: vec![ToolResultContent::Text { text: format!("out {id}") }],
            is_error: false,
            duration_ms: 1,
        }
    }

    fn log(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds.into_iter().enumerate().map(|(i, k)| event(i as u64 + 1, k)).collect()
    }

    #[test]
    fn results_follow_call_order_and_steering_comes_after_them() {
        let events = log(vec![
            user("fix it"),
            assistant("looking", &["a", "b"]),
            result("b"),
            user("also check the docs"),
            result("a"),
        ]);
        let messages = conversation(&events);
        assert_eq!(messages.len(), 3);
        let ids: Vec<String> = messages[2]
            .content
            .iter()
            .map(|b| match b {
                ContentBlock::ToolResult { tool_use_id, .. } => tool_use_id.clone(),
                ContentBlock::Text { text } => text.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(ids, ["a", "b", "also check the docs"]);
        assert!(awaits_model(&events));
        assert!(dangling_tool_calls(&events).is_empty());
    }

    #[test]
    fn dangling_calls_are_found_and_answered_as_interrupted() {
        let events = log(vec![user("go"), assistant("", &["a", "b", "c"]), result("b")]);
        assert_eq!(
            dangling_tool_calls(&events),
            vec![("a".to_string(), "shell".to_string()), ("c".to_string(), "shell".to_string())]
        );
        let messages = conversation(&events);
        let ContentBlock::ToolResult { content, is_error, .. } = &messages[2].content[0] else { panic!() };
        assert!(*is_error);
        assert_eq!(content, &vec![ToolResultContent::Text { text: INTERRUPTED_RESULT.into() }]);
    }

    #[test]
    fn two_messages_together_are_both_delivered_in_order() {
        let events = log(vec![user("first"), user("second")]);
        let messages = conversation(&events);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].text(), "firstsecond");
        assert_eq!(messages[0].content.len(), 2);
    }

    #[test]
    fn an_ended_turn_does_not_await_the_model() {
        let events = log(vec![user("hi"), assistant("hello", &[])]);
        assert!(!awaits_model(&events));
        let events = log(vec![user("hi"), assistant("hello", &[]), user("more")]);
        assert!(awaits_model(&events));
    }

    /// Random logs of user messages, assistant messages with calls, results (some
    /// missing, some stray, some late) and interrupts.
    fn arbitrary_log() -> impl Strategy<Value = Vec<Event>> {
        let step = prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(3u8), Just(4u8),];
        proptest::collection::vec((step, 0usize..4, any::<bool>()), 0..40).prop_map(|steps| {
            let mut kinds = Vec::new();
            let mut call = 0;
            let mut calls: Vec<String> = Vec::new();
            for (kind, n, flag) in steps {
                match kind {
                    0 => kinds.push(user("u")),
                    1 => {
                        calls = (0..n)
                            .map(|_| {
                                call += 1;
                                format!("c{call}")
                            })
                            .collect();
                        let refs: Vec<&str> = calls.iter().map(String::as_str).collect();
                        kinds.push(assistant(if flag { "t" } else { "" }, &refs));
                    }
                    2 => {
                        if let Some(id) = calls.pop() {
                            kinds.push(result(&id));
                        }
                    }
                    3 => kinds.push(result("stray")),
                    _ => kinds.push(EventKind::Interrupted { by: None }),
                }
            }
            log(kinds)
        })
    }

    proptest! {
        #[test]
        fn every_derived_conversation_is_valid(events in arbitrary_log()) {
            let messages = conversation(&events);
            for (i, message) in messages.iter().enumerate() {
                prop_assert!(!message.content.is_empty());
                let expected = if i % 2 == 0 { Role::User } else { Role::Assistant };
                prop_assert_eq!(message.role, expected, "roles alternate starting with the user");
                if message.role == Role::Assistant {
                    let calls: Vec<&str> = message.tool_uses().map(|(id, _, _)| id).collect();
                    if calls.is_empty() { continue; }
                    let next = messages.get(i + 1);
                    prop_assert!(next.is_some(), "calls must be answered");
                    let answered: Vec<&str> = next.unwrap().content.iter().filter_map(|b| match b {
                        ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
                        _ => None,
                    }).collect();
                    prop_assert_eq!(&answered[..calls.len()], &calls[..], "results first, in call order");
                    prop_assert_eq!(answered.len(), calls.len(), "no stray results");
                }
                if message.role == Role::User && i > 0 {
                    let previous_calls = messages[i - 1].tool_uses().count();
                    let results = message.content.iter().filter(|b| matches!(b, ContentBlock::ToolResult { .. })).count();
                    prop_assert_eq!(results, previous_calls);
                }
            }
        }
    }
}
