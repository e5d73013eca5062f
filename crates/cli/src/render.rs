//! What `rswe run` shows while it works: a live status line on a terminal, plain lines
//! otherwise, or the session's events as JSON lines with `--json`.

use rswe_agent::LiveEvent;
use rswe_protocol::{ContentBlock, EventKind, Usage};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A status line redrawn in place; tool output folded into it.
    Terminal,
    /// One line per thing that happened, for logs and pipes.
    Plain,
    /// Every persisted event as one JSON line on stdout.
    Json,
}

struct State {
    step: u32,
    context: (u64, u32),
    tool: Option<String>,
    last_output: String,
    usage: Usage,
    cost: f64,
    started: Instant,
    status_shown: bool,
}

pub struct Renderer {
    mode: Mode,
    state: Mutex<State>,
}

/// A short one-line description of a tool call for people.
fn describe_call(name: &str, input: &serde_json::Value) -> String {
    let detail = match name {
        "shell" => input["command"].as_str().map(str::to_string),
        "editor" => {
            Some(format!("{} {}", input["command"].as_str().unwrap_or("?"), input["path"].as_str().unwrap_or("")))
        }
        "search" => input["pattern"].as_str().map(|p| format!("/{p}/")),
        "find_files" => input["glob"].as_str().map(str::to_string),
        "read_image" | "send_file" => input["path"].as_str().map(str::to_string),
        _ => None,
    };
    let mut line = match detail {
        Some(detail) => format!("{name}: {}", detail.replace('\n', " ")),
        None => name.to_string(),
    };
    if line.chars().count() > 100 {
        line = line.chars().take(99).collect::<String>() + "…";
    }
    line
}

impl Renderer {
    pub fn new(mode: Mode) -> Self {
        Renderer {
            mode,
            state: Mutex::new(State {
                step: 0,
                context: (0, 0),
                tool: None,
                last_output: String::new(),
                usage: Usage::default(),
                cost: 0.0,
                started: Instant::now(),
                status_shown: false,
            }),
        }
    }

    /// Prints a line to stderr above the status line.
    fn line(&self, state: &mut State, text: &str) {
        let mut err = std::io::stderr().lock();
        if state.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            state.status_shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    fn status(&self, state: &mut State) {
        if self.mode != Mode::Terminal {
            return;
        }
        let doing = match &state.tool {
            Some(tool) if !state.last_output.is_empty() => format!("{tool} › {}", state.last_output),
            Some(tool) => tool.clone(),
            None => "thinking".to_string(),
        };
        let tokens = state.usage.total_input() + state.usage.output_tokens;
        let (used, window) = state.context;
        let mut text = format!(
            "step {} · {doing} · context {}k/{}k · {:.1}k tokens · ${:.4} · {}s",
            state.step,
            used / 1000,
            window / 1000,
            tokens as f64 / 1000.0,
            state.cost,
            state.started.elapsed().as_secs()
        );
        if text.chars().count() > 120 {
            text = text.chars().take(119).collect::<String>() + "…";
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        state.status_shown = true;
    }

    pub fn handle(&self, event: &LiveEvent) {
        let Ok(mut state) = self.state.lock() else { return };
        if self.mode == Mode::Json {
            if let LiveEvent::Logged(event) = event
                && let Ok(line) = serde_json::to_string(event)
            {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        match event {
            LiveEvent::StepStarted { step, context_tokens, context_window } => {
                state.step = *step;
                state.context = (*context_tokens, *context_window);
                state.tool = None;
                if self.mode == Mode::Plain {
                    self.line(&mut state, &format!("· step {step}"));
                }
            }
            LiveEvent::ToolStarted { name, input, .. } => {
                let call = describe_call(name, input);
                state.tool = Some(call.clone());
                state.last_output.clear();
                if self.mode == Mode::Plain {
                    self.line(&mut state, &format!("  → {call}"));
                }
            }
            LiveEvent::ToolProgress(progress) => {
                if let Some(last) = progress.text.lines().rev().find(|l| !l.trim().is_empty()) {
                    state.last_output = last.trim().chars().take(60).collect();
                }
            }
            LiveEvent::ModelRetrying { attempt, delay, error } => {
                self.line(
                    &mut state,
                    &format!("  ! model request failed ({error}); retry {attempt} in {:.1}s", delay.as_secs_f64()),
                );
            }
            LiveEvent::ModelDelta(_) => {}
            LiveEvent::Logged(event) => match &event.kind {
                EventKind::AssistantMessage { usage, cost_usd, content, .. } => {
                    state.usage += *usage;
                    state.cost += cost_usd.unwrap_or(0.0);
                    let has_calls = content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
                    let text: String = content
                        .iter()
                        .filter_map(|b| match b {
                            ContentBlock::Text { text } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    // The final answer goes to stdout at the end; text beside tool calls is
                    // the model thinking aloud.
                    if has_calls && !text.trim().is_empty() {
                        let text = text.trim().to_string();
                        self.line(&mut state, &format!("  {text}"));
                    }
                }
                EventKind::ToolResult { name, is_error, duration_ms, .. } => {
                    let mark = if *is_error { "✗" } else { "✓" };
                    if self.mode == Mode::Plain {
                        self.line(&mut state, &format!("    {mark} {name} ({:.1}s)", *duration_ms as f64 / 1000.0));
                    }
                    state.tool = None;
                }
                EventKind::AgentMessage { text } => self.line(&mut state, &format!("rswe: {text}")),
                EventKind::FileSent { path, .. } => self.line(&mut state, &format!("rswe sent a file: {path}")),
                EventKind::TitleChanged { title } => self.line(&mut state, &format!("# {title}")),
                EventKind::Error { message, .. } => self.line(&mut state, &format!("error: {message}")),
                EventKind::ContextCompacted { tokens_before, tokens_after, .. } => self.line(
                    &mut state,
                    &format!("  context compacted: about {}k → {}k tokens", tokens_before / 1000, tokens_after / 1000),
                ),
                _ => {}
            },
        }
        self.status(&mut state);
    }

    /// Removes the status line before the summary.
    pub fn finish(&self) {
        if let Ok(mut state) = self.state.lock()
            && state.status_shown
        {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            state.status_shown = false;
        }
    }
}
