//! `rswe doctor`'s GitHub section: the real binary against the fake GitHub API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rswe_test_support::github::{FakeGitHub, TOKEN, test_app_key};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const WEBHOOK_SECRET: &str = "hook-secret-5150";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(config: &str) -> Env {
        let env = Env { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(env.dir.path().join("home")).unwrap();
        std::fs::write(env.config(), config).unwrap();
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("rswe.toml")
    }

    /// `rswe doctor` with only `vars` (and what any run needs) in its environment.
    async fn doctor(&self, vars: &[(&str, &str)]) -> (Option<i32>, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rswe"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.dir.path().join("home"))
            .env("RSWE_DATA_DIR", self.dir.path().join("data"))
            .env("ANTHROPIC_API_KEY", "sk-ant-doctor-test")
            .arg("--config")
            .arg(self.config())
            .arg("doctor")
            .stdin(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    }
}

/// The lines of the GitHub section.
fn github_section(text: &str) -> String {
    let start = text.find("\nGitHub\n").unwrap_or_else(|| panic!("no GitHub section:\n{text}"));
    let section = &text[start + "\nGitHub\n".len()..];
    let end = section.find("\nstorage\n").unwrap_or(section.len());
    section[..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_github_is_off_and_the_doctor_says_how_to_turn_it_on() {
    let env = Env::new("");
    let (_, text) = env.doctor(&[]).await;
    let section = github_section(&text);
    assert_eq!(
        section.trim_end(),
        "  ok    GitHub: off: set GITHUB_TOKEN, or GITHUB_APP_ID and the App's private key, to turn it on \
         (docs/github.md)",
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_is_authenticated_and_the_webhook_address_shown() {
    let github = FakeGitHub::start().await;
    github.set_user("octo-helper");
    let env = Env::new(
        "[server]\npublic_url = \"https://rswe.example.com/\"\n\n[github]\nfork_organization = \"acme-forks\"\n",
    );
    let api_url = github.api_url();
    let (code, text) = env
        .doctor(&[("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", &api_url), ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)])
        .await;
    let section = github_section(&text);
    assert!(section.contains("ok    token: accepted: authenticated as octo-helper"), "{section}");
    assert!(section.contains(&format!("ok    API: GitHub Enterprise Server at 127.0.0.1 ({api_url})")), "{section}");
    assert!(
        section.contains(
            "ok    webhook: webhooks accepted at https://rswe.example.com/github/webhook (events: Issue comments, \
             Issues, Pull request reviews, Pull request review comments)"
        ),
        "{section}"
    );
    assert!(section.contains("ok    trigger: \"@rswe\" in an issue or pull request comment"), "{section}");
    assert!(section.contains("ok    bot user: octo-helper"), "{section}");
    assert!(section.contains("ok    commits: authored by octo-helper <"), "{section}");
    assert!(section.contains("+octo-helper@users.noreply."), "{section}");
    assert!(section.contains("ok    forks: made under acme-forks"), "{section}");
    assert!(!section.contains("FAIL") && !section.contains("warn"), "{section}");
    assert!(!text.contains(TOKEN) && !text.contains(WEBHOOK_SECRET), "the doctor never prints a secret:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert_eq!(code, Some(0), "{text}");
    let calls = github.calls();
    assert!(calls.iter().any(|call| call.method == "GET" && call.path == "/user"), "{calls:?}");
    assert!(calls.iter().all(|call| call.token.as_deref() == Some(TOKEN)), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_a_problem_and_a_missing_webhook_secret_a_warning() {
    let github = FakeGitHub::start().await;
    let env = Env::new("[github]\ntrigger = \"@helper\"\nbot_user = \"helper-bot\"\n");
    let (code, text) = env
        .doctor(&[("GITHUB_TOKEN", "ghp_wrong0000000000000000000000000000000"), ("GITHUB_API_URL", &github.api_url())])
        .await;
    let section = github_section(&text);
    let failure =
        section.lines().find(|line| line.starts_with("  FAIL  token:")).unwrap_or_else(|| panic!("{section}"));
    assert!(failure.contains("rejected the token") && failure.contains("check GITHUB_TOKEN"), "{failure}");
    assert!(
        section.contains(
            "warn  webhook: GITHUB_WEBHOOK_SECRET is not set: POST /github/webhook refuses every delivery; set it to \
             the secret you gave GitHub"
        ),
        "{section}"
    );
    assert!(section.contains("ok    trigger: \"@helper\""), "{section}");
    assert!(section.contains("ok    bot user: helper-bot: issues assigned to it start a session"), "{section}");
    assert!(!text.contains("ghp_wrong"), "{text}");
    assert_eq!(code, Some(1), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_are_problems_that_say_what_to_change() {
    let env = Env::new("");
    let (code, text) = env.doctor(&[("GITHUB_APP_ID", "12345")]).await;
    let section = github_section(&text);
    assert!(
        section.contains("FAIL  settings: GitHub: GITHUB_APP_ID is set but not the App's private key"),
        "{section}"
    );
    assert!(section.contains("GITHUB_APP_PRIVATE_KEY_PATH"), "{section}");
    assert_eq!(code, Some(1), "{text}");

    let (code, text) = env.doctor(&[("GITHUB_APP_ID", "12345"), ("GITHUB_TOKEN", TOKEN)]).await;
    let section = github_section(&text);
    assert!(
        section.contains(
            "FAIL  settings: GitHub: both a personal access token (GITHUB_TOKEN) and a GitHub App (GITHUB_APP_ID) \
             are set; keep one"
        ),
        "{section}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(code, Some(1), "{text}");

    let env = Env::new("[github]\napp_id = 12345\nprivate_key_file = \"missing.pem\"\n");
    let (code, text) = env.doctor(&[]).await;
    let section = github_section(&text);
    assert!(section.contains("FAIL  settings: GitHub: cannot read the App's private key"), "{section}");
    assert!(section.contains(&env.dir.path().join("missing.pem").display().to_string()), "{section}");
    assert_eq!(code, Some(1), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_is_named_with_its_bot_account_and_its_key_never_shown() {
    let github = FakeGitHub::start().await;
    let (pem, public_key) = test_app_key();
    github.enable_app(31337, "acme-rswe", public_key);
    let api_url = github.api_url();

    // The key inline, as env files write it: one line with literal \n sequences.
    let env = Env::new("[server]\npublic_url = \"https://rswe.example.com\"\n");
    let inline = pem.trim().replace('\n', "\\n");
    let (code, text) = env
        .doctor(&[
            ("GITHUB_APP_ID", "31337"),
            ("GITHUB_APP_PRIVATE_KEY", &inline),
            ("GITHUB_APP_INSTALLATION_ID", "4242"),
            ("GITHUB_API_URL", &api_url),
            ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ])
        .await;
    let section = github_section(&text);
    assert!(section.contains("ok    App: GitHub App acme-rswe[bot] (App ID 31337)"), "{section}");
    assert!(section.contains("ok    installation: 4242, used for every repository"), "{section}");
    assert!(section.contains("ok    bot user: acme-rswe[bot]"), "{section}");
    assert!(section.contains("ok    commits: authored by acme-rswe[bot] <"), "{section}");
    assert!(section.contains("webhooks accepted at https://rswe.example.com/github/webhook"), "{section}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains(WEBHOOK_SECRET), "{text}");
    assert_eq!(code, Some(0), "{text}");

    // The key file named in rswe.toml, relative to it; the wrong App id is refused by GitHub.
    let env = Env::new("[github]\napp_id = 999\nprivate_key_file = \"keys/app.pem\"\n");
    std::fs::create_dir_all(env.dir.path().join("keys")).unwrap();
    std::fs::write(env.dir.path().join("keys/app.pem"), &pem).unwrap();
    let (code, text) = env.doctor(&[("GITHUB_API_URL", &api_url)]).await;
    let section = github_section(&text);
    let failure = section.lines().find(|line| line.starts_with("  FAIL  App:")).unwrap_or_else(|| panic!("{section}"));
    assert!(failure.contains("App ID 999") && failure.contains("check GITHUB_APP_ID"), "{failure}");
    assert!(section.contains("ok    installation: found per repository"), "{section}");
    assert!(section.contains("warn  webhook: GITHUB_WEBHOOK_SECRET is not set"), "{section}");
    assert_eq!(code, Some(1), "{text}");
}
