//! The local runtime: commands run on this machine, inside bubblewrap when it works here.

mod bubblewrap;
mod processes;
mod spawned;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::background::{BackgroundInfo, BackgroundRequest, BackgroundStarted, BackgroundStatus};
use crate::confinement;
use crate::error::SandboxError;
use crate::exec::{Ended, ExecOutcome, ExecRequest, OutputSink, OutputStream};
use crate::output::{
    DEFAULT_OUTPUT_HEAD_BYTES, DEFAULT_OUTPUT_TAIL_BYTES, OutputCapture, SpillTarget, complete_prefix_len,
    leading_continuation_len,
};
use crate::process::{ProcessRequest, SandboxProcess};
use crate::sandbox::{DirEntry, Sandbox};
use processes::{BackgroundProcess, MARKER_VAR, MarkerPattern, Registry, exit_code_of, kill_group};
use spawned::LocalProcessHandle;

/// Variables passed from the host environment to commands by default.
pub const DEFAULT_ENV_ALLOWLIST: &[&str] = &["PATH", "LANG", "LC_ALL", "TERM", "TZ"];

/// `PATH` for commands when the host has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long to keep reading output after a command ended and its leftovers were killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How long to wait for killed processes to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// The script that runs a program (`$0`) with its arguments, found on the sandbox's `PATH`.
const EXEC_PROGRAM: &str = "exec \"$0\" \"$@\"";

/// How commands are isolated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Bubblewrap when it works here, otherwise no isolation (with a warning).
    #[default]
    Auto,
    /// Bubblewrap, or fail.
    Bubblewrap,
    /// Plain processes: a cleared environment and their own process group, but the whole machine
    /// visible. For machines where bubblewrap cannot run.
    None,
}

/// Settings of a [`LocalSandbox`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSandboxConfig {
    /// The session directory; the workspace is `root/workspace` (unless `workspace` names
    /// another) and the home `root/home`.
    pub root: PathBuf,
    /// A workspace elsewhere than `root/workspace`, e.g. the person's own checkout when they
    /// ask the agent to work in place.
    pub workspace: Option<PathBuf>,
    pub mode: SandboxMode,
    /// Whether commands may use the network (only enforced with bubblewrap).
    pub network: bool,
    /// Paths invisible inside the sandbox (the data directory, the config file, …): directories
    /// appear empty, files empty. The workspace and home stay visible even when under one of them.
    pub hidden_paths: Vec<PathBuf>,
    /// Paths made visible again, read-only, after the host home and hidden paths are covered
    /// (for instance a toolchain installed under the home directory, `~/.cargo` or `~/.rustup`).
    pub readonly_paths: Vec<PathBuf>,
    /// Host environment variables passed to commands; `HOME`, `USER` and `TMPDIR` are set by the
    /// sandbox itself.
    pub env_allowlist: Vec<String>,
    /// Bytes kept in memory from the start of each output stream.
    pub output_head_bytes: usize,
    /// Bytes kept in memory from the end of each output stream.
    pub output_tail_bytes: usize,
}

impl LocalSandboxConfig {
    /// Defaults: automatic mode, network allowed, nothing extra hidden, the default allow-list and
    /// 16 KiB of head and tail.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSandboxConfig {
            root: root.into(),
            workspace: None,
            mode: SandboxMode::Auto,
            network: true,
            hidden_paths: Vec::new(),
            readonly_paths: Vec::new(),
            env_allowlist: DEFAULT_ENV_ALLOWLIST.iter().map(|name| (*name).to_string()).collect(),
            output_head_bytes: DEFAULT_OUTPUT_HEAD_BYTES,
            output_tail_bytes: DEFAULT_OUTPUT_TAIL_BYTES,
        }
    }
}

