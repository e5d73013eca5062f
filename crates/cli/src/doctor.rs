//! `rswe doctor`: what is configured, what is missing, and how to fix it. Never prints a
//! secret.

use crate::config::Config;
use anyhow::Result;
use rswe_llm::{Provider, ProviderStatus};

struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: &str) {
        println!("  ok    {what}: {detail}");
    }

    fn warn(&self, what: &str, detail: &str) {
        println!("  warn  {what}: {detail}");
    }

    fn fail(&mut self, what: &str, detail: &str) {
        self.problems += 1;
        println!("  FAIL  {what}: {detail}");
    }
}

/// The events rswe takes from a GitHub webhook, as GitHub's settings page names them.
const GITHUB_EVENTS: &str = "Issue comments, Issues, Pull request reviews, Pull request review comments";

/// Checks the GitHub credentials against the API and shows how GitHub reaches rswe.
async fn github_section(report: &mut Report, config: &Config, github: &rswe_github::GitHubSettings) {
    use rswe_github::{Credentials, GitHubAuth};
    if github.api_url == rswe_github::api::DEFAULT_API_URL {
        report.ok("API", &format!("github.com ({})", github.api_url));
    } else {
        let host = reqwest::Url::parse(&github.api_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_else(|| github.api_url.clone());
        report.ok("API", &format!("GitHub Enterprise Server at {host} ({})", github.api_url));
    }
    // The identity sessions use: the token's user, or the App's bot account.
    let auth = GitHubAuth::new(&github.api_url, github.credentials.clone());
    let identity = match (&github.credentials, auth) {
        (Credentials::Token(_), Ok(auth)) => match auth.identity().await {
            Ok(identity) => {
                report.ok("token", &format!("accepted: authenticated as {}", identity.login));
                Some(identity)
            }
            Err(error) => {
                report.fail("token", &error.to_string());
                None
            }
        },
        (Credentials::Token(_), Err(error)) => {
            report.fail("token", &error.to_string());
            None
        }
        (Credentials::App(app), auth) => {
            let identity = match auth {
                Ok(auth) => match auth.identity().await {
                    Ok(identity) => {
                        report.ok("App", &format!("GitHub App {} (App ID {})", identity.login, app.app_id));
                        Some(identity)
                    }
                    Err(error) => {
                        report.fail("App", &format!("App ID {}: {error}", app.app_id));
                        None
                    }
                },
                Err(error) => {
                    report.fail("App", &format!("App ID {}: {error}", app.app_id));
                    None
                }
            };
            match app.installation_id {
                Some(id) => report.ok("installation", &format!("{id}, used for every repository")),
                None => report.ok("installation", "found per repository (install the App on each one rswe works on)"),
            }
            identity
        }
    };
    let public_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen))
        .trim_end_matches('/')
        .to_string();
    if github.webhook_secret.is_some() {
        report.ok("webhook", &format!("webhooks accepted at {public_url}/github/webhook (events: {GITHUB_EVENTS})"));
        if config.server.public_url.is_none() {
            report.warn(
                "webhook URL",
                "server.public_url is not set: give GitHub the HTTPS address it reaches rswe at, ending in \
                 /github/webhook",
            );
        }
    } else {
        report.warn(
            "webhook",
            "GITHUB_WEBHOOK_SECRET is not set: POST /github/webhook refuses every delivery; set it to the secret you \
             gave GitHub",
        );
    }
    report.ok("trigger", &format!("\"{}\" in an issue or pull request comment starts a session", github.trigger));
    match (&github.bot_user, &identity) {
        (Some(login), _) => report.ok("bot user", &format!("{login}: issues assigned to it start a session")),
        (None, Some(identity)) => report.ok(
            "bot user",
            &format!("{} (the credentials' own): issues assigned to it start a session", identity.login),
        ),
        (None, None) => report.ok("bot user", "the credentials' own login: issues assigned to it start a session"),
    }
    if let Some(identity) = &identity {
        let name = github.commit_name.as_deref().unwrap_or(&identity.name);
        let email = github.commit_email.as_deref().unwrap_or(&identity.email);
        report.ok("commits", &format!("authored by {name} <{email}>"));
    }
    if let Some(organization) = &github.fork_organization {
        report.ok("forks", &format!("made under {organization} when the credentials cannot push"));
    }
}

