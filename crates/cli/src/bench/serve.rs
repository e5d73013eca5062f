//! `rswe bench serve`: the real `rswe serve` binary against the fake model server.
//!
//! - idle RSS of the server once it answers;
//! - dispatch: from `POST /api/v1/sessions` to the model server receiving the session's
//!   first request;
//! - with 10, 50 and 100 sessions working at once (each step: the model answers after
//!   200 ms with one `shell` call, the agent runs it and asks again): the per-step
//!   overhead, the time between one answer and the next request minus the model's
//!   latency, and the memory each active session adds.

use super::Stats;
use anyhow::{Context, Result, bail, ensure};
use rswe_test_support::{FakeModelServer, Response, Script, Turn};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The model's latency per step.
const MODEL_LATENCY_MS: u64 = 200;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Sessions created one after another to time dispatch.
    #[arg(long, default_value_t = 20)]
    pub dispatches: usize,
    /// Concurrency levels: sessions working at once.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub sessions: Vec<usize>,
    /// Model steps per session at each level.
    #[arg(long, default_value_t = 10)]
    pub steps: u32,
    /// The sandbox mode of the sessions: auto (bubblewrap when it works), bubblewrap, none.
    #[arg(long, default_value = "auto")]
    pub sandbox: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Level {
    sessions: usize,
    steps: usize,
    /// Step overhead excluding the model's latency.
    overhead: Stats,
    p99_ms: f64,
    peak_rss_mb: f64,
    rss_per_session_mb: f64,
    wall_s: f64,
    /// Where a step's overhead goes (p50, ms): reading the answer after the model's
    /// latency, running the tool, and from the tool's result to the next request.
    answer_p50_ms: f64,
    tool_p50_ms: f64,
    next_request_p50_ms: f64,
}

struct Server {
    child: tokio::process::Child,
    url: String,
    key: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub async fn bench(args: ServeArgs) -> Result<u8> {
    let exe = std::env::current_exe().context("cannot find the rswe binary")?;
    let dir = tempfile::tempdir()?;
    let max = args.sessions.iter().copied().max().unwrap_or(1);
    std::fs::write(
        dir.path().join("rswe.toml"),
        format!(
            "[server]\nmax_working = {}\nidle_release_secs = 3600\n\n[agent]\nmax_steps = {}\n\n\
             [sandbox]\nmode = {:?}\n",
            max.max(1),
            args.steps.max(1),
            args.sandbox
        ),
    )?;
    let fake = FakeModelServer::start(Script::new()).await;
    let command = |args: &[&str]| {
        let mut command = tokio::process::Command::new(&exe);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("RSWE_DATA_DIR", dir.path().join("data"))
            .env("RSWE_CONFIG", dir.path().join("rswe.toml"))
            .env("ANTHROPIC_API_KEY", "bench")
            .env("ANTHROPIC_BASE_URL", fake.anthropic_base_url())
            .args(args)
            .stdin(std::process::Stdio::null());
        command
    };
    let created = command(&["keys", "create", "bench"]).output().await?;
    ensure!(created.status.success(), "rswe keys create failed: {}", String::from_utf8_lossy(&created.stderr));
    let key = String::from_utf8_lossy(&created.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("rswe_"))
        .context("rswe keys create printed no key")?
        .to_string();

    let mut child = command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let url = server_url(&mut child).await?;
    let server = Server { child, url, key, http: reqwest::Client::new() };
    let pid = server.child.id().context("the server exited")?;

    // Idle: answered a few requests, then at rest.
    for _ in 0..5 {
        server.http.get(format!("{}/healthz", server.url)).send().await?.error_for_status()?;
        server.get("/api/v1/sessions").await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_mb(pid)?;

    // Dispatch, one session at a time.
    let mut dispatch = Vec::new();
    for n in 0..args.dispatches.max(1) {
        fake.push_turn(Turn::text("ok"));
        let before = fake.requests().len();
        let started = Instant::now();
        let id = server.create(&format!("dispatch {n}")).await?;
        ensure!(fake.wait_for_requests(before + 1, Duration::from_secs(30)).await, "no model request in 30 s");
        dispatch.push(started.elapsed());
        server.wait_resting(&[id]).await?;
    }
    let dispatch = Stats::of(dispatch);

    let mut levels = Vec::new();
    for &sessions in &args.sessions {
        levels.push(level(&server, &fake, pid, sessions, args.steps.max(1), idle_rss).await?);
    }

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "idle_rss_mb": idle_rss,
                "dispatch": dispatch,
                "model_latency_ms": MODEL_LATENCY_MS,
                "levels": levels,
            }))?
        );
    } else {
        println!("idle RSS                     {idle_rss:.1} MB");
        println!("{}", dispatch.line("POST → first model request"));
        println!("step overhead (model latency {MODEL_LATENCY_MS} ms excluded):");
        for level in &levels {
            println!(
                "  {:>3} sessions × {:>2} steps: p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms   \
                 peak RSS {:>6.1} MB ({:.2} MB per session)  wall {:.1} s\n          \
                 (p50 parts: answer read {:.1} ms, tool {:.1} ms, result → next request {:.1} ms)",
                level.sessions,
                level.steps / level.sessions.max(1),
                level.overhead.p50_ms,
                level.p99_ms,
                level.overhead.max_ms,
                level.peak_rss_mb,
                level.rss_per_session_mb,
                level.wall_s,
                level.answer_p50_ms,
                level.tool_p50_ms,
                level.next_request_p50_ms
            );
        }
    }
    Ok(0)
}

