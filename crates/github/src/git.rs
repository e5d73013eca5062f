//! Clone and push on the control plane, with credentials that never reach the workspace.
//!
//! The agent controls the git repository in its workspace (its `.git/config`, hooks, refs), so
//! no git process that holds a token ever runs in that repository:
//!
//! - [`clone_repository`] runs `git -c credential.helper=… clone` on the host while the
//!   destination is still rswe's alone. The token reaches that one process through its
//!   environment (`RSWE_GIT_TOKEN`) and an inline credential helper that reads it; options given
//!   before the subcommand are not written into the clone, whose `origin` is the plain URL.
//! - [`push_branch`] first copies the branch's commits from the workspace into a bare "mirror"
//!   repository in a host directory the agent cannot see, with a git process that holds no
//!   credential, and then pushes from the mirror with the token. Whatever the workspace's
//!   configuration says (`insteadOf`, `core.hooksPath`, credential helpers), it is never read by
//!   the process that holds the token.
//! - [`current_branch`] reads `.git/HEAD` as a file, and [`set_config`] edits a private copy of
//!   `.git/config` and puts it back with a rename, so neither runs git in the workspace nor
//!   follows a link the agent planted.
//!
//! Every git process runs in its own process group with a deadline and a cancellation token
//! (the group is killed on either, and when the call is dropped), without the operator's git
//! configuration (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`), with an environment
//! reduced to a short allow-list, without terminal prompts, and with its output bounded. All
//! text that reaches an error or a return value goes through [`redact`].

use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::redact::redact;

/// The environment variable through which a token reaches the credential helper.
pub const TOKEN_ENV: &str = "RSWE_GIT_TOKEN";
/// The user name sent with a token, as GitHub expects for app and personal access tokens.
pub const TOKEN_USER: &str = "x-access-token";
/// The inline credential helper: answers `get` with [`TOKEN_USER`] and the token from
/// [`TOKEN_ENV`], and ignores `store` and `erase`.
const CREDENTIAL_HELPER: &str = "!f() { test \"$1\" = get || exit 0; printf '%s\\n' username=x-access-token \
                                 \"password=$RSWE_GIT_TOKEN\"; }; f";
/// How much of each of a git process's outputs is kept: the last 16 KiB.
const MAX_OUTPUT: usize = 16 * 1024;
/// How many of git's last lines an error quotes, and how many characters at most.
const MAX_MESSAGE_LINES: usize = 20;
const MAX_MESSAGE_CHARS: usize = 2000;
/// How long a killed git process is waited for.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The bound on the git process [`set_config`] runs.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest `.git/config` (and `.git/HEAD`) read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
const MAX_HEAD_BYTES: u64 = 4096;
/// The variables of rswe's environment a git process gets (besides those set for it).
const ENV_ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_EXEC_PATH",
];

/// A git failure, worded so a person knows what to do about it. No message holds a token.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The URL is not one rswe clones from or pushes to.
    #[error("cannot use the git URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A branch name git would refuse.
    #[error(
        "{name:?} is not a valid branch name: use letters, digits, '-', '_', '.' and '/' (see git check-ref-format)"
    )]
    InvalidBranch { name: String },
    /// The clone's destination cannot be used.
    #[error("cannot clone into {}: {reason}", path.display())]
    Destination { path: PathBuf, reason: String },
    /// The repository does not exist, or the credentials may not see it.
    #[error(
        "the repository {url} does not exist or the token cannot see it: check the URL and that the token (or the \
         App's installation) has access to it"
    )]
    NotFound { url: String },
    /// The server refused the credentials (or asked for some and none were given).
    #[error(
        "the git server refused the credentials for {url}: the token is missing, wrong, expired or revoked; check \
         GITHUB_TOKEN or the App's installation"
    )]
    Unauthorized { url: String },
    /// The credentials are valid but lack a permission.
    #[error(
        "the token may not do this on {url}: {message}; give it (or the App's installation) write access to the \
         repository (contents: read and write), or push to a fork"
    )]
    Forbidden { url: String, message: String },
    /// The remote branch is protected against direct pushes.
    #[error(
        "the branch {branch} is protected on the remote and cannot be pushed to directly: push to another branch \
         and open a pull request ({message})"
    )]
    ProtectedBranch { branch: String, message: String },
    /// The push is not a fast-forward of the remote branch.
    #[error(
        "the remote branch has commits the pushed branch does not have: fetch and rebase (or merge) first, or push \
         with force to replace them ({message})"
    )]
    Rejected { message: String },
    /// The deadline passed; git was stopped.
    #[error("git did not finish within {}s and was stopped: try again, or allow more time", timeout.as_secs())]
    Timeout { timeout: Duration },
    /// The cancellation token fired; git was stopped.
    #[error("the git operation was cancelled")]
    Cancelled,
    /// Anything else, with git's last lines.
    #[error("git failed: {message}")]
    Failed { message: String },
}

