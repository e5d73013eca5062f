//! rswe's context policy: bounded tool results, a stable cached prefix, old tool outputs
//! masked in large rare batches, and compaction by summary when masking is not enough.
//!
//! The cost model behind it (Claude prices): a token written to the cache costs 12.5
//! times a token read from it, and every step reads the whole prompt. So the prompt must
//! stay small (cheap reads at every step) but change rarely (each change rewrites all
//! that follows it). Masking therefore waits until the conversation passes a threshold,
//! then masks everything old at once, so it runs every few dozen steps, not every step.

use super::{ContextInput, ContextPolicy, Shaped, estimate_tokens};
use rswe_llm::{Caching, ModelRequest, SystemBlock};
use rswe_protocol::{ContentBlock, Message, Role, ToolResultContent};
use std::collections::{HashMap, HashSet};

/// The policy's settings; see the docs page "How rswe spends tokens".
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EconomySettings {
    /// A tool result is cut to about this many tokens as it enters the history (a third
    /// of it from the start, the rest from the end), with a note saying where the whole
    /// output is.
    pub result_max_tokens: u64,
    /// Mask old tool results once the conversation (without system prompt and tools)
    /// passes this many tokens…
    pub mask_trigger_tokens: u64,
    /// …except those of the most recent steps.
    pub keep_recent_steps: usize,
    /// Results smaller than this are left alone: a stub would save nothing.
    pub mask_min_tokens: u64,
    /// Compact once the prompt passes this share of the room left for it (the window
    /// minus the output limit).
    pub compact_at: f64,
    /// After compaction, at most this share of the window is kept verbatim (recent steps).
    pub compact_keep_recent: f64,
    /// Tell the agent when the prompt passes this share of the window.
    pub warn_at: f64,
}

