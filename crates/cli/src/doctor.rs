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