/// A sandbox on this machine.
///
/// With bubblewrap, each command (foreground or background) and each process started with
/// [`Sandbox::spawn_process`] runs in its own bubblewrap instance:
/// the system read-only, a private `/tmp`, the host home and hidden paths covered, the workspace
/// and home writable at their own paths, its own PID, IPC and UTS namespaces (and network
/// namespace when the network is off), a cleared environment. Without it, commands run as plain
/// processes with a cleared environment in their own process group.
pub struct LocalSandbox {
    id: String,
    workspace: PathBuf,
    home: PathBuf,
    mode: SandboxMode,
    bwrap: Option<PathBuf>,
    bash: PathBuf,
    network: bool,
    host_home: Option<PathBuf>,
    hidden: Vec<PathBuf>,
    /// The hidden paths inside the workspace, which file operations refuse.
    hidden_in_workspace: Vec<PathBuf>,
    readonly: Vec<PathBuf>,
    base_env: BTreeMap<String, String>,
    head_bytes: usize,
    tail_bytes: usize,
    /// Shared with the tasks that wait for [`Sandbox::spawn_process`] processes.
    registry: Arc<Mutex<Registry>>,
    commands: AtomicU64,
    background_count: AtomicU64,
    git_exclude_done: AtomicBool,
    shutdown: CancellationToken,
}

impl LocalSandbox {
    /// Creates the workspace and home directories and decides the isolation (probing bubblewrap
    /// once per process, which blocks for a few milliseconds).
    pub fn new(config: LocalSandboxConfig) -> Result<Self, SandboxError> {
        let create = |dir: &Path| {
            std::fs::create_dir_all(dir)
                .map_err(|error| SandboxError::io(format!("could not create {}", dir.display()), error))
        };
        create(&config.root)?;
        let root = config.root.canonicalize().map_err(|error| {
            SandboxError::io(format!("could not resolve the sandbox directory {}", config.root.display()), error)
        })?;
        let workspace = match &config.workspace {
            Some(dir) => {
                create(dir)?;
                dir.canonicalize().map_err(|error| {
                    SandboxError::io(format!("could not resolve the workspace {}", dir.display()), error)
                })?
            }
            None => {
                let workspace = root.join("workspace");
                create(&workspace)?;
                workspace
            }
        };
        let home = root.join("home");
        create(&home)?;

        let (mode, bwrap) = match config.mode {
            SandboxMode::None => (SandboxMode::None, None),
            SandboxMode::Bubblewrap => {
                let bwrap = bubblewrap::probe(config.network).map_err(SandboxError::BubblewrapUnavailable)?;
                (SandboxMode::Bubblewrap, Some(bwrap))
            }
            SandboxMode::Auto => match bubblewrap::probe(config.network) {
                Ok(bwrap) => (SandboxMode::Bubblewrap, Some(bwrap)),
                Err(reason) => {
                    tracing::warn!(%reason, "bubblewrap does not work here: commands will run WITHOUT isolation");
                    (SandboxMode::None, None)
                }
            },
        };
        if mode == SandboxMode::None && !config.network {
            tracing::warn!("the network cannot be turned off without bubblewrap: commands will have network access");
        }

        let tmp = match mode {
            SandboxMode::Bubblewrap => PathBuf::from("/tmp"),
            _ => {
                let tmp = root.join("tmp");
                create(&tmp)?;
                tmp
            }
        };
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|user| user.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "rswe".to_string());
        let mut base_env = BTreeMap::new();
        for name in &config.env_allowlist {
            if let Ok(value) = std::env::var(name) {
                base_env.insert(name.clone(), value);
            }
        }
        base_env.entry("PATH".to_string()).or_insert_with(|| DEFAULT_PATH.to_string());
        if !base_env.contains_key("LANG") && !base_env.contains_key("LC_ALL") {
            base_env.insert("LANG".to_string(), "C.UTF-8".to_string());
        }
        base_env.insert("HOME".to_string(), home.display().to_string());
        base_env.insert("USER".to_string(), user);
        base_env.insert("TMPDIR".to_string(), tmp.display().to_string());