/// What [`push_branch`] pushes, and where.
#[derive(Debug, Clone, Copy)]
pub struct PushRequest<'a> {
    /// Where the branch comes from, only read from: a bundle made in the sandbox (what rswe's
    /// tools pass: the host then never reads the agent's repository), or a repository.
    pub workspace_repo: &'a Path,
    /// A bare repository in a directory the agent cannot see; created when missing.
    pub mirror: &'a Path,
    /// The workspace's branch to push.
    pub branch: &'a str,
    /// The repository pushed to: `https://` (`http://` for tests), `file://` or an absolute path.
    pub remote_url: &'a str,
    /// The remote branch updated.
    pub remote_branch: &'a str,
    /// The token for `http(s)` URLs; never given to git for other URLs.
    pub token: Option<&'a str>,
    /// Replace the remote branch even when the push is not a fast-forward.
    pub force: bool,
    /// The bound on the whole push.
    pub timeout: Duration,
    pub cancel: &'a CancellationToken,
}

/// Clones `url` into `dest`, which must not exist yet (its parent is created) or be an empty
/// directory. With `token`, an `http(s)` URL is cloned as `x-access-token`; nothing of the token
/// is written into the clone. A failed clone leaves nothing behind: a new `dest` is not created,
/// an empty one is emptied again.
///
/// # Errors
///
/// [`GitError::InvalidUrl`] and [`GitError::Destination`] before git runs; otherwise what git's
/// failure means ([`GitError::NotFound`], [`GitError::Unauthorized`], ...), [`GitError::Timeout`]
/// or [`GitError::Cancelled`].
pub async fn clone_repository(
    url: &str,
    dest: &Path,
    token: Option<&str>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), GitError> {
    let transport = check_url(url)?;
    check_token(token)?;
    let deadline = Deadline::after(timeout);
    let destination_error = |reason: String| GitError::Destination { path: dest.to_owned(), reason };
    let dest = std::path::absolute(dest).map_err(|e| destination_error(e.to_string()))?;
    let parent = dest.parent().ok_or_else(|| destination_error("it has no parent directory".to_owned()))?;
    let token = token.filter(|_| transport == Transport::Http);
    match std::fs::metadata(&dest) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(&dest).map_err(|e| destination_error(e.to_string()))?;
            if entries.next().is_some() {
                return Err(destination_error("the directory is not empty".to_owned()));
            }
            // Cloned in place (the directory may be a mount point, which nothing can be renamed
            // into); what a failed or abandoned clone left is removed.
            let mut leftovers = EmptyOnDrop(Some(&dest));
            run_clone(url, &dest, token, deadline, cancel).await?;
            leftovers.0 = None;
            Ok(())
        }
        Ok(_) => Err(destination_error("it exists and is not a directory".to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(parent).map_err(|e| destination_error(e.to_string()))?;
            let staging = tempfile::Builder::new()
                .prefix(".rswe-clone-")
                .tempdir_in(parent)
                .map_err(|e| destination_error(format!("cannot create a directory beside it: {e}")))?;
            let partial = staging.path().join("repository");
            run_clone(url, &partial, token, deadline, cancel).await?;
            std::fs::rename(&partial, &dest).map_err(|e| destination_error(format!("cannot move the clone: {e}")))
        }
        Err(e) => Err(destination_error(e.to_string())),
    }
}

async fn run_clone(
    url: &str,
    dest: &Path,
    token: Option<&str>,
    deadline: Deadline,
    cancel: &CancellationToken,
) -> Result<(), GitError> {
    let mut args = credential_args(token);
    args.extend(["clone", "--no-hardlinks", "--", url].map(OsString::from));
    args.push(dest.as_os_str().to_owned());
    let output = run_git(args, token, deadline, cancel).await?;
    if output.success { Ok(()) } else { Err(classify(&output.stderr, url, None)) }
}

