//! The tools that speak to the session rather than the workspace: todo, think, send_message,
//! send_file, set_title; and the registry of built-in tools as the model sees it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use rswe_protocol::{TodoItem, TodoStatus};
use rswe_tools::{ToolEffect, builtin_tools};
use serde_json::{Value, json};

#[tokio::test]
async fn todo_sets_the_whole_list_and_renders_a_checklist() {
    let fixture = Fixture::new();
    let output = fixture
        .run(
            "todo",
            json!({"items": [
                {"id": "1", "content": "Reproduce the bug", "status": "completed"},
                {"id": "2", "content": "Fix it", "status": "in_progress"},
                {"id": "3", "content": "Add a test", "status": "pending"},
                {"id": "4", "content": "Rewrite everything", "status": "cancelled"}
            ]}),
        )
        .await;
    assert!(!output.is_error, "{}", output.text_content());
    assert_eq!(
        output.text_content(),
        "Todo list updated:\n[x] Reproduce the bug (1)\n[>] Fix it (2)\n[ ] Add a test (3)\n[-] Rewrite everything (4)"
    );
    let item = |id: &str, content: &str, status| TodoItem { id: id.into(), content: content.into(), status };
    assert_eq!(
        output.effects,
        [ToolEffect::Todo(vec![
            item("1", "Reproduce the bug", TodoStatus::Completed),
            item("2", "Fix it", TodoStatus::InProgress),
            item("3", "Add a test", TodoStatus::Pending),
            item("4", "Rewrite everything", TodoStatus::Cancelled),
        ])]
    );
}

#[tokio::test]
async fn todo_rejects_two_items_in_progress() {
    let fixture = Fixture::new();
    let output = fixture
        .run(
            "todo",
            json!({"items": [
                {"id": "a", "content": "One", "status": "in_progress"},
                {"id": "b", "content": "Two", "status": "in_progress"}
            ]}),
        )
        .await;
    assert!(output.is_error);
    assert!(output.effects.is_empty());
    let text = output.text_content();
    assert!(text.contains("2 items are in_progress (a, b), but at most one may be"), "{text}");

    let text = fixture.err("todo", json!({"items": [{"id": "a", "content": "x", "status": "doing"}]})).await;
    assert!(text.starts_with("invalid input for todo: unknown variant `doing`"), "{text}");
    let text = fixture
        .err("todo", json!({"items": [{"id": "a", "content": "x", "status": "pending"}, {"id": "a", "content": "y", "status": "pending"}]}))
        .await;
    assert!(text.contains("`a` is used by more than one item"), "{text}");
}

#[tokio::test]
async fn think_changes_nothing() {
    let fixture = Fixture::new();
    let output = fixture.run("think", json!({"thought": "The bug is probably in the parser."})).await;
    assert!(!output.is_error);
    assert!(output.effects.is_empty());
    assert!(output.text_content().starts_with("Thought recorded"));
    assert!(fixture.tools.is_read_only("think", &json!({})));
}

#[tokio::test]
async fn send_message_delivers_the_message() {
    let fixture = Fixture::new();
    let output = fixture.run("send_message", json!({"message": "  Found the cause; fixing it now.  "})).await;
    assert!(!output.is_error);
    assert_eq!(output.text_content(), "Message delivered.");
    assert_eq!(output.effects, [ToolEffect::Message("Found the cause; fixing it now.".into())]);
    assert!(fixture.err("send_message", json!({"message": "   "})).await.contains("empty"));
}

#[tokio::test]
async fn send_file_delivers_an_existing_workspace_file() {
    let fixture = Fixture::new();
    fixture.write("out/report.md", "# Report\n");
    let output = fixture.run("send_file", json!({"path": "out/report.md", "message": "The report"})).await;
    assert!(!output.is_error, "{}", output.text_content());
    let path = fixture.workspace().join("out/report.md").to_string_lossy().into_owned();
    assert_eq!(
        output.effects,
        [ToolEffect::SendFile { path: path.clone(), message: Some("The report".into()), size: 9 }]
    );
    assert!(output.text_content().contains(&path));

    let output = fixture.run("send_file", json!({"path": fixture.workspace().join("out/report.md")})).await;
    assert_eq!(output.effects, [ToolEffect::SendFile { path, message: None, size: 9 }]);

    assert!(fixture.err("send_file", json!({"path": "out/missing.md"})).await.contains("does not exist"));
    assert!(fixture.err("send_file", json!({"path": "out"})).await.contains("is a directory"));
    assert!(fixture.err("send_file", json!({"path": "/etc/passwd"})).await.contains("outside the workspace"));
}

