//! A real git smart-HTTP server for tests: [`GitHttpServer`].
//!
//! It listens on `127.0.0.1:0` and answers every request by running `git http-backend` as a
//! CGI program over the bare repositories under a root directory (`<root>/<owner>/<name>.git`),
//! so clones, fetches and pushes go through git's own server side: the real protocol (v0 or
//! v2), packs, and `pre-receive` hooks whose output reaches the client as `remote:` lines.
//!
//! Before a request reaches `git http-backend`, a test-provided function decides what the
//! server answers, the way GitHub does: [`GitAccess::Unauthorized`] is `401` with
//! `WWW-Authenticate: Basic realm="GitHub"` (git then asks its credential helper and tries
//! again), [`GitAccess::Forbidden`] is `403` with `Permission to … denied`, and
//! [`GitAccess::NotFound`] is `404` with `Repository not found.`. Every request is recorded
//! with the Basic credentials it carried, so a test can tell which token was used.
//!
//! The helpers ([`create_bare`], [`seed`], [`fork_bare`], [`protect_branch`], [`branch_sha`],
//! [`file_at`]) prepare and inspect the bare repositories directly, without the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest one `git http-backend` run may take.
pub const CGI_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest one of the helpers' git commands may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest request body accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// The identity of the commits [`seed`] makes, and its fixed date.
pub const SEED_NAME: &str = "Seed Author";
pub const SEED_EMAIL: &str = "seed@example.com";
const SEED_DATE: &str = "2024-01-01T00:00:00Z";

/// Which git service a request is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    /// Clone and fetch (`git-upload-pack`).
    UploadPack,
    /// Push (`git-receive-pack`).
    ReceivePack,
}

/// One request the server received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    pub method: String,
    /// The request path, e.g. `/octo/hello.git/info/refs`.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The repository's owner (the first path segment).
    pub owner: String,
    /// The repository's name, without `.git`.
    pub name: String,
    /// The service, when the request names one.
    pub service: Option<GitService>,
    /// The user name of the Basic credentials.
    pub username: Option<String>,
    /// The password of the Basic credentials, as sent (tests assert which token was used).
    pub password: Option<String>,
    /// Whether the request was let through to `git http-backend` (false while `authorize` decides).
    pub authorized: bool,
    /// The HTTP status answered (0 while `authorize` decides).
    pub status: u16,
}

impl GitRequest {
    /// Whether the request is part of a push.
    pub fn is_push(&self) -> bool {
        self.service == Some(GitService::ReceivePack)
    }
}

/// What the server does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAccess {
    /// Served by `git http-backend`.
    Allow,
    /// `401` with `WWW-Authenticate: Basic realm="GitHub"`.
    Unauthorized,
    /// `403`, `Permission to owner/name.git denied to user.`
    Forbidden,
    /// `404`, `Repository not found.`
    NotFound,
}

/// Decides each request's [`GitAccess`].
pub type Authorize = Arc<dyn Fn(&GitRequest) -> GitAccess + Send + Sync>;

/// An [`Authorize`] letting through the requests whose Basic password is `token` (any user
/// name) and answering the others `401`.
pub fn require_token(token: &str) -> Authorize {
    let token = token.to_owned();
    Arc::new(move |request: &GitRequest| {
        if request.password.as_deref() == Some(token.as_str()) { GitAccess::Allow } else { GitAccess::Unauthorized }
    })
}

/// A git smart-HTTP server over the bare repositories under a root; dropping it stops the server.
pub struct GitHttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    served: crate::served::Served,
}

impl std::fmt::Debug for GitHttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHttpServer").field("addr", &self.addr).field("root", &self.shared.root).finish()
    }
}

