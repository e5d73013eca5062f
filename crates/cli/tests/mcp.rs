//! MCP servers end to end: the real binary with an `[mcp]` configuration, real servers
//! (`server-everything` from npm in the sandbox, the tests' Python server beside rswe),
//! and the fake model server calling their tools.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rswe_test_support::peers;
use rswe_test_support::{FakeModelServer, Response, Script, Turn};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SECRET: &str = "sk-ant-test-secret-mcp-7731";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A config file naming `servers` (an `mcpServers` object) in `mcp.json` beside it.
    fn new(servers: Value, extra_toml: &str) -> Setup {
        let setup = Setup { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(setup.path("home")).unwrap();
        std::fs::create_dir_all(setup.path("project")).unwrap();
        std::fs::write(setup.path("project/README"), "a project\n").unwrap();
        for args in [&["init", "-q", "-b", "main"][..], &["add", "."], &["commit", "-qm", "start"]] {
            let status = Command::new("git")
                .arg("-C")
                .arg(setup.path("project"))
                .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
                .args(args)
                .status()
                .unwrap();
            assert!(status.success());
        }
        std::fs::write(setup.path("mcp.json"), json!({ "mcpServers": servers }).to_string()).unwrap();
        let toml = format!(
            "[mcp]\nconfig = \"mcp.json\"\n{extra_toml}\n[sandbox]\nexpose = [{:?}]\n",
            peers::peers_dir().display().to_string()
        );
        std::fs::write(setup.path("rswe.toml"), toml).unwrap();
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn rswe(&self, fake: Option<&FakeModelServer>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rswe"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.path("home"))
            .env("RSWE_DATA_DIR", self.path("data"))
            .env("RSWE_CONFIG", self.path("rswe.toml"))
            .env("ANTHROPIC_API_KEY", SECRET)
            .env("PROBE_TOKEN", "token-for-the-probe")
            .stdin(Stdio::null());
        if let Some(fake) = fake {
            command.env("ANTHROPIC_BASE_URL", fake.anthropic_base_url());
        }
        command
    }
}

fn everything() -> Value {
    json!({ "command": "node", "args": [peers::everything_script(), "stdio"] })
}

fn misbehaving(mode: &str, env: Value) -> Value {
    json!({
        "command": peers::python(),
        "args": [peers::misbehaving_server(), mode],
        "env": env,
        "trusted": true,
    })
}

fn tool(name: &str, input: Value) -> Turn {
    Response::new().tool_use(name, input).into()
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).to_string(), String::from_utf8_lossy(&output.stderr).to_string())
}

