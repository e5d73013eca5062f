//! Repositories, issues and pull requests as people write them: `owner/name`, web addresses, SSH remotes,
//! on github.com or a GitHub Enterprise Server.

use std::fmt;

/// A repository on a GitHub host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoRef {
    /// `github.com` or the GitHub Enterprise Server's host (lowercase, with a port when the address had one).
    pub host: String,
    pub owner: String,
    pub name: String,
}

/// An issue or a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    pub repo: RepoRef,
    pub number: u64,
    pub kind: ItemKind,
}

/// Whether an [`ItemRef`] was written as an issue or a pull request (GitHub numbers both alike, and an
/// `/issues/` address may well be a pull request; `owner/name#12` says nothing and reads as an issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Issue,
    PullRequest,
}

impl RepoRef {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// `https://host/owner/name.git`, to clone.
    pub fn https_url(&self) -> String {
        format!("https://{}/{}/{}.git", self.host, self.owner, self.name)
    }

    /// `https://host/owner/name`, to show.
    pub fn web_url(&self) -> String {
        format!("https://{}/{}/{}", self.host, self.owner, self.name)
    }

    /// Whether both name the same repository (GitHub ignores case in hosts, owners and names).
    pub fn same_as(&self, other: &RepoRef) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.owner.eq_ignore_ascii_case(&other.owner)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.owner, self.name)
    }
}

impl ItemRef {
    /// The item's web address: `https://host/owner/name/issues/12` or `…/pull/12`.
    pub fn url(&self) -> String {
        let kind = match self.kind {
            ItemKind::Issue => "issues",
            ItemKind::PullRequest => "pull",
        };
        format!("{}/{kind}/{}", self.repo.web_url(), self.number)
    }
}

impl fmt::Display for ItemRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}#{}", self.repo, self.number)
    }
}

/// Reads a repository as people write it: `owner/name`, `host/owner/name`, `https://host/owner/name(.git)(/)`,
/// `git@host:owner/name(.git)` or `ssh://git@host(:port)/owner/name(.git)`. `default_host` is the host of
/// the bare `owner/name` form. The error says what is wrong and which forms are accepted.
pub fn parse_repo(text: &str, default_host: &str) -> Result<RepoRef, String> {
    let trimmed = text.trim();
    read_repo(trimmed, default_host).map_err(|problem| {
        format!(
            "`{trimmed}` is not a GitHub repository ({problem}); write `owner/name`, `https://{default_host}/owner/name`, \
             `git@{default_host}:owner/name.git` or `ssh://git@{default_host}/owner/name.git`"
        )
    })
}

fn read_repo(text: &str, default_host: &str) -> Result<RepoRef, String> {
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let (host, path) = if let Some(rest) =
        strip_prefix_ignore_case(text, "https://").or_else(|| strip_prefix_ignore_case(text, "http://"))
    {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (without_user(authority).to_owned(), path)
    } else if let Some(rest) = strip_prefix_ignore_case(text, "ssh://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = without_user(authority);
        (host.split_once(':').map_or(host, |(host, _port)| host).to_owned(), path)
    } else if text.contains("://") {
        return Err("only https and ssh addresses are understood".to_owned());
    } else if let Some((authority, path)) = text.split_once(':').filter(|(authority, _)| authority.contains('@')) {
        (without_user(authority).to_owned(), path)
    } else {
        let segments = text.trim_end_matches('/').split('/').count();
        match text.split_once('/') {
            Some((host, path)) if segments == 3 && host.contains('.') => (host.to_owned(), path),
            _ => (default_host.to_owned(), text),
        }
    };
    let host = host.to_ascii_lowercase();
    check_host(&host)?;
    let path = path.strip_suffix('/').unwrap_or(path);
    let (owner, name) = path.split_once('/').ok_or("it has no `owner/name`")?;
    if name.contains('/') {
        return Err("it has more than `owner/name`".to_owned());
    }
    let name = name.strip_suffix(".git").unwrap_or(name);
    check_owner(owner)?;
    check_name(name)?;
    Ok(RepoRef { host, owner: owner.to_owned(), name: name.to_owned() })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn without_user(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_user, host)| host)
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let valid_name = !name.is_empty()
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-']);
    let valid_port = port.is_empty() || (port.len() <= 5 && port.bytes().all(|byte| byte.is_ascii_digit()));
    if valid_name && valid_port && !(host.contains(':') && port.is_empty()) {
        Ok(())
    } else {
        Err(format!("`{host}` is not a host name"))
    }
}

