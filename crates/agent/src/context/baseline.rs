//! The baselines `rswe bench context` measures rswe's policy against.
//!
//! - [`ReferencePolicy`]: the policy of the system rswe replaces, implemented as it is
//!   documented. The whole history goes out at every step until it passes 95% of the
//!   window; from then on, at every step while it stays over, "middle-out" keeps the first
//!   message and a head of up to 60% of the room, a tail of up to 40%, and drops the
//!   middle silently, never splitting a tool call from its result. Cache breakpoints sit
//!   after the system prompt, after the tool definitions, on the previous step's last
//!   message and on the current last message. Shell output is cut to 40,000 characters of
//!   stdout and 10,000 of stderr (the first 20% and the last 80% kept); other tools'
//!   output is not cut.
//! - [`UnmanagedPolicy`]: no management at all. The whole history at every step with the
//!   same breakpoints, nothing cut; once the history outgrows the window the provider
//!   refuses the request.
//!
//! "60% / 40% of the window" is read as shares of the room the messages have under the
//! trigger (95% of the window less the system prompt and tool definitions): taken
//! literally, a head of 60% and a tail of 40% of the window would, with the system prompt
//! and tools, never fit in the window at all.

use super::{ContextInput, ContextPolicy, Shaped, estimate_tokens};
use rswe_llm::{Caching, ModelRequest};
use rswe_protocol::{Message, Role};

/// The reference policy starts dropping the middle when the prompt passes this share of
/// the window.
pub const REFERENCE_TRIGGER: f64 = 0.95;
/// The share of the room kept from the start of the conversation.
pub const REFERENCE_HEAD_SHARE: f64 = 0.6;
/// The share of the room kept from the end of the conversation.
pub const REFERENCE_TAIL_SHARE: f64 = 0.4;
/// Characters of a shell command's stdout the reference policy keeps.
pub const REFERENCE_STDOUT_CHARS: usize = 40_000;
/// Characters of a shell command's stderr the reference policy keeps.
pub const REFERENCE_STDERR_CHARS: usize = 10_000;
/// The share of a cut output kept from its start (the rest comes from its end).
pub const REFERENCE_CUT_HEAD_SHARE: f64 = 0.2;

/// The reference policy (see the module documentation).
#[derive(Debug, Default)]
pub struct ReferencePolicy {
    /// Index, in the conversation, of the last message of the previous request.
    previous_last: Option<usize>,
}

impl ReferencePolicy {
    pub fn new() -> Self {
        ReferencePolicy::default()
    }
}

impl ContextPolicy for ReferencePolicy {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn admit(&self, tool: &str, text: String, _save_as: Option<&str>) -> String {
        if tool == "shell" { cut_shell_output(&text) } else { text }
    }

    fn shape(&mut self, input: &ContextInput<'_>) -> Shaped {
        let messages = input.messages;
        let fixed = estimate_tokens(input.system) + estimate_tokens(input.tools);
        let sizes: Vec<u64> = messages.iter().map(estimate_tokens).collect();
        let total = fixed + sizes.iter().sum::<u64>();
        let trigger = (f64::from(input.window) * REFERENCE_TRIGGER) as u64;
        let kept: Vec<usize> = if total > trigger {
            let (head_end, tail_start) = middle_out(messages, &sizes, trigger.saturating_sub(fixed));
            (0..head_end).chain(tail_start..messages.len()).collect()
        } else {
            (0..messages.len()).collect()
        };
        let previous = self.previous_last.filter(|&p| p + 1 < messages.len());
        self.previous_last = messages.len().checked_sub(1);
        Shaped::Request(request_with_breakpoints(input, &kept, previous))
    }
}

/// No context management: the whole history at every step, nothing cut.
#[derive(Debug, Default)]
pub struct UnmanagedPolicy {
    previous_last: Option<usize>,
}

impl UnmanagedPolicy {
    pub fn new() -> Self {
        UnmanagedPolicy::default()
    }
}

impl ContextPolicy for UnmanagedPolicy {
    fn name(&self) -> &'static str {
        "unmanaged"
    }

    fn admit(&self, _tool: &str, text: String, _save_as: Option<&str>) -> String {
        text
    }

    fn shape(&mut self, input: &ContextInput<'_>) -> Shaped {
        let kept: Vec<usize> = (0..input.messages.len()).collect();
        let previous = self.previous_last.filter(|&p| p + 1 < input.messages.len());
        self.previous_last = input.messages.len().checked_sub(1);
        Shaped::Request(request_with_breakpoints(input, &kept, previous))
    }
}

