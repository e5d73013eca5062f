//! `rswe bench context`: what each context policy spends on recorded trajectories.
//!
//! For each trajectory and each policy, an in-process fake model server (the Anthropic
//! wire format, with its deterministic prompt-cache simulation) answers a real
//! `rswe_llm::Model` for Claude Sonnet 4.5. The history starts as the agent's starts: its
//! real system prompt, the real built-in tool definitions, the task. At each step the
//! policy shapes the request (compacting first when it says so; the summary is a scripted
//! answer of about 1,500 tokens), the server answers with the trajectory's recorded
//! assistant turn, and the step's tool results enter the history through the policy's
//! `admit`. The usage the server reports is summed and priced from the model catalog.

use super::generator;
use super::trajectory::Trajectory;
use anyhow::{Context as _, Result, bail};
use rswe_agent::context::baseline::{ReferencePolicy, UnmanagedPolicy};
use rswe_agent::context::{ContextInput, ContextPolicy, Shaped, apply_compaction, estimate_tokens};
use rswe_llm::{
    Catalog, ErrorClass, HttpProviderConfig, LlmError, Model, ModelInfo, ModelRequest, ModelResponse, Providers,
    ProvidersConfig, RetryPolicy, Secret, SystemBlock,
};
use rswe_protocol::{ContentBlock, Message, ToolDefinition, Usage};
use rswe_test_support::{FakeModelServer, Response, Script, Turn};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The model whose prices and window the benchmark uses.
pub const MODEL: &str = "anthropic/claude-sonnet-4-5";

/// A fixture has large outputs when one tool result is at least this long.
pub const LARGE_OUTPUT_BYTES: usize = 50_000;

/// Where the committed fixtures are, in the source tree.
pub fn default_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("trajectories")
}

#[derive(clap::Args, Debug)]
pub struct ContextArgs {
    /// The directory of trajectories (*.json) to replay. Default: the fixtures committed in
    /// the source tree (crates/cli/fixtures/trajectories).
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Only this policy (repeatable): rswe, reference, unmanaged.
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
    /// Only the trajectories whose name contains this.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// The context window, in tokens. Default: the model's (200,000).
    #[arg(long)]
    window: Option<u32>,
    /// Exit with status 1 when rswe's policy misses a target.
    #[arg(long)]
    check: bool,
    /// Write the trajectories of the deterministic generator into DIR, and stop.
    #[arg(long, value_name = "DIR")]
    generate: Option<PathBuf>,
}

type MakePolicy = fn() -> Box<dyn ContextPolicy>;

/// Every policy the benchmark knows, rswe's first.
pub fn policies() -> Vec<(&'static str, MakePolicy)> {
    vec![
        ("rswe", || Box::new(rswe_agent::context::RswePolicy::new(rswe_agent::context::EconomySettings::default()))),
        ("reference", || Box::new(ReferencePolicy::new())),
        ("unmanaged", || Box::new(UnmanagedPolicy::new())),
    ]
}

/// What every replay starts from: the agent's system prompt and tools, and the model.
#[derive(Debug, Clone)]
pub struct Setup {
    pub system: Vec<SystemBlock>,
    pub tools: Vec<ToolDefinition>,
    pub info: ModelInfo,
    pub window: u32,
    pub max_output: u32,
}

impl Setup {
    pub fn new(window: Option<u32>) -> Result<Setup> {
        let info = Catalog::built_in().resolve(MODEL)?;
        let registry = rswe_tools::builtin_tools();
        let prompt = rswe_agent::prompt::system_prompt(&rswe_agent::prompt::PromptContext {
            os: "linux".into(),
            workspace: "/workspace".into(),
            date: "2026-03-14".into(),
            tools: registry.names(),
            forge: true,
            network: true,
        })?;
        Ok(Setup {
            system: vec![SystemBlock::new(prompt)],
            tools: registry.definitions(),
            window: window.unwrap_or(info.context_window),
            max_output: rswe_agent::AgentConfig::default().initial_max_tokens,
            info,
        })
    }

    /// Tokens of the system prompt and tool definitions (the estimate policies use).
    pub fn fixed_tokens(&self) -> u64 {
        estimate_tokens(&self.system) + estimate_tokens(&self.tools)
    }
}