impl Default for EconomySettings {
    fn default() -> Self {
        EconomySettings {
            result_max_tokens: 2_000,
            mask_trigger_tokens: 40_000,
            keep_recent_steps: 6,
            mask_min_tokens: 150,
            compact_at: 0.8,
            compact_keep_recent: 0.25,
            warn_at: 0.7,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RswePolicy {
    settings: EconomySettings,
    /// Tool calls whose results are masked. Only grows, so the prefix only changes when
    /// a batch is added.
    masked: HashSet<String>,
    /// The number of messages of the previous request, for the moving breakpoint.
    previous_len: Option<usize>,
    /// Set after the provider said the prompt was too large: compact now.
    force_compaction: bool,
    /// The conversation size at which the next masking batch runs: the trigger, then
    /// half a trigger above what the last batch left, so batches stay rare.
    next_mask_at: u64,
}

const SUMMARY_PROMPT: &str = "You are summarising the first part of a software-engineering session so that the \
agent can continue it with a shorter context. Write a dense, factual summary in Markdown with these sections: \
**Task** (what the person asked, in their words where it matters), **Decisions** (what was decided and why), \
**Files changed** (paths and what changed), **Findings** (facts learned about the code base: commands that \
work, test names, error messages, locations), **Todo state** (done, in progress, pending), **Open problems**. \
Keep every path, command, identifier and number exact. Do not invent anything. Do not address the person.";

impl RswePolicy {
    pub fn new(settings: EconomySettings) -> Self {
        let next_mask_at = settings.mask_trigger_tokens;
        RswePolicy { settings, masked: HashSet::new(), previous_len: None, force_compaction: false, next_mask_at }
    }

    pub fn settings(&self) -> &EconomySettings {
        &self.settings
    }

    /// The provider refused the prompt as too large: compact at the next step.
    pub fn force_compaction(&mut self) {
        self.force_compaction = true;
    }

    /// The conversation with masked results replaced by stubs.
    fn masked_view(&self, messages: &[Message]) -> Vec<Message> {
        let mut calls: HashMap<&str, (&str, &serde_json::Value)> = HashMap::new();
        let mut view = Vec::with_capacity(messages.len());
        for message in messages {
            for (id, name, input) in message.tool_uses() {
                calls.insert(id, (name, input));
            }
            let mut message = message.clone();
            for block in &mut message.content {
                if let ContentBlock::ToolResult { tool_use_id, content, .. } = block
                    && self.masked.contains(tool_use_id.as_str())
                {
                    let tokens = estimate_tokens(content);
                    let call = calls.get(tool_use_id.as_str()).map_or_else(
                        || "a tool call".to_string(),
                        |(name, input)| {
                            let mut args = input.to_string();
                            if args.len() > 200 {
                                let cut = (0..=200).rev().find(|i| args.is_char_boundary(*i)).unwrap_or(0);
                                args.truncate(cut);
                                args.push('…');
                            }
                            format!("`{name}` {args}")
                        },
                    );
                    let saved = content.iter().find_map(|part| match part {
                        ToolResultContent::Text { text } => saved_path(text),
                        ToolResultContent::Image { .. } => None,
                    });
                    let mut stub = format!("[output of {call} removed to save context: about {tokens} tokens.");
                    match saved {
                        Some(path) => stub.push_str(&format!(" The full output is in {path}.]")),
                        None => stub.push_str(" Run it again if you need it.]"),
                    }
                    *content = vec![ToolResultContent::Text { text: stub }];
                }
            }
            view.push(message);
        }
        view
    }

    /// Adds every result outside the recent steps to the masked set.
    fn mask_old_results(&mut self, messages: &[Message]) -> usize {
        let assistant_turns: Vec<usize> =
            messages.iter().enumerate().filter(|(_, m)| m.role == Role::Assistant).map(|(i, _)| i).collect();
        let Some(&boundary) = assistant_turns.iter().rev().nth(self.settings.keep_recent_steps.saturating_sub(1))
        else {
            return 0;
        };
        let mut added = 0;
        for message in &messages[..boundary] {
            for block in &message.content {
                if let ContentBlock::ToolResult { tool_use_id, content, .. } = block
                    && estimate_tokens(content) >= self.settings.mask_min_tokens
                    && self.masked.insert(tool_use_id.clone())
                {
                    added += 1;
                }
            }
        }
        added
    }

    /// The request for a summary of `messages[keep_first..until]`, trimmed to fit.
    fn summary_request(&self, input: &ContextInput<'_>, view: &[Message], until: usize) -> ModelRequest {
        let room = (u64::from(input.window) * 6 / 10).max(1_000);
        // Tool calls and results become text: the summary request carries no tool
        // definitions (Bedrock refuses tool blocks without them) and needs none.
        let mut messages: Vec<Message> = view[..until].iter().map(as_text).collect();
        // The summary request must fit: shorten the largest tool results first.
        let mut total = estimate_tokens(&messages);
        while total > room {
            let largest = messages
                .iter_mut()
                .flat_map(|m| m.content.iter_mut())
                .filter_map(|b| match b {
                    ContentBlock::Text { text } => Some(text),
                    _ => None,
                })
                .max_by_key(|t| t.len());
            let Some(text) = largest else { break };
            let before = estimate_tokens(&*text);
            if before <= 50 {
                break;
            }
            *text = "[a long text left out of the summary request]".into();
            total = total.saturating_sub(before) + 12;
        }
        let instruction = ContentBlock::text(
            "Summarise the session so far as instructed. The agent will continue from your summary and the most \
             recent steps, which it keeps verbatim.",
        );
        match messages.last_mut() {
            Some(last) if last.role == Role::User => last.content.push(instruction),
            _ => messages.push(Message::new(Role::User, vec![instruction])),
        }
        ModelRequest {
            system: vec![SystemBlock::new(SUMMARY_PROMPT)],
            messages,
            tools: Vec::new(),
            tools_cache_breakpoint: false,
            max_tokens: Some(4_000),
            thinking: None,
            temperature: None,
        }
    }

    /// Where to cut for compaction: an assistant message, so every kept tool result keeps
    /// its call, with the recent part within `compact_keep_recent` of the window.
    fn compaction_cut(&self, input: &ContextInput<'_>, view: &[Message]) -> Option<(usize, usize)> {
        let keep_first = 1.min(view.len());
        let budget = (input.window as f64 * self.settings.compact_keep_recent) as u64;
        let mut kept = 0;
        let mut cut = None;
        for (i, message) in view.iter().enumerate().rev() {
            kept += estimate_tokens(message);
            if i <= keep_first {
                break;
            }
            if message.role == Role::Assistant {
                if kept > budget && cut.is_some() {
                    break;
                }
                cut = Some(i);
            }
        }
        cut.filter(|c| *c > keep_first).map(|c| (keep_first, c))
    }
}

/// A message with tool calls and results written out as text, thinking dropped.
fn as_text(message: &Message) -> Message {
    let mut content: Vec<ContentBlock> = message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text } => Some(ContentBlock::text(text.clone())),
            ContentBlock::ToolUse { name, input, .. } => Some(ContentBlock::text(format!("[called `{name}` {input}]"))),
            ContentBlock::ToolResult { content, is_error, .. } => {
                let text: Vec<&str> = content
                    .iter()
                    .map(|part| match part {
                        ToolResultContent::Text { text } => text.as_str(),
                        ToolResultContent::Image { .. } => "[an image]",
                    })
                    .collect();
                let label = if *is_error { "error" } else { "result" };
                Some(ContentBlock::text(format!("[{label}]\n{}", text.join("\n"))))
            }
            ContentBlock::Image { .. } => Some(ContentBlock::text("[an image]")),
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => None,
        })
        .collect();
    if content.is_empty() {
        content.push(ContentBlock::text("[no text]"));
    }
    Message::new(message.role, content)
}

