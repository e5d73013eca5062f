//! `shell`: runs commands in the sandbox, in the foreground or in the background.

use crate::excerpt::{human_bytes, human_duration};
use crate::{ProgressSink, Tool, ToolContext, ToolOutput, ToolProgress, parse_input, schema_for};
use rswe_sandbox::{
    BackgroundRequest, BackgroundStatus, CapturedOutput, Ended, ExecOutcome, ExecRequest, OutputChunk, OutputSink,
    Sandbox, SandboxError,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Inactivity timeout when `timeout_secs` is not given.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Longest a foreground command may run, whatever `timeout_secs` says.
pub const HARD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bytes of a background process's output shown by `action: "log"` and `"stop"`.
pub const BACKGROUND_LOG_BYTES: usize = 16 * 1024;

const DESCRIPTION: &str = "Run a bash command in the workspace (the current directory unless `cwd` is given) and \
get its exit code, duration, stdout and stderr. Long output is cut to its start and end; the full output is saved \
to a file whose path is given (read it with the editor's view_range or search it). \
A command is killed after `timeout_secs` (default 60) without printing anything, and after 30 minutes in any case: \
raise timeout_secs for long silent steps. Commands run non-interactively: pass flags such as -y and avoid pagers \
(use `git --no-pager`). \
For servers and watchers, set `background: true`: the tool answers with an id and the first output; then call \
shell with `background_id` and `action: \"log\"` to read its latest output, or `action: \"stop\"` to stop it.";

/// What to do with a background process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Action {
    Log,
    Stop,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The bash command to run. Required unless background_id is given.
    command: Option<String>,
    /// Working directory, relative to the workspace (default: the workspace).
    cwd: Option<String>,
    /// Kill the command after this many seconds without output (default 60).
    timeout_secs: Option<u64>,
    /// Start the command in the background (for servers, watchers) and return at once with its id.
    background: Option<bool>,
    /// A background process's id, to read its output or stop it (with `action`); `command` is then omitted.
    background_id: Option<String>,
    /// With background_id: "log" (default) shows its latest output, "stop" stops it.
    action: Option<Action>,
}

/// The `shell` tool.
pub struct ShellTool {
    schema: Value,
}

impl ShellTool {
    pub fn new() -> Self {
        ShellTool { schema: schema_for::<Input>() }
    }
}

