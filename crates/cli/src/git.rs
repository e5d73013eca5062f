//! The git operations `rswe run` does on the person's side of the sandbox: cloning their
//! repository into the session workspace and fetching the agent's branches back.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn git(dir: Option<&Path>, args: &[&str]) -> Result<String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    let output = command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git: is it installed? (apt-get install git)")?;
    if !output.status.success() {
        bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim_end().to_string())
}

/// Whether `path` is inside a git work tree.
pub fn is_work_tree(path: &Path) -> bool {
    git(Some(path), &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|out| out == "true")
}

/// The top of the work tree containing `path`.
pub fn top_level(path: &Path) -> Result<std::path::PathBuf> {
    Ok(git(Some(path), &["rev-parse", "--show-toplevel"])?.into())
}

/// Clones `source` (a path or URL) into `dest`.
pub fn clone(source: &str, dest: &Path) -> Result<()> {
    let dest = dest.to_str().context("the workspace path is not UTF-8")?;
    git(None, &["clone", "--quiet", source, dest]).map(|_| ())
}

/// Every local branch and its commit.
pub fn heads(repo: &Path) -> Result<BTreeMap<String, String>> {
    let out = git(Some(repo), &["for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"])?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, sha)| (name.to_string(), sha.to_string()))
        .collect())
}

/// A branch the agent created or moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedBranch {
    pub name: String,
    pub sha: String,
    /// Commits on it that none of the starting branches had.
    pub new_commits: u64,
}

/// Branches of `repo` that differ from `before`.
pub fn changed_branches(repo: &Path, before: &BTreeMap<String, String>) -> Result<Vec<ChangedBranch>> {
    let mut changed = Vec::new();
    for (name, sha) in heads(repo)? {
        if before.get(&name) == Some(&sha) {
            continue;
        }
        let mut args = vec!["rev-list".to_string(), "--count".to_string(), sha.clone()];
        args.extend(before.values().map(|old| format!("^{old}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let new_commits = git(Some(repo), &args)?.parse().unwrap_or(0);
        changed.push(ChangedBranch { name, sha, new_commits });
    }
    Ok(changed)
}

/// Fetches `branch` of `workspace` into `repo` as `rswe/<session>/<branch>`, without
/// touching `repo`'s working tree. Returns the new branch name.
pub fn fetch_back(repo: &Path, workspace: &Path, session: &str, branch: &str) -> Result<String> {
    let target = format!("rswe/{session}/{branch}");
    let workspace = workspace.to_str().context("the workspace path is not UTF-8")?;
    let refspec = format!("+refs/heads/{branch}:refs/heads/{target}");
    git(Some(repo), &["fetch", "--quiet", "--no-tags", workspace, &refspec])?;
    Ok(target)
}

/// Sets the commit identity for commands in the sandbox (its `HOME/.gitconfig`).
pub fn write_identity(home: &Path, name: &str, email: &str) -> Result<()> {
    let config = format!("[user]\n\tname = {name}\n\temail = {email}\n[init]\n\tdefaultBranch = main\n");
    std::fs::write(home.join(".gitconfig"), config).context("cannot write the sandbox's .gitconfig")
}
