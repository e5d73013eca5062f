//! Keeping host-side file operations inside a directory.
//!
//! Two layers: [`resolve_within`] resolves a path the way the kernel would (`..`, symbolic links)
//! and refuses results outside the root; the `open_*` functions then walk the resolved path one
//! component at a time with `O_NOFOLLOW`, so a symbolic link swapped in by a sandboxed process
//! between the two steps makes the operation fail instead of escaping.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::error::SandboxError;

/// Symbolic links followed before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

enum Step {
    Root,
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> impl DoubleEndedIterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::RootDir | Component::Prefix(_) => Some(Step::Root),
        Component::CurDir => None,
        Component::ParentDir => Some(Step::Parent),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
    })
}

/// Resolves `path` (relative to `root`, or absolute) following `..` and symbolic links, and
/// returns the resulting absolute path if it lies inside `root`, which must be canonical.
/// Components that do not exist are kept as they are.
pub(crate) fn resolve_within(root: &Path, path: &Path) -> Result<PathBuf, SandboxError> {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    let mut pending: VecDeque<Step> = steps(&absolute).collect();
    let mut current = PathBuf::from("/");
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        match step {
            Step::Root => current = PathBuf::from("/"),
            Step::Parent => {
                current.pop();
            }
            Step::Name(name) => {
                let next = current.join(&name);
                match std::fs::symlink_metadata(&next) {
                    Ok(metadata) if metadata.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(SandboxError::SymlinkLoop { path: path.to_path_buf() });
                        }
                        let target = std::fs::read_link(&next)
                            .map_err(|error| SandboxError::from_path_io(path.to_path_buf(), "resolve", error))?;
                        // A relative target is resolved from the link's directory, `current`.
                        for step in steps(&target).rev() {
                            pending.push_front(step);
                        }
                    }
                    _ => current = next,
                }
            }
        }
    }
    if current.starts_with(root) {
        Ok(current)
    } else {
        Err(SandboxError::OutsideWorkspace { path: path.to_path_buf(), workspace: root.to_path_buf() })
    }
}

/// The part of a resolved path below `root` (empty for `root` itself).
pub(crate) fn relative_to<'a>(root: &Path, resolved: &'a Path) -> Result<&'a Path, SandboxError> {
    resolved
        .strip_prefix(root)
        .map_err(|_| SandboxError::OutsideWorkspace { path: resolved.to_path_buf(), workspace: root.to_path_buf() })
}

fn name_of(component: Component<'_>) -> io::Result<&OsStr> {
    match component {
        Component::Normal(name) => Ok(name),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "path components must be plain names")),
    }
}

fn open_subdir(dir: &OwnedFd, name: &OsStr, create: bool) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Err(Errno::ENOENT) if create => {
            match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(error) => return Err(error.into()),
            }
            Ok(nix::fcntl::openat(dir, name, flags, Mode::empty())?)
        }
        result => Ok(result?),
    }
}

/// Opens the directory `rel` (plain names only) under `root` without following symbolic links,
/// creating missing directories when `create` is set.
pub(crate) fn open_dir(root: &Path, rel: &Path, create: bool) -> io::Result<OwnedFd> {
    let mut dir = nix::fcntl::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    for component in rel.components() {
        dir = open_subdir(&dir, name_of(component)?, create)?;
    }
    Ok(dir)
}

/// Opens the file `rel` (plain names only) under `root` without following symbolic links.
pub(crate) fn open_file(root: &Path, rel: &Path, flags: OFlag, mode: u32, create_parents: bool) -> io::Result<File> {
    let Some(name) = rel.file_name() else {
        return Err(io::Error::from_raw_os_error(nix::libc::EISDIR));
    };
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = open_dir(root, parent, create_parents)?;
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(&dir, name, flags, Mode::from_bits_truncate(mode))?;
    Ok(File::from(fd))
}

/// One entry found by [`list`], relative to the root.
pub(crate) struct Listed {
    pub rel: PathBuf,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub size: u64,
}