impl Default for ShellTool {
    fn default() -> Self {
        ShellTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for ShellTool {
    fn name(&self) -> &str {
        "shell"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: Input = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let sandbox = context.sandbox.as_ref();
        match (input.command, input.background_id) {
            (Some(_), Some(_)) => ToolOutput::error(
                "give either `command` (to run something) or `background_id` (to read or stop a background process), \
                 not both",
            ),
            (None, None) => ToolOutput::error("`command` is required: the bash command to run"),
            (None, Some(id)) => match input.action.unwrap_or(Action::Log) {
                Action::Log => background_log(sandbox, &id).await,
                Action::Stop => background_stop(sandbox, &id).await,
            },
            (Some(_), None) if input.action.is_some() => {
                ToolOutput::error("`action` applies to a background process: give its `background_id` with it")
            }
            (Some(command), None) if command.trim().is_empty() => {
                ToolOutput::error("the command is empty: give the bash command to run")
            }
            (Some(command), None) if input.background == Some(true) => {
                start_background(sandbox, command, input.cwd).await
            }
            (Some(command), None) => run_foreground(context, command, input.cwd, input.timeout_secs).await,
        }
    }
}

/// The live-output sink that forwards to the tool's progress sink.
fn progress_sink(progress: &ProgressSink, tool_use_id: &str) -> OutputSink {
    let progress = Arc::clone(progress);
    let tool_use_id = tool_use_id.to_string();
    Arc::new(move |chunk: OutputChunk| progress(ToolProgress { tool_use_id: tool_use_id.clone(), text: chunk.text }))
}

async fn run_foreground(
    context: &ToolContext,
    command: String,
    cwd: Option<String>,
    timeout_secs: Option<u64>,
) -> ToolOutput {
    let inactivity = Duration::from_secs(timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS).clamp(1, HARD_TIMEOUT.as_secs()));
    let request = ExecRequest {
        command,
        cwd: cwd.map(PathBuf::from),
        env: Vec::new(),
        inactivity_timeout: inactivity,
        hard_timeout: HARD_TIMEOUT,
    };
    let sink = context.progress.as_ref().map(|progress| progress_sink(progress, &context.tool_use_id));
    match context.sandbox.exec(request, sink, context.cancel.clone()).await {
        Ok(outcome) => render_outcome(&outcome, inactivity),
        Err(error) => ToolOutput::error(format!("the command did not run: {error}")),
    }
}

/// The usual name of a signal number (Linux numbering).
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

fn describe_signal(signal: i32) -> String {
    match signal_name(signal) {
        Some(name) => format!("signal {signal} ({name})"),
        None => format!("signal {signal}"),
    }
}

/// An exit code as people read it: shells report a death by signal `n` as `128 + n`.
fn describe_exit_code(code: i32) -> String {
    match code.checked_sub(128) {
        Some(signal @ 1..=64) if signal_name(signal).is_some() => {
            format!("exit code {code}, i.e. killed by {}", describe_signal(signal))
        }
        _ => format!("exit code {code}"),
    }
}

/// How a foreground command ended, said plainly, and whether that is a tool failure.
fn ending(outcome: &ExecOutcome, inactivity: Duration) -> (String, bool) {
    let took = human_duration(outcome.duration);
    match outcome.ended_by {
        Ended::Exited => {
            let status = match (outcome.exit_code, outcome.signal) {
                (Some(code), _) => describe_exit_code(code),
                (None, Some(signal)) => format!("killed by {}", describe_signal(signal)),
                (None, None) => "ended without an exit code".to_string(),
            };
            (format!("{status} · {took}"), false)
        }
        Ended::InactivityTimeout => (
            format!(
                "killed after {} without output (ran {took} in all). If it needs longer between outputs, raise \
                 timeout_secs; for a server or watcher, use background: true",
                human_duration(inactivity)
            ),
            true,
        ),
        Ended::HardTimeout => (
            format!(
                "killed after running {took}: the limit is {} per command. Run long jobs with background: true and \
                 check on them with action \"log\"",
                human_duration(HARD_TIMEOUT)
            ),
            true,
        ),
        Ended::Cancelled => (format!("cancelled after {took}: the command was stopped before it finished"), true),
    }
}

/// One stream's captured output, with a marker for what was left out.
fn render_stream(name: &str, captured: &CapturedOutput) -> Option<String> {
    if captured.total_bytes == 0 {
        return None;
    }
    let mut out = format!("{name}:\n");
    out.push_str(captured.head.trim_end_matches('\n'));
    if captured.is_truncated() || !captured.tail.is_empty() {
        let where_ = match &captured.full_output {
            Some(path) => format!(
                "the full {name} ({}) is in {}: view it with the editor (view_range) or search it",
                human_bytes(captured.total_bytes),
                path.display()
            ),
            None => "the full output could not be saved".to_string(),
        };
        out.push_str(&format!("\n[… {} left out; {where_} …]\n", human_bytes(captured.omitted_bytes)));
        out.push_str(captured.tail.trim_end_matches('\n'));
    }
    Some(out)
}

fn render_outcome(outcome: &ExecOutcome, inactivity: Duration) -> ToolOutput {
    let (status, is_error) = ending(outcome, inactivity);
    let mut parts = vec![status];
    parts.extend(render_stream("stdout", &outcome.stdout));
    parts.extend(render_stream("stderr", &outcome.stderr));
    if outcome.stdout.total_bytes == 0 && outcome.stderr.total_bytes == 0 {
        parts.push("(no output)".to_string());
    }
    let text = parts.join("\n");
    if is_error { ToolOutput::error(text) } else { ToolOutput::text(text) }
}

/// The error for a failed background operation; an unknown id lists the known ones.
async fn background_error(sandbox: &dyn Sandbox, error: SandboxError) -> ToolOutput {
    if let SandboxError::UnknownBackground(id) = &error {
        let known = sandbox.list_background().await;
        let listing = if known.is_empty() {
            "No background process has been started in this session.".to_string()
        } else {
            let lines: Vec<String> = known
                .iter()
                .map(|info| {
                    let state = match (info.running, info.exit_code) {
                        (true, _) => "running".to_string(),
                        (false, Some(code)) => format!("ended with {}", describe_exit_code(code)),
                        (false, None) => "ended".to_string(),
                    };
                    format!("- {} ({state}): {}", info.id, info.command)
                })
                .collect();
            format!("The background processes are:\n{}", lines.join("\n"))
        };
        return ToolOutput::error(format!("there is no background process `{id}`. {listing}"));
    }
    ToolOutput::error(error.to_string())
}

async fn start_background(sandbox: &dyn Sandbox, command: String, cwd: Option<String>) -> ToolOutput {
    let request = BackgroundRequest { command: command.clone(), cwd: cwd.map(PathBuf::from), ..Default::default() };
    let started = match sandbox.start_background(request).await {
        Ok(started) => started,
        Err(error) => return ToolOutput::error(format!("the command did not start: {error}")),
    };
    let id = &started.id;
    let output = if started.output.trim().is_empty() {
        "(no output yet)".to_string()
    } else {
        started.output.trim_end_matches('\n').to_string()
    };
    match started.exited {
        Some(code) => ToolOutput::text(format!(
            "Background process {id} already ended with {}. Its output:\n{output}",
            describe_exit_code(code)
        )),
        None => ToolOutput::text(format!(
            "Started background process {id}: `{command}`. It keeps running.\nOutput so far:\n{output}\n\
             Read its latest output with shell {{\"background_id\": \"{id}\", \"action\": \"log\"}}; stop it with \
             {{\"background_id\": \"{id}\", \"action\": \"stop\"}}."
        )),
    }
}

fn render_status(id: &str, headline: &str, status: &BackgroundStatus) -> String {
    let state = match (status.running, status.exit_code) {
        (true, _) => "still running".to_string(),
        (false, Some(code)) => format!("ended with {}", describe_exit_code(code)),
        (false, None) => "ended".to_string(),
    };
    let output = if status.output_tail.trim().is_empty() {
        "(no output)".to_string()
    } else {
        status.output_tail.trim_end_matches('\n').to_string()
    };
    format!(
        "{headline} background process {id}: {state}.\nLatest output:\n{output}\n[complete log: {}]",
        status.log_path.display()
    )
}

async fn background_log(sandbox: &dyn Sandbox, id: &str) -> ToolOutput {
    match sandbox.background_output(id, BACKGROUND_LOG_BYTES).await {
        Ok(status) => ToolOutput::text(render_status(id, "The", &status)),
        Err(error) => background_error(sandbox, error).await,
    }
}

async fn background_stop(sandbox: &dyn Sandbox, id: &str) -> ToolOutput {
    match sandbox.stop_background(id).await {
        Ok(status) => ToolOutput::text(render_status(id, "Stopped", &status)),
        Err(error) => background_error(sandbox, error).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_which_signal_an_exit_code_stands_for() {
        assert_eq!(describe_exit_code(1), "exit code 1");
        assert_eq!(describe_exit_code(137), "exit code 137, i.e. killed by signal 9 (SIGKILL)");
        assert_eq!(describe_exit_code(143), "exit code 143, i.e. killed by signal 15 (SIGTERM)");
        assert_eq!(describe_exit_code(255), "exit code 255");
    }
}