        let host_path = |path: &Path| {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            absolute.canonicalize().unwrap_or(absolute)
        };
        let hidden: Vec<PathBuf> = config
            .hidden_paths
            .iter()
            .map(|path| host_path(path))
            .filter(|path| *path != workspace && *path != home)
            .collect();
        let sandbox = LocalSandbox {
            id: format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff),
            mode,
            bwrap,
            bash: bubblewrap::find_in_path("bash").unwrap_or_else(|| PathBuf::from("/bin/bash")),
            network: config.network,
            host_home: std::env::var_os("HOME").map(PathBuf::from).and_then(|home| home.canonicalize().ok()),
            hidden_in_workspace: hidden.iter().filter(|path| path.starts_with(&workspace)).cloned().collect(),
            hidden,
            readonly: config.readonly_paths.iter().map(|path| host_path(path)).collect(),
            base_env,
            head_bytes: config.output_head_bytes,
            tail_bytes: config.output_tail_bytes,
            registry: Arc::new(Mutex::new(Registry::default())),
            commands: AtomicU64::new(0),
            background_count: AtomicU64::new(0),
            git_exclude_done: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            workspace,
            home,
        };
        tracing::debug!(id = %sandbox.id, mode = ?sandbox.mode, workspace = %sandbox.workspace.display(), "sandbox created");
        Ok(sandbox)
    }

    /// `Ok` when bubblewrap is installed and can create a sandbox here; otherwise why not and what
    /// to do about it (for `rswe doctor`). Probed once per process.
    pub fn detect_bubblewrap() -> Result<(), String> {
        bubblewrap::probe(true).map(|_| ())
    }

    /// The isolation in effect: [`SandboxMode::Bubblewrap`] or [`SandboxMode::None`].
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// Whether commands can reach the network.
    pub fn network(&self) -> bool {
        self.network || self.mode == SandboxMode::None
    }

    /// A random identifier of this sandbox instance (it appears in the names of output files).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What file operations need to resolve paths off the async threads.
    fn files(&self) -> WorkspaceFiles {
        WorkspaceFiles { workspace: self.workspace.clone(), hidden: self.hidden_in_workspace.clone() }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn resolve_cwd(&self, cwd: Option<&Path>) -> Result<PathBuf, SandboxError> {
        let Some(cwd) = cwd else {
            return Ok(self.workspace.clone());
        };
        let resolved = confinement::resolve_within(&self.workspace, cwd)?;
        match std::fs::metadata(&resolved) {
            Ok(metadata) if metadata.is_dir() => Ok(resolved),
            Ok(_) => Err(SandboxError::NotADirectory { path: resolved }),
            Err(error) => Err(SandboxError::from_path_io(resolved, "use as working directory", error)),
        }
    }

    fn command_env(&self, extra: &[(String, String)], marker: &str) -> Result<BTreeMap<String, String>, SandboxError> {
        let mut env = self.base_env.clone();
        for (name, value) in extra {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                return Err(SandboxError::InvalidRequest(format!(
                    "environment variable {name:?}: names must be non-empty without `=` or NUL, values without NUL"
                )));
            }
            env.insert(name.clone(), value.clone());
        }
        env.insert(MARKER_VAR.to_string(), marker.to_string());
        Ok(env)
    }

    /// `bash -c <shell_command> <shell_args…>` (`$0`, `$1`, … of the script), isolated.
    fn build_command(
        &self,
        shell_command: &str,
        shell_args: &[String],
        cwd: &Path,
        env: &BTreeMap<String, String>,
        marker: &str,
    ) -> tokio::process::Command {
        let mut command = match &self.bwrap {
            Some(bwrap) => {
                let layout = bubblewrap::Layout {
                    workspace: &self.workspace,
                    home: &self.home,
                    host_home: self.host_home.as_deref(),
                    hidden: &self.hidden,
                    readonly: &self.readonly,
                    network: self.network,
                };
                let mut command = tokio::process::Command::new(bwrap);
                command.args(bubblewrap::arguments(&layout, env, cwd));
                command.arg("--").arg(&self.bash).arg("-c").arg(shell_command).args(shell_args);
                // bwrap itself carries only the marker, so that it is found and killed with the rest.
                command.env_clear().env(MARKER_VAR, marker).current_dir("/");
                command
            }
            None => {
                let mut command = tokio::process::Command::new(&self.bash);
                command.arg("-c").arg(shell_command).args(shell_args).env_clear().envs(env).current_dir(cwd);
                command
            }
        };
        command.stdin(Stdio::null()).process_group(0).kill_on_drop(true);
        command
    }

    /// Starts a command and records its process group, unless the sandbox is shut down.
    fn spawn_tracked(
        &self,
        mut command: tokio::process::Command,
    ) -> Result<(tokio::process::Child, i32), SandboxError> {
        let mut registry = self.registry();
        if registry.shut_down {
            return Err(SandboxError::ShutDown);
        }
        let child = command.spawn().map_err(SandboxError::Spawn)?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| SandboxError::Spawn(std::io::Error::other("the new process has no id")))?;
        registry.groups.insert(pgid);
        Ok((child, pgid))
    }

    /// Kills what an ended command left behind (`&`, `nohup`, `setsid`) and waits until it
    /// is gone. A command that ended by itself under bubblewrap needs nothing: it ran in
    /// its own PID namespace, which the kernel empties before bwrap returns. One that was
    /// killed (`killed`) took bwrap down first, so its namespace empties a moment later:
    /// then, as without bubblewrap, every process carrying the command's marker is found
    /// in /proc and killed.
    async fn kill_leftovers(&self, marker: &str, killed: bool) {
        if self.bwrap.is_none() || killed {
            processes::kill_marked_until_gone(MarkerPattern::command(marker), KILL_TIMEOUT).await;
        }
    }

    fn next_marker(&self) -> (u64, String) {
        let number = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        (number, format!("{}/{number}", self.id))
    }

    /// Adds `.rswe/` to `.git/info/exclude` (once) so saved outputs do not show up in git.
    async fn exclude_outputs_from_git(&self) {
        if self.git_exclude_done.swap(true, Ordering::AcqRel) {
            return;
        }
        let workspace = self.workspace.clone();
        let result = blocking(move || {
            if confinement::open_dir(&workspace, Path::new(".git"), false).is_err() {
                return Ok(());
            }
            let exclude = Path::new(".git/info/exclude");
            let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_APPEND;
            let mut file = confinement::open_file(&workspace, exclude, flags, 0o644, true)
                .map_err(|error| SandboxError::io("could not open .git/info/exclude", error))?;
            let mut content = Vec::new();
            Read::by_ref(&mut file)
                .take(1 << 20)
                .read_to_end(&mut content)
                .map_err(|error| SandboxError::io("could not read .git/info/exclude", error))?;
            let content = String::from_utf8_lossy(&content);
            if content.lines().any(|line| matches!(line.trim(), ".rswe" | ".rswe/" | "/.rswe" | "/.rswe/")) {
                return Ok(());
            }
            let separator = if content.is_empty() || content.ends_with('\n') { "" } else { "\n" };
            file.write_all(format!("{separator}.rswe/\n").as_bytes())
                .map_err(|error| SandboxError::io("could not write .git/info/exclude", error))
        })
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "could not exclude .rswe/ from git");
        }
    }

    fn background_status(&self, index: usize, output_tail: String) -> Option<BackgroundStatus> {
        let registry = self.registry();
        let process = registry.background.get(index)?;
        Some(BackgroundStatus {
            output_tail,
            running: process.child.is_some(),
            exit_code: process.exit_code,
            log_path: process.log_path.clone(),
        })
    }
}

