//! `rswe bench`: measured figures for the speed targets, on this machine.
//!
//! - `startup`: from spawning `rswe run` to the model server receiving the first request
//!   (config, database, sandbox, workspace, prompt; a fake model server answers).
//! - `shell`: the cost of running a command through the sandbox against running it
//!   directly, plain and under bubblewrap.
//! - `context`: what each context policy spends on recorded trajectories, against the
//!   fake model server's prompt-cache simulation (see `context.rs`).
//! - `serve`: `rswe serve` under load (see `serve.rs`).

mod context;
mod generator;
mod serve;
mod tool_output;
mod trajectory;

use anyhow::{Context, Result};
use rswe_sandbox::{ExecRequest, LocalSandbox, LocalSandboxConfig, Sandbox, SandboxMode};
use rswe_test_support::{FakeModelServer, Script, Turn};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Time from starting `rswe run` to its first model request.
    Startup {
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
    /// Overhead of the shell tool's sandbox against running the command directly.
    Shell {
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// The command to time.
        #[arg(long, default_value = "true")]
        command: String,
        #[arg(long)]
        json: bool,
    },
    /// Replay trajectories through each context policy (rswe's, the reference, none) and
    /// compare what they cost at Claude Sonnet 4.5 prices.
    Context(context::ContextArgs),
    /// `rswe serve` under load: idle memory, dispatch time, per-step overhead with 10,
    /// 50 and 100 sessions working at once.
    Serve(serve::ServeArgs),
}

/// Summary statistics of a series of durations, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub runs: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
        Stats {
            runs: samples.len(),
            min_ms: ms(samples[0]),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            max_ms: ms(samples[samples.len() - 1]),
        }
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} p50 {:>8.2} ms   p90 {:>8.2} ms   min {:>8.2} ms   max {:>8.2} ms   ({} runs)",
            self.p50_ms, self.p90_ms, self.min_ms, self.max_ms, self.runs
        )
    }
}

pub async fn bench(command: BenchCommand) -> Result<u8> {
    match command {
        BenchCommand::Startup { runs, json } => startup(runs.max(1), json).await,
        BenchCommand::Shell { runs, command, json } => shell(runs.max(1), &command, json).await,
        BenchCommand::Context(args) => context::bench(args).await,
        BenchCommand::Serve(args) => serve::bench(args).await,
    }
}

async fn startup(runs: usize, json: bool) -> Result<u8> {
    let exe = std::env::current_exe().context("cannot find the rswe binary")?;
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(repo.join("README.md"), "# bench\n")?;
    for args in
        [&["init", "-q"][..], &["add", "."], &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"]]
    {
        std::process::Command::new("git").arg("-C").arg(&repo).args(args).output()?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let server = FakeModelServer::start(Script::new().turn(Turn::text("ok"))).await;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&exe)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("RSWE_DATA_DIR", dir.path().join("data"))
            .env("ANTHROPIC_API_KEY", "bench")
            .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
            .args(["run", "--repo"])
            .arg(&repo)
            .arg("say ok")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let arrived = server.wait_for_requests(1, Duration::from_secs(60)).await;
        let elapsed = started.elapsed();
        child.wait().await?;
        anyhow::ensure!(arrived, "rswe run sent no model request within 60 s");
        samples.push(elapsed);
    }
    let stats = Stats::of(samples);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "startup_to_first_request": stats }))?);
    } else {
        println!("{}", stats.line("rswe run → first request"));
    }
    Ok(0)
}

async fn time_sandbox(sandbox: &LocalSandbox, command: &str, runs: usize) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let outcome = sandbox.exec(ExecRequest::new(command), None, CancellationToken::new()).await?;
        samples.push(started.elapsed());
        anyhow::ensure!(outcome.success(), "`{command}` failed in the sandbox");
    }
    Ok(samples)
}

async fn shell(runs: usize, command: &str, json: bool) -> Result<u8> {
    let dir = tempfile::tempdir()?;
    let mut direct = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status =
            tokio::process::Command::new("bash").arg("-c").arg(command).current_dir(dir.path()).status().await?;
        direct.push(started.elapsed());
        anyhow::ensure!(status.success(), "`{command}` failed");
    }
    let direct = Stats::of(direct);

    let mut config = LocalSandboxConfig::new(dir.path().join("plain"));
    config.mode = SandboxMode::None;
    let plain_box = LocalSandbox::new(config)?;
    let plain = Stats::of(time_sandbox(&plain_box, command, runs).await?);
    plain_box.shutdown().await;

    let mut config = LocalSandboxConfig::new(dir.path().join("bwrap"));
    config.mode = SandboxMode::Bubblewrap;
    let sandboxed = match LocalSandbox::new(config) {
        Ok(bwrap_box) => {
            let stats = Stats::of(time_sandbox(&bwrap_box, command, runs).await?);
            bwrap_box.shutdown().await;
            Some(stats)
        }
        Err(error) => {
            eprintln!("bubblewrap is not available here ({error}); only the plain sandbox is measured");
            None
        }
    };
    let ratio = |s: &Stats| s.p50_ms / direct.p50_ms;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "command": command,
                "direct": direct,
                "plain": plain,
                "plain_ratio_p50": ratio(&plain),
                "bubblewrap": sandboxed,
                "bubblewrap_ratio_p50": sandboxed.as_ref().map(ratio),
            }))?
        );
    } else {
        println!("command: {command}");
        println!("{}", direct.line("direct (bash -c)"));
        println!("{}   ratio {:.2}×", plain.line("sandbox, plain"), ratio(&plain));
        if let Some(stats) = &sandboxed {
            println!("{}   ratio {:.2}×", stats.line("sandbox, bubblewrap"), ratio(stats));
        }
    }
    Ok(0)
}
