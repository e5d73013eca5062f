//! `rswe mcp list`: starts each configured MCP server, lists its tools, and says why a
//! server could not be used.

use crate::config::Config;
use anyhow::{Context, Result};
use rswe_mcp::{McpConfig, ServerCheck};
use rswe_sandbox::Sandbox;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

#[derive(clap::Subcommand, Debug)]
pub enum McpCommand {
    /// Start each configured server (in a scratch sandbox, as a session would), list its
    /// tools, and report each failure with its cause. `--config FILE.json` checks an
    /// `mcpServers` file instead of the servers of rswe.toml.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status: 0 when every enabled server started, 1 otherwise.
pub async fn run(config: &Config, servers_file: Option<&Path>, command: McpCommand) -> Result<u8> {
    let McpCommand::List { json } = command;
    let servers = match servers_file {
        Some(file) => McpConfig::from_file(file, &|name| std::env::var(name).ok())?,
        None => config.mcp_servers()?,
    };
    if servers.servers.is_empty() {
        println!(
            "No MCP servers are configured. Name an mcpServers file with `[mcp] config = \"mcp.json\"` in rswe.toml, \
             or write servers as [mcp.servers.<name>] (see \"Tools from MCP servers\" in the README)."
        );
        return Ok(0);
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let workspace = scratch.path().join("workspace");
    let sandbox = config.sandbox(&scratch.path().join("session"), &workspace, &config.data_dir())?;
    let sandbox: Arc<dyn Sandbox> = Arc::new(sandbox);
    let checks = rswe_mcp::check_servers(&servers, sandbox.clone(), config.mcp_settings()?).await;
    sandbox.shutdown().await;
    let failed = checks.iter().filter(|check| check.enabled && check.outcome.is_err()).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&as_json(&checks))?);
    } else {
        print!("{}", as_text(&checks));
        let enabled = checks.iter().filter(|check| check.enabled).count();
        match failed {
            0 => println!("{enabled} of {enabled} enabled servers started."),
            _ => println!("{} of {enabled} enabled servers started; {failed} could not be used.", enabled - failed),
        }
    }
    Ok(u8::from(failed > 0))
}

fn as_text(checks: &[ServerCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        let _ = writeln!(out, "{}  {}", check.name, check.transport);
        match (&check.outcome, check.enabled) {
            (_, false) => {
                let _ = writeln!(out, "  disabled");
            }
            (Ok(offer), true) => {
                if let Some(info) = &offer.server_info {
                    let _ = writeln!(out, "  server: {info}");
                }
                let width = offer.tools.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
                let _ = writeln!(out, "  {} tools:", offer.tools.len());
                for (name, description) in &offer.tools {
                    let _ = writeln!(out, "    {name:width$}  {}", summary(description));
                }
            }
            (Err(error), true) => {
                let _ = writeln!(out, "  FAILED: {}", error.replace('\n', "\n    "));
            }
        }
        out.push('\n');
    }
    out
}

/// The first line of a description, shortened for a listing.
fn summary(description: &str) -> String {
    const MAX: usize = 90;
    let line = description.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= MAX {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn as_json(checks: &[ServerCheck]) -> serde_json::Value {
    let servers: Vec<serde_json::Value> = checks
        .iter()
        .map(|check| {
            let mut value = serde_json::json!({
                "name": check.name,
                "transport": check.transport,
                "enabled": check.enabled,
            });
            match (&check.outcome, check.enabled) {
                (_, false) => {}
                (Ok(offer), true) => {
                    value["server"] = serde_json::json!(offer.server_info);
                    value["tools"] = offer
                        .tools
                        .iter()
                        .map(|(name, description)| serde_json::json!({"name": name, "description": description}))
                        .collect();
                }
                (Err(error), true) => value["error"] = serde_json::json!(error),
            }
            value
        })
        .collect();
    serde_json::json!({ "servers": servers })
}