/// The workspace as file operations see it.
struct WorkspaceFiles {
    workspace: PathBuf,
    hidden: Vec<PathBuf>,
}

impl WorkspaceFiles {
    /// Resolves `path` in the workspace: the absolute path and the part below the workspace.
    fn resolve(&self, path: &Path) -> Result<(PathBuf, PathBuf), SandboxError> {
        let resolved = confinement::resolve_within(&self.workspace, path)?;
        if self.hidden.iter().any(|hidden| resolved.starts_with(hidden)) {
            return Err(SandboxError::Hidden { path: resolved });
        }
        let rel = confinement::relative_to(&self.workspace, &resolved)?.to_path_buf();
        Ok((resolved, rel))
    }
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SandboxError::io("a file operation was interrupted", std::io::Error::other(error)))?
}

/// Reads some output, `None` at the end (or on a read error); never resolves once closed.
async fn read_chunk<R: AsyncRead + Unpin>(reader: &mut Option<R>, buffer: &mut [u8]) -> Option<usize> {
    let Some(reader) = reader.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(buffer).await {
        Ok(0) => None,
        Ok(read) => Some(read),
        Err(error) => {
            tracing::debug!(%error, "reading command output failed");
            None
        }
    }
}

fn deadline_after(start: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(duration).or_else(|| start.checked_add(FAR)).unwrap_or(start)
}