/// Where a replay stopped because the provider refused a prompt larger than the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overflow {
    /// The step (1-based; `steps + 1` is the final answer) whose request was refused.
    pub step: usize,
    /// The refused prompt's size, as the provider counted it.
    pub tokens: Option<u64>,
}

/// What one policy spent on one trajectory.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outcome {
    pub policy: String,
    pub requests: u64,
    /// Input neither read from nor written to the cache.
    pub uncached: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    /// Output tokens, summary calls included.
    pub output: u64,
    pub dollars: f64,
    /// Cache reads over all input.
    pub cache_read_share: f64,
    /// The largest prompt sent (all input of one request).
    pub peak_prompt: u64,
    pub window: u32,
    pub compactions: u32,
    /// Steps whose answer arrived (of the trajectory's steps).
    pub steps_done: usize,
    /// Set when the provider refused a prompt as too long: the replay stopped there.
    pub overflow: Option<Overflow>,
    /// How many replays overflowed (in a total over trajectories).
    pub overflows: u32,
    /// Requests the fake server found inconsistent (must be empty).
    pub violations: Vec<String>,
    /// The usage of each request, in order.
    #[serde(skip)]
    pub per_request: Vec<Usage>,
}

impl Outcome {
    fn add(&mut self, usage: &Usage, info: &ModelInfo) {
        self.requests += 1;
        self.uncached += usage.input_tokens;
        self.cache_write += usage.cache_write_tokens;
        self.cache_read += usage.cache_read_tokens;
        self.output += usage.output_tokens;
        self.dollars += info.cost(usage).unwrap_or(0.0);
        self.peak_prompt = self.peak_prompt.max(usage.total_input());
        self.per_request.push(*usage);
    }

    fn finish(&mut self) {
        let input = self.uncached + self.cache_write + self.cache_read;
        self.cache_read_share = if input == 0 { 0.0 } else { self.cache_read as f64 / input as f64 };
    }

    /// Sums outcomes of one policy over several trajectories.
    fn total(policy: &str, outcomes: &[&Outcome]) -> Outcome {
        let mut total = Outcome { policy: policy.to_string(), ..Outcome::default() };
        for o in outcomes {
            total.requests += o.requests;
            total.uncached += o.uncached;
            total.cache_write += o.cache_write;
            total.cache_read += o.cache_read;
            total.output += o.output;
            total.dollars += o.dollars;
            total.peak_prompt = total.peak_prompt.max(o.peak_prompt);
            total.window = o.window;
            total.compactions += o.compactions;
            total.steps_done += o.steps_done;
            total.violations.extend(o.violations.iter().cloned());
            total.overflows += u32::from(o.overflow.is_some());
        }
        total.finish();
        total
    }
}