#[tokio::test]
async fn set_title_trims_and_bounds_the_title() {
    let fixture = Fixture::new();
    let output = fixture.run("set_title", json!({"title": "  Fix flaky\n retry test  "})).await;
    assert_eq!(output.effects, [ToolEffect::Title("Fix flaky retry test".into())]);

    let output = fixture.run("set_title", json!({"title": "word ".repeat(50)})).await;
    let [ToolEffect::Title(title)] = output.effects.as_slice() else { panic!("{:?}", output.effects) };
    assert!(title.chars().count() <= 80, "{title}");
    assert!(title.starts_with("word word") && title.ends_with('…'), "{title}");
    assert!(fixture.err("set_title", json!({"title": " \n "})).await.contains("empty"));
}

#[test]
fn builtin_tools_are_in_order_with_object_schemas() {
    let tools = builtin_tools();
    assert_eq!(
        tools.names(),
        [
            "shell",
            "editor",
            "search",
            "find_files",
            "todo",
            "think",
            "send_message",
            "read_image",
            "send_file",
            "set_title"
        ]
    );
    for definition in tools.definitions() {
        let schema = &definition.input_schema;
        assert_eq!(schema["type"], "object", "{}: {schema}", definition.name);
        assert!(schema.get("$schema").is_none(), "{}: {schema}", definition.name);
        assert!(schema.get("$defs").is_none(), "{}: nested types are inlined: {schema}", definition.name);
        assert!(schema["properties"].as_object().is_some_and(|p| !p.is_empty()), "{}", definition.name);
        assert!(!definition.description.is_empty());
        assert!(!schema.to_string().contains("$ref"), "{}: {schema}", definition.name);
    }
}

#[test]
fn schemas_require_what_the_tools_require() {
    let tools = builtin_tools();
    let required = |name: &str| -> Vec<String> {
        let definition = tools.definitions().into_iter().find(|d| d.name == name).unwrap();
        let mut names: Vec<String> = definition.input_schema["required"]
            .as_array()
            .map(|list| list.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    assert!(required("shell").is_empty());
    assert_eq!(required("editor"), ["command", "path"]);
    assert_eq!(required("search"), ["pattern"]);
    assert_eq!(required("find_files"), ["glob"]);
    assert_eq!(required("todo"), ["items"]);
    assert_eq!(required("think"), ["thought"]);
    assert_eq!(required("send_message"), ["message"]);
    assert_eq!(required("read_image"), ["path"]);
    assert_eq!(required("send_file"), ["path"]);
    assert_eq!(required("set_title"), ["title"]);
}

#[tokio::test]
async fn unknown_tools_and_invalid_input_are_explained() {
    let fixture = Fixture::new();
    let text = fixture.err("no_such_tool", json!({})).await;
    assert!(text.contains("shell, editor, search"), "{text}");
    for tool in [
        "shell",
        "editor",
        "search",
        "find_files",
        "todo",
        "think",
        "send_message",
        "read_image",
        "send_file",
        "set_title",
    ] {
        let output = fixture.run(tool, json!(42)).await;
        assert!(output.is_error, "{tool}");
        let text = output.text_content();
        assert!(text.starts_with(&format!("invalid input for {tool}")), "{text}");
        assert!(text.contains("\"properties\""), "the schema is included: {text}");
        let output = fixture.run(tool, json!("not json")).await;
        assert!(output.is_error && output.text_content().contains("not one"), "{tool}");
        let output = fixture.run(tool, json!({"surprise": true})).await;
        assert!(output.is_error, "{tool} accepted an unknown field");
    }
}