/// Lists the directory `rel` under `root` down to `max_depth` levels, never following symbolic
/// links.
pub(crate) fn list(root: &Path, rel: &Path, max_depth: usize) -> io::Result<Vec<Listed>> {
    let mut entries = Vec::new();
    // Directories are reopened from the root so that open descriptors stay few however wide the
    // tree is.
    let mut queue = VecDeque::from([(rel.to_path_buf(), 1usize)]);
    let mut first = true;
    while let Some((dir_rel, depth)) = queue.pop_front() {
        let fd = match open_dir(root, &dir_rel, false) {
            Ok(fd) => fd,
            Err(error) if first => return Err(error),
            // Removed or replaced since it was listed.
            Err(_) => continue,
        };
        first = false;
        let mut dir = Dir::from_fd(fd)?;
        let names: Vec<OsString> = dir
            .iter()
            .filter_map(Result::ok)
            .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_owned())
            .filter(|name| name != "." && name != "..")
            .collect();
        for name in names {
            let Ok(stat) = nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
            let entry_rel = dir_rel.join(&name);
            let is_dir = kind == SFlag::S_IFDIR;
            if is_dir && depth < max_depth {
                queue.push_back((entry_rel.clone(), depth + 1));
            }
            entries.push(Listed {
                rel: entry_rel,
                is_dir,
                is_symlink: kind == SFlag::S_IFLNK,
                size: u64::try_from(stat.st_size).unwrap_or(0),
            });
        }
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("ws");
        std::fs::create_dir_all(root.join("src")).unwrap();
        (dir, root)
    }

    #[test]
    fn relative_and_absolute_paths_inside_resolve() {
        let (_dir, root) = setup();
        assert_eq!(resolve_within(&root, Path::new("src/a.rs")).unwrap(), root.join("src/a.rs"));
        assert_eq!(resolve_within(&root, Path::new("./src/../b")).unwrap(), root.join("b"));
        assert_eq!(resolve_within(&root, &root.join("src")).unwrap(), root.join("src"));
        assert_eq!(resolve_within(&root, Path::new("")).unwrap(), root);
        assert_eq!(resolve_within(&root, Path::new("new/dir/../f")).unwrap(), root.join("new/f"));
    }

    #[test]
    fn escapes_are_refused() {
        let (dir, root) = setup();
        for path in [Path::new("../x"), Path::new("src/../../x"), Path::new("/etc/passwd"), dir.path()] {
            assert!(
                matches!(resolve_within(&root, path), Err(SandboxError::OutsideWorkspace { .. })),
                "{} was accepted",
                path.display()
            );
        }
    }

    #[test]
    fn symlinks_are_followed_and_checked() {
        let (_dir, root) = setup();
        symlink("src", root.join("inner")).unwrap();
        symlink(root.join("src"), root.join("absolute_inner")).unwrap();
        symlink("/etc", root.join("outer")).unwrap();
        symlink("../../nowhere", root.join("src/dangling_outer")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_within(&root, Path::new("inner/x")).unwrap(), root.join("src/x"));
        assert_eq!(resolve_within(&root, Path::new("absolute_inner/x")).unwrap(), root.join("src/x"));
        assert!(matches!(resolve_within(&root, Path::new("outer/passwd")), Err(SandboxError::OutsideWorkspace { .. })));
        assert!(matches!(
            resolve_within(&root, Path::new("src/dangling_outer")),
            Err(SandboxError::OutsideWorkspace { .. })
        ));
        assert!(matches!(resolve_within(&root, Path::new("loop")), Err(SandboxError::SymlinkLoop { .. })));
    }

    #[test]
    fn opening_refuses_symlinks_in_the_path() {
        let (dir, root) = setup();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        symlink(dir.path(), root.join("escape")).unwrap();
        let error = open_file(&root, Path::new("escape/secret"), OFlag::O_RDONLY, 0, false).unwrap_err();
        assert!(matches!(error.raw_os_error(), Some(nix::libc::ENOTDIR | nix::libc::ELOOP)), "{error}");
        symlink(dir.path().join("secret"), root.join("file_link")).unwrap();
        let error = open_file(&root, Path::new("file_link"), OFlag::O_RDONLY, 0, false).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ELOOP), "{error}");
    }
}