/// The request of `input.messages[kept]` with the baselines' breakpoints: after the system
/// prompt, after the tool definitions, on the message that was last in the previous
/// request (`previous`, an index into `input.messages`, if it is still sent) and on the
/// last message.
fn request_with_breakpoints(input: &ContextInput<'_>, kept: &[usize], previous: Option<usize>) -> ModelRequest {
    let explicit = input.caching == Caching::Explicit && input.max_breakpoints > 0;
    let mut system = input.system.to_vec();
    for block in &mut system {
        block.cache_breakpoint = false;
    }
    if explicit && let Some(last) = system.last_mut() {
        last.cache_breakpoint = true;
    }
    let mut messages: Vec<Message> = kept
        .iter()
        .map(|&index| {
            let mut message = input.messages[index].clone();
            message.cache_breakpoint = explicit && (Some(index) == previous || index + 1 == input.messages.len());
            message
        })
        .collect();
    if !explicit {
        for message in &mut messages {
            message.cache_breakpoint = false;
        }
    }
    let mut request = ModelRequest {
        system,
        messages,
        tools: input.tools.to_vec(),
        tools_cache_breakpoint: explicit,
        max_tokens: Some(input.max_output),
        thinking: None,
        temperature: None,
    };
    request.limit_breakpoints(input.max_breakpoints);
    request
}

/// Middle-out over `messages` (of estimated `sizes`) to fit `room` tokens: returns
/// `(head_end, tail_start)`, the conversation being kept as `messages[..head_end]` and
/// `messages[tail_start..]`. The head is the first message and then whole exchanges while
/// they fit in 60% of the room; the tail the last exchanges that fit in 40% (at least the
/// last exchange). A cut falls only between a user message and the assistant message after
/// it, so a tool call and its result are never separated and roles still alternate.
pub fn middle_out(messages: &[Message], sizes: &[u64], room: u64) -> (usize, usize) {
    let len = messages.len();
    let head_budget = (room as f64 * REFERENCE_HEAD_SHARE) as u64;
    let tail_budget = (room as f64 * REFERENCE_TAIL_SHARE) as u64;
    // A cut at `p` (between messages p-1 and p) is allowed when p-1 is a user message
    // and p an assistant message.
    let cut_allowed =
        |p: usize| p > 0 && p < len && messages[p - 1].role == Role::User && messages[p].role == Role::Assistant;
    let mut head_end = 1.min(len);
    let mut head_tokens = sizes.first().copied().unwrap_or(0);
    let mut running = head_tokens;
    for p in 2..len {
        running += sizes[p - 1];
        if running > head_budget {
            break;
        }
        if cut_allowed(p) {
            head_end = p;
            head_tokens = running;
        }
    }
    let mut tail_start = None;
    let mut tail_kept = 0u64;
    let mut tail_tokens = 0u64;
    for p in (1..len).rev() {
        tail_tokens += sizes[p];
        if tail_start.is_some() && (tail_tokens > tail_budget || p < head_end) {
            break;
        }
        if cut_allowed(p) {
            tail_start = Some(p);
            tail_kept = tail_tokens;
        }
    }
    // When even the shortest tail does not fit beside the head, the head shrinks to the
    // first message.
    if head_tokens + tail_kept > room {
        head_end = 1.min(len);
    }
    match tail_start {
        Some(tail_start) if tail_start > head_end => (head_end, tail_start),
        _ => (len, len),
    }
}