/// The content of the tool result in the last message of request `index`.
fn last_result(fake: &FakeModelServer, index: usize) -> Value {
    let requests = fake.requests();
    let last = requests[index].body["messages"].as_array().unwrap().last().unwrap().clone();
    last["content"].as_array().unwrap().iter().find(|block| block["type"] == "tool_result").unwrap()["content"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_calls_mcp_tools_and_reads_their_results() {
    let setup = Setup::new(
        json!({
            "everything": everything(),
            "probe": misbehaving("ok", json!({ "GIVEN_TOKEN": "${PROBE_TOKEN}" })),
            "broken": misbehaving("fails-at-start", json!({})),
        }),
        "",
    );
    let fake = FakeModelServer::start(Script::new().turns(vec![
        tool("mcp__everything__echo", json!({"message": "from the model"})),
        tool("mcp__everything__get-tiny-image", json!({})),
        tool("mcp__probe__env", json!({})),
        tool("shell", json!({"command": format!("cat {}", setup.path("mcp.json").display())})),
        Turn::text("The tools answered."),
    ]))
    .await;
    let mut run = setup.rswe(Some(&fake));
    let output = run.args(["run", "--repo"]).arg(setup.path("project")).arg("try the tools").output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "The tools answered.\n");

    // The model was offered the servers' tools, with their schemas.
    let requests = fake.requests();
    let tools = requests[0].body["tools"].as_array().unwrap();
    let echo = tools.iter().find(|tool| tool["name"] == "mcp__everything__echo").expect("no echo tool");
    assert_eq!(echo["input_schema"]["properties"]["message"]["type"], "string");
    assert!(tools.iter().any(|tool| tool["name"] == "mcp__probe__crash"));
    assert!(!tools.iter().any(|tool| tool["name"].as_str().unwrap().starts_with("mcp__broken__")));

    // Each real result reached the next request.
    assert!(last_result(&fake, 1).to_string().contains("from the model"));
    let image = last_result(&fake, 2);
    let image = image.as_array().unwrap().iter().find(|part| part["type"] == "image").expect("no image block");
    assert_eq!(image["source"]["media_type"], "image/png");
    let env = last_result(&fake, 3).to_string();
    assert!(env.contains("GIVEN_TOKEN=token-for-the-probe"), "configured env reaches a trusted server: {env}");
    assert!(!env.contains(SECRET) && !env.contains("ANTHROPIC"), "rswe's own secrets do not: {env}");

    let peek = last_result(&fake, 4).to_string();
    assert!(peek.contains("exit code") && !peek.contains("mcpServers"), "the sandbox cannot read mcp.json: {peek}");

    // The server that did not start was reported, once, with its cause.
    let reports: Vec<&str> = stderr.lines().filter(|line| line.contains("`broken` did not start")).collect();
    assert_eq!(reports.len(), 1, "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    fake.assert_no_violations();
}

#[test]
fn mcp_list_starts_each_server_and_explains_each_failure() {
    let setup = Setup::new(
        json!({
            "everything": everything(),
            "broken": misbehaving("fails-at-start", json!({})),
            "off": { "url": "http://127.0.0.1:9/mcp", "disabled": true },
        }),
        "",
    );
    let output = setup.rswe(None).args(["mcp", "list"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "a server failed: {stdout}{stderr}");
    assert!(stdout.contains("everything  stdio in the sandbox: node "), "{stdout}");
    assert!(stdout.contains("mcp__everything__get-sum"), "{stdout}");
    assert!(stdout.contains("broken  stdio beside rswe (trusted)"), "{stdout}");
    assert!(stdout.contains("FAILED: it exited with code 2") && stdout.contains("permission denied"), "{stdout}");
    assert!(stdout.contains("off  http: http://127.0.0.1:9/mcp\n  disabled"), "{stdout}");
    assert!(stdout.contains("1 of 2 enabled servers started; 1 could not be used."), "{stdout}");

    // An mcpServers file given directly, as JSON. (Trusted: without rswe.toml, the
    // checkout may be invisible in the sandbox, under /tmp or the home directory.)
    let file = setup.path("only.json");
    let mut server = everything();
    server["trusted"] = json!(true);
    std::fs::write(&file, json!({ "mcpServers": { "everything": server } }).to_string()).unwrap();
    let mut list = setup.rswe(None);
    let output =
        list.env_remove("RSWE_CONFIG").args(["mcp", "list", "--json", "--config"]).arg(&file).output().unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["servers"][0]["name"], "everything");
    let tools = listed["servers"][0]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|tool| tool["name"] == "mcp__everything__echo"), "{listed}");
}

#[test]
fn a_bad_mcp_configuration_is_refused_before_any_work() {
    let setup =
        Setup::new(json!({}), "[mcp.servers.tracker]\nurl = \"https://mcp.example.com\"\nheaders = \"secret\"\n");
    for args in [vec!["run", "do something"], vec!["serve", "--listen", "127.0.0.1:0"], vec!["mcp", "list"]] {
        let output = setup.rswe(None).args(&args).output().unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("MCP server `tracker`, field `headers`: must be an object of strings"),
            "{args:?}: {stderr}"
        );
    }
    assert!(no_sessions(&setup.path("data")), "nothing was written");
}

fn no_sessions(data: &Path) -> bool {
    !data.join("sessions").exists() || std::fs::read_dir(data.join("sessions")).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_crashes_or_hangs_costs_the_model_one_tool_error() {
    let mut slow = misbehaving("ok", json!({}));
    slow["timeout"] = json!(1);
    let setup = Setup::new(json!({ "flaky": misbehaving("ok", json!({})), "slow": slow }), "");
    let fake = FakeModelServer::start(Script::new().turns(vec![
        tool("mcp__flaky__crash", json!({})),
        tool("mcp__flaky__echo", json!({"text": "after the crash"})),
        tool("mcp__slow__hang", json!({})),
        tool("mcp__slow__echo", json!({"text": "after the hang"})),
        Turn::text("Survived."),
    ]))
    .await;
    let mut run = setup.rswe(Some(&fake));
    let output = run.args(["run", "--repo"]).arg(setup.path("project")).arg("break things").output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "Survived.\n");

    let crash = last_result(&fake, 1).to_string();
    assert!(crash.contains("stopped during the call") && crash.contains("out of cheese"), "{crash}");
    assert!(last_result(&fake, 2).to_string().contains("echo: after the crash"), "restarted");
    let hang = last_result(&fake, 3).to_string();
    assert!(hang.contains("got no answer within 1 s"), "{hang}");
    assert!(last_result(&fake, 4).to_string().contains("echo: after the hang"));
    let requests = fake.requests();
    let body = &requests[1].body;
    let results = body["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(results[0]["is_error"], true, "{results}");
    fake.assert_no_violations();
}
