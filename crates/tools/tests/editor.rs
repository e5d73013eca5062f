//! The editor tool against a real local sandbox and real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use serde_json::json;

const CODE: &str = "fn main() {\n    let total = add(1, 2);\n    println!(\"{total}\");\n}\n\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";

#[tokio::test]
async fn views_a_file_with_line_numbers_and_ranges() {
    let fixture = Fixture::new();
    fixture.write("src/main.rs", CODE);
    let text = fixture.ok("editor", json!({"command": "view", "path": "src/main.rs"})).await;
    assert!(text.starts_with("     1\tfn main() {\n     2\t    let total = add(1, 2);\n"), "{text}");
    assert!(text.ends_with("     8\t}"), "{text}");

    let text = fixture.ok("editor", json!({"command": "view", "path": "src/main.rs", "view_range": [6, 7]})).await;
    assert_eq!(text, "     6\tfn add(a: i32, b: i32) -> i32 {\n     7\t    a + b\n[lines 6-7 of 8]");
    let text = fixture.ok("editor", json!({"command": "view", "path": "src/main.rs", "view_range": [7, -1]})).await;
    assert_eq!(text, "     7\t    a + b\n     8\t}");

    // Absolute paths inside the workspace work too.
    let absolute = fixture.workspace().join("src/main.rs");
    let text = fixture.ok("editor", json!({"command": "view", "path": absolute, "view_range": [1, 1]})).await;
    assert!(text.starts_with("     1\tfn main() {"), "{text}");

    let text = fixture.err("editor", json!({"command": "view", "path": "src/main.rs", "view_range": [9, 10]})).await;
    assert!(text.contains("has 8 lines"), "{text}");
    let text = fixture.err("editor", json!({"command": "view", "path": "src/missing.rs"})).await;
    assert!(text.contains("does not exist"), "{text}");
}

#[tokio::test]
async fn bounds_a_long_file_and_says_how_to_see_the_rest() {
    let fixture = Fixture::new();
    let long: String = (1..=5000).map(|n| format!("line {n}\n")).collect();
    fixture.write("long.txt", &long);
    let text = fixture.ok("editor", json!({"command": "view", "path": "long.txt"})).await;
    assert!(text.contains("  2000\tline 2000\n"), "{}", &text[text.len() - 300..]);
    assert!(!text.contains("line 2001"));
    assert!(text.ends_with("[showing lines 1-2000 of 5000; use view_range [2001, 4000] to see more]"));
}

#[tokio::test]
async fn lists_a_directory_two_levels_deep_skipping_heavy_directories() {
    let fixture = Fixture::new();
    fixture.write("src/main.rs", CODE);
    fixture.write("src/deep/er/file.rs", "");
    fixture.write("node_modules/pkg/index.js", "");
    fixture.write(".git/HEAD", "ref: refs/heads/main\n");
    fixture.write("README.md", "hello");
    let text = fixture.ok("editor", json!({"command": "view", "path": "."})).await;
    assert!(text.contains("README.md (5 bytes)"), "{text}");
    assert!(text.contains("src/\n"), "{text}");
    assert!(text.contains("src/main.rs ("), "{text}");
    assert!(text.contains("src/deep/"), "{text}");
    assert!(!text.contains("src/deep/er"), "{text}");
    assert!(text.contains("node_modules/ (contents not listed)"), "{text}");
    assert!(!text.contains("pkg"), "{text}");
    assert!(!text.contains("HEAD"), "{text}");
    assert!(text.contains(".git/ (contents not listed)"), "{text}");
    fixture.ok("shell", json!({"command": "seq 1 100000"})).await;
    let text = fixture.ok("editor", json!({"command": "view", "path": "."})).await;
    assert!(!text.contains(".rswe"), "the sandbox's own files are not listed: {text}");
}

#[tokio::test]
async fn creates_files_but_never_overwrites_them() {
    let fixture = Fixture::new();
    let text =
        fixture.ok("editor", json!({"command": "create", "path": "new/dir/a.txt", "file_text": "one\ntwo\n"})).await;
    assert!(text.starts_with("Created new/dir/a.txt (2 lines"), "{text}");
    assert_eq!(fixture.read("new/dir/a.txt"), "one\ntwo\n");

    let text = fixture.err("editor", json!({"command": "create", "path": "new/dir/a.txt", "file_text": "other"})).await;
    assert!(text.contains("already exists"), "{text}");
    assert_eq!(fixture.read("new/dir/a.txt"), "one\ntwo\n");

    let text = fixture.err("editor", json!({"command": "create", "path": "new/b.txt"})).await;
    assert!(text.contains("`file_text` is required"), "{text}");
}