/// The whole log if it is short, else its first `head` and last `tail` bytes around a note.
fn read_log_bounded(root: &Path, rel: &Path, head: usize, tail: usize) -> std::io::Result<String> {
    let mut file = confinement::open_file(root, rel, OFlag::O_RDONLY, 0, false)?;
    let length = file.metadata()?.len();
    if length <= (head + tail) as u64 {
        let mut bytes = Vec::new();
        file.take((head + tail) as u64).read_to_end(&mut bytes)?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut first = Vec::new();
    Read::by_ref(&mut file).take(head as u64).read_to_end(&mut first)?;
    first.truncate(complete_prefix_len(&first));
    let mut last = Vec::new();
    file.seek(SeekFrom::Start(length - tail as u64))?;
    file.take(tail as u64).read_to_end(&mut last)?;
    let last = &last[leading_continuation_len(&last)..];
    Ok(format!(
        "{}\n[… {} bytes omitted …]\n{}",
        String::from_utf8_lossy(&first),
        length - (first.len() + last.len()) as u64,
        String::from_utf8_lossy(last)
    ))
}

/// The last `max` bytes of a log, starting on a character boundary.
fn read_log_tail(root: &Path, rel: &Path, max: usize) -> std::io::Result<String> {
    let mut file = confinement::open_file(root, rel, OFlag::O_RDONLY, 0, false)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(max as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max as u64).read_to_end(&mut bytes)?;
    let skip = if start > 0 { leading_continuation_len(&bytes) } else { 0 };
    Ok(String::from_utf8_lossy(&bytes[skip..]).into_owned())
}

/// Kills a foreground command's process group and forgets it when dropped, so that a cancelled
/// future leaves nothing running.
struct GroupGuard<'a> {
    registry: &'a Mutex<Registry>,
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid);
        }
        self.registry.lock().unwrap_or_else(PoisonError::into_inner).groups.remove(&self.pgid);
    }
}

#[async_trait]
impl Sandbox for LocalSandbox {
    fn workspace(&self) -> &Path {
        &self.workspace
    }

    fn home(&self) -> &Path {
        &self.home
    }