/// Pushes the workspace's `branch` to `remote_branch` of `remote_url` through the mirror (see the
/// module's documentation) and returns the sha pushed.
///
/// # Errors
///
/// [`GitError::InvalidBranch`] or [`GitError::InvalidUrl`] before git runs; [`GitError::Failed`]
/// when the branch cannot be read from the workspace; otherwise what the push's failure means
/// ([`GitError::ProtectedBranch`], [`GitError::Rejected`], [`GitError::Forbidden`], ...),
/// [`GitError::Timeout`] or [`GitError::Cancelled`].
pub async fn push_branch(req: PushRequest<'_>) -> Result<String, GitError> {
    for name in [req.branch, req.remote_branch] {
        if !valid_branch_name(name) {
            return Err(GitError::InvalidBranch { name: name.to_owned() });
        }
    }
    let transport = check_url(req.remote_url)?;
    check_token(req.token)?;
    let token = req.token.filter(|_| transport == Transport::Http);
    let deadline = Deadline::after(req.timeout);
    let failed = |message: String| GitError::Failed { message };
    let workspace = std::path::absolute(req.workspace_repo).map_err(|e| failed(e.to_string()))?;
    if !workspace.exists() {
        return Err(failed(format!("{} does not exist", workspace.display())));
    }
    let mirror = std::path::absolute(req.mirror).map_err(|e| failed(e.to_string()))?;
    ensure_mirror(&mirror, deadline, req.cancel).await?;
    let git_dir = || OsString::from(format!("--git-dir={}", mirror.display()));

    // The commits, from the untrusted repository, by a process that holds no credential.
    let local = format!("refs/heads/{}", req.branch);
    let mut args = vec![git_dir()];
    args.extend(
        ["-c", "protocol.file.allow=always", "-c", "transfer.fsckObjects=true", "fetch", "--quiet", "--no-tags"]
            .map(OsString::from),
    );
    args.extend(["--no-write-fetch-head", "--no-recurse-submodules", "--"].map(OsString::from));
    args.push(workspace.as_os_str().to_owned());
    args.push(format!("+{local}:{local}").into());
    let fetched = run_git(args, None, deadline, req.cancel).await?;
    if !fetched.success {
        let message = if fetched.stderr.contains("couldn't find remote ref") {
            format!("the workspace repository has no branch {}: commit on it first", req.branch)
        } else {
            format!(
                "cannot read the branch {} from the workspace repository {}: {}",
                req.branch,
                workspace.display(),
                last_lines(&fetched.stderr)
            )
        };
        return Err(failed(message));
    }
    let resolved = run_git(
        vec![git_dir(), "rev-parse".into(), "--verify".into(), "--quiet".into(), format!("{local}^{{commit}}").into()],
        None,
        deadline,
        req.cancel,
    )
    .await?;
    let sha = resolved.stdout.trim().to_owned();
    if !resolved.success || sha.is_empty() {
        return Err(failed(format!("the branch {} is not a commit", req.branch)));
    }

    // The push, from the mirror, which only rswe configures.
    let mut args = vec![git_dir()];
    args.extend(credential_args(token));
    args.extend(["push", "--no-verify", "--"].map(OsString::from));
    args.push(req.remote_url.into());
    let plus = if req.force { "+" } else { "" };
    args.push(format!("{plus}{sha}:refs/heads/{}", req.remote_branch).into());
    let pushed = run_git(args, token, deadline, req.cancel).await?;
    if pushed.success { Ok(sha) } else { Err(classify(&pushed.stderr, req.remote_url, Some(req.remote_branch))) }
}

