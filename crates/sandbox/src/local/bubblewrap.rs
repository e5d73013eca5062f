//! Bubblewrap: detecting whether it works here and building its command line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// The filesystem and namespace layout of a sandbox.
pub(crate) struct Layout<'a> {
    pub workspace: &'a Path,
    pub home: &'a Path,
    /// The host user's home directory, covered.
    pub host_home: Option<&'a Path>,
    /// Covered: an empty tmpfs over directories, `/dev/null` over files.
    pub hidden: &'a [PathBuf],
    /// Made visible again, read-only, after the covering.
    pub readonly: &'a [PathBuf],
    pub network: bool,
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, flag: &str) {
        self.0.push(flag.into());
    }

    fn with(&mut self, flag: &str, values: &[&std::ffi::OsStr]) {
        self.0.push(flag.into());
        self.0.extend(values.iter().map(|value| value.to_os_string()));
    }

    fn cover(&mut self, path: &Path) {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => self.with("--tmpfs", &[path.as_os_str()]),
            Ok(_) => self.with("--ro-bind", &["/dev/null".as_ref(), path.as_os_str()]),
            // Nothing to hide.
            Err(_) => {}
        }
    }
}

/// The bubblewrap arguments before `-- bash -c <command>`.
pub(crate) fn arguments(layout: &Layout<'_>, env: &BTreeMap<String, String>, cwd: &Path) -> Vec<OsString> {
    let mut args = Args::default();
    args.with("--ro-bind", &["/".as_ref(), "/".as_ref()]);
    args.with("--dev", &["/dev".as_ref()]);
    args.with("--proc", &["/proc".as_ref()]);
    args.with("--tmpfs", &["/tmp".as_ref()]);
    if let Some(host_home) = layout.host_home.filter(|home| *home != Path::new("/")) {
        args.cover(host_home);
    }
    let inside_sandbox_dirs =
        |path: &Path| [layout.workspace, layout.home].iter().any(|dir| path.starts_with(dir) && path != *dir);
    for hidden in layout.hidden.iter().filter(|path| !inside_sandbox_dirs(path)) {
        args.cover(hidden);
    }
    for path in layout.readonly.iter().filter(|path| path.exists()) {
        args.with("--ro-bind", &[path.as_os_str(), path.as_os_str()]);
    }
    args.with("--bind", &[layout.workspace.as_os_str(), layout.workspace.as_os_str()]);
    args.with("--bind", &[layout.home.as_os_str(), layout.home.as_os_str()]);
    for hidden in layout.hidden.iter().filter(|path| inside_sandbox_dirs(path)) {
        args.cover(hidden);
    }
    args.flag("--unshare-pid");
    args.flag("--unshare-ipc");
    args.flag("--unshare-uts");
    if !layout.network {
        args.flag("--unshare-net");
    }
    args.flag("--die-with-parent");
    args.flag("--new-session");
    // bwrap started by root keeps every capability otherwise (enough to remount `/` read-write).
    args.with("--cap-drop", &["ALL".as_ref()]);
    args.flag("--clearenv");
    for (name, value) in env {
        args.with("--setenv", &[name.as_ref(), value.as_ref()]);
    }
    args.with("--chdir", &[cwd.as_os_str()]);
    args.0
}

/// Finds an executable on the `PATH` of this process.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate)
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
    })
}

/// Whether bubblewrap works here (probed once per process for each network setting); the path of
/// `bwrap`, or why not.
pub(crate) fn probe(network: bool) -> Result<PathBuf, String> {
    static WITH_NETWORK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static WITHOUT_NETWORK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = if network { &WITH_NETWORK } else { &WITHOUT_NETWORK };
    cell.get_or_init(|| run_probe(network)).clone()
}

fn run_probe(network: bool) -> Result<PathBuf, String> {
    let bwrap = find_in_path("bwrap").ok_or_else(|| {
        "bubblewrap (`bwrap`) is not installed or not on PATH: install it (`apt-get install bubblewrap`, \
         `dnf install bubblewrap`, `pacman -S bubblewrap`), or set the sandbox mode to \"none\" to run \
         commands without isolation"
            .to_string()
    })?;
    let true_path = find_in_path("true").unwrap_or_else(|| PathBuf::from("/bin/true"));
    let mut command = std::process::Command::new(&bwrap);
    command.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    command.args(["--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    if !network {
        command.arg("--unshare-net");
    }
    command.args(["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv", "--"]).arg(true_path);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    match command.output() {
        Err(error) => Err(format!("{} is installed but could not be run: {error}", bwrap.display())),
        Ok(output) if output.status.success() => Ok(bwrap),
        Ok(output) => Err(format!(
            "{} is installed but cannot create a sandbox here ({}: {}). Unprivileged user namespaces are \
             probably disabled: enable them (`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 and \
             later give bwrap an AppArmor profile or set `kernel.apparmor_restrict_unprivileged_userns=0`); \
             inside a container, allow the `unshare` and `mount` system calls (for instance with a seccomp \
             profile that permits them)",
            bwrap.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_cover_then_bind_then_isolate() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let workspace = data.join("s1/workspace");
        let home = data.join("s1/home");
        let inner_secret = workspace.join("secret.env");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(&inner_secret, "x").unwrap();
        let config = dir.path().join("rswe.toml");
        std::fs::write(&config, "").unwrap();
        let hidden = [data.clone(), config.clone(), inner_secret.clone(), dir.path().join("missing")];
        let layout = Layout {
            workspace: &workspace,
            home: &home,
            host_home: Some(Path::new("/root")),
            hidden: &hidden,
            readonly: &[],
            network: false,
        };
        let env = BTreeMap::from([("PATH".to_string(), "/usr/bin".to_string())]);
        let args = arguments(&layout, &env, &workspace);
        let args: Vec<String> = args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect();
        let d = |p: &Path| p.display().to_string();
        let mut expected: Vec<String> =
            ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(String::from).to_vec();
        if Path::new("/root").is_dir() {
            expected.extend(["--tmpfs".into(), "/root".into()]);
        }
        expected.extend([
            "--tmpfs".into(),
            d(&data),
            "--ro-bind".into(),
            "/dev/null".into(),
            d(&config),
            "--bind".into(),
            d(&workspace),
            d(&workspace),
            "--bind".into(),
            d(&home),
            d(&home),
            "--ro-bind".into(),
            "/dev/null".into(),
            d(&inner_secret),
        ]);
        expected.extend(
            [
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-net",
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
                "--clearenv",
                "--setenv",
                "PATH",
                "/usr/bin",
                "--chdir",
            ]
            .map(String::from),
        );
        expected.push(d(&workspace));
        assert_eq!(args, expected);
    }
}