    async fn exec(
        &self,
        request: ExecRequest,
        on_output: Option<OutputSink>,
        cancel: CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let started = Instant::now();
        let cwd = self.resolve_cwd(request.cwd.as_deref())?;
        let (number, marker) = self.next_marker();
        let env = self.command_env(&request.env, &marker)?;
        let mut command = self.build_command(&request.command, &[], &cwd, &env, &marker);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (mut child, pgid) = self.spawn_tracked(command)?;
        let mut guard = GroupGuard { registry: &self.registry, pgid, armed: true };
        tracing::debug!(sandbox = %self.id, number, command = %request.command, cwd = %cwd.display(), "exec");

        let spill = |stream: &str| {
            Some(SpillTarget {
                root: self.workspace.clone(),
                rel: PathBuf::from(format!(".rswe/outputs/{}-{number}.{stream}", self.id)),
            })
        };
        let mut stdout_capture = OutputCapture::new(
            OutputStream::Stdout,
            self.head_bytes,
            self.tail_bytes,
            spill("stdout"),
            on_output.clone(),
        );
        let mut stderr_capture =
            OutputCapture::new(OutputStream::Stderr, self.head_bytes, self.tail_bytes, spill("stderr"), on_output);
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut stdout_buffer = vec![0u8; READ_CHUNK];
        let mut stderr_buffer = vec![0u8; READ_CHUNK];

        let hard_deadline = deadline_after(started, request.hard_timeout);
        let mut last_output = started;
        let mut ended = None;
        let mut status = None;
        let mut drain_deadline = None;
        loop {
            if status.is_some() && stdout.is_none() && stderr.is_none() {
                break;
            }
            let running = ended.is_none() && status.is_none();
            let inactivity_deadline = deadline_after(last_output, request.inactivity_timeout);
            tokio::select! {
                read = read_chunk(&mut stdout, &mut stdout_buffer) => match read {
                    Some(read) => {
                        last_output = Instant::now();
                        stdout_capture.push(&stdout_buffer[..read]).await;
                    }
                    None => stdout = None,
                },
                read = read_chunk(&mut stderr, &mut stderr_buffer) => match read {
                    Some(read) => {
                        last_output = Instant::now();
                        stderr_capture.push(&stderr_buffer[..read]).await;
                    }
                    None => stderr = None,
                },
                waited = child.wait(), if status.is_none() => {
                    let exit = waited.map_err(|error| SandboxError::io("could not wait for the command", error))?;
                    status = Some(exit);
                    if ended.is_none() && (cancel.is_cancelled() || self.shutdown.is_cancelled()) {
                        // Killed by `shutdown` or the caller: select! may see the exit before the cancellation.
                        ended = Some(Ended::Cancelled);
                    }
                    // What it left behind goes with it.
                    kill_group(pgid);
                    self.kill_leftovers(&marker, ended.is_some()).await;
                    drain_deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
                }
                () = tokio::time::sleep_until(inactivity_deadline), if running => {
                    tracing::debug!(sandbox = %self.id, number, "inactivity timeout");
                    ended = Some(Ended::InactivityTimeout);
                    kill_group(pgid);
                }
                () = tokio::time::sleep_until(hard_deadline), if running => {
                    tracing::debug!(sandbox = %self.id, number, "hard timeout");
                    ended = Some(Ended::HardTimeout);
                    kill_group(pgid);
                }
                () = cancel.cancelled(), if running => {
                    ended = Some(Ended::Cancelled);
                    kill_group(pgid);
                }
                () = self.shutdown.cancelled(), if running => {
                    ended = Some(Ended::Cancelled);
                    kill_group(pgid);
                }
                () = tokio::time::sleep_until(drain_deadline.unwrap_or(hard_deadline)), if drain_deadline.is_some() => {
                    tracing::warn!(sandbox = %self.id, number, "output still open after the command ended; stopped reading");
                    break;
                }
            }
        }
        guard.armed = false;
        drop(guard);

        let stdout = stdout_capture.finish().await;
        let stderr = stderr_capture.finish().await;
        if stdout.full_output.is_some() || stderr.full_output.is_some() {
            self.exclude_outputs_from_git().await;
        }
        Ok(ExecOutcome {
            exit_code: status.and_then(|status| status.code()),
            signal: status.and_then(|status| status.signal()),
            stdout,
            stderr,
            duration: started.elapsed(),
            ended_by: ended.unwrap_or(Ended::Exited),
        })
    }