/// Gives `mirror` (created when missing) the history of `trusted`, a repository rswe itself just
/// cloned, so later bundles need carry only new commits; returns `trusted`'s `HEAD` commit
/// (`None` for an empty repository).
///
/// # Errors
///
/// When git fails, times out or is cancelled.
pub async fn seed_mirror(
    mirror: &Path,
    trusted: &Path,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<String>, GitError> {
    let deadline = Deadline::after(timeout);
    let failed = |message: String| GitError::Failed { message };
    let mirror = std::path::absolute(mirror).map_err(|e| failed(e.to_string()))?;
    let trusted_git = std::path::absolute(trusted).map_err(|e| failed(e.to_string()))?.join(".git");
    ensure_mirror(&mirror, deadline, cancel).await?;
    let head = run_git(
        vec![
            format!("--git-dir={}", trusted_git.display()).into(),
            "rev-parse".into(),
            "--verify".into(),
            "--quiet".into(),
            "HEAD^{commit}".into(),
        ],
        None,
        deadline,
        cancel,
    )
    .await?;
    let head = head.success.then(|| head.stdout.trim().to_owned()).filter(|sha| !sha.is_empty());
    if head.is_none() {
        return Ok(None);
    }
    let mut args: Vec<OsString> = vec![format!("--git-dir={}", mirror.display()).into()];
    args.extend(["-c", "protocol.file.allow=always", "fetch", "--quiet", "--no-tags"].map(OsString::from));
    args.extend(["--no-write-fetch-head", "--"].map(OsString::from));
    args.push(trusted_git.into_os_string());
    args.push("+refs/heads/*:refs/rswe-base/*".into());
    let fetched = run_git(args, None, deadline, cancel).await?;
    if !fetched.success {
        return Err(failed(format!("cannot seed the mirror {}: {}", mirror.display(), last_lines(&fetched.stderr))));
    }
    Ok(head)
}

async fn ensure_mirror(mirror: &Path, deadline: Deadline, cancel: &CancellationToken) -> Result<(), GitError> {
    if mirror.is_dir() && mirror.join("HEAD").is_file() {
        return Ok(());
    }
    let args = vec!["init".into(), "--quiet".into(), "--bare".into(), "--".into(), mirror.as_os_str().to_owned()];
    let output = run_git(args, None, deadline, cancel).await?;
    if output.success {
        Ok(())
    } else {
        Err(GitError::Failed {
            message: format!("cannot create the mirror {}: {}", mirror.display(), last_lines(&output.stderr)),
        })
    }
}

/// Whether `branch` exists in the repository at `url` (`git ls-remote --heads`).
///
/// # Errors
///
/// As for [`clone_repository`].
pub async fn remote_branch_exists(
    url: &str,
    branch: &str,
    token: Option<&str>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<bool, GitError> {
    if !valid_branch_name(branch) {
        return Err(GitError::InvalidBranch { name: branch.to_owned() });
    }
    let transport = check_url(url)?;
    check_token(token)?;
    let token = token.filter(|_| transport == Transport::Http);
    let head = format!("refs/heads/{branch}");
    let mut args = credential_args(token);
    args.extend(["ls-remote", "--heads", "--", url, head.as_str()].map(OsString::from));
    let output = run_git(args, token, Deadline::after(timeout), cancel).await?;
    if !output.success {
        return Err(classify(&output.stderr, url, None));
    }
    Ok(output.stdout.lines().any(|line| line.split_once('\t').is_some_and(|(_, name)| name == head)))
}

/// Sets `key` to `value` in `<repo_dir>/.git/config` (e.g. `user.name`, `remote.origin.url`).
///
/// The file is read without following links, edited as a private copy by `git config --file`,
/// and put back with a rename, so a link the agent planted is replaced (by a file holding just
/// this key), never written through.
///
/// # Errors
///
/// [`GitError::Failed`] when `.git` is not a directory, the file cannot be read or replaced, or
/// git refuses the key.
pub async fn set_config(repo_dir: &Path, key: &str, value: &str) -> Result<(), GitError> {
    let failed = |message: String| GitError::Failed { message };
    if key.is_empty() || key.starts_with('-') || key.chars().any(char::is_control) {
        return Err(failed(format!("{key:?} is not a git configuration key")));
    }
    let git_dir = plain_git_dir(repo_dir)?;
    let config = git_dir.join("config");
    // A link or anything else that is not a plain file is not this repository's configuration:
    // it is replaced by one holding just this key.
    let current = match std::fs::symlink_metadata(&config) {
        Ok(meta) if meta.is_file() => read_regular_file(&config, MAX_CONFIG_BYTES)
            .map_err(|e| failed(format!("cannot read {}: {e}", config.display())))?,
        Ok(_) => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(failed(format!("cannot read {}: {e}", config.display()))),
    };
    let copy = tempfile::NamedTempFile::new().map_err(|e| failed(format!("cannot create a temporary file: {e}")))?;
    std::fs::write(copy.path(), &current).map_err(|e| failed(format!("cannot write a temporary file: {e}")))?;
    let mut args: Vec<OsString> = vec!["config".into(), "--file".into(), copy.path().as_os_str().to_owned()];
    args.extend(["--", key, value].map(OsString::from));
    let output = run_git(args, None, Deadline::after(CONFIG_TIMEOUT), &CancellationToken::new()).await?;
    if !output.success {
        return Err(failed(format!("cannot set {key}: {}", last_lines(&output.stderr))));
    }
    let edited = std::fs::read(copy.path()).map_err(|e| failed(format!("cannot read a temporary file: {e}")))?;
    let replace = || -> std::io::Result<()> {
        let mut next = tempfile::Builder::new().prefix(".config.rswe-").tempfile_in(&git_dir)?;
        std::io::Write::write_all(&mut next, &edited)?;
        // Readable by the agent's git, whatever user it runs as.
        next.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
        next.persist(&config).map_err(|e| e.error)?;
        Ok(())
    };
    replace().map_err(|e| failed(format!("cannot replace {}: {e}", config.display())))
}

/// The branch `<repo_dir>/.git/HEAD` names, `None` when HEAD is detached. Reads the file; runs no
/// git in the repository.
///
/// # Errors
///
/// [`GitError::Failed`] when `.git` is not a directory, HEAD is not a regular file, or it names
/// no valid branch.
pub fn current_branch(repo_dir: &Path) -> Result<Option<String>, GitError> {
    let git_dir = plain_git_dir(repo_dir)?;
    let path = git_dir.join("HEAD");
    let bytes = read_regular_file(&path, MAX_HEAD_BYTES)
        .map_err(|e| GitError::Failed { message: format!("cannot read {}: {e}", path.display()) })?;
    let head = String::from_utf8_lossy(&bytes);
    let head = head.trim();
    if let Some(target) = head.strip_prefix("ref:") {
        let target = target.trim();
        return match target.strip_prefix("refs/heads/") {
            Some(name) if valid_branch_name(name) => Ok(Some(name.to_owned())),
            _ => Err(GitError::Failed { message: format!("HEAD points at {target:?}, which is not a branch") }),
        };
    }
    if matches!(head.len(), 40 | 64) && head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Err(GitError::Failed { message: format!("{} is neither a branch nor a commit", path.display()) })
}

/// Whether git accepts `name` as a branch name: the rules of `git check-ref-format --branch`.
pub fn valid_branch_name(name: &str) -> bool {
    if name.is_empty() || name == "@" || name == "HEAD" || name.starts_with('-') {
        return false;
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return false;
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return false;
    }
    let forbidden = |c: char| c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\');
    if name.chars().any(forbidden) {
        return false;
    }
    name.split('/').all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

/// `<repo_dir>/.git`, when it is a directory (not a link, not a `gitdir:` file).
fn plain_git_dir(repo_dir: &Path) -> Result<PathBuf, GitError> {
    let git_dir = repo_dir.join(".git");
    match std::fs::symlink_metadata(&git_dir) {
        Ok(meta) if meta.is_dir() => Ok(git_dir),
        Ok(_) => Err(GitError::Failed { message: format!("{} is not a directory", git_dir.display()) }),
        Err(e) => Err(GitError::Failed { message: format!("{} is not a git repository: {e}", repo_dir.display()) }),
    }
}

/// Up to `max` bytes of `path`, which must be a regular file: a link is not followed and a FIFO
/// cannot block.
fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Empties the directory when dropped while armed.
struct EmptyOnDrop<'a>(Option<&'a Path>);

impl Drop for EmptyOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            empty_directory(dir);
        }
    }
}