/// A scripted compaction summary of about 1,500 tokens, written from what the trajectory
/// did up to `step`: the task, files changed, commands run, notes.
pub fn summary_text(trajectory: &Trajectory, step: usize) -> String {
    let done = &trajectory.steps[..step.min(trajectory.steps.len())];
    let mut files: Vec<String> = Vec::new();
    let mut commands: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for s in done {
        for call in &s.assistant.tool_calls {
            let path = call.input.get("path").and_then(|p| p.as_str());
            let command = call.input.get("command").and_then(|c| c.as_str());
            match (call.name.as_str(), command, path) {
                ("editor", Some("str_replace" | "create" | "insert"), Some(path))
                    if !files.iter().any(|f| f == path) =>
                {
                    files.push(path.to_string());
                }
                ("shell", Some(command), _) if !commands.iter().any(|c| c == command) => {
                    commands.push(command.to_string());
                }
                _ => {}
            }
        }
        if let Some(text) = &s.assistant.text {
            notes.push(text.clone());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "## Task\n{}\n", trajectory.task);
    let _ = writeln!(out, "## State after step {step} of the work");
    let _ = writeln!(
        out,
        "The work is under way. The findings so far are below; the decisions taken are recorded with the \
         files they touched. Continue from the open problems.\n"
    );
    let _ = writeln!(out, "## Files changed ({})", files.len());
    for f in files.iter().rev().take(25) {
        let _ = writeln!(out, "- `{f}`");
    }
    let _ = writeln!(out, "\n## Commands run (most recent last)");
    for c in commands.iter().rev().take(15).rev() {
        let _ = writeln!(out, "- `{c}`");
    }
    let _ = writeln!(out, "\n## Decisions and findings");
    let mut body = String::new();
    for note in notes.iter().rev() {
        if out.len() + body.len() > 5_400 {
            break;
        }
        let _ = writeln!(body, "- {note}");
    }
    out.push_str(&body);
    let _ = writeln!(
        out,
        "\n## Todo\n- [x] Read the code involved\n- [>] Make the change and cover it with tests\n- [ ] Run the full \
         suite and the linters\n- [ ] Review the diff and summarise\n\n## Open problems\n- Re-run the failing tests \
         after the last edit and check the build is clean."
    );
    // Pad with the earliest notes to the summary's usual length (~6,000 characters).
    let mut i = 0;
    while out.len() < 6_000 && i < notes.len() {
        let _ = writeln!(out, "- Earlier: {}", notes[i]);
        i += 1;
    }
    while out.len() < 6_000 {
        out.push_str("- (no further notes)\n");
    }
    out
}

fn tool_use_id(step: usize, call: usize) -> String {
    format!("toolu_bench_{step:04}_{call}")
}

async fn model_for(server: &FakeModelServer) -> Result<Model> {
    let config = ProvidersConfig {
        anthropic: HttpProviderConfig {
            api_key: Some(Secret::new("bench-key")),
            base_url: Some(server.anthropic_base_url()),
        },
        ..ProvidersConfig::default()
    };
    let providers = Providers::new(config, Catalog::built_in())?;
    Ok(providers.model(MODEL).await?.with_retry(RetryPolicy::none()))
}

/// The token count of a refused prompt, from the provider's message
/// ("prompt is too long: N tokens > M maximum").
fn refused_tokens(error: &LlmError) -> Option<u64> {
    let message = error.to_string();
    let after = message.split("prompt is too long: ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

enum Sent {
    Answer(ModelResponse),
    Overflow(Option<u64>),
}

async fn send(model: &Model, request: &ModelRequest) -> Result<Sent> {
    match model.complete(request).await {
        Ok(response) => Ok(Sent::Answer(response)),
        Err(error) if error.class() == ErrorClass::ContextWindowExceeded => Ok(Sent::Overflow(refused_tokens(&error))),
        Err(error) => Err(error.into()),
    }
}

/// Replays `trajectory` through `policy`.
pub async fn replay(trajectory: &Trajectory, mut policy: Box<dyn ContextPolicy>, setup: &Setup) -> Result<Outcome> {
    let server =
        FakeModelServer::try_start(Script::new().context_window(u64::from(setup.window)).stream_chunk_chars(1 << 16))
            .await?;
    let model = model_for(&server).await?;
    let mut outcome = Outcome { policy: policy.name().to_string(), window: setup.window, ..Outcome::default() };
    let mut history = vec![Message::user_text(trajectory.task.clone())];
    let steps = trajectory.steps.len();
    'steps: for index in 0..=steps {
        let step = trajectory.steps.get(index);
        // Shape, compacting as often as the policy asks (but not forever).
        let mut compactions_here = 0;
        let request = loop {
            let input = ContextInput {
                system: &setup.system,
                tools: &setup.tools,
                messages: &history,
                window: setup.window,
                max_output: setup.max_output,
                caching: setup.info.caching,
                max_breakpoints: setup.info.max_cache_breakpoints,
            };
            match policy.shape(&input) {
                Shaped::Request(request) => break request,
                Shaped::Compact { request, keep_first, summarise_until } => {
                    compactions_here += 1;
                    if compactions_here > 3 {
                        bail!("{} compacted {compactions_here} times in a row at step {}", outcome.policy, index + 1);
                    }
                    let summary = summary_text(trajectory, index);
                    server.push_turn(Turn::text(summary));
                    match send(&model, &request).await? {
                        Sent::Answer(response) => {
                            outcome.add(&response.usage, &setup.info);
                            outcome.compactions += 1;
                            apply_compaction(&mut history, keep_first, summarise_until, &response.message.text());
                        }
                        Sent::Overflow(tokens) => {
                            outcome.overflow = Some(Overflow { step: index + 1, tokens });
                            outcome.overflows = 1;
                            break 'steps;
                        }
                    }
                }
            }
        };
        let turn = match step {
            Some(step) => {
                let mut response = Response::new();
                if let Some(text) = &step.assistant.text {
                    response = response.text(text.clone());
                }
                for (k, call) in step.assistant.tool_calls.iter().enumerate() {
                    response = response.tool_use_with_id(tool_use_id(index, k), call.name.clone(), call.input.clone());
                }
                Turn::from(response)
            }
            None => Turn::text(trajectory.final_text.clone()),
        };
        server.push_turn(turn);
        let response = match send(&model, &request).await? {
            Sent::Answer(response) => response,
            Sent::Overflow(tokens) => {
                outcome.overflow = Some(Overflow { step: index + 1, tokens });
                outcome.overflows = 1;
                break;
            }
        };
        outcome.add(&response.usage, &setup.info);
        let Some(step) = step else { break };
        outcome.steps_done += 1;
        history.push(response.message);
        let results = step
            .results
            .iter()
            .enumerate()
            .map(|(k, result)| {
                let save_as = format!(".rswe/outputs/step-{:04}-{k}.txt", index + 1);
                let text = policy.admit(&result.tool, result.text.clone(), Some(&save_as));
                ContentBlock::tool_result(tool_use_id(index, k), text, result.is_error)
            })
            .collect();
        history.push(Message::new(rswe_protocol::Role::User, results));
    }
    outcome.violations = server.violations();
    outcome.finish();
    server.shutdown().await;
    Ok(outcome)
}

/// The outcomes of one trajectory, one per policy.
#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryReport {
    pub name: String,
    pub steps: usize,
    pub result_bytes: usize,
    pub large_outputs: bool,
    pub outcomes: Vec<Outcome>,
}

/// A target of the issue, measured.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub window: u32,
    /// Tokens of the system prompt and tool definitions every request starts with.
    pub fixed_tokens: u64,
    pub trajectories: Vec<TrajectoryReport>,
    pub totals: Vec<Outcome>,
    /// rswe's dollars over the reference's, in all and per trajectory.
    pub ratio_total: Option<f64>,
    pub ratio_per_trajectory: Vec<(String, f64)>,
    pub targets: Vec<Target>,
}

