//! The `rswe` binary.

mod bench;
mod config;
mod doctor;
mod git;
mod keys;
mod mcp;
mod render;
mod run;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};
use config::Config;
use rswe_llm::{Caching, Provider, ProviderStatus};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rswe", version, about = "Self-hosted autonomous software-engineering agents")]
struct Cli {
    /// The config file (TOML). Default: $XDG_CONFIG_HOME/rswe/rswe.toml when it exists.
    #[arg(long, global = true, env = "RSWE_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task in the terminal: rswe run [--repo PATH|URL] "fix the failing test".
    Run(run::RunArgs),
    /// Serve the web UI and the REST API: sessions that live for hours.
    Serve(serve::ServeArgs),
    /// Create, list and revoke the API keys of `rswe serve`.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check what is configured, what is missing, and how to fix it.
    Doctor,
    /// The MCP tool servers: `rswe mcp list` starts each one and lists its tools.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Measure rswe's speed on this machine (startup, sandbox overhead).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// List the models of the catalog with their limits and prices, and which
    /// providers are configured.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The doctor's report says what went wrong; warnings logged on the way would only repeat it.
    let default_level = if matches!(cli.command, Command::Doctor) { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RSWE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(run::exit::ERROR)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    // `rswe mcp list --config servers.json` checks an mcpServers file, not an rswe.toml.
    let servers_file = match (&cli.command, &cli.config) {
        (Command::Mcp(_), Some(path)) if path.extension().is_some_and(|ext| ext == "json") => Some(path.clone()),
        _ => None,
    };
    let config_file = if servers_file.is_some() { None } else { cli.config.as_deref() };
    let config = Config::load(config_file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Models { json } => models(&config, json).map(|()| 0),
        Command::Run(args) => runtime.block_on(run::run(&config, args)),
        Command::Keys(command) => runtime.block_on(async {
            let store = rswe_store::Store::open(config.data_dir().join("rswe.db")).await?;
            let code = keys::keys(&store, command).await;
            store.close().await;
            code
        }),
        Command::Serve(args) => runtime.block_on(serve::serve(config, args)),
        Command::Doctor => runtime.block_on(doctor::doctor(&config)),
        Command::Mcp(command) => runtime.block_on(mcp::run(&config, servers_file.as_deref(), command)),
        Command::Bench(command) => runtime.block_on(bench::bench(command)),
    }
}

fn models(config: &Config, json: bool) -> Result<()> {
    let catalog = config.catalog()?;
    let mut rows = Vec::new();
    for entry in catalog.entries() {
        for id in &entry.ids {
            rows.push(catalog.resolve(id)?);
        }
    }
    if json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    let mut out = String::new();
    writeln!(
        out,
        "{:<58} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  caching",
        "model", "context", "output", "$/M in", "$/M out", "$/M cw", "$/M cr"
    )?;
    for info in &rows {
        let price =
            |f: fn(&rswe_llm::Price) -> f64| info.price.as_ref().map_or("?".to_string(), |p| format!("{:.3}", f(p)));
        let caching = match info.caching {
            Caching::Explicit => "breakpoints",
            Caching::Automatic => "automatic",
            Caching::None => "none",
        };
        writeln!(
            out,
            "{:<58} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  {caching}",
            info.id,
            info.context_window,
            info.max_output_tokens,
            price(|p| p.input),
            price(|p| p.output),
            price(|p| p.cache_write),
            price(|p| p.cache_read),
        )?;
    }
    writeln!(out, "\nAny other model works as provider/model-id with conservative limits and an unknown price.")?;
    writeln!(out, "Bedrock models also answer with a cross-region prefix: bedrock/us.…, eu.…, apac.…, global.…\n")?;
    for provider in Provider::ALL {
        match config.providers.status(provider) {
            ProviderStatus::Ready if provider == Provider::Bedrock => {
                writeln!(out, "{provider}: uses the AWS credential chain (environment, profile, SSO, instance role)")?
            }
            ProviderStatus::Ready => writeln!(out, "{provider}: configured")?,
            ProviderStatus::Missing(hint) => writeln!(out, "{provider}: not configured ({hint})")?,
        }
    }
    print(&out)
}

/// Writes to stdout; a reader that went away (`rswe models | head`) is not an error.
fn print(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