/// Removes everything inside `dir`, best effort.
fn empty_directory(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(error) = removed {
            tracing::warn!(path = %path.display(), %error, "cannot remove what a failed clone left");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `https://` or `http://`: the only transport a token is given to.
    Http,
    /// `file://` or an absolute path.
    Local,
}

fn check_url(url: &str) -> Result<Transport, GitError> {
    let invalid = |reason: &str| GitError::InvalidUrl { url: redact(url, &[]), reason: reason.to_owned() };
    if url.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("it is empty or holds spaces or control characters"));
    }
    if let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("it holds credentials: give the token separately, never in the URL"));
        }
        if authority.is_empty() {
            return Err(invalid("it names no host"));
        }
        return Ok(Transport::Http);
    }
    if url.starts_with("file:///") || url.starts_with('/') {
        return Ok(Transport::Local);
    }
    Err(invalid("only https:// URLs (http:// and local paths for tests) are supported"))
}

fn check_token(token: Option<&str>) -> Result<(), GitError> {
    match token {
        Some(token) if token.is_empty() || token.chars().any(|c| c.is_control()) => {
            Err(GitError::Failed { message: "the token is empty or holds control characters".to_owned() })
        }
        _ => Ok(()),
    }
}

/// The `-c` options (given before the subcommand, so never persisted) that replace every
/// credential helper with the inline one when there is a token, and with none otherwise.
fn credential_args(token: Option<&str>) -> Vec<OsString> {
    // A redirect could take the credentials to another host: none is followed.
    let mut args: Vec<OsString> =
        vec!["-c".into(), "http.followRedirects=false".into(), "-c".into(), "credential.helper=".into()];
    if token.is_some() {
        args.push("-c".into());
        args.push(format!("credential.helper={CREDENTIAL_HELPER}").into());
    }
    args
}