    async fn start_background(&self, request: BackgroundRequest) -> Result<BackgroundStarted, SandboxError> {
        let cwd = self.resolve_cwd(request.cwd.as_deref())?;
        let (_, marker) = self.next_marker();
        let env = self.command_env(&request.env, &marker)?;
        let id = format!("bg-{}", self.background_count.fetch_add(1, Ordering::Relaxed) + 1);
        let log_rel = PathBuf::from(format!(".rswe/background/{id}-{}.log", self.id));
        let log_path = self.home.join(&log_rel);

        let (home, rel, path) = (self.home.clone(), log_rel.clone(), log_path.clone());
        let (stdout_log, stderr_log) = blocking(move || {
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_APPEND;
            let context = || format!("could not create the log file {}", path.display());
            let log = confinement::open_file(&home, &rel, flags, 0o644, true)
                .map_err(|error| SandboxError::io(context(), error))?;
            let copy = log.try_clone().map_err(|error| SandboxError::io(context(), error))?;
            Ok((log, copy))
        })
        .await?;
        let mut command = self.build_command(&request.command, &[], &cwd, &env, &marker);
        command.stdout(Stdio::from(stdout_log)).stderr(Stdio::from(stderr_log));
        let (mut child, pgid) = self.spawn_tracked(command)?;
        tracing::debug!(sandbox = %self.id, %id, command = %request.command, "background process started");

        let settled = tokio::select! {
            waited = child.wait() => Some(waited),
            () = tokio::time::sleep_until(deadline_after(Instant::now(), request.settle)) => None,
            () = self.shutdown.cancelled() => None,
        };
        let exited = match settled {
            None => None,
            Some(Ok(status)) => Some(exit_code_of(status)),
            Some(Err(error)) => {
                kill_group(pgid);
                self.registry().groups.remove(&pgid);
                return Err(SandboxError::io("could not wait for the background process", error));
            }
        };
        if exited.is_some() {
            kill_group(pgid);
            self.kill_leftovers(&marker, false).await;
        }
        let refused = {
            let mut registry = self.registry();
            if exited.is_some() {
                registry.groups.remove(&pgid);
            }
            if exited.is_none() && registry.shut_down {
                Some(child)
            } else {
                registry.background.push(BackgroundProcess {
                    id: id.clone(),
                    command: request.command,
                    log_rel: log_rel.clone(),
                    log_path,
                    pgid,
                    marker,
                    child: exited.is_none().then_some(child),
                    exit_code: exited,
                });
                None
            }
        };
        if let Some(mut child) = refused {
            // Shut down while settling: `shutdown` killed it already.
            kill_group(pgid);
            let _ = child.wait().await;
            return Err(SandboxError::ShutDown);
        }
        let (home, head, tail) = (self.home.clone(), self.head_bytes, self.tail_bytes);
        let output = blocking(move || {
            read_log_bounded(&home, &log_rel, head, tail)
                .map_err(|error| SandboxError::io("could not read the background log", error))
        })
        .await?;
        Ok(BackgroundStarted { id, output, exited })
    }

    async fn background_output(&self, id: &str, max_bytes: usize) -> Result<BackgroundStatus, SandboxError> {
        let (index, log_rel) = {
            let mut registry = self.registry();
            let index = registry.find(id).ok_or_else(|| SandboxError::UnknownBackground(id.to_string()))?;
            registry.refresh(index);
            (index, registry.background[index].log_rel.clone())
        };
        let home = self.home.clone();
        let output_tail = blocking(move || {
            read_log_tail(&home, &log_rel, max_bytes)
                .map_err(|error| SandboxError::io("could not read the background log", error))
        })
        .await?;
        self.background_status(index, output_tail).ok_or_else(|| SandboxError::UnknownBackground(id.to_string()))
    }

    async fn stop_background(&self, id: &str) -> Result<BackgroundStatus, SandboxError> {
        let (index, child, pgid, marker) = {
            let mut registry = self.registry();
            let index = registry.find(id).ok_or_else(|| SandboxError::UnknownBackground(id.to_string()))?;
            let process = &mut registry.background[index];
            (index, process.child.take(), process.pgid, process.marker.clone())
        };
        if let Some(mut child) = child {
            kill_group(pgid);
            let status = child.wait().await;
            self.kill_leftovers(&marker, true).await;
            let mut registry = self.registry();
            registry.groups.remove(&pgid);
            match status {
                Ok(status) => registry.background[index].exit_code = Some(exit_code_of(status)),
                Err(error) => tracing::warn!(%id, %error, "could not wait for a stopped background process"),
            }
            tracing::debug!(sandbox = %self.id, %id, "background process stopped");
        }
        self.background_output(id, self.tail_bytes).await
    }

    async fn list_background(&self) -> Vec<BackgroundInfo> {
        let mut registry = self.registry();
        for index in 0..registry.background.len() {
            registry.refresh(index);
        }
        registry
            .background
            .iter()
            .map(|process| BackgroundInfo {
                id: process.id.clone(),
                command: process.command.clone(),
                running: process.child.is_some(),
                exit_code: process.exit_code,
                log_path: process.log_path.clone(),
            })
            .collect()
    }