/// A shell tool result cut the reference way: stdout to [`REFERENCE_STDOUT_CHARS`] and
/// stderr to [`REFERENCE_STDERR_CHARS`]. The result is read in the shell tool's layout (a
/// status line, then `stdout:` and `stderr:` sections); a text without sections counts
/// as stdout.
pub fn cut_shell_output(text: &str) -> String {
    let stdout_at = if text.starts_with("stdout:\n") { Some(0) } else { text.find("\nstdout:\n").map(|i| i + 1) };
    let search_from = stdout_at.unwrap_or(0);
    let stderr_at = if stdout_at.is_none() && text.starts_with("stderr:\n") {
        Some(0)
    } else {
        text[search_from..].rfind("\nstderr:\n").map(|i| search_from + i + 1)
    };
    match (stdout_at, stderr_at) {
        (None, None) => cut_middle(text, REFERENCE_STDOUT_CHARS),
        (stdout_at, stderr_at) => {
            let body_start = stdout_at.or(stderr_at).unwrap_or(0);
            let mut out = text[..body_start].to_string();
            if let Some(at) = stdout_at {
                let end = stderr_at.map_or(text.len(), |e| e - 1);
                let body = &text[at + "stdout:\n".len()..end];
                out.push_str("stdout:\n");
                out.push_str(&cut_middle(body, REFERENCE_STDOUT_CHARS));
                if stderr_at.is_some() {
                    out.push('\n');
                }
            }
            if let Some(at) = stderr_at {
                out.push_str("stderr:\n");
                out.push_str(&cut_middle(&text[at + "stderr:\n".len()..], REFERENCE_STDERR_CHARS));
            }
            out
        }
    }
}