/// GitHub's rule for user and organisation names: alphanumerics and single hyphens, not at either end, at
/// most 39 characters.
fn check_owner(owner: &str) -> Result<(), String> {
    let valid = !owner.is_empty()
        && owner.len() <= 39
        && owner.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!("`{owner}` is not a GitHub owner: letters, digits and single hyphens, at most 39"))
    }
}

/// GitHub's rule for repository names: alphanumerics, `-`, `_` and `.`, at most 100 characters, not `.` or `..`.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` is not a repository name: letters, digits, `-`, `_` and `.`, at most 100"))
    }
}

/// Reads an issue or a pull request: `https://host/owner/name/issues/12` or `…/pull/34` (with anything after
/// the number: `/files`, `#issuecomment-…`, a query), or `owner/name#12` on `default_host`.
pub fn parse_item(text: &str, default_host: &str) -> Option<ItemRef> {
    let text = text.trim();
    if let Some(rest) = strip_prefix_ignore_case(text, "https://").or_else(|| strip_prefix_ignore_case(text, "http://"))
    {
        let mut segments = rest.splitn(5, '/');
        let (authority, owner, name, kind, tail) =
            (segments.next()?, segments.next()?, segments.next()?, segments.next()?, segments.next()?);
        let kind = match kind {
            "issues" => ItemKind::Issue,
            "pull" => ItemKind::PullRequest,
            _ => return None,
        };
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if !matches!(tail.as_bytes().get(digits), None | Some(b'/' | b'#' | b'?')) {
            return None;
        }
        let number = positive(&tail[..digits])?;
        let host = without_user(authority).to_ascii_lowercase();
        check_host(&host).ok()?;
        check_owner(owner).ok()?;
        check_name(name).ok()?;
        let repo = RepoRef { host, owner: owner.to_owned(), name: name.to_owned() };
        return Some(ItemRef { repo, number, kind });
    }
    let (repo, number) = text.split_once('#')?;
    let number = positive(number)?;
    let (owner, name) = repo.split_once('/')?;
    check_owner(owner).ok()?;
    check_name(name).ok()?;
    let repo = RepoRef { host: default_host.to_ascii_lowercase(), owner: owner.to_owned(), name: name.to_owned() };
    Some(ItemRef { repo, number, kind: ItemKind::Issue })
}

fn positive(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&number| number > 0)
}