/// The path a bounded output names as its full copy, if any.
fn saved_path(text: &str) -> Option<String> {
    let start = text.find("/.rswe/outputs/")?;
    let begin = text[..start]
        .char_indices()
        .rfind(|(_, c)| c.is_whitespace() || *c == '(' || *c == '`')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = text[start..]
        .find(|c: char| c.is_whitespace() || c == ')' || c == '`' || c == ']' || c == ',')
        .map_or(text.len(), |i| start + i);
    let path = text[begin..end].trim_end_matches(['.', ':']);
    (!path.is_empty()).then(|| path.to_string())
}

/// Cuts `text` to about `max_tokens`, keeping a third from the start and the rest from
/// the end, on character boundaries, with a note of what was left out.
pub fn bound_text(text: &str, max_tokens: u64, save_as: Option<&str>) -> String {
    let max_bytes = (max_tokens as usize).saturating_mul(super::BYTES_PER_TOKEN);
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let head_len = max_bytes / 3;
    let tail_len = max_bytes - head_len;
    let mut head_end = head_len;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - tail_len;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    // Cut at line ends where there is one nearby, so lines stay whole.
    if let Some(newline) = text[..head_end].rfind('\n').filter(|n| head_end - n < 200) {
        head_end = newline + 1;
    }
    if let Some(newline) = text[tail_start..].find('\n').filter(|n| *n < 200) {
        tail_start += newline + 1;
    }
    let omitted = &text[head_end..tail_start];
    let lines = omitted.lines().count();
    let whereabouts = match save_as {
        Some(path) => format!("the full output is in {path}: page through it with `editor` view_range or `search`"),
        None => "run the command again with a narrower output (grep, head, tail) to see it".to_string(),
    };
    format!(
        "{}\n[… {} characters ({lines} lines, about {} tokens) left out here; {whereabouts}]\n{}",
        &text[..head_end].trim_end_matches('\n'),
        omitted.len(),
        omitted.len().div_ceil(super::BYTES_PER_TOKEN),
        &text[tail_start..]
    )
}