/// `text` cut to `limit` characters when longer: the first 20% and the last 80% of the
/// limit kept, a marker between them saying how much was left out.
pub fn cut_middle(text: &str, limit: usize) -> String {
    let chars = text.chars().count();
    if chars <= limit {
        return text.to_string();
    }
    let head_chars = (limit as f64 * REFERENCE_CUT_HEAD_SHARE) as usize;
    let tail_chars = limit - head_chars;
    let byte_at = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let head_end = byte_at(head_chars);
    let tail_start = byte_at(chars - tail_chars);
    format!(
        "{}\n[... {} characters truncated ...]\n{}",
        &text[..head_end],
        chars - head_chars - tail_chars,
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rswe_llm::SystemBlock;
    use rswe_protocol::{ContentBlock, ToolDefinition};
    use serde_json::json;

    fn exchange(n: usize, result_chars: usize) -> [Message; 2] {
        let id = format!("toolu_{n}");
        [
            Message::new(
                Role::Assistant,
                vec![
                    ContentBlock::text(format!("step {n}")),
                    ContentBlock::ToolUse { id: id.clone(), name: "shell".into(), input: json!({"command": "ls"}) },
                ],
            ),
            Message::new(Role::User, vec![ContentBlock::tool_result(id, "x".repeat(result_chars), false)]),
        ]
    }

    fn history(steps: usize, result_chars: usize) -> Vec<Message> {
        let mut messages = vec![Message::user_text("Fix the failing test in the parser.")];
        for n in 0..steps {
            messages.extend(exchange(n, result_chars));
        }
        messages
    }

    fn input<'a>(
        system: &'a [SystemBlock],
        tools: &'a [ToolDefinition],
        messages: &'a [Message],
        window: u32,
    ) -> ContextInput<'a> {
        ContextInput {
            system,
            tools,
            messages,
            window,
            max_output: 4096,
            caching: Caching::Explicit,
            max_breakpoints: 4,
        }
    }

    fn fixed() -> (Vec<SystemBlock>, Vec<ToolDefinition>) {
        (
            vec![SystemBlock::new("You are a careful engineer. ".repeat(40))],
            vec![ToolDefinition {
                name: "shell".into(),
                description: "Run a command.".into(),
                input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}}),
            }],
        )
    }

    fn request(shaped: Shaped) -> ModelRequest {
        match shaped {
            Shaped::Request(request) => request,
            Shaped::Compact { .. } => panic!("the baselines never compact"),
        }
    }

    /// Roles alternate from a user message, and every tool use is answered by the next
    /// message, every tool result answers the message before it.
    fn assert_well_formed(messages: &[Message]) {
        assert_eq!(messages[0].role, Role::User);
        for pair in messages.windows(2) {
            assert_ne!(pair[0].role, pair[1].role, "roles must alternate");
        }
        for (i, message) in messages.iter().enumerate() {
            for (id, _, _) in message.tool_uses() {
                let answered = messages.get(i + 1).is_some_and(|next| {
                    next.content
                        .iter()
                        .any(|b| matches!(b, ContentBlock::ToolResult { tool_use_id, .. } if tool_use_id == id))
                });
                assert!(answered, "tool use {id} is not answered by the next message");
            }
            for block in &message.content {
                if let ContentBlock::ToolResult { tool_use_id, .. } = block {
                    let asked = i > 0 && messages[i - 1].tool_uses().any(|(id, _, _)| id == tool_use_id);
                    assert!(asked, "tool result {tool_use_id} answers nothing before it");
                }
            }
        }
    }

    #[test]
    fn under_the_trigger_the_whole_history_goes_with_four_breakpoints() {
        let (system, tools) = fixed();
        let mut policy = ReferencePolicy::new();
        let mut messages = history(3, 200);
        let first = request(policy.shape(&input(&system, &tools, &messages, 200_000)));
        assert_eq!(first.messages, {
            let mut expected = messages.clone();
            expected.last_mut().unwrap().cache_breakpoint = true;
            expected
        });
        assert!(first.system[0].cache_breakpoint && first.tools_cache_breakpoint);
        assert_eq!(first.breakpoint_count(), 3);
        messages.extend(exchange(3, 200));
        let second = request(policy.shape(&input(&system, &tools, &messages, 200_000)));
        assert_eq!(second.messages.len(), messages.len());
        assert_eq!(second.breakpoint_count(), 4);
        // The previous step's last message and the current last one.
        let marked: Vec<usize> =
            second.messages.iter().enumerate().filter(|(_, m)| m.cache_breakpoint).map(|(i, _)| i).collect();
        assert_eq!(marked, vec![messages.len() - 3, messages.len() - 1]);
    }

    #[test]
    fn middle_out_keeps_the_first_message_a_head_and_a_tail() {
        let (system, tools) = fixed();
        let mut policy = ReferencePolicy::new();
        // 60 exchanges of ~1,000 tokens against a 20,000-token window.
        let messages = history(60, 4_000);
        let window = 20_000;
        let shaped = request(policy.shape(&input(&system, &tools, &messages, window)));
        let sent = &shaped.messages;
        assert!(sent.len() < messages.len(), "the middle is dropped");
        assert_eq!(sent[0].text(), messages[0].text(), "the first message is kept");
        assert_well_formed(sent);
        // The head is the start of the conversation, the tail its end.
        let head = sent.iter().zip(&messages).take_while(|(a, b)| a.content == b.content).count();
        assert!(head >= 3, "a head beyond the first message is kept ({head})");
        let tail = sent.iter().rev().zip(messages.iter().rev()).take_while(|(a, b)| a.content == b.content).count();
        assert_eq!(head + tail, sent.len(), "head and tail are contiguous pieces of the history");
        let fixed_tokens = estimate_tokens(&system) + estimate_tokens(&tools);
        let room = (f64::from(window) * REFERENCE_TRIGGER) as u64 - fixed_tokens;
        let head_tokens: u64 = sent[..head].iter().map(estimate_tokens).sum();
        let tail_tokens: u64 = sent[head..].iter().map(estimate_tokens).sum();
        assert!(head_tokens <= (room as f64 * REFERENCE_HEAD_SHARE) as u64);
        assert!(tail_tokens <= (room as f64 * REFERENCE_TAIL_SHARE) as u64);
        assert!(tail_tokens > (room as f64 * REFERENCE_TAIL_SHARE) as u64 / 2, "the tail uses its room");
        assert!(fixed_tokens + head_tokens + tail_tokens <= u64::from(window));
        assert!(shaped.breakpoint_count() <= 4);
    }

    #[test]
    fn middle_out_runs_again_at_every_step_while_over() {
        let (system, tools) = fixed();
        let mut policy = ReferencePolicy::new();
        let mut messages = history(40, 4_000);
        request(policy.shape(&input(&system, &tools, &messages, 20_000)));
        messages.extend(exchange(40, 4_000));
        for n in 41..50 {
            let shaped = request(policy.shape(&input(&system, &tools, &messages, 20_000)));
            assert!(shaped.messages.len() < messages.len());
            assert_well_formed(&shaped.messages);
            assert!(shaped.breakpoint_count() <= 4);
            // The previous step's last message, still in the tail, is marked.
            let marked = shaped.messages.iter().filter(|m| m.cache_breakpoint).count();
            assert_eq!(marked, 2);
            messages.extend(exchange(n, 4_000));
        }
    }

    #[test]
    fn pairs_are_never_split_whatever_the_sizes() {
        // Uneven sizes, parallel tool calls: every cut still falls between exchanges.
        let mut messages = vec![Message::user_text("task")];
        for n in 0..80usize {
            let ids: Vec<String> = (0..1 + n % 3).map(|k| format!("t{n}_{k}")).collect();
            messages.push(Message::new(
                Role::Assistant,
                ids.iter()
                    .map(|id| ContentBlock::ToolUse { id: id.clone(), name: "editor".into(), input: json!({}) })
                    .collect(),
            ));
            messages.push(Message::new(
                Role::User,
                ids.iter()
                    .map(|id| ContentBlock::tool_result(id, "y".repeat(100 + (n * 7919) % 9000), false))
                    .collect(),
            ));
        }
        let sizes: Vec<u64> = messages.iter().map(estimate_tokens).collect();
        for room in [500, 5_000, 20_000, 50_000, 1_000_000] {
            let (head_end, tail_start) = middle_out(&messages, &sizes, room);
            let kept: Vec<Message> =
                messages[..head_end].iter().chain(&messages[tail_start.min(messages.len())..]).cloned().collect();
            assert_well_formed(&kept);
            assert_eq!(kept.last(), messages.last(), "the last message is always kept");
        }
    }

    #[test]
    fn shell_output_is_cut_to_40k_stdout_and_10k_stderr_keeping_20_and_80_percent() {
        let stdout: String = (0..100_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let stderr: String = "é".repeat(30_000);
        let text = format!("exit code 1 · 2.1 s\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let policy = ReferencePolicy::new();
        let cut = policy.admit("shell", text, None);
        assert!(cut.starts_with("exit code 1 · 2.1 s\nstdout:\n"));
        let (out_part, err_part) = cut.split_once("\nstderr:\n").unwrap();
        let out_body = out_part.strip_prefix("exit code 1 · 2.1 s\nstdout:\n").unwrap();
        let (head, rest) = out_body.split_once("\n[... 60000 characters truncated ...]\n").unwrap();
        assert_eq!(head, &stdout[..8_000]);
        assert_eq!(rest, &stdout[100_000 - 32_000..]);
        let (head, rest) = err_part.split_once("\n[... 20000 characters truncated ...]\n").unwrap();
        assert_eq!(head.chars().count(), 2_000);
        assert_eq!(rest.chars().count(), 8_000);
        // Short output and other tools pass unchanged.
        assert_eq!(
            policy.admit("shell", "exit code 0 · 1 ms\nstdout:\nok".into(), None),
            "exit code 0 · 1 ms\nstdout:\nok"
        );
        let view = "x".repeat(200_000);
        assert_eq!(policy.admit("editor", view.clone(), None), view);
        // Only stderr.
        let only_err = format!("exit code 2 · 1 s\nstderr:\n{}", "e".repeat(12_000));
        let cut = policy.admit("shell", only_err, None);
        assert!(cut.starts_with("exit code 2 · 1 s\nstderr:\n"));
        assert!(cut.contains("[... 2000 characters truncated ...]"));
        // No sections: the whole text counts as stdout.
        assert!(cut_shell_output(&"z".repeat(50_000)).contains("[... 10000 characters truncated ...]"));
    }

    #[test]
    fn unmanaged_sends_everything_uncut_with_the_same_breakpoints() {
        let (system, tools) = fixed();
        let mut policy = UnmanagedPolicy::new();
        let text = format!("exit code 0 · 1 s\nstdout:\n{}", "a".repeat(100_000));
        assert_eq!(policy.admit("shell", text.clone(), Some(".rswe/outputs/x")), text);
        let mut messages = history(60, 4_000);
        request(policy.shape(&input(&system, &tools, &messages, 20_000)));
        messages.extend(exchange(60, 4_000));
        let shaped = request(policy.shape(&input(&system, &tools, &messages, 20_000)));
        assert_eq!(shaped.messages.len(), messages.len());
        assert_eq!(shaped.breakpoint_count(), 4);
        assert!(shaped.messages[messages.len() - 3].cache_breakpoint);
    }

    #[test]
    fn no_breakpoints_without_explicit_caching() {
        let (system, tools) = fixed();
        let messages = history(3, 100);
        let mut plain = input(&system, &tools, &messages, 200_000);
        plain.caching = Caching::Automatic;
        let shaped = request(ReferencePolicy::new().shape(&plain));
        assert_eq!(shaped.breakpoint_count(), 0);
        let mut limited = input(&system, &tools, &messages, 200_000);
        limited.max_breakpoints = 2;
        let shaped = request(UnmanagedPolicy::new().shape(&limited));
        assert!(shaped.breakpoint_count() <= 2);
    }
}
