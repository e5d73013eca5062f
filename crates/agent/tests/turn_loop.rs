//! The turn loop against the fake model server, a real local sandbox and the built-in
//! tools: the log it writes, the requests the model receives, and how it stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rswe_agent::{Agent, AgentConfig, LiveEvent, MemoryLog, SessionLog, TurnEnd};
use rswe_llm::{Catalog, HttpProviderConfig, Model, ProvidersConfig, RetryPolicy, Secret, Timeouts};
use rswe_protocol::{ContentBlock, Event, EventKind, SessionId, SessionStatus, ToolResultContent};
use rswe_sandbox::Sandbox;
use rswe_test_support::{ErrorKind, FakeModelServer, Response, Script, StopReason, Turn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Harness {
    server: FakeModelServer,
    log: Arc<MemoryLog>,
    session: SessionId,
    sandbox: Arc<dyn Sandbox>,
    live: Option<mpsc::UnboundedReceiver<LiveEvent>>,
    agent: Agent,
    _dir: tempfile::TempDir,
}

async fn model_with_window(server: &FakeModelServer, window: Option<u32>) -> Model {
    let config = ProvidersConfig {
        anthropic: HttpProviderConfig {
            api_key: Some(Secret::new("test-key")),
            base_url: Some(server.anthropic_base_url()),
        },
        ..Default::default()
    };
    let mut catalog = Catalog::built_in();
    if let Some(window) = window {
        let entry = rswe_llm::CatalogEntry {
            ids: vec!["anthropic/claude-sonnet-4-5".into()],
            context_window: Some(window),
            ..Default::default()
        };
        catalog.extend([entry]).unwrap();
    }
    let providers = rswe_llm::Providers::new(config, catalog).unwrap();
    providers
        .model("anthropic/claude-sonnet-4-5")
        .await
        .unwrap()
        .with_retry(RetryPolicy::none())
        .with_timeouts(Timeouts { response: Duration::from_secs(10), idle: Duration::from_secs(10) })
}

async fn harness(turns: Vec<Turn>, config: AgentConfig) -> Harness {
    harness_with_window(turns, config, None).await
}

async fn harness_with_window(turns: Vec<Turn>, config: AgentConfig, window: Option<u32>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        rswe_sandbox::LocalSandbox::new(rswe_sandbox::LocalSandboxConfig::new(dir.path().join("session"))).unwrap();
    let sandbox: Arc<dyn Sandbox> = Arc::new(sandbox);
    let server = FakeModelServer::start(Script::new().turns(turns)).await;
    let log = Arc::new(MemoryLog::new());
    let session = SessionId::new();
    let (sender, live) = mpsc::unbounded_channel();
    let sink: rswe_agent::LiveSink = Arc::new(move |event| {
        let _ = sender.send(event);
    });
    let config = AgentConfig { failure_backoff: Duration::from_millis(1), ..config };
    let agent = Agent::new(
        session.clone(),
        model_with_window(&server, window).await,
        rswe_tools::builtin_tools(),
        sandbox.clone(),
        log.clone(),
        sink,
        config,
    )
    .unwrap();
    Harness { server, log, session, sandbox, live: Some(live), agent, _dir: dir }
}

impl Harness {
    async fn say(&self, text: &str) {
        self.log
            .append(&self.session, EventKind::UserMessage { content: vec![ContentBlock::text(text)], author: None })
            .await
            .unwrap();
    }

    fn events(&self) -> Vec<Event> {
        self.log.events(&self.session)
    }

    fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| serde_json::to_value(&e.kind).unwrap()["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// The tool results of the last request the model received, as (text, is_error).
    fn last_results(&self) -> Vec<(String, bool)> {
        let requests = self.server.requests();
        let body = &requests.last().unwrap().body;
        let last = body["messages"].as_array().unwrap().last().unwrap();
        last["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| (b["content"][0]["text"].as_str().unwrap_or_default().to_string(), b["is_error"] == true))
            .collect()
    }

    fn take_live(&mut self) -> mpsc::UnboundedReceiver<LiveEvent> {
        self.live.take().unwrap()
    }
}

/// Waits (bounded) for the live event `pick` accepts.
async fn wait_for(live: &mut mpsc::UnboundedReceiver<LiveEvent>, mut pick: impl FnMut(&LiveEvent) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = live.recv().await {
            if pick(&event) {
                return;
            }
        }
    })
    .await
    .expect("the live event never came");
}

fn shell(command: &str) -> Response {
    Response::new().tool_use("shell", json!({ "command": command }))
}

fn text_of(result: &Value) -> String {
    result.to_string()
}

#[tokio::test]
async fn a_turn_runs_tools_and_ends_with_the_answer() {
    let mut h = harness(
        vec![
            Response::new()
                .text("Let me check.")
                .tool_use("shell", json!({"command": "echo hello > greeting.txt && cat greeting.txt"}))
                .tool_use("set_title", json!({"title": "Say hello"}))
                .into(),
            Response::new().tool_use("send_message", json!({"message": "Wrote the greeting."})).into(),
            Turn::text("Done: greeting.txt says hello."),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("write a greeting").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(end, TurnEnd::Finished { text: "Done: greeting.txt says hello.".into() });
    assert_eq!(std::fs::read_to_string(h.sandbox.workspace().join("greeting.txt")).unwrap(), "hello\n");
    assert_eq!(
        h.kinds(),
        [
            "user_message",
            "status_changed",
            "assistant_message",
            "tool_result",
            "title_changed",
            "tool_result",
            "assistant_message",
            "agent_message",
            "tool_result",
            "assistant_message",
            "status_changed"
        ]
    );
    let results = h.server.requests()[1].body.clone();
    assert!(text_of(&results).contains("hello"), "the shell output reached the model");
    let events = h.events();
    assert!(matches!(events.last().unwrap().kind, EventKind::StatusChanged { status: SessionStatus::Waiting, .. }));
    // The stable prefix is cached and the conversation is cached at its end.
    let body = &h.server.requests()[2].body;
    assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
    assert!(h.server.requests()[2].usage.unwrap().cache_read_tokens > 0);
    h.server.assert_no_violations();
    // Nothing left waiting: running again does nothing.
    assert_eq!(h.agent.run(CancellationToken::new()).await.unwrap(), TurnEnd::Idle);
    let mut live = h.take_live();
    wait_for(&mut live, |e| matches!(e, LiveEvent::ToolStarted { name, .. } if name == "shell")).await;
}

#[tokio::test]
async fn a_log_with_an_unanswered_call_is_repaired_and_continued() {
    let h = harness(vec![Turn::text("Picked up where I left off.")], AgentConfig::default()).await;
    h.say("do it").await;
    // A previous process asked for two tools and died after the first result.
    h.log
        .append(
            &h.session,
            EventKind::AssistantMessage {
                content: vec![
                    ContentBlock::ToolUse {
                        id: "toolu_a".into(),
                        name: "shell".into(),
                        input: json!({"command": "true"}),
                    },
                    ContentBlock::ToolUse {
                        id: "toolu_b".into(),
                        name: "shell".into(),
                        input: json!({"command": "sleep 100"}),
                    },
                ],
                model: "anthropic/claude-sonnet-4-5".into(),
                stop_reason: "tool_use".into(),
                usage: Default::default(),
                cost_usd: Some(0.01),
                request_seq: None,
            },
        )
        .await
        .unwrap();
    h.log
        .append(
            &h.session,
            EventKind::ToolResult {
                tool_use_id: "toolu_a".into(),
                name: "shell".into(),
                content: vec![ToolResultContent::Text { text: "exit 0".into() }],
                is_error: false,
                duration_ms: 3,
            },
        )
        .await
        .unwrap();
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(end, TurnEnd::Finished { text: "Picked up where I left off.".into() });
    let results = h.last_results();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], ("exit 0".to_string(), false));
    assert!(results[1].0.starts_with("interrupted"), "{results:?}");
    assert!(results[1].1);
    // The repair is in the log, not only in the request.
    let repaired = h
        .events()
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::ToolResult { tool_use_id, .. } if tool_use_id == "toolu_b"))
        .count();
    assert_eq!(repaired, 1);
    h.server.assert_no_violations();
}