#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        let now = Instant::now();
        let at = now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        Deadline { at, timeout }
    }
}

/// A finished git process: its exit and its (redacted, bounded) outputs.
struct GitOutput {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Kills the process group when dropped while armed.
struct GroupKill(Option<Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group may be gone already.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

enum Stopped {
    Finished(std::io::Result<std::process::ExitStatus>, (Vec<u8>, bool), (Vec<u8>, bool)),
    Cancelled,
    TimedOut,
}

/// Runs git with `args`, the token (if any) only in its environment, until it ends, the
/// deadline passes or `cancel` fires.
async fn run_git(
    args: Vec<OsString>,
    token: Option<&str>,
    deadline: Deadline,
    cancel: &CancellationToken,
) -> Result<GitOutput, GitError> {
    if cancel.is_cancelled() {
        return Err(GitError::Cancelled);
    }
    let secrets: Vec<&str> = token.into_iter().collect();
    let mut command = tokio::process::Command::new("git");
    command.args(&args).env_clear();
    for name in ENV_ALLOWED {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        // No repository is discovered from the working directory.
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env(TOKEN_ENV, token);
    }
    let mut child =
        command.spawn().map_err(|e| GitError::Failed { message: redact(&format!("cannot run git: {e}"), &secrets) })?;
    let mut group = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stopped = {
        let work = async {
            let (out, err) = tokio::join!(read_tail(stdout), read_tail(stderr));
            (child.wait().await, out, err)
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Stopped::Cancelled,
            () = tokio::time::sleep_until(deadline.at) => Stopped::TimedOut,
            (status, out, err) = work => Stopped::Finished(status, out, err),
        }
    };
    let (status, out, err) = match stopped {
        Stopped::Finished(status, out, err) => {
            // Reaped: the group's id may be reused from now on.
            group.0 = None;
            (status, out, err)
        }
        Stopped::Cancelled | Stopped::TimedOut => {
            drop(group);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(KILL_WAIT, child.wait()).await;
            return Err(if matches!(stopped, Stopped::Cancelled) {
                GitError::Cancelled
            } else {
                GitError::Timeout { timeout: deadline.timeout }
            });
        }
    };
    let status = status.map_err(|e| GitError::Failed { message: format!("cannot wait for git: {e}") })?;
    let output = GitOutput {
        success: status.success(),
        stdout: output_text(&out, &secrets),
        stderr: output_text(&err, &secrets),
    };
    if !output.success {
        tracing::debug!(code = ?status.code(), stderr = %output.stderr, "git failed");
    }
    Ok(output)
}

/// Everything `pipe` gives until it closes, keeping the last [`MAX_OUTPUT`] bytes; and whether
/// some were dropped.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let Some(mut pipe) = pipe else { return (kept, truncated) };
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buffer[..n]);
                if kept.len() > 2 * MAX_OUTPUT {
                    kept.drain(..kept.len() - MAX_OUTPUT);
                    truncated = true;
                }
            }
        }
    }
    if kept.len() > MAX_OUTPUT {
        kept.drain(..kept.len() - MAX_OUTPUT);
        truncated = true;
    }
    (kept, truncated)
}