/// The issue and pull request addresses in a text (a task, a comment), in order and each once, keeping only
/// those on `hosts` (compared without regard to case).
pub fn find_items(text: &str, hosts: &[&str]) -> Vec<ItemRef> {
    let mut found: Vec<ItemRef> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let candidate = &rest[at..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`' | ')' | ']' | '|' | ','))
            .unwrap_or(candidate.len());
        let url = &candidate[..end];
        let preceded_by_word = rest[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric());
        if !preceded_by_word
            && let Some(item) = parse_item(url.trim_end_matches(['.', ':', ';', '!', '?']), "")
            && hosts.iter().any(|host| host.trim().eq_ignore_ascii_case(&item.repo.host))
            && !found.iter().any(|seen| seen.number == item.number && seen.repo.same_as(&item.repo))
        {
            found.push(item);
        }
        rest = &candidate[end.max(4)..];
    }
    found
}

/// The web host of a GitHub API address: `https://api.github.com` → `github.com`,
/// `https://ghe.example.com/api/v3` → `ghe.example.com`, `https://api.acme.ghe.com` → `acme.ghe.com`.
pub fn web_host(api_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(api_url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path().trim_end_matches('/');
    let host = if path == "/api" || path.starts_with("/api/") {
        host
    } else {
        host.strip_prefix("api.").map_or(host.clone(), str::to_owned)
    };
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(host: &str, owner: &str, name: &str) -> RepoRef {
        RepoRef { host: host.into(), owner: owner.into(), name: name.into() }
    }

    #[test]
    fn reads_repositories_in_every_accepted_form() {
        let table = [
            ("octo-org/hello-world", repo("github.com", "octo-org", "hello-world")),
            ("  octo-org/hello-world  ", repo("github.com", "octo-org", "hello-world")),
            ("octo-org/hello-world.git", repo("github.com", "octo-org", "hello-world")),
            ("octo-org/hello_world.rs", repo("github.com", "octo-org", "hello_world.rs")),
            ("https://github.com/octo-org/hello-world", repo("github.com", "octo-org", "hello-world")),
            ("https://github.com/octo-org/hello-world/", repo("github.com", "octo-org", "hello-world")),
            ("https://github.com/octo-org/hello-world.git", repo("github.com", "octo-org", "hello-world")),
            ("HTTPS://GitHub.com/Octo-Org/Hello-World", repo("github.com", "Octo-Org", "Hello-World")),
            ("http://ghe.example.com/team/tool", repo("ghe.example.com", "team", "tool")),
            ("https://ghe.example.com:8443/team/tool.git", repo("ghe.example.com:8443", "team", "tool")),
            ("https://x-access-token:abc@github.com/o/r.git", repo("github.com", "o", "r")),
            ("git@github.com:octo-org/hello-world.git", repo("github.com", "octo-org", "hello-world")),
            ("git@ghe.example.com:team/tool", repo("ghe.example.com", "team", "tool")),
            ("ssh://git@github.com/octo-org/hello-world.git", repo("github.com", "octo-org", "hello-world")),
            ("ssh://git@ghe.example.com:2222/team/tool.git", repo("ghe.example.com", "team", "tool")),
            ("github.com/octo-org/hello-world", repo("github.com", "octo-org", "hello-world")),
            ("a/.github", repo("github.com", "a", ".github")),
            (&format!("{}/{}", "a".repeat(39), "b".repeat(100)), repo("github.com", &"a".repeat(39), &"b".repeat(100))),
        ];
        for (text, expected) in table {
            assert_eq!(parse_repo(text, "github.com"), Ok(expected), "{text}");
        }
        assert_eq!(parse_repo("team/tool", "ghe.example.com"), Ok(repo("ghe.example.com", "team", "tool")));
    }

    #[test]
    fn refuses_what_github_would_not_accept() {
        let refused = [
            "",
            "octo-org",
            "octo-org/",
            "/hello-world",
            "octo-org/hello-world/extra",
            "https://github.com/octo-org",
            "https://github.com/octo-org/hello-world/tree/main",
            "https://github.com/",
            "ftp://github.com/octo-org/hello-world",
            "-octo/hello-world",
            "octo-/hello-world",
            "octo--org/hello-world",
            "octo_org/hello-world",
            "octo.org/hello-world",
            "octo-org/hello world",
            "octo-org/.",
            "octo-org/..",
            "octo-org/héllo",
            "https://gith ub.com/o/r",
            "git@:o/r",
        ];
        for text in refused {
            assert!(parse_repo(text, "github.com").is_err(), "{text}");
        }
        assert!(parse_repo(&format!("{}/r", "a".repeat(40)), "github.com").is_err());
        assert!(parse_repo(&format!("o/{}", "r".repeat(101)), "github.com").is_err());
        let message = parse_repo("nonsense", "github.com").unwrap_err();
        assert!(message.contains("owner/name") && message.contains("git@github.com:"), "{message}");
    }

    #[test]
    fn names_and_addresses() {
        let repo = repo("ghe.example.com", "team", "tool");
        assert_eq!(repo.full_name(), "team/tool");
        assert_eq!(repo.https_url(), "https://ghe.example.com/team/tool.git");
        assert_eq!(repo.to_string(), "team/tool");
        let item = ItemRef { repo, number: 5, kind: ItemKind::PullRequest };
        assert_eq!(item.url(), "https://ghe.example.com/team/tool/pull/5");
        assert_eq!(item.to_string(), "team/tool#5");
    }

    #[test]
    fn reads_issues_and_pull_requests() {
        let hello = repo("github.com", "octo-org", "hello-world");
        let issue = |number| Some(ItemRef { repo: hello.clone(), number, kind: ItemKind::Issue });
        let pull = |number| Some(ItemRef { repo: hello.clone(), number, kind: ItemKind::PullRequest });
        let table = [
            ("https://github.com/octo-org/hello-world/issues/12", issue(12)),
            ("https://github.com/octo-org/hello-world/issues/12#issuecomment-99", issue(12)),
            ("https://github.com/octo-org/hello-world/pull/34", pull(34)),
            ("https://github.com/octo-org/hello-world/pull/34/files", pull(34)),
            ("https://github.com/octo-org/hello-world/pull/34?w=1", pull(34)),
            ("https://GitHub.com/octo-org/hello-world/pull/34/", pull(34)),
            ("octo-org/hello-world#12", issue(12)),
            ("https://github.com/octo-org/hello-world/pulls/34", None),
            ("https://github.com/octo-org/hello-world/issues/", None),
            ("https://github.com/octo-org/hello-world/issues/0", None),
            ("https://github.com/octo-org/hello-world/issues/12abc", None),
            ("https://github.com/octo-org/hello-world", None),
            ("https://github.com/octo-org/hello-world/commit/abc", None),
            ("octo-org/hello-world#", None),
            ("octo-org/hello-world#x", None),
            ("octo-org#12", None),
            ("#12", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_item(text, "github.com"), expected, "{text}");
        }
        let ghes = parse_item("https://ghe.example.com/team/tool/pull/3", "github.com");
        assert_eq!(ghes.map(|item| item.repo.host), Some("ghe.example.com".to_owned()));
        assert_eq!(
            parse_item("team/tool#3", "ghe.example.com").map(|item| item.repo.host).as_deref(),
            Some("ghe.example.com")
        );
    }

    #[test]
    fn finds_items_in_a_paragraph() {
        let text = "Fix the crash from https://github.com/octo-org/hello-world/issues/12 (also seen in \
                    <https://github.com/octo-org/hello-world/issues/12#issuecomment-5>). See the attempt in \
                    https://ghe.example.com/team/tool/pull/7/files, and https://gitlab.com/a/b/issues/1 and \
                    https://github.com/octo-org/hello-world/pull/12. Ignore https://github.com/o/r/wiki and \
                    [this](https://github.com/octo-org/other/pull/3).";
        let found: Vec<String> =
            find_items(text, &["github.com", "GHE.example.com"]).iter().map(ItemRef::url).collect();
        assert_eq!(
            found,
            [
                "https://github.com/octo-org/hello-world/issues/12",
                "https://ghe.example.com/team/tool/pull/7",
                "https://github.com/octo-org/other/pull/3",
            ]
        );
        assert!(find_items(text, &["example.org"]).is_empty());
        assert!(find_items("no links, only http and https://", &["github.com"]).is_empty());
        assert_eq!(find_items("ünïcode → https://github.com/a/b/pull/1…", &["github.com"]).len(), 0);
        assert_eq!(find_items("ünïcode → https://github.com/a/b/pull/1 …", &["github.com"]).len(), 1);
    }

    #[test]
    fn web_hosts_of_api_addresses() {
        let table = [
            ("https://api.github.com", Some("github.com")),
            ("https://api.github.com/", Some("github.com")),
            ("https://ghe.example.com/api/v3", Some("ghe.example.com")),
            ("https://ghe.example.com/api/v3/", Some("ghe.example.com")),
            ("https://GHE.example.com:8443/api/v3", Some("ghe.example.com:8443")),
            ("https://api.acme.ghe.com", Some("acme.ghe.com")),
            ("http://127.0.0.1:9000", Some("127.0.0.1:9000")),
            ("not a url", None),
            ("ftp://api.github.com", None),
        ];
        for (api, expected) in table {
            assert_eq!(web_host(api).as_deref(), expected, "{api}");
        }
    }
}