#[tokio::test]
async fn replaces_a_unique_match_and_shows_the_edited_region() {
    let fixture = Fixture::new();
    fixture.write("src/main.rs", CODE);
    let text = fixture
        .ok(
            "editor",
            json!({"command": "str_replace", "path": "src/main.rs", "old_str": "    a + b\n", "new_str": "    a.checked_add(b).unwrap_or(i32::MAX)\n"}),
        )
        .await;
    assert!(text.contains("     7\t    a.checked_add(b).unwrap_or(i32::MAX)"), "{text}");
    assert!(text.contains("     3\t    println!"), "context before: {text}");
    assert!(text.contains("     8\t}"), "context after: {text}");
    assert_eq!(fixture.read("src/main.rs"), CODE.replace("    a + b\n", "    a.checked_add(b).unwrap_or(i32::MAX)\n"));
}

#[tokio::test]
async fn shows_the_closest_text_when_nothing_matches() {
    let fixture = Fixture::new();
    fixture.write("src/main.rs", CODE);
    let text = fixture
        .err(
            "editor",
            json!({"command": "str_replace", "path": "src/main.rs", "old_str": "let totl = add(1, 2);\nprintln!(\"{totl}\");", "new_str": "x"}),
        )
        .await;
    assert!(text.contains("not found"), "{text}");
    assert!(text.contains("closest text is at lines 2-3"), "{text}");
    assert!(text.contains("     2\t    let total = add(1, 2);\n     3\t    println!(\"{total}\");"), "{text}");

    let text = fixture
        .err(
            "editor",
            json!({"command": "str_replace", "path": "src/main.rs", "old_str": "fn add(a: i32,  b: i32) -> i32 {"}),
        )
        .await;
    assert!(text.contains("lines 6-6 (it differs only in whitespace or indentation)"), "{text}");
    assert_eq!(fixture.read("src/main.rs"), CODE);
}

#[tokio::test]
async fn lists_every_place_when_several_match() {
    let fixture = Fixture::new();
    fixture.write("a.txt", "x = 1\ny = 2\nx = 1\nz\nx = 1\n");
    let text = fixture
        .err("editor", json!({"command": "str_replace", "path": "a.txt", "old_str": "x = 1", "new_str": "x = 3"}))
        .await;
    assert!(text.contains("occurs 3 times"), "{text}");
    assert!(text.contains("lines 1, 3, 5"), "{text}");
    assert_eq!(fixture.read("a.txt"), "x = 1\ny = 2\nx = 1\nz\nx = 1\n");
}

#[tokio::test]
async fn keeps_windows_line_endings() {
    let fixture = Fixture::new();
    fixture.write("win.txt", "a\r\nb\r\nc\r\n");
    fixture
        .ok("editor", json!({"command": "str_replace", "path": "win.txt", "old_str": "a\nb", "new_str": "A\nB"}))
        .await;
    assert_eq!(fixture.read("win.txt"), "A\r\nB\r\nc\r\n");
    fixture.ok("editor", json!({"command": "insert", "path": "win.txt", "insert_line": 3, "new_str": "d"})).await;
    assert_eq!(fixture.read("win.txt"), "A\r\nB\r\nc\r\nd\r\n");
}

#[tokio::test]
async fn inserts_after_a_line_at_the_top_and_at_the_end() {
    let fixture = Fixture::new();
    fixture.write("list.txt", "one\ntwo\nthree");
    let text = fixture
        .ok("editor", json!({"command": "insert", "path": "list.txt", "insert_line": 1, "new_str": "one and a half"}))
        .await;
    assert!(text.contains("     2\tone and a half"), "{text}");
    assert_eq!(fixture.read("list.txt"), "one\none and a half\ntwo\nthree");
    fixture.ok("editor", json!({"command": "insert", "path": "list.txt", "insert_line": 0, "new_str": "zero\n"})).await;
    fixture
        .ok("editor", json!({"command": "insert", "path": "list.txt", "insert_line": 5, "new_str": "four\nfive"}))
        .await;
    assert_eq!(fixture.read("list.txt"), "zero\none\none and a half\ntwo\nthree\nfour\nfive\n");
    let text = fixture
        .err("editor", json!({"command": "insert", "path": "list.txt", "insert_line": 99, "new_str": "x"}))
        .await;
    assert!(text.contains("has 7 lines"), "{text}");
}