async fn level(
    server: &Server,
    fake: &FakeModelServer,
    pid: u32,
    sessions: usize,
    steps: u32,
    idle_rss: f64,
) -> Result<Level> {
    let tag = format!("level{sessions}");
    for _ in 0..sessions * steps as usize {
        fake.push_turn(Response::new().tool_use("shell", json!({ "command": "true" })).delay_ms(MODEL_LATENCY_MS));
    }
    let before = fake.requests().len();
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..sessions {
        ids.push(server.create(&format!("{tag} session {n}")).await?);
    }
    let expected = before + sessions * steps as usize;
    let mut peak_rss = idle_rss;
    let deadline = Instant::now() + Duration::from_secs(600);
    while !fake.wait_for_requests(expected, Duration::from_millis(100)).await {
        peak_rss = peak_rss.max(rss_mb(pid)?);
        if Instant::now() > deadline {
            bail!("{sessions} sessions did not finish {steps} steps in 10 minutes");
        }
    }
    server.wait_resting(&ids).await?;
    let wall = started.elapsed();

    // Per session, the gaps between consecutive requests, less the model's latency.
    let mut arrivals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for request in fake.requests().iter().skip(before) {
        let task = request.body["messages"][0]["content"][0]["text"].as_str().unwrap_or_default().to_string();
        if task.starts_with(&tag) {
            arrivals.entry(task).or_default().push(request.received_at_us);
        }
    }
    let mut overhead = Vec::new();
    for times in arrivals.values_mut() {
        times.sort_unstable();
        for pair in times.windows(2) {
            let gap_us = pair[1].saturating_sub(pair[0]).saturating_sub(MODEL_LATENCY_MS * 1000);
            overhead.push(Duration::from_micros(gap_us));
        }
    }
    ensure!(!overhead.is_empty(), "no steps were measured");
    let (answer, tool, next) = breakdown(server, &ids, &arrivals).await?;
    let steps_measured = overhead.len();
    let p99 = percentile(&overhead, 0.99);
    Ok(Level {
        sessions,
        steps: steps_measured + arrivals.len(),
        overhead: Stats::of(overhead),
        p99_ms: p99,
        peak_rss_mb: peak_rss,
        rss_per_session_mb: (peak_rss - idle_rss).max(0.0) / sessions as f64,
        wall_s: wall.as_secs_f64(),
        answer_p50_ms: answer,
        tool_p50_ms: tool,
        next_request_p50_ms: next,
    })
}

/// Splits the steps of the sessions' logs into their parts (p50 of each, ms).
async fn breakdown(server: &Server, ids: &[String], arrivals: &BTreeMap<String, Vec<u64>>) -> Result<(f64, f64, f64)> {
    let (mut answer, mut tool, mut next) = (Vec::new(), Vec::new(), Vec::new());
    for id in ids {
        let events = server.get(&format!("/api/v1/sessions/{id}/events")).await?;
        let events = events["events"].as_array().cloned().unwrap_or_default();
        let task = events.first().and_then(|e| e["content"][0]["text"].as_str()).unwrap_or_default();
        let Some(requests) = arrivals.get(task) else { continue };
        let at = |e: &Value| e["at_ms"].as_u64().unwrap_or(0) * 1000;
        let answers: Vec<u64> = events.iter().filter(|e| e["type"] == "assistant_message").map(at).collect();
        let results: Vec<&Value> = events.iter().filter(|e| e["type"] == "tool_result").collect();
        for (i, request) in requests.iter().enumerate() {
            if let Some(answered) = answers.get(i) {
                let latency = MODEL_LATENCY_MS * 1000;
                answer.push(Duration::from_micros(answered.saturating_sub(request + latency)));
            }
            if let Some(result) = results.get(i) {
                tool.push(Duration::from_millis(result["duration_ms"].as_u64().unwrap_or(0)));
                if let Some(following) = requests.get(i + 1) {
                    next.push(Duration::from_micros(following.saturating_sub(at(result))));
                }
            }
        }
    }
    let p50 = |samples: &[Duration]| if samples.is_empty() { 0.0 } else { percentile(samples, 0.5) };
    Ok((p50(&answer), p50(&tool), p50(&next)))
}

fn percentile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
}

impl Server {
    async fn get(&self, path: &str) -> Result<Value> {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.key).send().await?;
        Ok(response.error_for_status()?.json().await?)
    }

    async fn create(&self, task: &str) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/api/v1/sessions", self.url))
            .bearer_auth(&self.key)
            .json(&json!({ "message": task }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status.as_u16() == 201, "creating a session answered {status}: {body}");
        body["id"].as_str().map(str::to_string).context("the new session has no id")
    }

    /// Waits (at most 5 minutes) until every session rests.
    async fn wait_resting(&self, ids: &[String]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        for id in ids {
            loop {
                let session = self.get(&format!("/api/v1/sessions/{id}")).await?;
                if session["activity"] == "resting" && session["status"] != "working" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("session {id} still works after 5 minutes: {session}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}

/// Reads the server's address from its first lines on stderr (at most 30 s).
async fn server_url(child: &mut tokio::process::Child) -> Result<String> {
    use tokio::io::AsyncBufReadExt;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("rswe is serving on ") {
                return Ok::<_, std::io::Error>(rest.split_whitespace().next().map(str::to_string));
            }
        }
        Ok(None)
    })
    .await
    .context("rswe serve did not start in 30 s")??;
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found.context("rswe serve exited before it listened")
}

/// The resident set of a process, in MB.
fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no VmRSS in /proc/PID/status")?;
    Ok(kb / 1024.0)
}
