//! search and find_files over a real workspace with a .gitignore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use serde_json::json;

fn project() -> Fixture {
    let fixture = Fixture::new();
    fixture.write(".gitignore", "ignored/\n*.log\n");
    fixture.write("src/lib.rs", "pub fn needle() {}\n// another Needle here\n");
    fixture.write("src/nested/mod.rs", "fn haystack() { needle(); }\n");
    fixture.write("docs/guide.md", "The needle is documented.\n");
    fixture.write("ignored/secret.rs", "fn needle_in_ignored() {}\n");
    fixture.write("build.log", "needle in a log\n");
    fixture.write(".github/workflows/ci.yml", "run: find the needle\n");
    fixture
}

#[tokio::test]
async fn finds_matches_honouring_gitignore() {
    let fixture = project();
    let text = fixture.ok("search", json!({"pattern": "needle"})).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            ".github/workflows/ci.yml:1: run: find the needle",
            "docs/guide.md:1: The needle is documented.",
            "src/lib.rs:1: pub fn needle() {}",
            "src/nested/mod.rs:1: fn haystack() { needle(); }",
        ]
    );
}

#[tokio::test]
async fn narrows_by_glob_path_and_case() {
    let fixture = project();
    let text = fixture.ok("search", json!({"pattern": "needle", "glob": "*.md"})).await;
    assert_eq!(text, "docs/guide.md:1: The needle is documented.");

    let text = fixture.ok("search", json!({"pattern": "needle", "path": "src/nested"})).await;
    assert_eq!(text, "src/nested/mod.rs:1: fn haystack() { needle(); }");

    let text =
        fixture.ok("search", json!({"pattern": "needle", "glob": "src/**/*.rs", "case_insensitive": true})).await;
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "src/lib.rs:1: pub fn needle() {}",
            "src/lib.rs:2: // another Needle here",
            "src/nested/mod.rs:1: fn haystack() { needle(); }"
        ]
    );

    let text = fixture.ok("search", json!({"pattern": "needle", "glob": "!*.rs"})).await;
    assert!(text.contains("docs/guide.md") && !text.contains(".rs:"), "{text}");

    let text = fixture.ok("search", json!({"pattern": "Needle"})).await;
    assert_eq!(text, "src/lib.rs:2: // another Needle here");
}

#[tokio::test]
async fn bounds_the_results_and_says_how_many_were_left_out() {
    let fixture = Fixture::new();
    let many: String = (1..=250).map(|n| format!("match {n}\n")).collect();
    fixture.write("many.txt", &many);
    let text = fixture.ok("search", json!({"pattern": "match"})).await;
    assert_eq!(text.lines().filter(|line| line.starts_with("many.txt:")).count(), 100);
    assert!(
        text.ends_with(
            "[150 more matches not shown; narrow the pattern, path or glob, or raise max_results (at most 1000)]"
        ),
        "{text}"
    );

    let text = fixture.ok("search", json!({"pattern": "match", "max_results": 5})).await;
    assert!(text.starts_with("many.txt:1: match 1\n"), "{text}");
    assert!(text.contains("[245 more matches not shown"), "{text}");

    let text = fixture.ok("search", json!({"pattern": "match", "max_results": 100000})).await;
    assert!(!text.contains("more matches"), "250 < the cap of 1000: {text}");

    fixture.write("long.txt", format!("match {}\n", "x".repeat(10_000)));
    let text = fixture.ok("search", json!({"pattern": "match", "path": "long.txt"})).await;
    assert!(text.len() < 500 && text.contains("[line cut: "), "{text}");
}

#[tokio::test]
async fn says_when_nothing_matches_and_explains_bad_patterns() {
    let fixture = project();
    assert_eq!(
        fixture.ok("search", json!({"pattern": "nowhere_to_be_found"})).await,
        "No matches for `nowhere_to_be_found`."
    );
    let text = fixture.err("search", json!({"pattern": "fn foo("})).await;
    assert!(text.starts_with("invalid regular expression `fn foo(`"), "{text}");
    assert!(text.contains("backslash"), "{text}");
    let text = fixture.err("search", json!({"pattern": "x", "path": "../.."})).await;
    assert!(text.contains("outside the workspace"), "{text}");
    let text = fixture.err("search", json!({"pattern": "x", "path": "no/such/dir"})).await;
    assert!(text.contains("does not exist"), "{text}");
    let text = fixture.err("search", json!({"query": "x"})).await;
    assert!(text.starts_with("invalid input for search"), "{text}");
}

#[tokio::test]
async fn does_not_search_saved_command_output() {
    let fixture = project();
    let shell = fixture.ok("shell", json!({"command": "for i in $(seq 1 40000); do echo needle $i; done"})).await;
    assert!(shell.contains("left out"), "{shell}");
    let text = fixture.ok("search", json!({"pattern": "needle"})).await;
    assert!(!text.contains(".rswe"), "{text}");
}

#[tokio::test]
async fn finds_files_by_glob_sorted_and_honouring_gitignore() {
    let fixture = project();
    let text = fixture.ok("find_files", json!({"glob": "*.rs"})).await;
    assert_eq!(text, "src/lib.rs\nsrc/nested/mod.rs");
    let text = fixture.ok("find_files", json!({"glob": "nested/*.rs", "path": "src"})).await;
    assert_eq!(text, "src/nested/mod.rs");
    let text = fixture.ok("find_files", json!({"glob": "*.yml"})).await;
    assert_eq!(text, ".github/workflows/ci.yml");
    assert_eq!(fixture.ok("find_files", json!({"glob": "*.py"})).await, "No files match `*.py`.");
    let text = fixture.err("find_files", json!({"glob": "a{b"})).await;
    assert!(text.contains("invalid glob"), "{text}");
}

#[tokio::test]
async fn bounds_the_file_list() {
    let fixture = Fixture::new();
    for n in 0..250 {
        fixture.write(&format!("gen/file{n:03}.txt"), "");
    }
    let text = fixture.ok("find_files", json!({"glob": "*.txt"})).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 201);
    assert_eq!(lines[0], "gen/file000.txt");
    assert_eq!(lines[199], "gen/file199.txt");
    assert_eq!(lines[200], "[50 more files not shown; use a narrower glob or path]");
}

#[tokio::test]
async fn both_are_read_only() {
    let fixture = Fixture::new();
    assert!(fixture.tools.is_read_only("search", &json!({"pattern": "x"})));
    assert!(fixture.tools.is_read_only("find_files", &json!({"glob": "x"})));
}