pub async fn doctor(config: &Config) -> Result<u8> {
    let mut report = Report { problems: 0 };
    println!("rswe {}", env!("CARGO_PKG_VERSION"));
    match &config.path {
        Some(path) => report.ok("config", &format!("{}", path.display())),
        None => report.ok("config", "no config file; defaults and the environment (see --config, RSWE_CONFIG)"),
    }

    println!("model providers");
    let mut ready = 0;
    for provider in Provider::ALL {
        match config.providers.status(provider) {
            ProviderStatus::Ready if provider == Provider::Bedrock => report.ok(
                "bedrock",
                "uses the AWS credential chain (environment, AWS_PROFILE, SSO, instance role); set AWS_REGION",
            ),
            ProviderStatus::Ready => {
                ready += 1;
                report.ok(provider.name(), "configured")
            }
            ProviderStatus::Missing(hint) => report.warn(provider.name(), &hint),
        }
    }
    let default_model = &config.agent.model;
    match config.catalog()?.resolve(default_model) {
        Ok(info) => match config.providers.status(info.provider) {
            ProviderStatus::Ready => report.ok("default model", default_model),
            ProviderStatus::Missing(hint) => {
                report.fail("default model", &format!("{default_model} cannot be used: {hint}"))
            }
        },
        Err(error) => report.fail("default model", &error.to_string()),
    }
    if ready == 0 && config.providers.bedrock.region.is_none() {
        report.warn(
            "providers",
            "no provider is configured yet: set ANTHROPIC_API_KEY, OPENAI_API_KEY, or AWS credentials and AWS_REGION",
        );
    }

    println!("sandbox");
    match config.sandbox.mode.as_str() {
        "none" => report.warn("bubblewrap", "sandbox.mode = \"none\": commands run without isolation"),
        mode => match rswe_sandbox::LocalSandbox::detect_bubblewrap() {
            Ok(()) => report.ok("bubblewrap", "works: commands run isolated"),
            Err(why) if mode == "bubblewrap" => {
                report.fail("bubblewrap", &format!("{why} (sandbox.mode = \"bubblewrap\" requires it)"))
            }
            Err(why) => report.warn(
                "bubblewrap",
                &format!("{why}; commands will run WITHOUT isolation. Install it: apt-get install bubblewrap"),
            ),
        },
    }

    println!("tools");
    match std::process::Command::new("git").arg("--version").output() {
        Ok(output) if output.status.success() => report.ok("git", String::from_utf8_lossy(&output.stdout).trim()),
        _ => report.fail("git", "not found: install git (apt-get install git)"),
    }

    println!("MCP servers");
    match config.mcp_servers() {
        Ok(servers) if servers.servers.is_empty() => report.ok("servers", "none configured"),
        Ok(servers) => {
            let enabled: Vec<&str> = servers.enabled().map(|server| server.name.as_str()).collect();
            report.ok(
                "servers",
                &format!(
                    "{} configured, {} enabled ({}): `rswe mcp list` starts them and lists their tools",
                    servers.servers.len(),
                    enabled.len(),
                    enabled.join(", ")
                ),
            );
        }
        Err(error) => report.fail("servers", &format!("{error:#}")),
    }
    if config.mcp.repository_config {
        report.warn("repository .mcp.json", "used: repositories' own stdio servers run in the sandbox");
    }

    println!("Slack");
    match config.slack_settings() {
        Ok(None) => report.ok("Slack", "not configured (docs/slack.md)"),
        Ok(Some(slack)) => {
            match rswe_slack::api::SlackApi::new(&slack.api_url, &slack.bot_token) {
                Ok(api) => match api.auth_test().await {
                    Ok(bot) => {
                        report.ok("bot token", &format!("accepted: the bot is {} in team {}", bot.user_id, bot.team_id))
                    }
                    Err(error) => report.fail("bot token", &error.to_string()),
                },
                Err(error) => report.fail("bot token", &error.to_string()),
            }
            if let Some(app_token) = &slack.app_token {
                match rswe_slack::api::SlackApi::new(&slack.api_url, &slack.bot_token) {
                    Ok(api) => match api.open_socket_connection(app_token).await {
                        Ok(_) => report.ok("app token", "accepted: Socket Mode can connect"),
                        Err(error) => report.fail("app token", &error.to_string()),
                    },
                    Err(error) => report.fail("app token", &error.to_string()),
                }
            }
            let mode = match (&slack.app_token, &slack.signing_secret) {
                (Some(_), Some(_)) => "Socket Mode and the Events API",
                (Some(_), None) => "Socket Mode",
                _ => "the Events API (POST /slack/events)",
            };
            report.ok("intake", mode);
            if slack.admins.is_empty() {
                report.warn("admins", "ADMIN_USER_ID_LIST is empty: everyone in the workspace can use the agent");
            } else {
                report.ok("admins", &slack.admins.join(", "));
            }
        }
        Err(error) => report.fail("Slack", &format!("{error:#}")),
    }

    println!("GitHub");
    match config.github_settings() {
        Ok(None) => report.ok(
            "GitHub",
            "off: set GITHUB_TOKEN, or GITHUB_APP_ID and the App's private key, to turn it on (docs/github.md)",
        ),
        Ok(Some(github)) => github_section(&mut report, config, &github).await,
        Err(error) => report.fail("settings", &format!("{error:#}")),
    }

    println!("storage");
    let data_dir = config.data_dir();
    let probe = data_dir.join(".rswe-doctor-probe");
    let writable = std::fs::create_dir_all(&data_dir).and_then(|()| std::fs::write(&probe, b"ok"));
    let _ = std::fs::remove_file(&probe);
    let data_dir_writable = writable.is_ok();
    match writable {
        Ok(()) => report.ok("data directory", &format!("{} is writable", data_dir.display())),
        Err(error) => report.fail(
            "data directory",
            &format!("{} is not writable ({error}); set RSWE_DATA_DIR to a writable directory", data_dir.display()),
        ),
    }

    println!("serve");
    let listen = &config.server.listen;
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => report.ok("listen", &format!("{listen} (this machine only)")),
        Ok(_) if config.server.public_url.as_deref().is_some_and(|url| url.starts_with("https://")) => {
            report.ok("listen", &format!("{listen}, reached at {}", config.server.public_url.as_deref().unwrap_or("")))
        }
        Ok(_) => report.warn(
            "listen",
            &format!("{listen} is reachable from other machines without TLS: put a TLS proxy in front (docs/serve.md)"),
        ),
        Err(error) => report.fail("listen", &format!("server.listen = {listen:?} is not an address: {error}")),
    }
    if data_dir_writable {
        match rswe_store::Store::open(data_dir.join("rswe.db")).await {
            Ok(store) => {
                match store.count_api_keys().await {
                    Ok(0) => report.warn(
                        "API keys",
                        "none yet: the first `rswe serve` in a terminal prints a sign-in link, or run `rswe keys create NAME`",
                    ),
                    Ok(n) => report.ok("API keys", &format!("{n} (rswe keys list)")),
                    Err(error) => report.fail("API keys", &error.to_string()),
                }
                store.close().await;
            }
            Err(error) => report.fail("database", &error.to_string()),
        }
    }

    if report.problems == 0 {
        println!("All set.");
        Ok(0)
    } else {
        println!("{} problem(s) to fix.", report.problems);
        Ok(1)
    }
}