struct Shared {
    root: PathBuf,
    authorize: Authorize,
    requests: Mutex<Vec<GitRequest>>,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<GitRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl GitHttpServer {
    /// Serves the bare repositories under `root` (`<root>/<owner>/<name>.git`) on `127.0.0.1:0`,
    /// each request first judged by `authorize`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(root: PathBuf, authorize: Authorize) -> GitHttpServer {
        let listener = match tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(listener) => listener,
            Err(e) => panic!("git http server: cannot bind 127.0.0.1:0: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("git http server: no local address: {e}"),
        };
        let shared = Arc::new(Shared { root, authorize, requests: Mutex::new(Vec::new()) });
        let app = Router::new().fallback(any(handle)).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(shared.clone());
        let served = crate::served::Served::start(listener, addr, app, "git http server");
        GitHttpServer { addr, shared, served }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/owner/name.git`
    pub fn url(&self, owner: &str, name: &str) -> String {
        format!("http://{}/{owner}/{name}.git", self.addr)
    }

    /// The directory holding the repositories.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<GitRequest> {
        self.shared.requests().clone()
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        self.served.stop().await;
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let mut segments = path.trim_start_matches('/').splitn(3, '/');
    let owner = segments.next().unwrap_or_default().to_owned();
    let name = segments.next().unwrap_or_default().trim_end_matches(".git").to_owned();
    let service = if path.ends_with("/git-receive-pack")
        || query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "service=git-receive-pack"))
    {
        Some(GitService::ReceivePack)
    } else if path.ends_with("/git-upload-pack")
        || query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "service=git-upload-pack"))
    {
        Some(GitService::UploadPack)
    } else {
        None
    };
    let (username, password) = basic_credentials(&headers).unzip();
    let mut request = GitRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        owner,
        name,
        service,
        username,
        password,
        authorized: false,
        status: 0,
    };
    let access = (shared.authorize)(&request);
    let response = match access {
        GitAccess::Allow => {
            request.authorized = true;
            run_backend(&shared.root, &method, &path, query.as_deref(), &headers, &request, body).await
        }
        GitAccess::Unauthorized => {
            let mut response = (StatusCode::UNAUTHORIZED, text("Invalid username or token.")).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"GitHub\""));
            response
        }
        GitAccess::Forbidden => {
            let who = request.username.as_deref().unwrap_or("anonymous");
            let message = format!("Permission to {}/{}.git denied to {who}.", request.owner, request.name);
            (StatusCode::FORBIDDEN, text(&message)).into_response()
        }
        GitAccess::NotFound => (StatusCode::NOT_FOUND, text("Repository not found.")).into_response(),
    };
    request.status = response.status().as_u16();
    tracing::debug!(method = %request.method, path = %request.path, status = request.status, "git http server: request");
    shared.requests().push(request);
    response
}

/// A `text/plain` body, which git shows as `remote:` lines.
fn text(message: &str) -> ([(HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n"))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Runs `git http-backend` for one request and turns its CGI answer into a response.
async fn run_backend(
    root: &Path,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    request: &GitRequest,
    body: Bytes,
) -> Response {
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query.unwrap_or(""))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(content_type) = header_str(headers, "content-type") {
        command.env("CONTENT_TYPE", content_type);
    }
    // `git http-backend` inflates gzip request bodies itself.
    if let Some(encoding) = header_str(headers, "content-encoding") {
        command.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(protocol) = header_str(headers, "git-protocol") {
        command.env("GIT_PROTOCOL", protocol);
    }
    // `git http-backend` serves pushes to authenticated users only.
    if let Some(user) = request.username.as_deref().filter(|u| !u.is_empty()) {
        command.env("REMOTE_USER", user);
    } else if request.is_push() {
        command.env("REMOTE_USER", "anonymous");
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return server_error(&format!("cannot run git http-backend: {e}")),
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return server_error("git http-backend has no pipes");
    };
    let run = async {
        let feed = async move {
            // The backend may answer without reading everything (an error): that is not ours to report.
            let _ = stdin.write_all(&body).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let ((), out_read, err_read) = tokio::join!(feed, stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (out_read.and(err_read).and(status), out, err)
    };
    let (result, out, err) = match tokio::time::timeout(CGI_TIMEOUT, run).await {
        Ok(done) => done,
        Err(_) => return server_error("git http-backend timed out"),
    };
    if let Err(e) = result {
        return server_error(&format!("git http-backend failed: {e}"));
    }
    if !err.is_empty() {
        tracing::debug!(stderr = %String::from_utf8_lossy(&err), "git http server: backend stderr");
    }
    cgi_response(&out)
}

fn server_error(message: &str) -> Response {
    tracing::error!("git http server: {message}");
    (StatusCode::INTERNAL_SERVER_ERROR, text(message)).into_response()
}

/// Parses a CGI answer: header lines, an empty line, the body.
fn cgi_response(out: &[u8]) -> Response {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(at) => (&out[..at], &out[at + 4..]),
        None => match find(out, b"\n\n") {
            Some(at) => (&out[..at], &out[at + 2..]),
            None => return server_error("git http-backend gave no CGI headers"),
        },
    };
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok());
            status = code.and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.trim()), HeaderValue::try_from(value)) {
            response_headers.append(name, value);
        }
    }
    let mut response = (status, Bytes::copy_from_slice(body)).into_response();
    response.headers_mut().extend(response_headers);
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs git for a helper, isolated from the user's and the system's configuration, bounded by
/// [`HELPER_TIMEOUT`]. Returns (success, stdout, stderr).
async fn git(args: &[&str], cwd: Option<&Path>, extra_env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    match tokio::time::timeout(HELPER_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("cannot run git {args:?}: {e}"),
        Err(_) => panic!("git {args:?} did not finish within {HELPER_TIMEOUT:?}"),
    }
}

/// Like [`git`], panicking when git fails; returns stdout.
async fn git_ok(args: &[&str], cwd: Option<&Path>, extra_env: &[(&str, &str)]) -> String {
    let (ok, out, err) = git(args, cwd, extra_env).await;
    if !ok {
        panic!("git {args:?} failed: {err}");
    }
    out
}

fn path_str(path: &Path) -> &str {
    match path.to_str() {
        Some(path) => path,
        None => panic!("not a UTF-8 path: {}", path.display()),
    }
}

/// Creates the empty bare repository `<root>/<owner>/<name>.git` (default branch `main`) and
/// returns its path.
///
/// # Panics
///
/// When git fails.
pub async fn create_bare(root: &Path, owner: &str, name: &str) -> PathBuf {
    let bare = root.join(owner).join(format!("{name}.git"));
    git_ok(&["init", "--quiet", "--bare", "--initial-branch=main", path_str(&bare)], None, &[]).await;
    bare
}

/// Commits `files` (path, content) to `branch` of the bare repository `bare`, on top of the
/// branch when it exists (a root commit otherwise), as [`SEED_NAME`] at a fixed date. Returns
/// the new commit's sha.
///
/// # Panics
///
/// When git or the file system fails.
pub async fn seed(bare: &Path, files: &[(&str, &str)], branch: &str) -> String {
    let work = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let dir = work.path();
    let bare = path_str(bare);
    git_ok(&["init", "--quiet", &format!("--initial-branch={branch}"), path_str(dir)], None, &[]).await;
    let head = format!("refs/heads/{branch}");
    let (exists, _, _) = git(&["--git-dir", bare, "rev-parse", "--verify", "--quiet", &head], None, &[]).await;
    if exists {
        git_ok(&["fetch", "--quiet", bare, &head], Some(dir), &[]).await;
        git_ok(&["reset", "--quiet", "--hard", "FETCH_HEAD"], Some(dir), &[]).await;
    }
    for (path, content) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            panic!("cannot create {}: {e}", parent.display());
        }
        if let Err(e) = std::fs::write(&file, content) {
            panic!("cannot write {}: {e}", file.display());
        }
    }
    let identity = [
        ("GIT_AUTHOR_NAME", SEED_NAME),
        ("GIT_AUTHOR_EMAIL", SEED_EMAIL),
        ("GIT_AUTHOR_DATE", SEED_DATE),
        ("GIT_COMMITTER_NAME", SEED_NAME),
        ("GIT_COMMITTER_EMAIL", SEED_EMAIL),
        ("GIT_COMMITTER_DATE", SEED_DATE),
    ];
    git_ok(&["add", "--all"], Some(dir), &[]).await;
    git_ok(&["commit", "--quiet", "--allow-empty", "-m", "seed"], Some(dir), &identity).await;
    git_ok(&["push", "--quiet", bare, &format!("HEAD:{head}")], Some(dir), &[]).await;
    git_ok(&["rev-parse", "HEAD"], Some(dir), &[]).await.trim().to_owned()
}

/// Copies the bare repository `<root>/<from.0>/<from.1>.git` to `<root>/<to.0>/<to.1>.git`, the
/// way GitHub forks, and returns the new path.
///
/// # Panics
///
/// When git fails.
pub async fn fork_bare(root: &Path, from: (&str, &str), to: (&str, &str)) -> PathBuf {
    let source = root.join(from.0).join(format!("{}.git", from.1));
    let fork = root.join(to.0).join(format!("{}.git", to.1));
    git_ok(&["clone", "--quiet", "--bare", "--no-hardlinks", path_str(&source), path_str(&fork)], None, &[]).await;
    fork
}

/// Makes the bare repository refuse updates to `branch` as GitHub refuses pushes to a protected
/// branch: a `pre-receive` hook printing `error: GH006: Protected branch update failed for
/// refs/heads/<branch>.` Can be called for several branches.
///
/// # Panics
///
/// When the hook cannot be written.
pub fn protect_branch(bare: &Path, branch: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    let list = bare.join("protected-branches");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&list)
        .and_then(|mut file| writeln!(file, "refs/heads/{branch}"));
    if let Err(e) = appended {
        panic!("cannot write {}: {e}", list.display());
    }
    let hook = bare.join("hooks").join("pre-receive");
    let script = "#!/bin/sh\n\
        while read old new ref; do\n\
        \tif grep -qxF \"$ref\" protected-branches; then\n\
        \t\techo \"error: GH006: Protected branch update failed for $ref.\" >&2\n\
        \t\texit 1\n\
        \tfi\n\
        done\n\
        exit 0\n";
    let written = std::fs::create_dir_all(bare.join("hooks"))
        .and_then(|()| std::fs::write(&hook, script))
        .and_then(|()| std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)));
    if let Err(e) = written {
        panic!("cannot write {}: {e}", hook.display());
    }
}

/// The sha `branch` points at in the bare repository, if the branch exists.
///
/// # Panics
///
/// When git cannot run.
pub async fn branch_sha(bare: &Path, branch: &str) -> Option<String> {
    let head = format!("refs/heads/{branch}^{{commit}}");
    let (ok, out, _) = git(&["--git-dir", path_str(bare), "rev-parse", "--verify", "--quiet", &head], None, &[]).await;
    ok.then(|| out.trim().to_owned())
}

/// The content of `path` on `branch` of the bare repository, if both exist.
///
/// # Panics
///
/// When git cannot run.
pub async fn file_at(bare: &Path, branch: &str, path: &str) -> Option<String> {
    let object = format!("refs/heads/{branch}:{path}");
    let (ok, out, _) = git(&["--git-dir", path_str(bare), "show", &object], None, &[]).await;
    ok.then_some(out)
}