    async fn spawn_process(&self, request: ProcessRequest) -> Result<SandboxProcess, SandboxError> {
        if request.program.is_empty() {
            return Err(SandboxError::InvalidRequest("the program to start is empty".to_string()));
        }
        let cwd = self.resolve_cwd(request.cwd.as_deref())?;
        let (number, marker) = self.next_marker();
        let env = self.command_env(&request.env, &marker)?;
        let argv: Vec<String> = std::iter::once(request.program.clone()).chain(request.args).collect();
        let mut command = self.build_command(EXEC_PROGRAM, &argv, &cwd, &env, &marker);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let (mut child, pgid) = self.spawn_tracked(command)?;
        tracing::debug!(
            sandbox = %self.id, number, program = %request.program, cwd = %cwd.display(), pid = ?child.id(),
            "process started"
        );
        let streams = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let handle =
            LocalProcessHandle::new(child, pgid, marker, Arc::clone(&self.registry), self.shutdown.child_token());
        let (Some(stdin), Some(stdout), Some(stderr)) = streams else {
            // Dropping the handle kills it.
            return Err(SandboxError::Spawn(std::io::Error::other("the process's standard streams are missing")));
        };
        Ok(SandboxProcess {
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
            handle: Box::new(handle),
        })
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, SandboxError> {
        let (files, path) = (self.files(), path.to_path_buf());
        blocking(move || {
            let (resolved, rel) = files.resolve(&path)?;
            let failed = |error| SandboxError::from_path_io(resolved.clone(), "read", error);
            let mut file = confinement::open_file(&files.workspace, &rel, OFlag::O_RDONLY, 0, false).map_err(failed)?;
            let mut contents = Vec::new();
            file.read_to_end(&mut contents).map_err(failed)?;
            Ok(contents)
        })
        .await
    }

    async fn write_file(&self, path: &Path, contents: &[u8]) -> Result<(), SandboxError> {
        let (files, path, contents) = (self.files(), path.to_path_buf(), contents.to_vec());
        blocking(move || {
            let (resolved, rel) = files.resolve(&path)?;
            let failed = |error| SandboxError::from_path_io(resolved.clone(), "write", error);
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
            let mut file = confinement::open_file(&files.workspace, &rel, flags, 0o644, true).map_err(failed)?;
            file.write_all(&contents).map_err(failed)
        })
        .await
    }

    async fn list_dir(&self, path: &Path, max_depth: usize) -> Result<Vec<DirEntry>, SandboxError> {
        let (files, path) = (self.files(), path.to_path_buf());
        blocking(move || {
            let (resolved, rel) = files.resolve(&path)?;
            let listed = confinement::list(&files.workspace, &rel, max_depth.max(1))
                .map_err(|error| SandboxError::from_path_io(resolved.clone(), "list", error))?;
            Ok(listed
                .into_iter()
                .map(|entry| DirEntry {
                    path: files.workspace.join(entry.rel),
                    is_dir: entry.is_dir,
                    is_symlink: entry.is_symlink,
                    size: entry.size,
                })
                .collect())
        })
        .await
    }

    async fn resolve(&self, path: &Path) -> Result<PathBuf, SandboxError> {
        let (files, path) = (self.files(), path.to_path_buf());
        blocking(move || files.resolve(&path).map(|(resolved, _)| resolved)).await
    }

    async fn shutdown(&self) {
        self.shutdown.cancel();
        let (groups, children) = {
            let mut registry = self.registry();
            registry.shut_down = true;
            let groups: Vec<i32> = registry.groups.drain().collect();
            let children: Vec<(usize, tokio::process::Child)> = registry
                .background
                .iter_mut()
                .enumerate()
                .filter_map(|(index, process)| process.child.take().map(|child| (index, child)))
                .collect();
            (groups, children)
        };
        for pgid in &groups {
            kill_group(*pgid);
        }
        for (index, mut child) in children {
            if let Ok(Ok(status)) = tokio::time::timeout(KILL_TIMEOUT, child.wait()).await {
                self.registry().background[index].exit_code = Some(exit_code_of(status));
            }
        }
        processes::kill_marked_until_gone(MarkerPattern::sandbox(&self.id), KILL_TIMEOUT).await;
        tracing::debug!(sandbox = %self.id, "sandbox shut down");
    }
}

impl Drop for LocalSandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let mut registry = self.registry();
        if registry.shut_down {
            return;
        }
        registry.shut_down = true;
        for pgid in registry.groups.drain() {
            kill_group(pgid);
        }
        // Background children are killed by `kill_on_drop`; catch whatever left their groups.
        processes::kill_marked(&MarkerPattern::sandbox(&self.id));
    }
}
