#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A session's MCP servers against real servers: `server-everything` (npm) over stdio in
//! the sandbox, over Streamable HTTP and over legacy SSE; `mcp-server-time` (PyPI); and
//! the tests' own misbehaving server (the Python SDK), which crashes, hangs, never starts
//! or changes its tools on request.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rswe_mcp::{McpConfig, McpSession, McpSettings};
use rswe_protocol::{SessionId, ToolResultContent};
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, Sandbox, SandboxMode};
use rswe_test_support::peers::{self, HttpPeer};
use rswe_tools::{SourcedTools, Tool, ToolContext, ToolOutput, ToolSource};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Fixture {
    dir: tempfile::TempDir,
    sandbox: Arc<dyn Sandbox>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalSandboxConfig::new(dir.path().join("session"));
        config.mode = SandboxMode::Bubblewrap;
        // The test servers live in the checkout, which may be under the (hidden) home.
        config.readonly_paths = vec![peers::peers_dir()];
        let sandbox = Arc::new(LocalSandbox::new(config).unwrap());
        Fixture { dir, sandbox }
    }

    fn session(&self, config: Value, settings: McpSettings) -> McpSession {
        let config = McpConfig::from_json(&json!({ "mcpServers": config }).to_string(), &|_| None).unwrap();
        McpSession::new(&config, self.sandbox.clone(), settings, Vec::new())
    }

    fn markers(&self) -> &Path {
        self.dir.path()
    }
}

fn settings() -> McpSettings {
    McpSettings { startup_timeout: Duration::from_secs(60), call_timeout: Duration::from_secs(60) }
}

fn everything_stdio() -> Value {
    json!({ "command": "node", "args": [peers::everything_script(), "stdio"] })
}

/// The misbehaving server, beside rswe (a trusted server), in `mode`.
fn misbehaving(mode: &str, markers: &Path) -> Value {
    json!({
        "command": peers::python(),
        "args": [peers::misbehaving_server(), mode],
        "env": { "MARKER_DIR": markers },
        "trusted": true,
    })
}

async fn prepare(session: &McpSession) -> SourcedTools {
    session.prepare(&CancellationToken::new()).await
}

fn names(tools: &[Arc<dyn Tool>]) -> Vec<String> {
    tools.iter().map(|tool| tool.name().to_string()).collect()
}

async fn call(session: &McpSession, sandbox: &Arc<dyn Sandbox>, name: &str, input: Value) -> ToolOutput {
    call_with(session, sandbox, name, input, CancellationToken::new()).await
}

async fn call_with(
    session: &McpSession,
    sandbox: &Arc<dyn Sandbox>,
    name: &str,
    input: Value,
    cancel: CancellationToken,
) -> ToolOutput {
    let tools = session.tools();
    let tool =
        tools.iter().find(|tool| tool.name() == name).unwrap_or_else(|| panic!("no {name} in {:?}", names(&tools)));
    let context = ToolContext {
        session_id: SessionId::new(),
        tool_use_id: "toolu_1".into(),
        sandbox: sandbox.clone(),
        cancel,
        progress: None,
    };
    tool.run(input, &context).await
}