#[tokio::test]
async fn undoes_several_edits_in_order() {
    let fixture = Fixture::new();
    fixture.ok("editor", json!({"command": "create", "path": "u.txt", "file_text": "v1\n"})).await;
    fixture.ok("editor", json!({"command": "str_replace", "path": "u.txt", "old_str": "v1", "new_str": "v2"})).await;
    fixture.ok("editor", json!({"command": "insert", "path": "u.txt", "insert_line": 1, "new_str": "v3"})).await;
    assert_eq!(fixture.read("u.txt"), "v2\nv3\n");

    let text = fixture.ok("editor", json!({"command": "undo_edit", "path": "u.txt"})).await;
    assert!(text.contains("2 earlier edits can still be undone"), "{text}");
    assert_eq!(fixture.read("u.txt"), "v2\n");
    fixture.ok("editor", json!({"command": "undo_edit", "path": "./u.txt"})).await;
    assert_eq!(fixture.read("u.txt"), "v1\n");
    let text = fixture.ok("editor", json!({"command": "undo_edit", "path": "u.txt"})).await;
    assert!(text.contains("the file is deleted"), "{text}");
    assert!(!fixture.workspace().join("u.txt").exists());
    let text = fixture.err("editor", json!({"command": "undo_edit", "path": "u.txt"})).await;
    assert!(text.contains("no edit of u.txt to undo"), "{text}");
}

#[tokio::test]
async fn keeps_undo_history_per_registry() {
    let fixture = Fixture::new();
    fixture.write("s.txt", "a\n");
    fixture.ok("editor", json!({"command": "str_replace", "path": "s.txt", "old_str": "a", "new_str": "b"})).await;
    let other_session = rswe_tools::builtin_tools();
    let output =
        other_session.run("editor", json!({"command": "undo_edit", "path": "s.txt"}), &fixture.context()).await;
    assert!(output.is_error, "another session's registry must not undo this one's edits");
    assert_eq!(fixture.read("s.txt"), "b\n");
}

#[tokio::test]
async fn refuses_paths_outside_the_workspace() {
    let fixture = Fixture::new();
    std::fs::write(fixture.outside().join("secret.txt"), "secret").unwrap();
    let outside = fixture.outside().join("secret.txt");
    for input in [
        json!({"command": "view", "path": outside}),
        json!({"command": "view", "path": "../../secret.txt"}),
        json!({"command": "create", "path": "../escape.txt", "file_text": "x"}),
        json!({"command": "str_replace", "path": outside, "old_str": "secret", "new_str": "x"}),
    ] {
        let text = fixture.err("editor", input).await;
        assert!(text.contains("outside the workspace"), "{text}");
    }
    std::os::unix::fs::symlink(&outside, fixture.workspace().join("link.txt")).unwrap();
    let text = fixture.err("editor", json!({"command": "view", "path": "link.txt"})).await;
    assert!(text.contains("outside the workspace"), "{text}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
}

#[tokio::test]
async fn says_a_binary_file_is_binary() {
    let fixture = Fixture::new();
    fixture.write("blob.bin", [0u8, 1, 2, 3, 0, 255]);
    let text = fixture.ok("editor", json!({"command": "view", "path": "blob.bin"})).await;
    assert!(text.contains("binary file"), "{text}");
}

#[tokio::test]
async fn view_is_the_only_read_only_command() {
    let fixture = Fixture::new();
    assert!(fixture.tools.is_read_only("editor", &json!({"command": "view", "path": "x"})));
    assert!(!fixture.tools.is_read_only("editor", &json!({"command": "create", "path": "x", "file_text": ""})));
    assert!(!fixture.tools.is_read_only("editor", &json!({"command": "str_replace", "path": "x"})));
}

#[tokio::test]
async fn explains_invalid_input() {
    let fixture = Fixture::new();
    let text = fixture.err("editor", json!({"command": "explode", "path": "x"})).await;
    assert!(text.starts_with("invalid input for editor: unknown variant `explode`"), "{text}");
    assert!(text.contains("\"str_replace\""), "the schema is shown: {text}");
    let text = fixture.err("editor", json!({"command": "view"})).await;
    assert!(text.contains("missing field `path`"), "{text}");
    let text = fixture.err("editor", json!({"command": "view", "path": "x", "view_range": [1]})).await;
    assert!(text.starts_with("invalid input for editor"), "{text}");
    // Arguments sent as a JSON string are accepted.
    fixture.write("s.txt", "hi\n");
    let text = fixture.ok("editor", json!("{\"command\": \"view\", \"path\": \"s.txt\"}")).await;
    assert_eq!(text, "     1\thi");
}
