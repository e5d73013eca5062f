//! GitHub tokens kept out of anything shown or stored: logs, tool output, comments, transcripts.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// The prefixes of GitHub's classic personal, OAuth, user-to-server, server-to-server (installation) and
/// refresh tokens, each followed by at least [`MIN_TOKEN_BODY`] base62 characters.
const TOKEN_PREFIXES: [&str; 5] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"];
const MIN_TOKEN_BODY: usize = 36;
/// Fine-grained personal access tokens: `github_pat_` and at least [`MIN_PAT_BODY`] of `[A-Za-z0-9_]`.
const PAT_PREFIX: &str = "github_pat_";
const MIN_PAT_BODY: usize = 22;
/// Known secrets shorter than this are not looked for (they would match ordinary words).
const MIN_KNOWN: usize = 8;

/// Replaces GitHub tokens in `text` with `[redacted]`: classic and fine-grained personal access tokens and
/// app tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), the password of credentials in URLs
/// (`https://x-access-token:TOKEN@host` → `https://x-access-token:[redacted]@host`), and every occurrence of
/// the `known` secrets of 8 characters or more.
pub fn redact(text: &str, known: &[&str]) -> String {
    let spans = secret_spans(text, known);
    if spans.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether `text` holds something [`redact`] would remove.
pub fn contains_secret(text: &str, known: &[&str]) -> bool {
    !secret_spans(text, known).is_empty()
}

/// The byte ranges to redact, sorted and merged; every bound is a character boundary.
fn secret_spans(text: &str, known: &[&str]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for secret in known {
        if secret.chars().count() >= MIN_KNOWN {
            spans.extend(text.match_indices(secret).map(|(at, found)| (at, at + found.len())));
        }
    }
    let bytes = text.as_bytes();
    let run = |from: usize, allowed: fn(&u8) -> bool| bytes[from..].iter().take_while(|byte| allowed(byte)).count();
    for prefix in TOKEN_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let body = run(at + prefix.len(), u8::is_ascii_alphanumeric);
            if body >= MIN_TOKEN_BODY {
                spans.push((at, at + prefix.len() + body));
            }
        }
    }
    for (at, _) in text.match_indices(PAT_PREFIX) {
        let body = run(at + PAT_PREFIX.len(), |byte| byte.is_ascii_alphanumeric() || *byte == b'_');
        if body >= MIN_PAT_BODY {
            spans.push((at, at + PAT_PREFIX.len() + body));
        }
    }
    spans.extend(url_passwords(text));
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The passwords of `scheme://user:password@host` credentials (any scheme: git remotes, proxies, databases).
fn url_passwords(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for (at, separator) in text.match_indices("://") {
        let has_scheme = text[..at].bytes().next_back().is_some_and(|byte| byte.is_ascii_alphabetic());
        if !has_scheme {
            continue;
        }
        let start = at + separator.len();
        let rest = &text[start..];
        let authority_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let Some(user_end) = authority.rfind('@') else { continue };
        let Some(colon) = authority[..user_end].find(':') else { continue };
        if colon + 1 < user_end {
            spans.push((start + colon + 1, start + user_end));
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY36: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";

    #[test]
    fn redacts_every_token_form() {
        for prefix in TOKEN_PREFIXES {
            let token = format!("{prefix}{BODY36}0123");
            let text = format!("token={token} done");
            assert_eq!(redact(&text, &[]), "token=[redacted] done", "{prefix}");
            assert!(contains_secret(&text, &[]));
            assert_eq!(redact(&format!("{prefix}{BODY36}"), &[]), "[redacted]", "exactly 36 after {prefix}");
        }
        let fine_grained = format!("github_pat_11ABCDEFG0123456789abc_{BODY36}{BODY36}");
        assert_eq!(redact(&format!("GH_TOKEN=\"{fine_grained}\""), &[]), "GH_TOKEN=\"[redacted]\"");
        assert_eq!(redact("github_pat_1234567890abcdefghijkl", &[]), "[redacted]");
        let two = format!("ghs_{BODY36}\nghp_{BODY36}");
        assert_eq!(redact(&two, &[]), "[redacted]\n[redacted]");
    }

    #[test]
    fn redacts_url_passwords_and_keeps_users() {
        let table = [
            (
                "git remote: https://x-access-token:ghs_short@github.com/o/r.git".to_owned(),
                "git remote: https://x-access-token:[redacted]@github.com/o/r.git".to_owned(),
            ),
            (
                "https://octocat:hunter2@ghe.example.com".to_owned(),
                "https://octocat:[redacted]@ghe.example.com".to_owned(),
            ),
            (
                format!("fatal: 'https://bot:{BODY36}@github.com/o/r' not found"),
                "fatal: 'https://bot:[redacted]@github.com/o/r' not found".to_owned(),
            ),
            ("https://u:p@ss:w@host/x".to_owned(), "https://u:[redacted]@host/x".to_owned()),
            (
                format!("https://x-access-token:ghp_{BODY36}@github.com"),
                "https://x-access-token:[redacted]@github.com".to_owned(),
            ),
        ];
        for (text, expected) in table {
            assert_eq!(redact(&text, &[]), expected);
        }
        for unchanged in [
            "ssh://git@github.com/o/r.git",
            "git@github.com:o/r.git",
            "https://user@github.com/o/r",
            "https://github.com/o/r?a=b:c@d",
            "https://x:@host/",
            "see https://github.com/a/b/pull/1 : done @ noon",
            "://a:b@c",
        ] {
            assert_eq!(redact(unchanged, &[]), unchanged);
            assert!(!contains_secret(unchanged, &[]), "{unchanged}");
        }
    }

    #[test]
    fn redacts_known_secrets() {
        assert_eq!(
            redact("key s3cr3t-value and s3cr3t-value again", &["s3cr3t-value"]),
            "key [redacted] and [redacted] again"
        );
        assert_eq!(redact("overlapping abcdefghij", &["abcdefgh", "defghij0", "cdefghij"]), "overlapping [redacted]");
        assert_eq!(redact("short pass1 stays", &["pass1", ""]), "short pass1 stays");
        assert!(contains_secret("with s3cr3t-value", &["s3cr3t-value"]));
        assert!(!contains_secret("with s3cr3t-valu", &["s3cr3t-value"]));
    }

    #[test]
    fn leaves_text_without_secrets_alone() {
        for text in [
            "",
            "plain words",
            "ghp_short and gho_ and ghs_abc",
            "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHI",
            "github_pat_tooshort",
            "github_pat_123456789012345678901",
            "the ghp_ prefix marks classic tokens",
            "git clone https://github.com/o/r.git",
            "ünïcode ✓ 日本語",
        ] {
            assert_eq!(redact(text, &[]), text);
            assert!(!contains_secret(text, &[]), "{text}");
        }
    }

    #[test]
    fn keeps_multi_byte_text_around_tokens() {
        let text = format!("clé→ghp_{BODY36}é日本 et 🔑https://u:mötdepässe@hôte/x «s3cr3t-välue»");
        assert_eq!(
            redact(&text, &["s3cr3t-välue"]),
            "clé→[redacted]é日本 et 🔑https://u:[redacted]@hôte/x «[redacted]»"
        );
    }
}
