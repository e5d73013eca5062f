#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An output filter removes a secret from what a tool returns and from its live output.

mod common;

use common::Fixture;
use rswe_tools::{OutputFilter, ProgressSink, ToolProgress};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_filtered_registry_hides_a_secret_in_results_and_live_output() {
    let mut fixture = Fixture::new();
    let filter: OutputFilter = Arc::new(|text: &str| text.replace("hunter2-secret", "[redacted]"));
    fixture.tools.filter_output(filter);
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    let progress: ProgressSink = Arc::new(move |update: ToolProgress| sink.lock().unwrap().push_str(&update.text));
    let context = fixture.context_with(CancellationToken::new(), Some(progress));
    let output = fixture.tools.run("shell", json!({"command": "echo token=hunter2-secret"}), &context).await;
    assert!(!output.is_error, "{}", output.text_content());
    assert!(output.text_content().contains("token=[redacted]"), "{}", output.text_content());
    assert!(!output.text_content().contains("hunter2-secret"));
    let live = seen.lock().unwrap().clone();
    assert!(!live.contains("hunter2-secret"), "{live}");
    // The tool keeps its name, description and schema.
    assert!(fixture.tools.names().contains(&"shell".to_string()));
}