impl ContextPolicy for RswePolicy {
    fn name(&self) -> &'static str {
        "rswe"
    }

    fn admit(&self, _tool: &str, text: String, save_as: Option<&str>) -> String {
        bound_text(&text, self.settings.result_max_tokens, save_as)
    }

    fn shape(&mut self, input: &ContextInput<'_>) -> Shaped {
        let fixed = estimate_tokens(input.system) + estimate_tokens(input.tools);
        let mut view = self.masked_view(input.messages);
        let mut conversation = estimate_tokens(&view);
        if conversation > self.next_mask_at.max(self.settings.mask_trigger_tokens) {
            if self.mask_old_results(input.messages) > 0 {
                view = self.masked_view(input.messages);
                conversation = estimate_tokens(&view);
            }
            self.next_mask_at = conversation + self.settings.mask_trigger_tokens / 2;
        }
        let room = u64::from(input.window.saturating_sub(input.max_output));
        let force = std::mem::take(&mut self.force_compaction);
        if (force || (fixed + conversation) as f64 > room as f64 * self.settings.compact_at)
            && let Some((keep_first, until)) = self.compaction_cut(input, &view)
        {
            self.previous_len = None;
            let request = self.summary_request(input, &view, until);
            return Shaped::Compact { request, keep_first, summarise_until: until };
        }

        let explicit = input.caching == Caching::Explicit && input.max_breakpoints > 0;
        let mut system = input.system.to_vec();
        if explicit && let Some(last) = system.last_mut() {
            last.cache_breakpoint = true;
        }
        let last = view.len().checked_sub(1);
        if explicit {
            if input.max_breakpoints >= 3
                && let Some(previous) = self.previous_len.and_then(|n| n.checked_sub(1)).filter(|p| Some(*p) != last)
                && let Some(message) = view.get_mut(previous)
            {
                message.cache_breakpoint = true;
            }
            if input.max_breakpoints >= 2
                && let Some(last) = last
            {
                view[last].cache_breakpoint = true;
            }
        }
        self.previous_len = Some(view.len());
        Shaped::Request(ModelRequest {
            system,
            messages: view,
            tools: input.tools.to_vec(),
            tools_cache_breakpoint: false,
            max_tokens: Some(input.max_output),
            thinking: None,
            temperature: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::apply_compaction;
    use proptest::prelude::*;
    use serde_json::json;

    fn step(i: usize, output_bytes: usize) -> [Message; 2] {
        let id = format!("t{i}");
        [
            Message::new(
                Role::Assistant,
                vec![ContentBlock::ToolUse {
                    id: id.clone(),
                    name: "shell".into(),
                    input: json!({"command": format!("run {i}")}),
                }],
            ),
            Message::new(Role::User, vec![ContentBlock::tool_result(&id, "x".repeat(output_bytes), false)]),
        ]
    }

    fn conversation(steps: usize, output_bytes: usize) -> Vec<Message> {
        let mut messages = vec![Message::user_text("do the task")];
        for i in 0..steps {
            messages.extend(step(i, output_bytes));
        }
        messages
    }

    fn input(messages: &[Message]) -> ContextInput<'_> {
        ContextInput {
            system: &[],
            tools: &[],
            messages,
            window: 200_000,
            max_output: 16_000,
            caching: Caching::Explicit,
            max_breakpoints: 4,
        }
    }

    fn check_valid(messages: &[Message]) {
        assert_eq!(messages[0].role, Role::User);
        for (i, pair) in messages.windows(2).enumerate() {
            assert_ne!(pair[0].role, pair[1].role, "alternation broken at {i}");
            let calls: Vec<&str> = pair[0].tool_uses().map(|(id, _, _)| id).collect();
            let results: Vec<&str> = pair[1]
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
                    _ => None,
                })
                .collect();
            if pair[0].role == Role::Assistant {
                assert_eq!(calls, results, "tool pair broken at {i}");
            }
        }
        for (i, message) in messages.iter().enumerate().skip(1) {
            if message.role == Role::User && messages[i - 1].role == Role::User {
                panic!("two user messages in a row");
            }
        }
    }

    #[test]
    fn results_are_bounded_with_head_tail_and_where_the_rest_is() {
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let bounded = bound_text(&text, 500, Some("/w/.rswe/outputs/a.stdout"));
        assert!(bounded.len() < 2_300, "{}", bounded.len());
        assert!(bounded.starts_with("line 0\n"));
        assert!(bounded.trim_end().ends_with("line 4999"));
        assert!(bounded.contains("left out here; the full output is in /w/.rswe/outputs/a.stdout"));
        assert_eq!(bound_text("short", 500, None), "short");
        assert_eq!(saved_path(&bounded).as_deref(), Some("/w/.rswe/outputs/a.stdout"));
        // Multi-byte whitespace before the path must not split a character.
        assert_eq!(saved_path("see\u{a0}/x/.rswe/outputs/b.txt\u{3000}").as_deref(), Some("/x/.rswe/outputs/b.txt"));
    }

    #[test]
    fn masking_waits_for_the_threshold_then_masks_old_results_at_once() {
        let mut policy = RswePolicy::new(EconomySettings::default());
        // 10 steps of 8 KB results = ~20k tokens: under the trigger, nothing masked.
        let messages = conversation(10, 8_000);
        let Shaped::Request(request) = policy.shape(&input(&messages)) else { panic!() };
        assert_eq!(request.messages, {
            let mut expected = messages.clone();
            let last = expected.len() - 1;
            expected[last].cache_breakpoint = true;
            expected
        });
        // 30 steps: over the trigger; all but the 6 most recent steps masked.
        let messages = conversation(30, 8_000);
        let Shaped::Request(request) = policy.shape(&input(&messages)) else { panic!() };
        let masked = request
            .messages
            .iter()
            .filter(|m| m.text().is_empty() && format!("{m:?}").contains("removed to save context"))
            .count();
        assert_eq!(masked, 24);
        assert!(estimate_tokens(&request.messages) < 20_000);
        check_valid(&request.messages);
        // One step later the prefix is unchanged: the same stubs, byte for byte.
        let mut longer = messages.clone();
        longer.extend(step(30, 8_000));
        let Shaped::Request(next) = policy.shape(&input(&longer)) else { panic!() };
        let prefix = request.messages.len() - 1;
        let strip =
            |m: &[Message]| m.iter().map(|m| Message { cache_breakpoint: false, ..m.clone() }).collect::<Vec<_>>();
        assert_eq!(strip(&next.messages[..prefix]), strip(&request.messages[..prefix]));
        assert!(next.messages[prefix].cache_breakpoint, "the previous last message is read from the cache");
        assert!(request.breakpoint_count() <= 4);
        assert!(next.breakpoint_count() <= 4);
    }

    #[test]
    fn compaction_keeps_the_first_message_and_recent_steps_and_stays_valid() {
        let mut policy = RswePolicy::new(EconomySettings { mask_trigger_tokens: u64::MAX, ..Default::default() });
        let mut messages = conversation(80, 8_000); // ~160k tokens
        let Shaped::Compact { request, keep_first, summarise_until } = policy.shape(&input(&messages)) else {
            panic!("expected a compaction")
        };
        assert_eq!(keep_first, 1);
        assert_eq!(messages[summarise_until].role, Role::Assistant);
        assert!(estimate_tokens(&request) < 120_000, "the summary request fits");
        assert!(request.messages.last().unwrap().text().contains("Summarise"));
        assert!(request.tools.is_empty());
        assert!(
            request.messages.iter().flat_map(|m| &m.content).all(|b| matches!(b, ContentBlock::Text { .. })),
            "no tool blocks without tool definitions"
        );
        apply_compaction(&mut messages, keep_first, summarise_until, "the summary");
        check_valid(&messages);
        assert!(estimate_tokens(&messages) < 60_000);
        assert!(messages[0].text().starts_with("do the task"));
        let Shaped::Request(_) = policy.shape(&input(&messages)) else { panic!("one compaction is enough") };
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn every_shaped_request_is_valid_and_bounded(steps in 1usize..120, size in 10usize..20_000) {
            let mut policy = RswePolicy::new(EconomySettings::default());
            let mut messages = conversation(steps, size);
            for _ in 0..3 {
                match policy.shape(&input(&messages)) {
                    Shaped::Request(request) => {
                        check_valid(&request.messages);
                        prop_assert!(request.breakpoint_count() <= 4);
                        prop_assert!(estimate_tokens(&request.messages) < 200_000 - 16_000);
                        break;
                    }
                    Shaped::Compact { keep_first, summarise_until, request } => {
                        check_valid(&request.messages);
                        prop_assert!(estimate_tokens(&request) < 200_000);
                        apply_compaction(&mut messages, keep_first, summarise_until, "summary");
                        check_valid(&messages);
                    }
                }
            }
        }
    }
}
