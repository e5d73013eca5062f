//! The real MCP servers the tests run, which `./scripts/test` installs (pinned) in
//! `.test-peers/` at the root of the repository, and the tests' own misbehaving server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a peer may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `.test-peers/` of this checkout; panics with what to do when it is missing.
pub fn peers_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.test-peers");
    assert!(
        dir.join("installed").is_file(),
        "{} is missing: run ./scripts/test, which installs the MCP servers the tests use",
        dir.display()
    );
    dir.canonicalize().unwrap_or(dir)
}

/// The entry point of `@modelcontextprotocol/server-everything`, run with `node`.
pub fn everything_script() -> PathBuf {
    peers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The Python of the peers' virtual environment (with the `mcp` SDK and `mcp-server-time`).
pub fn python() -> PathBuf {
    peers_dir().join("venv/bin/python")
}

/// `mcp-server-time` from PyPI.
pub fn time_server() -> PathBuf {
    peers_dir().join("venv/bin/mcp-server-time")
}

/// The tests' own server that crashes, hangs or changes its tools on request
/// (`crates/mcp/tests/servers/misbehaving.py`; run it with [`python`]).
pub fn misbehaving_server() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/servers/misbehaving.py");
    path.canonicalize().unwrap_or(path)
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}

/// `server-everything` serving HTTP on a free port; killed when dropped.
pub struct HttpPeer {
    pub port: u16,
    child: Child,
}

impl HttpPeer {
    /// Starts `server-everything <mode>` (`streamableHttp` serves `POST /mcp`, `sse`
    /// serves `GET /sse`) and returns once it says it listens.
    pub async fn everything(mode: &str) -> HttpPeer {
        let port = free_port();
        let mut child = Command::new("node")
            .arg(everything_script())
            .arg(mode)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start node: {error}"));
        let (sender, mut lines) = mpsc::unbounded_channel();
        if let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) {
            forward_lines(stdout, sender.clone());
            forward_lines(stderr, sender);
        }
        let ready = format!("on port {port}");
        let mut seen = Vec::new();
        let wait = async {
            while let Some(line) = lines.recv().await {
                let done = line.contains(&ready);
                seen.push(line);
                if done {
                    return true;
                }
            }
            false
        };
        let started = tokio::time::timeout(START_TIMEOUT, wait).await == Ok(true);
        assert!(started, "server-everything {mode} did not start; its output:\n{}", seen.join("\n"));
        HttpPeer { port, child }
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Sends each line of `output` to `lines`, and keeps reading after the receiver is gone so
/// the server never blocks on a full pipe.
fn forward_lines(output: impl AsyncRead + Unpin + Send + 'static, lines: mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(output).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = lines.send(line);
        }
    });
}