#[tokio::test]
async fn an_interrupt_stops_the_running_tool_and_skips_the_rest() {
    let mut h = harness(
        vec![
            Response::new()
                .tool_use("shell", json!({"command": "sleep 60"}))
                .tool_use("shell", json!({"command": "echo never > never.txt"}))
                .into(),
            Turn::text("Stopped as you asked."),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("take your time").await;
    let mut live = h.take_live();
    let interrupt = CancellationToken::new();
    let trigger = interrupt.clone();
    let (log, session) = (h.log.clone(), h.session.clone());
    let (end, ()) = tokio::join!(h.agent.run(interrupt), async {
        wait_for(&mut live, |e| matches!(e, LiveEvent::ToolStarted { .. })).await;
        // A front end persists the interrupt, then signals it.
        log.append(&session, EventKind::Interrupted { by: Some("test".into()) }).await.unwrap();
        trigger.cancel();
    });
    assert_eq!(end.unwrap(), TurnEnd::Interrupted);
    assert!(!h.sandbox.workspace().join("never.txt").exists(), "the second call never ran");
    let results: Vec<(bool, String)> = h
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ToolResult { is_error, content, .. } => Some((*is_error, format!("{content:?}"))),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[1].1.contains("skipped: interrupted"), "{results:?}");
    assert!(matches!(h.events().last().unwrap().kind, EventKind::StatusChanged { status: SessionStatus::Idle, .. }));

    // The person speaks again: the conversation carries on, valid.
    h.say("carry on").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(end, TurnEnd::Finished { text: "Stopped as you asked.".into() });
    let last = text_of(&h.server.requests()[1].body["messages"]);
    assert!(last.contains("The user interrupted you") && last.contains("carry on"), "{last}");
    h.server.assert_no_violations();
}

#[tokio::test]
async fn steering_arrives_after_the_tool_results_of_the_current_step() {
    let mut h = harness(
        vec![shell("while [ ! -f go ]; do sleep 0.02; done; echo released").into(), Turn::text("Noted both.")],
        AgentConfig::default(),
    )
    .await;
    h.say("wait for the file").await;
    let agent_log = h.log.clone();
    let session = h.session.clone();
    let workspace = h.sandbox.workspace().to_path_buf();
    let mut live = h.take_live();
    let (end, ()) = tokio::join!(h.agent.run(CancellationToken::new()), async {
        // Steer while the tool runs, then let it finish.
        wait_for(&mut live, |e| matches!(e, LiveEvent::ToolStarted { .. })).await;
        for text in ["also update the docs", "and the changelog"] {
            agent_log
                .append(&session, EventKind::UserMessage { content: vec![ContentBlock::text(text)], author: None })
                .await
                .unwrap();
        }
        std::fs::write(workspace.join("go"), "").unwrap();
    });
    assert_eq!(end.unwrap(), TurnEnd::Finished { text: "Noted both.".into() });
    let requests = h.server.requests();
    let last = requests.last().unwrap().body["messages"].as_array().unwrap().last().unwrap().clone();
    let blocks = last["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "tool_result");
    assert!(text_of(&blocks[0]).contains("released"));
    assert_eq!(blocks[1]["text"], "also update the docs");
    assert_eq!(blocks[2]["text"], "and the changelog");
    h.server.assert_no_violations();
}

#[tokio::test]
async fn an_answer_cut_by_the_output_limit_is_asked_again_with_a_larger_one() {
    let h = harness(
        vec![
            Response::new().text("This answer is cut").stop_reason(StopReason::MaxTokens).into(),
            Turn::text("The whole answer."),
        ],
        AgentConfig { initial_max_tokens: 1000, ..AgentConfig::default() },
    )
    .await;
    h.say("explain").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(end, TurnEnd::Finished { text: "The whole answer.".into() });
    let requests = h.server.requests();
    assert_eq!(requests[0].body["max_tokens"], 1000);
    assert_eq!(requests[1].body["max_tokens"], 2000);
    let answers = h.events().iter().filter(|e| matches!(e.kind, EventKind::AssistantMessage { .. })).count();
    assert_eq!(answers, 1, "the cut answer is not kept");
}

#[tokio::test]
async fn repeated_failures_of_one_kind_trip_the_circuit_breaker() {
    let h = harness(
        vec![
            Turn::error(ErrorKind::Overloaded),
            Turn::error(ErrorKind::Overloaded),
            Turn::error(ErrorKind::Overloaded),
            Turn::text("never reached"),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("hi").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let TurnEnd::Failed { message, .. } = end else { panic!("{end:?}") };
    assert!(message.contains("3 times in a row"), "{message}");
    assert_eq!(h.server.requests().len(), 3);
    let errors = h.events().iter().filter(|e| matches!(e.kind, EventKind::Error { .. })).count();
    assert_eq!(errors, 3);
    assert!(matches!(h.events().last().unwrap().kind, EventKind::StatusChanged { status: SessionStatus::Failed, .. }));
}

#[tokio::test]
async fn bad_credentials_stop_at_once_with_what_to_do() {
    let h = harness(vec![Turn::error(ErrorKind::Unauthorized)], AgentConfig::default()).await;
    h.say("hi").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let TurnEnd::Failed { message, .. } = end else { panic!("{end:?}") };
    assert!(message.contains("credentials"), "{message}");
    assert_eq!(h.server.requests().len(), 1);
}

#[tokio::test]
async fn the_same_call_with_the_same_result_earns_a_nudge_then_a_stop() {
    let same = || Turn::from(Response::new().tool_use("think", json!({"thought": "maybe try again"})));
    let h = harness(
        (0..8).map(|_| same()).collect(),
        AgentConfig { repeat_nudge: 3, repeat_stop: 5, ..AgentConfig::default() },
    )
    .await;
    h.say("go").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let TurnEnd::Failed { class, .. } = end else { panic!("{end:?}") };
    assert_eq!(class, "loop");
    let requests = h.server.requests();
    assert_eq!(requests.len(), 5);
    let nudged = text_of(&requests[3].body["messages"]);
    assert!(nudged.contains("same `think` call"), "the 4th request carries the nudge");
    assert!(!text_of(&requests[2].body["messages"]).contains("same `think` call"));
}

#[tokio::test]
async fn budgets_stop_the_turn_and_say_so() {
    let h = harness(
        (0..5).map(|i| Turn::from(shell(&format!("echo {i}")))).collect(),
        AgentConfig { max_steps: Some(2), ..AgentConfig::default() },
    )
    .await;
    h.say("loop").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let TurnEnd::BudgetReached { reason } = end else { panic!("{end:?}") };
    assert!(reason.contains("step budget") && reason.contains("--max-steps"), "{reason}");
    assert_eq!(h.server.requests().len(), 2);

    let h = harness(
        (0..5).map(|i| Turn::from(shell(&format!("echo {i}")))).collect(),
        AgentConfig { max_cost_usd: Some(0.000_001), ..AgentConfig::default() },
    )
    .await;
    h.say("loop").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let TurnEnd::BudgetReached { reason } = end else { panic!("{end:?}") };
    assert!(reason.contains("cost budget"), "{reason}");
    assert_eq!(h.server.requests().len(), 1);
}

#[tokio::test]
async fn invalid_tool_input_becomes_an_error_the_model_can_fix() {
    let h = harness(
        vec![
            Response::new().tool_use("shell", json!({"cmd": "ls"})).into(),
            Response::new().tool_use("no_such_tool", json!({})).into(),
            Turn::text("ok"),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("go").await;
    h.agent.run(CancellationToken::new()).await.unwrap();
    let requests = h.server.requests();
    let first = text_of(&requests[1].body["messages"]);
    assert!(first.contains("invalid input for shell") && first.contains("`cmd`"), "{first}");
    let second = text_of(&requests[2].body["messages"]);
    assert!(second.contains("there is no tool named `no_such_tool`"), "{second}");
    h.server.assert_no_violations();
}

/// The script of the long session: 6 steps with large outputs (masked later), then
/// steps with medium outputs (too small to mask) until compaction is needed.
fn long_session_script(summary_at: Option<usize>) -> Vec<Turn> {
    let mut turns: Vec<Turn> = (0..6)
        .map(|i| Turn::from(shell(&format!("echo big {i}; head -c 5000 /dev/zero | tr '\\0' 'a'"))))
        .chain((0..20).map(|i| Turn::from(shell(&format!("echo medium {i}; head -c 1500 /dev/zero | tr '\\0' 'b'")))))
        .collect();
    turns.push(Turn::text("All done."));
    if let Some(index) = summary_at {
        turns.insert(index, Turn::text("## Task\nRun the steps.\n## Findings\nSteps 0-9 printed their output."));
    }
    turns
}

fn long_session_config() -> AgentConfig {
    let settings = rswe_agent::context::EconomySettings {
        result_max_tokens: 600,
        mask_trigger_tokens: 4_000,
        keep_recent_steps: 2,
        mask_min_tokens: 500,
        ..Default::default()
    };
    AgentConfig { context: settings, initial_max_tokens: 1_000, ..AgentConfig::default() }
}

#[tokio::test]
async fn a_long_session_masks_old_outputs_then_compacts_and_finishes() {
    // Deterministic: token counts are estimated from bytes, so the steps where masking
    // and compaction happen are fixed by the script and the settings.
    const SUMMARY_AT: usize = 21;
    let h = harness_with_window(long_session_script(Some(SUMMARY_AT)), long_session_config(), Some(14_000)).await;
    h.say("run the steps").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    let requests = h.server.requests();
    let is_summary = |r: &rswe_test_support::RecordedRequest| {
        r.body["system"][0]["text"].as_str().unwrap_or_default().starts_with("You are summarising")
    };
    let summaries: Vec<usize> = requests.iter().enumerate().filter(|(_, r)| is_summary(r)).map(|(i, _)| i).collect();
    let masked_from = requests.iter().position(|r| text_of(&r.body["messages"]).contains("removed to save context"));
    assert_eq!(summaries, [SUMMARY_AT], "one compaction, where the script expects it");
    assert_eq!(masked_from, Some(6), "old outputs are masked once the conversation passes the trigger");
    assert_eq!(end, TurnEnd::Finished { text: "All done.".into() });
    h.server.assert_no_violations();

    // Large outputs were cut on entry, with the whole text kept in the workspace.
    let first_result = text_of(&requests[1].body["messages"]);
    assert!(first_result.contains("left out here; the full output is in"), "{first_result}");
    let saved = std::fs::read_dir(h.sandbox.workspace().join(".rswe/outputs")).unwrap().count();
    assert!(saved >= 6, "{saved} full outputs saved");

    // Masking comes in rare batches (each rewrites the cache once); every other step reads
    // its whole prefix from the cache and writes only what is new.
    let rewrites = requests[1..SUMMARY_AT]
        .iter()
        .filter(|r| {
            let usage = r.usage.unwrap();
            usage.cache_read_tokens < usage.cache_write_tokens
        })
        .count();
    assert!(rewrites <= 2, "{rewrites} cache rewrites in {SUMMARY_AT} steps");

    // The summary request fits the window; afterwards the conversation carries the summary
    // and the first message, and is smaller.
    let window = 14_000;
    let summary_input = requests[SUMMARY_AT].usage.unwrap().total_input();
    assert!(summary_input < window, "{summary_input}");
    let after = &requests[SUMMARY_AT + 1];
    let messages = text_of(&after.body["messages"]);
    assert!(messages.contains("Summary of earlier work") && messages.contains("Steps 0-9 printed their output"));
    assert!(messages.contains("run the steps"));
    let before_tokens = requests[SUMMARY_AT - 1].usage.unwrap().total_input();
    assert!(after.usage.unwrap().total_input() < before_tokens * 2 / 3);
    for request in &requests {
        assert!(request.usage.unwrap().total_input() < window, "no prompt exceeds the window");
    }
    let compactions: Vec<(u64, u64)> = h
        .events()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ContextCompacted { tokens_before, tokens_after, .. } => Some((tokens_before, tokens_after)),
            _ => None,
        })
        .collect();
    assert_eq!(compactions.len(), 1);
    assert!(compactions[0].1 < compactions[0].0, "{compactions:?}");
}

#[tokio::test]
async fn a_prompt_the_provider_finds_too_large_is_compacted_once_and_retried() {
    let h = harness(
        vec![
            shell("echo one").into(),
            shell("echo two").into(),
            shell("echo three").into(),
            Turn::error(ErrorKind::ContextWindowExceeded),
            Turn::text("## Task\nCount to three.\n## Findings\nThe first steps printed one and two."),
            Turn::text("Counted."),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("count").await;
    let end = h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(end, TurnEnd::Finished { text: "Counted.".into() });
    let requests = h.server.requests();
    assert_eq!(requests.len(), 6);
    let system = |i: usize| requests[i].body["system"][0]["text"].as_str().unwrap_or_default().to_string();
    assert!(system(4).starts_with("You are summarising"), "the refused prompt led to a summary request");
    let retried = text_of(&requests[5].body["messages"]);
    assert!(retried.contains("The first steps printed one and two") && retried.contains("count"), "{retried}");
    assert!(h.events().iter().any(|e| matches!(e.kind, EventKind::ContextCompacted { .. })));
    h.server.assert_no_violations();
}

#[tokio::test]
async fn a_message_sent_while_the_model_answers_comes_after_that_answer() {
    let mut h = harness(
        vec![
            // The answer takes a while, so the message below is logged before it.
            Response::new().text("First answer.").delay_ms(2_000).into(),
            Turn::text("Second answer, to your follow-up."),
        ],
        AgentConfig::default(),
    )
    .await;
    h.say("hi").await;
    let mut live = h.take_live();
    let (log, session) = (h.log.clone(), h.session.clone());
    let (end, ()) = tokio::join!(h.agent.run(CancellationToken::new()), async {
        wait_for(&mut live, |e| matches!(e, LiveEvent::StepStarted { .. })).await;
        log.append(
            &session,
            EventKind::UserMessage { content: vec![ContentBlock::text("one more thing")], author: None },
        )
        .await
        .unwrap();
    });
    assert_eq!(end.unwrap(), TurnEnd::Finished { text: "Second answer, to your follow-up.".into() });
    let requests = h.server.requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1].body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "the follow-up is answered, after the first answer");
    assert!(messages[2].to_string().contains("one more thing"));
    h.server.assert_no_violations();
    // A restart derives the same conversation: nothing awaits the model any more.
    assert_eq!(h.agent.run(CancellationToken::new()).await.unwrap(), TurnEnd::Idle);
}

/// A tool source like a session's MCP servers: a `lookup` tool, a tool that would shadow
/// the built-in `shell`, and a notice the person must see once.
struct FakeSource {
    prepared: std::sync::atomic::AtomicUsize,
}

struct NamedTool(&'static str);

#[async_trait::async_trait]
impl rswe_tools::Tool for NamedTool {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "Looks a word up."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"word": {"type": "string"}}})
    }
    async fn run(&self, input: Value, _context: &rswe_tools::ToolContext) -> rswe_tools::ToolOutput {
        rswe_tools::ToolOutput::text(format!("{} says: {}", self.0, input["word"].as_str().unwrap_or("?")))
    }
}

#[async_trait::async_trait]
impl rswe_tools::ToolSource for FakeSource {
    async fn prepare(&self, _cancel: &CancellationToken) -> rswe_tools::SourcedTools {
        let first = self.prepared.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        rswe_tools::SourcedTools {
            tools: vec![Arc::new(NamedTool("mcp__dict__lookup")), Arc::new(NamedTool("shell"))],
            notices: if first {
                vec!["The MCP server `web` did not start: it exited with code 1.".into()]
            } else {
                vec![]
            },
        }
    }
}

#[tokio::test]
async fn sourced_tools_join_the_built_in_ones_each_turn_and_their_notices_are_logged() {
    let h = harness(
        vec![
            Response::new().tool_use("mcp__dict__lookup", json!({"word": "cache"})).into(),
            Response::new().tool_use("shell", json!({"command": "echo built-in"})).into(),
            Turn::text("Looked it up."),
            Turn::text("Again."),
        ],
        AgentConfig::default(),
    )
    .await;
    let source = Arc::new(FakeSource { prepared: Default::default() });
    let h = Harness { agent: h.agent.with_tool_source(source.clone()), ..h };
    h.say("look up cache").await;
    assert_eq!(
        h.agent.run(CancellationToken::new()).await.unwrap(),
        TurnEnd::Finished { text: "Looked it up.".into() }
    );

    let requests = h.server.requests();
    let tools: Vec<String> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tools.last().map(String::as_str), Some("mcp__dict__lookup"), "after the built-in tools: {tools:?}");
    assert_eq!(tools.iter().filter(|name| *name == "shell").count(), 1, "a built-in is never shadowed");
    assert!(text_of(&requests[1].body).contains("mcp__dict__lookup says: cache"));
    assert!(text_of(&requests[2].body).contains("built-in"), "the built-in shell ran");
    let errors: Vec<String> = h
        .events()
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Error { class, message } if class == "tools" => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(errors, ["The MCP server `web` did not start: it exited with code 1."]);

    // The next turn asks again, once; the notice is not repeated.
    h.say("again").await;
    h.agent.run(CancellationToken::new()).await.unwrap();
    assert_eq!(source.prepared.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(h.events().iter().filter(|e| matches!(e.kind, EventKind::Error { .. })).count(), 1);
    h.server.assert_no_violations();
}
