//! `rswe-fake-model --script FILE [--port N] [--record FILE]`: the fake model server as a
//! process, for tests that drive the rswe binary end to end.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use rswe_test_support::{FakeModelServer, Script};

/// Serve a scripted fake model (Anthropic, OpenAI and Bedrock wire formats) on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "rswe-fake-model", version)]
struct Args {
    /// The JSON script to replay (see the rswe-test-support README).
    #[arg(long)]
    script: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// On exit, write the recorded requests here as a JSON array.
    #[arg(long)]
    record: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let script = Script::from_file(&args.script)?;
    let server = FakeModelServer::try_start_on(script, SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.base_url())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    let requests = server.requests();
    let violations = server.violations();
    server.shutdown().await;
    if let Some(path) = args.record {
        let json = serde_json::to_string_pretty(&requests)?;
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !violations.is_empty() {
        eprintln!("fake model violations:");
        for v in &violations {
            eprintln!("  {v}");
        }
    }
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