/// The text of a kept output, redacted. When its start was dropped, the first (partial) line is
/// too, so no fragment of a secret survives.
fn output_text((bytes, truncated): &(Vec<u8>, bool), secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = if *truncated { text.split_once('\n').map_or("", |(_, rest)| rest) } else { &text };
    redact(text, secrets)
}

/// git's last lines, for a message.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|line| !line.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(MAX_MESSAGE_LINES);
    let joined = lines[start..].join("\n");
    let skip = joined.chars().count().saturating_sub(MAX_MESSAGE_CHARS);
    let tail: String = joined.chars().skip(skip).collect();
    if tail.is_empty() { "git gave no reason".to_owned() } else { tail }
}

/// The lines git and the server give as reasons (`remote:`, `error:`, `fatal:`, `! [...]`).
fn reason_lines(text: &str) -> String {
    let reasons: String = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            ["remote:", "error:", "fatal:", "!"].iter().any(|prefix| line.starts_with(prefix)) && *line != "remote:"
        })
        .collect::<Vec<_>>()
        .join("\n");
    if reasons.is_empty() { last_lines(text) } else { last_lines(&reasons) }
}

/// What a failed clone, fetch or push means, from git's (already redacted) stderr.
fn classify(stderr: &str, url: &str, remote_branch: Option<&str>) -> GitError {
    let lower = stderr.to_lowercase();
    let url = redact(url, &[]);
    let has = |needles: &[&str]| needles.iter().any(|needle| lower.contains(needle));
    if has(&["gh006", "protected branch hook declined", "protected branch update failed"]) {
        let branch = protected_branch_named(stderr)
            .or(remote_branch.map(str::to_owned))
            .unwrap_or_else(|| "(unknown)".to_owned());
        return GitError::ProtectedBranch { branch, message: reason_lines(stderr) };
    }
    if has(&["(non-fast-forward)", "(fetch first)", "(stale info)", "updates were rejected because"]) {
        return GitError::Rejected { message: reason_lines(stderr) };
    }
    if has(&["returned error: 403", "write access to repository not granted", "http 403"])
        || (lower.contains("permission to") && lower.contains("denied"))
    {
        return GitError::Forbidden { url, message: reason_lines(stderr) };
    }
    if has(&[
        "authentication failed",
        "returned error: 401",
        "http 401",
        "could not read username",
        "could not read password",
        "invalid username or password",
    ]) {
        return GitError::Unauthorized { url };
    }
    if has(&["repository not found", "returned error: 404", "http 404", "does not appear to be a git repository"])
        || (lower.contains("fatal: repository '") && lower.contains("' not found"))
    {
        return GitError::NotFound { url };
    }
    GitError::Failed { message: last_lines(stderr) }
}

