use std::ffi::OsString;
use std::path::PathBuf;

/// The directory for rswe's data (the database, session workspaces):
///
/// 1. `$RSWE_DATA_DIR`, when set and not empty;
/// 2. else `$XDG_DATA_HOME/rswe`, when `XDG_DATA_HOME` is an absolute path;
/// 3. else `$HOME/.local/share/rswe`;
/// 4. else `.rswe` in the current directory (no home directory is known).
pub fn data_dir() -> PathBuf {
    data_dir_from(|name| std::env::var_os(name))
}

fn data_dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name| var(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("RSWE_DATA_DIR") {
        return dir;
    }
    // The XDG spec says relative paths are invalid and must be ignored.
    if let Some(dir) = set("XDG_DATA_HOME").filter(|dir| dir.is_absolute()) {
        return dir.join("rswe");
    }
    match set("HOME") {
        Some(home) => home.join(".local").join("share").join("rswe"),
        None => PathBuf::from(".rswe"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(vars: &[(&str, &str)]) -> PathBuf {
        data_dir_from(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| OsString::from(value)))
    }

    #[test]
    fn the_data_dir_follows_the_documented_order() {
        let all = [("RSWE_DATA_DIR", "/srv/rswe"), ("XDG_DATA_HOME", "/x/data"), ("HOME", "/home/a")];
        assert_eq!(dir(&all), PathBuf::from("/srv/rswe"));
        assert_eq!(dir(&all[1..]), PathBuf::from("/x/data/rswe"));
        assert_eq!(dir(&all[2..]), PathBuf::from("/home/a/.local/share/rswe"));
        assert_eq!(dir(&[("RSWE_DATA_DIR", ""), ("XDG_DATA_HOME", "relative"), ("HOME", "/home/a")]), dir(&all[2..]));
        assert_eq!(dir(&[]), PathBuf::from(".rswe"));
    }
}