/// Runs every policy in `chosen` over every trajectory (the policies of one trajectory in
/// parallel, each with its own server).
pub async fn run(
    trajectories: Vec<Trajectory>,
    chosen: &[(&'static str, MakePolicy)],
    setup: &Setup,
) -> Result<Report> {
    let setup = Arc::new(setup.clone());
    let mut reports = Vec::new();
    for trajectory in trajectories {
        let trajectory = Arc::new(trajectory);
        let mut tasks = Vec::new();
        for (name, make) in chosen {
            let trajectory = trajectory.clone();
            let setup = setup.clone();
            let make = *make;
            let name = *name;
            tasks.push(tokio::spawn(async move {
                replay(&trajectory, make(), &setup)
                    .await
                    .with_context(|| format!("replaying {} through {name}", trajectory.name))
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await??);
        }
        let largest = trajectory.steps.iter().flat_map(|s| &s.results).map(|r| r.text.len()).max().unwrap_or(0);
        reports.push(TrajectoryReport {
            name: trajectory.name.clone(),
            steps: trajectory.steps.len(),
            result_bytes: trajectory.result_bytes(),
            large_outputs: largest >= LARGE_OUTPUT_BYTES,
            outcomes,
        });
    }
    let totals: Vec<Outcome> = chosen
        .iter()
        .map(|(name, _)| {
            let outcomes: Vec<&Outcome> =
                reports.iter().flat_map(|r| r.outcomes.iter()).filter(|o| o.policy == *name).collect();
            Outcome::total(name, &outcomes)
        })
        .collect();
    let dollars = |outcomes: &[Outcome], policy: &str| outcomes.iter().find(|o| o.policy == policy).map(|o| o.dollars);
    let ratio = |outcomes: &[Outcome]| match (dollars(outcomes, "rswe"), dollars(outcomes, "reference")) {
        (Some(ours), Some(reference)) if reference > 0.0 => Some(ours / reference),
        _ => None,
    };
    let ratio_total = ratio(&totals);
    let ratio_per_trajectory: Vec<(String, f64)> =
        reports.iter().filter_map(|r| ratio(&r.outcomes).map(|x| (r.name.clone(), x))).collect();
    let targets = targets(&reports, &totals, ratio_total);
    Ok(Report {
        model: setup.info.id.clone(),
        window: setup.window,
        fixed_tokens: setup.fixed_tokens(),
        trajectories: reports,
        totals,
        ratio_total,
        ratio_per_trajectory,
        targets,
    })
}

/// The targets for rswe's policy, when both it and the reference ran.
fn targets(reports: &[TrajectoryReport], totals: &[Outcome], ratio_total: Option<f64>) -> Vec<Target> {
    let Some(ratio_total) = ratio_total else { return Vec::new() };
    let Some(ours) = totals.iter().find(|o| o.policy == "rswe") else { return Vec::new() };
    let mut out = vec![Target {
        target: "total dollars ≤ 0.5× reference".into(),
        measured: format!("{ratio_total:.3}×"),
        met: ratio_total <= 0.5,
    }];
    let pair = |r: &TrajectoryReport| {
        let ours = r.outcomes.iter().find(|o| o.policy == "rswe")?;
        let reference = r.outcomes.iter().find(|o| o.policy == "reference")?;
        Some((ours.dollars, reference.dollars))
    };
    let mut worst_big = (String::new(), 0.0f64, true);
    let mut worst_any = (String::new(), 0.0f64, true);
    for r in reports {
        let Some((ours, reference)) = pair(r) else { continue };
        let ratio = if reference > 0.0 { ours / reference } else { 1.0 };
        if (r.steps >= 60 || r.large_outputs) && ratio > worst_big.1 {
            worst_big = (r.name.clone(), ratio, ratio <= 0.6);
        }
        if ratio > worst_any.1 {
            worst_any = (r.name.clone(), ratio, ours <= reference);
        }
    }
    out.push(Target {
        target: "≤ 0.6× reference on every fixture of 60+ steps or with large outputs".into(),
        measured: format!("worst {:.3}× ({})", worst_big.1, worst_big.0),
        met: worst_big.2,
    });
    out.push(Target {
        target: "never costlier than the reference on any fixture".into(),
        measured: format!("worst {:.3}× ({})", worst_any.1, worst_any.0),
        met: worst_any.2,
    });
    out.push(Target {
        target: "cache-read share of input ≥ 90% overall".into(),
        measured: format!("{:.1}%", ours.cache_read_share * 100.0),
        met: ours.cache_read_share >= 0.9,
    });
    out.push(Target {
        target: "no prompt exceeds the window".into(),
        measured: format!("peak {} of {}", ours.peak_prompt, ours.window),
        met: ours.peak_prompt <= u64::from(ours.window) && ours.overflow.is_none(),
    });
    let violations: usize =
        reports.iter().flat_map(|r| &r.outcomes).filter(|o| o.policy == "rswe").map(|o| o.violations.len()).sum();
    out.push(Target {
        target: "no request fails the fake server's consistency check".into(),
        measured: format!("{violations} violations"),
        met: violations == 0,
    });
    out
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table(out: &mut String, outcomes: &[Outcome], steps: Option<usize>) {
    let _ = writeln!(
        out,
        "  {:<10} {:>8} {:>12} {:>12} {:>13} {:>10} {:>10} {:>7} {:>19} {:>5}",
        "policy",
        "requests",
        "uncached",
        "cache write",
        "cache read",
        "output",
        "dollars",
        "read %",
        "peak / window",
        "comp."
    );
    for o in outcomes {
        let peak = format!("{} / {}", thousands(o.peak_prompt), thousands(u64::from(o.window)));
        let _ = write!(
            out,
            "  {:<10} {:>8} {:>12} {:>12} {:>13} {:>10} {:>10} {:>6.1}% {:>19} {:>5}",
            o.policy,
            o.requests,
            thousands(o.uncached),
            thousands(o.cache_write),
            thousands(o.cache_read),
            thousands(o.output),
            format!("${:.4}", o.dollars),
            o.cache_read_share * 100.0,
            peak,
            o.compactions,
        );
        if steps.is_none() && o.overflows > 0 {
            let _ = write!(out, "  overflowed in {} trajectories (counted up to the overflow)", o.overflows);
        }
        if let Some(overflow) = o.overflow.as_ref().filter(|_| steps.is_some()) {
            let tokens = overflow.tokens.map_or_else(String::new, |t| format!(": {} tokens", thousands(t)));
            let of = steps.map_or_else(String::new, |s| format!(" of {s}"));
            let _ = write!(out, "  overflow at step {}{of}{tokens}; stopped", overflow.step);
        }
        if !o.violations.is_empty() {
            let _ = write!(out, "  {} VIOLATIONS: {}", o.violations.len(), o.violations.join("; "));
        }
        out.push('\n');
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rswe bench context: {} ($3/M input, $15/M output, $3.75/M cache write, $0.30/M cache read), window {}, \
         system prompt and tools {} tokens\n",
        report.model,
        thousands(u64::from(report.window)),
        thousands(report.fixed_tokens)
    );
    for r in &report.trajectories {
        let _ = writeln!(
            out,
            "{} · {} steps · {:.1} MB of tool output{}",
            r.name,
            r.steps,
            r.result_bytes as f64 / 1e6,
            if r.large_outputs { " · large outputs" } else { "" }
        );
        table(&mut out, &r.outcomes, Some(r.steps));
        if let Some((_, ratio)) = report.ratio_per_trajectory.iter().find(|(n, _)| *n == r.name) {
            let _ = writeln!(out, "  rswe / reference: {ratio:.3}×");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "All trajectories");
    table(&mut out, &report.totals, None);
    if let Some(ratio) = report.ratio_total {
        let _ = writeln!(out, "  rswe / reference: {ratio:.3}×");
    }
    if !report.targets.is_empty() {
        let _ = writeln!(out, "\nTargets for rswe's policy");
        for t in &report.targets {
            let _ = writeln!(out, "  [{}] {}: {}", if t.met { "met" } else { "MISSED" }, t.target, t.measured);
        }
    }
    out
}

/// Writes the generator's trajectories into `dir` and says what they are.
pub fn write_fixtures(dir: &Path, setup: &Setup) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = String::new();
    let _ = writeln!(out, "{:<28} {:>6} {:>12} {:>18}", "trajectory", "steps", "tool output", "unmanaged tokens");
    for recipe in generator::recipes() {
        let trajectory = generator::generate(&recipe);
        let path = dir.join(format!("{}.json", trajectory.name));
        std::fs::write(&path, trajectory.to_json()?).with_context(|| format!("cannot write {}", path.display()))?;
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>9.1} MB {:>18}",
            trajectory.name,
            trajectory.steps.len(),
            trajectory.result_bytes() as f64 / 1e6,
            thousands(unmanaged_tokens(&trajectory, setup))
        );
    }
    let _ = writeln!(
        out,
        "\n(unmanaged tokens: the whole history at the end, system prompt and tools included, estimated)"
    );
    Ok(out)
}

/// The estimated size of the whole, unmanaged history at the end of a trajectory.
pub fn unmanaged_tokens(trajectory: &Trajectory, setup: &Setup) -> u64 {
    let mut total = setup.fixed_tokens() + estimate_tokens(&Message::user_text(trajectory.task.clone()));
    for (index, step) in trajectory.steps.iter().enumerate() {
        let mut content = Vec::new();
        if let Some(text) = &step.assistant.text {
            content.push(ContentBlock::text(text.clone()));
        }
        for (k, call) in step.assistant.tool_calls.iter().enumerate() {
            content.push(ContentBlock::ToolUse {
                id: tool_use_id(index, k),
                name: call.name.clone(),
                input: call.input.clone(),
            });
        }
        total += estimate_tokens(&Message::new(rswe_protocol::Role::Assistant, content));
        let results: Vec<ContentBlock> = step
            .results
            .iter()
            .enumerate()
            .map(|(k, r)| ContentBlock::tool_result(tool_use_id(index, k), r.text.clone(), r.is_error))
            .collect();
        total += estimate_tokens(&Message::new(rswe_protocol::Role::User, results));
    }
    total
}

pub async fn bench(args: ContextArgs) -> Result<u8> {
    let setup = Setup::new(args.window)?;
    if let Some(dir) = &args.generate {
        let summary = write_fixtures(dir, &setup)?;
        print!("{summary}");
        return Ok(0);
    }
    let dir = args.fixtures.clone().unwrap_or_else(default_fixtures);
    let mut trajectories = Trajectory::load_dir(&dir)?;
    if let Some(only) = &args.only {
        trajectories.retain(|t| t.name.contains(only.as_str()));
        if trajectories.is_empty() {
            bail!("no trajectory in {} has `{only}` in its name", dir.display());
        }
    }
    let all = policies();
    let chosen: Vec<(&'static str, MakePolicy)> = if args.policies.is_empty() {
        all
    } else {
        for name in &args.policies {
            if !all.iter().any(|(n, _)| n == name) {
                let known: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
                bail!("there is no policy `{name}`; the policies are {}", known.join(", "));
            }
        }
        all.into_iter().filter(|(n, _)| args.policies.iter().any(|p| p == n)).collect()
    };
    let report = run(trajectories, &chosen, &setup).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    let violations = report.trajectories.iter().flat_map(|r| &r.outcomes).any(|o| !o.violations.is_empty());
    let missed = report.targets.iter().any(|t| !t.met);
    Ok(if violations || (args.check && missed) { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Trajectory {
        generator::generate(&generator::test_recipe(14))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_baselines_replay_a_small_trajectory_plausibly() {
        let setup = Setup::new(None).unwrap();
        let trajectory = small();
        for policy in [Box::new(ReferencePolicy::new()) as Box<dyn ContextPolicy>, Box::new(UnmanagedPolicy::new())] {
            let outcome = replay(&trajectory, policy, &setup).await.unwrap();
            assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
            assert_eq!(outcome.overflow, None);
            assert_eq!(outcome.steps_done, 14);
            assert_eq!(outcome.requests, 15, "one request per step and the final answer");
            assert_eq!(outcome.compactions, 0);
            // The first request writes the prefix; every later one reads it back.
            assert_eq!(outcome.per_request[0].cache_read_tokens, 0);
            assert!(outcome.per_request[0].cache_write_tokens > 0);
            for (n, usage) in outcome.per_request.iter().enumerate().skip(1) {
                assert!(usage.cache_read_tokens > 0, "request {} read nothing from the cache", n + 1);
                assert!(usage.cache_read_tokens >= outcome.per_request[n - 1].cache_read_tokens);
            }
            assert!(outcome.cache_read_share > 0.7, "{}", outcome.cache_read_share);
            assert!(outcome.peak_prompt <= u64::from(setup.window));
            assert!(outcome.peak_prompt > setup.fixed_tokens());
            let price = setup.info.price.unwrap();
            let expected = (outcome.uncached as f64 * price.input
                + outcome.cache_write as f64 * price.cache_write
                + outcome.cache_read as f64 * price.cache_read
                + outcome.output as f64 * price.output)
                / 1e6;
            assert!((outcome.dollars - expected).abs() < 1e-9);
            assert!(outcome.dollars > 0.0);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unmanaged_overflows_a_tiny_window_and_the_reference_stays_inside_it() {
        let probe = Setup::new(None).unwrap();
        let trajectory = small();
        let full = unmanaged_tokens(&trajectory, &probe);
        // A window a third of the way from the fixed prefix to the whole history.
        let window = (probe.fixed_tokens() + (full - probe.fixed_tokens()) / 3) as u32;
        let setup = Setup::new(Some(window)).unwrap();

        let unmanaged = replay(&trajectory, Box::new(UnmanagedPolicy::new()), &setup).await.unwrap();
        let overflow = unmanaged.overflow.clone().expect("the unmanaged history outgrows the window");
        assert!(overflow.step <= 14, "{overflow:?}");
        assert!(overflow.tokens.unwrap() > u64::from(window));
        assert_eq!(unmanaged.steps_done, overflow.step - 1);
        assert!(unmanaged.violations.is_empty(), "{:?}", unmanaged.violations);

        let reference = replay(&trajectory, Box::new(ReferencePolicy::new()), &setup).await.unwrap();
        assert_eq!(reference.overflow, None, "middle-out keeps the reference inside the window");
        assert_eq!(reference.steps_done, 14);
        assert!(reference.peak_prompt <= u64::from(window), "{} > {window}", reference.peak_prompt);
        assert!(reference.violations.is_empty(), "{:?}", reference.violations);
        // Dropping the middle breaks the cache: the reference writes more than it would
        // without the window.
        assert!(reference.cache_write > 0);
    }

    /// Compacts whenever the history is longer than `limit` messages: keeps the task and
    /// the last exchange, summarises the rest.
    struct CompactEvery {
        limit: usize,
        inner: UnmanagedPolicy,
    }

    impl ContextPolicy for CompactEvery {
        fn name(&self) -> &'static str {
            "compact-every"
        }

        fn admit(&self, tool: &str, text: String, save_as: Option<&str>) -> String {
            self.inner.admit(tool, text, save_as)
        }

        fn shape(&mut self, input: &ContextInput<'_>) -> Shaped {
            let len = input.messages.len();
            if len > self.limit {
                let mut messages = input.messages.to_vec();
                if let Some(last) = messages.last_mut() {
                    last.content.push(ContentBlock::text("Summarise the work so far."));
                }
                let request = ModelRequest {
                    system: input.system.to_vec(),
                    messages,
                    tools: input.tools.to_vec(),
                    max_tokens: Some(4096),
                    ..ModelRequest::default()
                };
                return Shaped::Compact { request, keep_first: 1, summarise_until: len - 2 };
            }
            self.inner.shape(input)
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn compactions_are_sent_counted_and_applied() {
        let setup = Setup::new(None).unwrap();
        let trajectory = small();
        let policy = CompactEvery { limit: 9, inner: UnmanagedPolicy::new() };
        let outcome = replay(&trajectory, Box::new(policy), &setup).await.unwrap();
        assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
        assert_eq!(outcome.steps_done, 14);
        assert_eq!(outcome.compactions, 3, "after steps 5, 9 and 13");
        assert_eq!(outcome.requests, 15 + 3);
        // Each summary is ~1,500 output tokens, on top of the steps' own output.
        let unmanaged = replay(&trajectory, Box::new(UnmanagedPolicy::new()), &setup).await.unwrap();
        assert!(outcome.output >= unmanaged.output + 3 * 1_400, "{} vs {}", outcome.output, unmanaged.output);
        assert!(outcome.peak_prompt < unmanaged.peak_prompt);
    }

    #[test]
    fn the_summary_is_about_fifteen_hundred_tokens() {
        let trajectory = small();
        let text = summary_text(&trajectory, 10);
        assert!((5_800..7_500).contains(&text.len()), "{}", text.len());
        assert!(text.contains(&trajectory.task));
    }

    #[test]
    fn the_committed_fixtures_are_what_the_generator_writes() {
        let dir = default_fixtures();
        let recipes = generator::recipes();
        assert!(recipes.len() >= 6);
        for recipe in recipes {
            let trajectory = generator::generate(&recipe);
            trajectory.check().unwrap();
            let path = dir.join(format!("{}.json", trajectory.name));
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; run `rswe bench context --generate {}`", path.display(), dir.display())
            });
            assert!(
                committed == trajectory.to_json().unwrap(),
                "{} differs from the generator's output: run `rswe bench context --generate {}`",
                path.display(),
                dir.display()
            );
        }
    }

    #[test]
    fn the_fixtures_span_the_sizes_the_benchmark_needs() {
        let setup = Setup::new(None).unwrap();
        let trajectories: Vec<Trajectory> = generator::recipes().iter().map(generator::generate).collect();
        let steps: Vec<usize> = trajectories.iter().map(|t| t.steps.len()).collect();
        assert!(steps.contains(&20) && steps.contains(&300), "{steps:?}");
        for wanted in [60, 120, 200] {
            assert!(steps.iter().any(|&s| s.abs_diff(wanted) <= wanted / 10), "no trajectory of ~{wanted} steps");
        }
        let small_only = trajectories
            .iter()
            .any(|t| t.steps.len() <= 20 && t.steps.iter().flat_map(|s| &s.results).all(|r| r.text.len() < 4_000));
        assert!(small_only, "a short task with only small outputs");
        let large = trajectories
            .iter()
            .any(|t| t.steps.iter().flat_map(|s| &s.results).any(|r| r.text.len() >= LARGE_OUTPUT_BYTES));
        assert!(large, "a trajectory with large outputs");
        let overflowing = trajectories.iter().filter(|t| unmanaged_tokens(t, &setup) > 200_000).count();
        assert!(overflowing >= 1, "a trajectory outgrows a 200k window without management");
    }
}