/// The branch of GitHub's `GH006: Protected branch update failed for refs/heads/<branch>.`
fn protected_branch_named(stderr: &str) -> Option<String> {
    let marker = "Protected branch update failed for refs/heads/";
    let at = stderr.find(marker)? + marker.len();
    let rest = &stderr[at..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let name = rest[..end].trim_end_matches('.');
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_head(head: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), head).unwrap();
        dir
    }

    #[test]
    fn current_branch_reads_head() {
        let dir = repo_with_head("ref: refs/heads/feature/x\n");
        assert_eq!(current_branch(dir.path()).unwrap().as_deref(), Some("feature/x"));
        let dir = repo_with_head("ref: refs/heads/main");
        assert_eq!(current_branch(dir.path()).unwrap().as_deref(), Some("main"));
        let dir = repo_with_head("0123456789abcdef0123456789abcdef01234567\n");
        assert_eq!(current_branch(dir.path()).unwrap(), None);
        for bad in ["ref: refs/tags/v1\n", "ref: refs/heads/a..b\n", "garbage\n", "", "ref: refs/heads/.invalid"] {
            let dir = repo_with_head(bad);
            assert!(matches!(current_branch(dir.path()), Err(GitError::Failed { .. })), "{bad:?}");
        }
    }

    #[test]
    fn current_branch_refuses_links_and_missing_repositories() {
        let dir = tempfile::tempdir().unwrap();
        assert!(current_branch(dir.path()).is_err());
        let elsewhere = repo_with_head("ref: refs/heads/secret\n");
        std::os::unix::fs::symlink(elsewhere.path().join(".git"), dir.path().join(".git")).unwrap();
        assert!(current_branch(dir.path()).is_err(), ".git as a link");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(".git/HEAD"), dir.path().join(".git/HEAD")).unwrap();
        assert!(current_branch(dir.path()).is_err(), "HEAD as a link");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".git"), "gitdir: /elsewhere\n").unwrap();
        assert!(current_branch(dir.path()).is_err(), ".git as a file");
    }

    #[test]
    fn branch_names_follow_check_ref_format() {
        for good in ["main", "feature/x", "rswe/fix-123", "a.b", "v1.2.3", "under_score", "a@b", "ünï"] {
            assert!(valid_branch_name(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            "/x",
            "x/",
            "x.",
            "a..b",
            "a b",
            "a~b",
            "a^b",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "a@{b",
            "a//b",
            "x.lock",
            "a/b.lock/c",
            ".hidden",
            "a/.b",
            "HEAD",
            "@",
            "tab\tx",
            "nl\nx",
            "del\u{7f}",
        ] {
            assert!(!valid_branch_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(check_url("https://github.com/o/r.git").unwrap(), Transport::Http);
        assert_eq!(check_url("http://127.0.0.1:8080/o/r.git").unwrap(), Transport::Http);
        assert_eq!(check_url("file:///tmp/r.git").unwrap(), Transport::Local);
        assert_eq!(check_url("/tmp/r.git").unwrap(), Transport::Local);
        for bad in [
            "",
            "git@github.com:o/r.git",
            "ssh://git@github.com/o/r.git",
            "ext::sh -c touch% /tmp/pwned",
            "relative/path",
            "-u",
            "https://x-access-token:ghs_secret@github.com/o/r.git",
            "https://",
            "https://github.com/o/r\n.git",
        ] {
            let error = check_url(bad).unwrap_err();
            assert!(matches!(error, GitError::InvalidUrl { .. }), "{bad:?}");
            assert!(!error.to_string().contains("ghs_secret"), "{error}");
        }
    }

    #[test]
    fn git_messages_are_classified() {
        let url = "https://github.com/o/r.git";
        let protected = "remote: error: GH006: Protected branch update failed for refs/heads/main.\n\
                         To https://github.com/o/r.git\n ! [remote rejected] abc -> main (protected branch hook declined)\n";
        match classify(protected, url, Some("other")) {
            GitError::ProtectedBranch { branch, message } => {
                assert_eq!(branch, "main");
                assert!(message.contains("GH006"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let rejected = " ! [rejected]        abc -> main (non-fast-forward)\nerror: failed to push some refs";
        assert!(matches!(classify(rejected, url, None), GitError::Rejected { .. }));
        let forbidden = "remote: Permission to o/r.git denied to bot.\nfatal: unable to access \
                         'https://github.com/o/r.git/': The requested URL returned error: 403";
        assert!(matches!(classify(forbidden, url, None), GitError::Forbidden { .. }));
        let read_only = "remote: Write access to repository not granted.\nfatal: unable to access";
        assert!(matches!(classify(read_only, url, None), GitError::Forbidden { .. }));
        for unauthorized in [
            "fatal: Authentication failed for 'https://github.com/o/r.git/'",
            "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
        ] {
            assert!(matches!(classify(unauthorized, url, None), GitError::Unauthorized { .. }), "{unauthorized}");
        }
        let missing = "remote: Repository not found.\nfatal: repository 'https://github.com/o/r.git/' not found";
        assert!(matches!(classify(missing, url, None), GitError::NotFound { .. }));
        match classify("fatal: something odd\n", url, None) {
            GitError::Failed { message } => assert_eq!(message, "fatal: something odd"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kept_output_is_bounded_and_redacted() {
        let secret = "s3cr3t-token-value";
        let bytes = format!("partial {secret}\nline two {secret}\n").into_bytes();
        assert_eq!(output_text(&(bytes.clone(), false), &[secret]), "partial [redacted]\nline two [redacted]\n");
        assert_eq!(output_text(&(bytes, true), &[secret]), "line two [redacted]\n");
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let message = last_lines(&long);
        assert_eq!(message.lines().count(), MAX_MESSAGE_LINES);
        assert!(message.ends_with("line 99"));
    }
}