/// Waits, boundedly, until a file exists.
async fn appears(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_server_runs_in_the_sandbox_and_its_tools_answer() {
    let fixture = Fixture::new();
    let session = fixture.session(json!({ "everything": everything_stdio() }), settings());
    let sourced = prepare(&session).await;
    assert!(sourced.notices.is_empty(), "{:?}", sourced.notices);
    let tools = names(&sourced.tools);
    for expected in ["mcp__everything__echo", "mcp__everything__get-sum", "mcp__everything__get-tiny-image"] {
        assert!(tools.contains(&expected.to_string()), "{expected} missing from {tools:?}");
    }
    let echo = sourced.tools.iter().find(|tool| tool.name() == "mcp__everything__echo").unwrap();
    assert_eq!(echo.input_schema()["type"], "object");
    assert!(echo.input_schema()["properties"]["message"].is_object(), "{}", echo.input_schema());

    let sandbox = &fixture.sandbox;
    let output = call(&session, sandbox, "mcp__everything__echo", json!({"message": "hello there"})).await;
    assert!(!output.is_error && output.text_content().contains("hello there"), "{output:?}");
    let output = call(&session, sandbox, "mcp__everything__get-sum", json!({"a": 2, "b": 40})).await;
    assert!(output.text_content().contains("42"), "{output:?}");

    let output = call(&session, sandbox, "mcp__everything__get-tiny-image", json!({})).await;
    let image = output.content.iter().find_map(|part| match part {
        ToolResultContent::Image { source } => Some(source),
        ToolResultContent::Text { .. } => None,
    });
    assert_eq!(image.map(|source| source.media_type.as_str()), Some("image/png"), "{output:?}");

    let output = call(
        &session,
        sandbox,
        "mcp__everything__get-resource-reference",
        json!({"resourceType": "Text", "resourceId": 1}),
    )
    .await;
    assert!(output.text_content().contains("[resource "), "{output:?}");

    // It runs in the sandbox: its home is the sandbox's, and it carries the sandbox's mark.
    let output = call(&session, sandbox, "mcp__everything__get-env", json!({})).await;
    let env = output.text_content();
    assert!(env.contains("RSWE_SANDBOX_PROCESS"), "{env}");
    assert!(env.contains(&sandbox.home().display().to_string()), "{env}");

    // Bad input is the server's error, which the model reads.
    let output = call(&session, sandbox, "mcp__everything__get-sum", json!({"a": "two"})).await;
    assert!(output.is_error, "{output:?}");

    session.shutdown().await;
    let again = prepare(&session).await;
    assert_eq!(names(&again.tools), tools, "a later turn starts it again");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn url_servers_answer_over_streamable_http_and_legacy_sse() {
    let fixture = Fixture::new();
    let http = HttpPeer::everything("streamableHttp").await;
    let sse = HttpPeer::everything("sse").await;
    let session = fixture.session(
        json!({
            "web": { "type": "http", "url": http.url("/mcp"), "headers": { "X-Team": "core" } },
            "old": { "type": "sse", "url": sse.url("/sse") },
            // No type: Streamable HTTP fails there, and the legacy transport is tried.
            "guess": { "url": sse.url("/sse") },
        }),
        settings(),
    );
    let sourced = prepare(&session).await;
    assert!(sourced.notices.is_empty(), "{:?}", sourced.notices);
    for server in ["web", "old", "guess"] {
        let name = format!("mcp__{server}__echo");
        let output = call(&session, &fixture.sandbox, &name, json!({"message": format!("via {server}")})).await;
        assert!(output.text_content().contains(&format!("via {server}")), "{server}: {output:?}");
    }
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_server_that_goes_away_is_reconnected_once_then_given_up() {
    let fixture = Fixture::new();
    let mut http = HttpPeer::everything("streamableHttp").await;
    let session = fixture.session(json!({ "web": { "url": http.url("/mcp") } }), settings());
    assert!(prepare(&session).await.notices.is_empty());
    http.kill().await;

    let output = call(&session, &fixture.sandbox, "mcp__web__echo", json!({"message": "anyone?"})).await;
    assert!(output.is_error && output.text_content().contains("stopped during the call"), "{output:?}");
    let output = call(&session, &fixture.sandbox, "mcp__web__echo", json!({"message": "anyone?"})).await;
    assert!(output.is_error && output.text_content().contains("could not be started again"), "{output:?}");
    let sourced = prepare(&session).await;
    assert!(sourced.tools.is_empty());
    assert_eq!(sourced.notices.len(), 1, "{:?}", sourced.notices);
    assert!(sourced.notices[0].contains("`web` did not start again"), "{:?}", sourced.notices);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_time_server_from_pypi_answers() {
    let fixture = Fixture::new();
    let session = fixture.session(json!({ "time": { "command": peers::time_server(), "trusted": true } }), settings());
    let sourced = prepare(&session).await;
    assert!(sourced.notices.is_empty(), "{:?}", sourced.notices);
    let output =
        call(&session, &fixture.sandbox, "mcp__time__get_current_time", json!({"timezone": "Europe/Paris"})).await;
    assert!(!output.is_error && output.text_content().contains("Europe/Paris"), "{output:?}");
    let output =
        call(&session, &fixture.sandbox, "mcp__time__get_current_time", json!({"timezone": "Mars/Olympus"})).await;
    assert!(output.is_error, "an unknown zone is the server's error: {output:?}");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_crashes_is_restarted_once_then_given_up() {
    let fixture = Fixture::new();
    let session = fixture.session(json!({ "flaky": misbehaving("ok", fixture.markers()) }), settings());
    assert!(prepare(&session).await.notices.is_empty());
    let sandbox = &fixture.sandbox;

    let output = call(&session, sandbox, "mcp__flaky__crash", json!({})).await;
    assert!(output.is_error, "{output:?}");
    let text = output.text_content();
    assert!(text.contains("stopped during the call") && text.contains("exited with code 3"), "{text}");
    assert!(text.contains("out of cheese"), "its last words are shown: {text}");

    let output = call(&session, sandbox, "mcp__flaky__echo", json!({"text": "back"})).await;
    assert_eq!(output.text_content(), "echo: back", "restarted: {output:?}");

    call(&session, sandbox, "mcp__flaky__crash", json!({})).await;
    let output = call(&session, sandbox, "mcp__flaky__echo", json!({"text": "again"})).await;
    assert!(output.is_error && output.text_content().contains("stopped again after a restart"), "{output:?}");

    let sourced = prepare(&session).await;
    assert_eq!(sourced.notices.len(), 1, "{:?}", sourced.notices);
    assert!(sourced.notices[0].contains("`flaky` stopped again"), "{:?}", sourced.notices);
    assert!(sourced.tools.is_empty(), "its tools are gone: {:?}", names(&sourced.tools));
    assert!(prepare(&session).await.notices.is_empty(), "told once");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_hangs_is_cancelled_at_the_timeout_and_on_interrupt() {
    let fixture = Fixture::new();
    let mut server = misbehaving("ok", fixture.markers());
    server["timeout"] = json!(1);
    let session = fixture.session(json!({ "slow": server }), settings());
    prepare(&session).await;
    let sandbox = &fixture.sandbox;

    let output = call(&session, sandbox, "mcp__slow__hang", json!({})).await;
    assert!(output.is_error && output.text_content().contains("got no answer within 1 s"), "{output:?}");
    assert!(appears(&fixture.markers().join("hang-cancelled")).await, "the server was told to cancel the call");

    std::fs::remove_file(fixture.markers().join("hang-started")).unwrap();
    std::fs::remove_file(fixture.markers().join("hang-cancelled")).unwrap();
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (session, sandbox, cancel) = (session.clone(), sandbox.clone(), cancel.clone());
        async move { call_with(&session, &sandbox, "mcp__slow__hang", json!({}), cancel).await }
    });
    assert!(appears(&fixture.markers().join("hang-started")).await);
    cancel.cancel();
    let output = running.await.unwrap();
    assert!(output.is_error && output.text_content().contains("interrupted"), "{output:?}");
    assert!(appears(&fixture.markers().join("hang-cancelled")).await, "the interrupt reached the server");

    let output = call(&session, sandbox, "mcp__slow__echo", json!({"text": "still here"})).await;
    assert_eq!(output.text_content(), "echo: still here");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_that_never_start_are_reported_once_and_the_rest_work() {
    let fixture = Fixture::new();
    let markers = fixture.markers();
    let session = fixture.session(
        json!({
            "mute": misbehaving("never-answers", markers),
            "broken": misbehaving("fails-at-start", markers),
            "missing": { "command": "rswe-no-such-server", "args": ["--stdio"] },
            "fine": misbehaving("ok", markers),
        }),
        McpSettings { startup_timeout: Duration::from_secs(10), ..settings() },
    );
    let sourced = prepare(&session).await;
    let notices = sourced.notices.join("\n");
    assert_eq!(sourced.notices.len(), 3, "{notices}");
    let notice = |server: &str| {
        sourced.notices.iter().find(|notice| notice.contains(&format!("`{server}` did not start"))).cloned().unwrap()
    };
    let mute = notice("mute");
    assert!(mute.contains("within 10 s") && mute.contains("starting very slowly"), "{mute}");
    let broken = notice("broken");
    assert!(broken.contains("exited with code 2") && broken.contains("permission denied"), "{broken}");
    assert!(notice("missing").contains("not found"), "{notices}");
    assert!(sourced.notices.iter().all(|notice| notice.contains("so the session goes on without its tools: ")));
    assert_eq!(names(&sourced.tools).iter().filter(|name| name.starts_with("mcp__fine__")).count(), 5);
    assert!(names(&sourced.tools).iter().all(|name| name.starts_with("mcp__fine__")));

    let later = prepare(&session).await;
    assert!(later.notices.is_empty(), "told once: {:?}", later.notices);
    assert_eq!(later.tools.len(), 5);
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_tool_list_is_taken_up_at_the_next_turn() {
    let fixture = Fixture::new();
    let session = fixture.session(json!({ "growing": misbehaving("ok", fixture.markers()) }), settings());
    let before = names(&prepare(&session).await.tools);
    assert!(!before.contains(&"mcp__growing__fresh".to_string()));
    let output = call(&session, &fixture.sandbox, "mcp__growing__grow", json!({"name": "fresh"})).await;
    assert_eq!(output.text_content(), "added fresh");

    let after = names(&prepare(&session).await.tools);
    assert!(after.contains(&"mcp__growing__fresh".to_string()), "{after:?}");
    let output = call(&session, &fixture.sandbox, "mcp__growing__fresh", json!({})).await;
    assert_eq!(output.text_content(), "fresh ran");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_mcp_json_is_used_only_when_allowed_and_only_in_the_sandbox() {
    let fixture = Fixture::new();
    let repository = json!({ "mcpServers": {
        "repo": { "command": "node", "args": [peers::everything_script(), "stdio"], "trusted": true },
        "remote": { "url": "http://169.254.169.254/mcp" },
    }});
    fixture.sandbox.write_file(Path::new(".mcp.json"), repository.to_string().as_bytes()).await.unwrap();
    let operator = McpConfig::default();

    let off = McpSession::for_workspace(&operator, fixture.sandbox.clone(), settings(), false).await;
    assert!(off.is_empty());

    let on = McpSession::for_workspace(&operator, fixture.sandbox.clone(), settings(), true).await;
    let sourced = prepare(&on).await;
    assert_eq!(sourced.notices.len(), 1, "{:?}", sourced.notices);
    assert!(sourced.notices[0].contains("URL server `remote`"), "{:?}", sourced.notices);
    let env = call(&on, &fixture.sandbox, "mcp__repo__get-env", json!({})).await.text_content();
    assert!(env.contains("RSWE_SANDBOX_PROCESS"), "`trusted` from a repository is ignored: {env}");
    on.shutdown().await;

    fixture.sandbox.write_file(Path::new(".mcp.json"), b"{\"mcpServers\": {\"x\": {\"command\": 1}}}").await.unwrap();
    let bad = McpSession::for_workspace(&operator, fixture.sandbox.clone(), settings(), true).await;
    let notices = prepare(&bad).await.notices;
    assert!(notices[0].contains("MCP server `x`, field `command`: must be a string"), "{notices:?}");
}
