//! The `rswe-fake-model` binary: starts from a script file, serves, exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Kills the child if the test fails before it stops it.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_a_script_file() {
    let dir = std::env::temp_dir().join(format!("rswe-fake-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.json");
    let record = dir.join("requests.json");
    std::fs::write(
        &script,
        r#"{
            "settings": {"context_window": 100000},
            "turns": [
                {"text": "Hello from the script."},
                {"tool_uses": [{"id": "toolu_1", "name": "ls", "input": {"path": "."}}]}
            ]
        }"#,
    )
    .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_rswe-fake-model"))
        .arg("--script")
        .arg(&script)
        .arg("--record")
        .arg(&record)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let child = &mut child.0;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(base.starts_with("http://127.0.0.1:"));

    let client = reqwest::Client::new();
    let message: Value = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello from the script."}]));

    let completion: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("k")
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completion["choices"][0]["message"]["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");

    let requests: Value = client.get(format!("{base}/_fake/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests.as_array().unwrap().len(), 2);
    assert_eq!(requests[1]["api"], "openai");

    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
