use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in a sandbox operation.
///
/// Variants are distinct so callers can react (tell the model to use another path, recreate a
/// shut-down sandbox, …); every message says what happened and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The path (after resolving `..` and symbolic links) lies outside the workspace.
    #[error(
        "{} is outside the workspace {}: use a path inside the workspace (relative paths are relative to it)",
        path.display(),
        workspace.display()
    )]
    OutsideWorkspace { path: PathBuf, workspace: PathBuf },

    /// The path is one of the sandbox's hidden paths (or inside one).
    #[error("{} is hidden from the sandbox by its configuration: it cannot be read, written or listed", path.display())]
    Hidden { path: PathBuf },

    /// Nothing exists at the path.
    #[error("{} does not exist: check the path, or list the directory to see what is there", path.display())]
    NotFound { path: PathBuf },

    /// A file was expected but the path is a directory.
    #[error("{} is a directory, not a file: list it instead of reading or writing it", path.display())]
    IsADirectory { path: PathBuf },

    /// A directory was expected but the path is something else.
    #[error("{} is not a directory: give a directory", path.display())]
    NotADirectory { path: PathBuf },

    /// Resolving the path followed too many symbolic links (probably a loop).
    #[error("{} goes through too many symbolic links (a link loop?): give the real path", path.display())]
    SymlinkLoop { path: PathBuf },

    /// The request itself is malformed (for instance an environment variable name containing `=`).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Bubblewrap was required but cannot be used on this machine.
    #[error("bubblewrap is required but does not work here: {0}")]
    BubblewrapUnavailable(String),

    /// The process could not be started.
    #[error("could not start the command: {0}")]
    Spawn(#[source] io::Error),

    /// No background process has this id.
    #[error("there is no background process {0}: list the background processes to see their ids")]
    UnknownBackground(String),

    /// The sandbox has been shut down; create a new one (the workspace is kept).
    #[error("the sandbox has been shut down: create a new sandbox for this session")]
    ShutDown,

    /// Any other I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        SandboxError::Io { context: context.into(), source }
    }

    /// Maps an I/O error on `path` to the most specific variant.
    pub(crate) fn from_path_io(path: PathBuf, action: &str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(code) if code == nix::libc::ENOENT => SandboxError::NotFound { path },
            Some(code) if code == nix::libc::EISDIR => SandboxError::IsADirectory { path },
            Some(code) if code == nix::libc::ENOTDIR => SandboxError::NotADirectory { path },
            Some(code) if code == nix::libc::ELOOP => SandboxError::Io {
                context: format!(
                    "could not {action} {}: a symbolic link appeared in the path while it was being used; retry",
                    path.display()
                ),
                source,
            },
            _ => SandboxError::Io { context: format!("could not {action} {}", path.display()), source },
        }
    }
}
