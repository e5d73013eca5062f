//! A session's workspace on disk: the repository cloned into it, and people's
//! attachments delivered into `.rswe/inbox`.

use crate::service::{Attachment, INBOX};
use rswe_sandbox::Sandbox;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Attachments that arrive before the workspace exists wait here, in the session's
/// directory.
const STAGED: &str = "staged";

/// Refuses repository strings git would read as options.
pub fn check_repository(repository: &str) -> Result<(), String> {
    if repository.starts_with('-') || repository.chars().any(char::is_control) {
        return Err(format!("{repository:?} is not a repository URL or path"));
    }
    Ok(())
}

/// Refuses file names that are not one plain name.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if plain { Ok(()) } else { Err(format!("{name:?} is not a plain file name")) }
}

/// What became of [`prepare`].
pub enum Prepared {
    Ready,
    /// The person interrupted the clone.
    Interrupted,
}

/// Makes the workspace: a clone of `repository`, or an empty directory. The clone goes
/// to a temporary name first so a half-made workspace never looks ready; git is killed
/// when `interrupt` fires, the time is up, or the caller goes away.
pub async fn prepare(
    session_dir: &Path,
    workspace: &Path,
    repository: Option<&str>,
    timeout: Duration,
    interrupt: &CancellationToken,
) -> Result<Prepared, String> {
    std::fs::create_dir_all(session_dir).map_err(|e| format!("cannot create {}: {e}", session_dir.display()))?;
    let Some(repository) = repository else {
        std::fs::create_dir_all(workspace).map_err(|e| format!("cannot create {}: {e}", workspace.display()))?;
        return Ok(Prepared::Ready);
    };
    let partial = session_dir.join("workspace.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("cannot clear {}: {e}", partial.display()))?;
    }
    let child = tokio::process::Command::new("git")
        // No hard links: the agent must not be able to change the source's objects.
        .args(["clone", "--quiet", "--no-hardlinks", "--", repository])
        .arg(&partial)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let output = tokio::select! {
        output = tokio::time::timeout(timeout, child.wait_with_output()) => output,
        () = interrupt.cancelled() => return Ok(Prepared::Interrupted),
    };
    match output {
        Err(_) => Err(format!("cloning {repository} took longer than {}s", timeout.as_secs())),
        Ok(Err(error)) => Err(format!("cannot wait for git: {error}")),
        Ok(Ok(output)) if !output.status.success() => {
            Err(format!("cannot clone {repository}: {}", String::from_utf8_lossy(&output.stderr).trim()))
        }
        Ok(Ok(_)) => {
            std::fs::rename(&partial, workspace).map_err(|e| format!("cannot move the clone into place: {e}"))?;
            Ok(Prepared::Ready)
        }
    }
}

/// Stages attachments in the session's directory (which the sandbox cannot see) under
/// names not taken there yet. Returns the names.
pub fn stage(session_dir: &Path, workspace: &Path, files: &[&Attachment]) -> std::io::Result<Vec<String>> {
    let dir = session_dir.join(STAGED);
    std::fs::create_dir_all(&dir)?;
    let partial = session_dir.join("staging");
    std::fs::create_dir_all(&partial)?;
    let inbox = workspace.join(INBOX);
    let mut names = Vec::new();
    for file in files {
        let name = free_name(&[&dir, &inbox], &file.name);
        // Written aside and renamed in, so a delivery never reads half a file.
        let temp = partial.join(&name);
        std::fs::write(&temp, &file.data)?;
        std::fs::rename(&temp, dir.join(&name))?;
        names.push(name);
    }
    Ok(names)
}

/// Moves staged attachments into the workspace's inbox, through the sandbox so that no
/// link the agent made can send them elsewhere, and keeps `.rswe/` out of git.
pub async fn deliver_staged(session_dir: &Path, sandbox: &dyn Sandbox) -> Result<(), String> {
    let staged = session_dir.join(STAGED);
    let Ok(entries) = std::fs::read_dir(&staged) else { return Ok(()) };
    let mut delivered = false;
    for entry in entries.flatten() {
        let path = entry.path();
        let data = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let target = Path::new(INBOX).join(entry.file_name());
        sandbox.write_file(&target, &data).await.map_err(|e| e.to_string())?;
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {error}", path.display()));
            }
            _ => {}
        }
        delivered = true;
    }
    if delivered {
        exclude_from_git(sandbox).await;
    }
    Ok(())
}

/// Adds `.rswe/` to the repository's `.git/info/exclude` unless it is there.
async fn exclude_from_git(sandbox: &dyn Sandbox) {
    if !sandbox.workspace().join(".git").is_dir() {
        return;
    }
    let path = Path::new(".git/info/exclude");
    let current = sandbox.read_file(path).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    if current.lines().any(|line| matches!(line.trim(), ".rswe" | ".rswe/" | "/.rswe" | "/.rswe/")) {
        return;
    }
    let separator = if current.is_empty() || current.ends_with('\n') { "" } else { "\n" };
    if let Err(error) = sandbox.write_file(path, format!("{current}{separator}.rswe/\n").as_bytes()).await {
        tracing::warn!(%error, "could not exclude .rswe/ from git");
    }
}

/// `name`, or `name-2`, `name-3`, … : the first not taken in any of `dirs`.
fn free_name(dirs: &[&Path], name: &str) -> String {
    let taken = |candidate: &str| dirs.iter().any(|dir| dir.join(candidate).symlink_metadata().is_ok());
    if !taken(name) {
        return name.to_string();
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (name, String::new()),
    };
    (2..).map(|n| format!("{stem}-{n}{extension}")).find(|candidate| !taken(candidate)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_must_be_plain() {
        assert!(check_file_name("notes.txt").is_ok());
        for bad in ["", "..", "a/b", "..\\x", "a\nb"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn taken_names_get_a_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "").unwrap();
        std::fs::write(dir.path().join("a-2.txt"), "").unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("a-3.txt"), "").unwrap();
        assert_eq!(free_name(&[dir.path(), other.path()], "a.txt"), "a-4.txt");
        assert_eq!(free_name(&[dir.path()], "b"), "b");
    }
}
