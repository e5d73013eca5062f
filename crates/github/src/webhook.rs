//! GitHub webhook deliveries: checking their signature and reading the events that concern rswe.
//!
//! GitHub signs every delivery with the webhook's secret (`X-Hub-Signature-256`), names the event in
//! `X-GitHub-Event` and sends the JSON payload as the body. [`verify`] checks the signature in constant
//! time; [`Delivery::parse`] turns the event and its payload into what it asks of rswe, with everything
//! else (other events and actions, bots, edits) [`Delivery::Ignored`] for a stated reason.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the delivery has no X-Hub-Signature-256 header; give the GitHub webhook a secret (GITHUB_WEBHOOK_SECRET)")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error(
        "the delivery's signature does not match its body; check GITHUB_WEBHOOK_SECRET against the webhook's secret"
    )]
    Mismatch,
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>`), in
/// constant time.
pub fn verify(secret: &str, signature: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    let signature = signature.map(str::trim).filter(|signature| !signature.is_empty()).ok_or(WebhookError::Missing)?;
    let hex = signature.strip_prefix("sha256=").ok_or(WebhookError::Malformed)?;
    let received = decode_hex(hex).ok_or(WebhookError::Malformed)?;
    let expected = digest(secret, body);
    if bool::from(expected.as_slice().ct_eq(received.as_slice())) { Ok(()) } else { Err(WebhookError::Mismatch) }
}

/// The `sha256=<hex>` signature GitHub sends for `body` (tests sign deliveries with it).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let hex: String = digest(secret, body).iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

fn digest(secret: &str, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; an all-zero digest would only refuse every delivery.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return [0; 32];
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// What a delivery asks of rswe, from the `X-GitHub-Event` header and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The `ping` GitHub sends when a webhook is created.
    Ping { zen: Option<String> },
    /// A new comment on an issue or a pull request (its conversation, not a review).
    Comment(Comment),
    /// Someone was assigned an issue.
    IssueAssigned(Assigned),
    /// A submitted review, or a new review comment on a pull request's diff.
    Review(Review),
    /// Nothing for rswe, and why (short, for logs).
    Ignored(String),
}

/// An `issue_comment` that was `created`, on an issue or a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub is_pull_request: bool,
    pub comment_id: u64,
    pub body: String,
    /// The comment author's login.
    pub author: String,
    /// `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `FIRST_TIME_CONTRIBUTOR`, `NONE`, …
    pub author_association: String,
    /// The comment's web address.
    pub html_url: String,
    /// The issue's (or pull request's) title.
    pub title: String,
    /// The issue's (or pull request's) description; empty when it has none.
    pub issue_body: String,
}

/// An `issues` delivery with action `assigned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub title: String,
    /// The issue's description; empty when it has none.
    pub body: String,
    /// Who was assigned.
    pub assignee: String,
    /// Who assigned them.
    pub sender: String,
}

/// A `pull_request_review` that was `submitted`, or a `pull_request_review_comment` that was `created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// `owner/name`.
    pub repository: String,
    /// The pull request's number.
    pub number: u64,
    /// The reviewer's login.
    pub author: String,
    /// The review's or the comment's text; empty when a review has none.
    pub body: String,
    /// The pull request's head branch.
    pub head_ref: String,
    /// The pull request's description; empty when it has none.
    pub pr_body: String,
    pub kind: ReviewKind,
}

/// Which of the two review events a [`Review`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewKind {
    /// A whole review: `state` is `approved`, `changes_requested` or `commented` (as GitHub writes it).
    Submitted { review_id: u64, state: String },
    /// One comment on the diff.
    DiffComment { comment_id: u64, path: String, line: Option<u64>, in_reply_to_id: Option<u64> },
}

impl Delivery {
    /// Reads a delivery: `event` is the `X-GitHub-Event` header, `body` the raw JSON payload. Never fails:
    /// anything unexpected, including missing fields, is [`Delivery::Ignored`].
    pub fn parse(event: &str, body: &[u8]) -> Delivery {
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return ignored("the body is not JSON");
        };
        Self::from_json(event, &payload)
    }

    /// [`Delivery::parse`] on an already-decoded payload.
    pub fn from_json(event: &str, payload: &Value) -> Delivery {
        let action = text(payload, &["action"]).unwrap_or_default();
        let result = match event.trim() {
            "ping" => Ok(Delivery::Ping { zen: text(payload, &["zen"]).map(str::to_owned) }),
            "issue_comment" if action == "created" => comment(payload),
            "issues" if action == "assigned" => assigned(payload),
            "pull_request_review" if action == "submitted" => review(payload),
            "pull_request_review_comment" if action == "created" => review_comment(payload),
            "issue_comment" | "issues" | "pull_request_review" | "pull_request_review_comment" => {
                Err(format!("{event} action `{action}`"))
            }
            "" => Err("no X-GitHub-Event header".to_owned()),
            other => Err(format!("event `{other}`")),
        };
        result.unwrap_or_else(Delivery::Ignored)
    }
}

fn ignored(reason: &str) -> Delivery {
    Delivery::Ignored(reason.to_owned())
}

fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path).and_then(Value::as_str)
}

fn required_text(value: &Value, path: &[&str]) -> Result<String, String> {
    text(value, path).map(str::to_owned).ok_or_else(|| format!("no `{}`", path.join(".")))
}

fn optional_text(value: &Value, path: &[&str]) -> String {
    text(value, path).unwrap_or_default().to_owned()
}

fn required_number(value: &Value, path: &[&str]) -> Result<u64, String> {
    get(value, path).and_then(Value::as_u64).ok_or_else(|| format!("no `{}`", path.join(".")))
}

fn refuse_bot(user: Option<&Value>, what: &str) -> Result<(), String> {
    match user.and_then(|user| text(user, &["type"])) {
        Some("Bot") => Err(format!("{what} by a bot")),
        _ => Ok(()),
    }
}

fn comment(payload: &Value) -> Result<Delivery, String> {
    refuse_bot(get(payload, &["comment", "user"]), "comment")?;
    Ok(Delivery::Comment(Comment {
        repository: required_text(payload, &["repository", "full_name"])?,
        number: required_number(payload, &["issue", "number"])?,
        is_pull_request: get(payload, &["issue", "pull_request"]).is_some_and(|value| !value.is_null()),
        comment_id: required_number(payload, &["comment", "id"])?,
        body: optional_text(payload, &["comment", "body"]),
        author: required_text(payload, &["comment", "user", "login"])?,
        author_association: optional_text(payload, &["comment", "author_association"]),
        html_url: optional_text(payload, &["comment", "html_url"]),
        title: optional_text(payload, &["issue", "title"]),
        issue_body: optional_text(payload, &["issue", "body"]),
    }))
}

fn assigned(payload: &Value) -> Result<Delivery, String> {
    Ok(Delivery::IssueAssigned(Assigned {
        repository: required_text(payload, &["repository", "full_name"])?,
        number: required_number(payload, &["issue", "number"])?,
        title: optional_text(payload, &["issue", "title"]),
        body: optional_text(payload, &["issue", "body"]),
        assignee: required_text(payload, &["assignee", "login"])?,
        sender: optional_text(payload, &["sender", "login"]),
    }))
}

fn review(payload: &Value) -> Result<Delivery, String> {
    refuse_bot(get(payload, &["review", "user"]), "review")?;
    Ok(Delivery::Review(Review {
        repository: required_text(payload, &["repository", "full_name"])?,
        number: required_number(payload, &["pull_request", "number"])?,
        author: required_text(payload, &["review", "user", "login"])?,
        body: optional_text(payload, &["review", "body"]),
        head_ref: optional_text(payload, &["pull_request", "head", "ref"]),
        pr_body: optional_text(payload, &["pull_request", "body"]),
        kind: ReviewKind::Submitted {
            review_id: required_number(payload, &["review", "id"])?,
            state: optional_text(payload, &["review", "state"]),
        },
    }))
}

fn review_comment(payload: &Value) -> Result<Delivery, String> {
    refuse_bot(get(payload, &["comment", "user"]), "review comment")?;
    Ok(Delivery::Review(Review {
        repository: required_text(payload, &["repository", "full_name"])?,
        number: required_number(payload, &["pull_request", "number"])?,
        author: required_text(payload, &["comment", "user", "login"])?,
        body: optional_text(payload, &["comment", "body"]),
        head_ref: optional_text(payload, &["pull_request", "head", "ref"]),
        pr_body: optional_text(payload, &["pull_request", "body"]),
        kind: ReviewKind::DiffComment {
            comment_id: required_number(payload, &["comment", "id"])?,
            path: optional_text(payload, &["comment", "path"]),
            line: get(payload, &["comment", "line"]).and_then(Value::as_u64),
            in_reply_to_id: get(payload, &["comment", "in_reply_to_id"]).and_then(Value::as_u64),
        },
    }))
}

/// Whether a comment calls on rswe: `trigger` (such as `@rswe`) appears as a word, in any case, outside
/// code (`` `inline` `` spans, fenced blocks) and quoted (`>`) lines. `@rswe-bot`, `a@rswe.dev` and
/// `@rswe/team` don't count.
pub fn mentions(body: &str, trigger: &str) -> bool {
    let trigger = trigger.trim();
    if trigger.is_empty() {
        return false;
    }
    let mut fence: Option<(u8, usize)> = None;
    for line in body.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let run = |mark: u8| trimmed.bytes().take_while(|&byte| byte == mark).count();
        if let Some((mark, length)) = fence {
            // A closing fence: the same character, at least as long, nothing after it.
            let closing = run(mark);
            if closing >= length && trimmed[closing..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent <= 3 {
            let (ticks, tildes) = (run(b'`'), run(b'~'));
            if ticks >= 3 && !trimmed[ticks..].contains('`') {
                fence = Some((b'`', ticks));
                continue;
            }
            if tildes >= 3 {
                fence = Some((b'~', tildes));
                continue;
            }
        }
        if trimmed.starts_with('>') {
            continue;
        }
        if without_code_spans(line).iter().any(|part| contains_word(part, trigger)) {
            return true;
        }
    }
    false
}

/// The parts of a line outside `` `code` `` spans (a backtick run closed by a run of the same length; an
/// unclosed run is plain text).
fn without_code_spans(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        if bytes[at] != b'`' {
            at += 1;
            continue;
        }
        let length = bytes[at..].iter().take_while(|&&byte| byte == b'`').count();
        let mut search = at + length;
        let mut close = None;
        while search < bytes.len() {
            if bytes[search] == b'`' {
                let run = bytes[search..].iter().take_while(|&&byte| byte == b'`').count();
                if run == length {
                    close = Some(search + run);
                    break;
                }
                search += run;
            } else {
                search += 1;
            }
        }
        match close {
            Some(end) => {
                parts.push(&line[start..at]);
                start = end;
                at = end;
            }
            None => at += length,
        }
    }
    parts.push(&line[start..]);
    parts
}

fn contains_word(text: &str, word: &str) -> bool {
    let (haystack, needle) = (text.as_bytes(), word.as_bytes());
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    (0..=haystack.len().saturating_sub(needle.len())).any(|at| {
        haystack.len() >= at + needle.len()
            && text.is_char_boundary(at)
            && text.is_char_boundary(at + needle.len())
            && haystack[at..at + needle.len()].eq_ignore_ascii_case(needle)
            && !text[..at].chars().next_back().is_some_and(|c| is_word(c) || c == '@' || c == '/')
            && !text[at + needle.len()..].chars().next().is_some_and(|c| is_word(c) || c == '@' || c == '/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(event: &str, payload: &Value) -> Delivery {
        Delivery::parse(event, payload.to_string().as_bytes())
    }

    #[test]
    fn verifies_githubs_documented_example() {
        let secret = "It's a Secret to Everybody";
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), signature);
        assert_eq!(verify(secret, Some(signature), b"Hello, World!"), Ok(()));
        assert_eq!(
            verify(secret, Some(&signature.to_uppercase().replace("SHA256", "sha256")), b"Hello, World!"),
            Ok(())
        );
        assert_eq!(verify(secret, Some(&format!(" {signature}\n")), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn refuses_tampering_and_bad_headers() {
        let secret = "It's a Secret to Everybody";
        let signature = sign(secret, b"Hello, World!");
        assert_eq!(verify(secret, Some(&signature), b"Hello, World?"), Err(WebhookError::Mismatch));
        assert_eq!(verify("another secret", Some(&signature), b"Hello, World!"), Err(WebhookError::Mismatch));
        assert_eq!(verify(secret, None, b"Hello, World!"), Err(WebhookError::Missing));
        assert_eq!(verify(secret, Some("  "), b"Hello, World!"), Err(WebhookError::Missing));
        let bad = [
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17aa",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=",
            "sha256=é57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        ];
        for header in bad {
            assert_eq!(verify(secret, Some(header), b"Hello, World!"), Err(WebhookError::Malformed), "{header}");
        }
        assert!(WebhookError::Mismatch.to_string().contains("GITHUB_WEBHOOK_SECRET"));
    }

    fn repository() -> Value {
        json!({"id": 1296269, "name": "hello-world", "full_name": "octo-org/hello-world", "private": false,
               "owner": {"login": "octo-org", "type": "Organization"}})
    }

    fn issue_comment(action: &str, user_type: &str, pull_request: bool) -> Value {
        let mut issue = json!({
            "number": 42, "title": "Crash on empty input", "body": "Steps: run it with nothing.",
            "state": "open", "user": {"login": "reporter", "type": "User"},
        });
        if pull_request {
            issue["pull_request"] = json!({"url": "https://api.github.com/repos/octo-org/hello-world/pulls/42",
                                           "html_url": "https://github.com/octo-org/hello-world/pull/42"});
        }
        json!({
            "action": action,
            "issue": issue,
            "comment": {
                "id": 1234567, "body": "@rswe please fix this",
                "html_url": "https://github.com/octo-org/hello-world/issues/42#issuecomment-1234567",
                "user": {"login": "octocat", "type": user_type}, "author_association": "MEMBER",
            },
            "repository": repository(),
            "sender": {"login": "octocat", "type": user_type},
        })
    }

    #[test]
    fn reads_comments_on_issues_and_pull_requests() {
        let Delivery::Comment(comment) = parse("issue_comment", &issue_comment("created", "User", false)) else {
            panic!("not a comment");
        };
        assert_eq!(
            comment,
            Comment {
                repository: "octo-org/hello-world".into(),
                number: 42,
                is_pull_request: false,
                comment_id: 1234567,
                body: "@rswe please fix this".into(),
                author: "octocat".into(),
                author_association: "MEMBER".into(),
                html_url: "https://github.com/octo-org/hello-world/issues/42#issuecomment-1234567".into(),
                title: "Crash on empty input".into(),
                issue_body: "Steps: run it with nothing.".into(),
            }
        );
        let Delivery::Comment(comment) = parse("issue_comment", &issue_comment("created", "User", true)) else {
            panic!("not a comment");
        };
        assert!(comment.is_pull_request);

        let mut no_body = issue_comment("created", "User", false);
        no_body["issue"]["body"] = Value::Null;
        let Delivery::Comment(comment) = parse("issue_comment", &no_body) else { panic!("not a comment") };
        assert_eq!(comment.issue_body, "");
    }

    #[test]
    fn ignores_bots_edits_deletions_and_incomplete_payloads() {
        for (event, payload) in [
            ("issue_comment", issue_comment("created", "Bot", false)),
            ("issue_comment", issue_comment("edited", "User", false)),
            ("issue_comment", issue_comment("deleted", "User", true)),
            ("issues", json!({"action": "opened", "issue": {"number": 1}, "repository": repository()})),
            ("push", json!({"ref": "refs/heads/main", "repository": repository()})),
            ("issue_comment", json!({"action": "created"})),
            ("issue_comment", json!({"action": "created", "comment": {"id": "nope"}, "issue": {"number": -1}})),
            ("pull_request_review", json!({"action": "dismissed"})),
            ("", json!({})),
        ] {
            assert!(matches!(parse(event, &payload), Delivery::Ignored(_)), "{event} {payload}");
        }
        let Delivery::Ignored(why) = parse("issue_comment", &issue_comment("created", "Bot", false)) else {
            panic!("a bot's comment was read");
        };
        assert!(why.contains("bot"), "{why}");
        assert!(matches!(Delivery::parse("issue_comment", b"not json"), Delivery::Ignored(_)));
        assert!(matches!(Delivery::parse("issue_comment", b"[1, 2]"), Delivery::Ignored(_)));
    }

    #[test]
    fn reads_pings() {
        let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository"}});
        assert_eq!(parse("ping", &ping), Delivery::Ping { zen: Some("Keep it logically awesome.".into()) });
        assert_eq!(parse("ping", &json!({})), Delivery::Ping { zen: None });
    }

    #[test]
    fn reads_assignments() {
        let payload = json!({
            "action": "assigned",
            "issue": {"number": 7, "title": "Add a --dry-run flag", "body": null, "assignees": [{"login": "rswe-bot"}]},
            "assignee": {"login": "rswe-bot", "type": "Bot"},
            "repository": repository(),
            "sender": {"login": "maintainer", "type": "User"},
        });
        assert_eq!(
            parse("issues", &payload),
            Delivery::IssueAssigned(Assigned {
                repository: "octo-org/hello-world".into(),
                number: 7,
                title: "Add a --dry-run flag".into(),
                body: String::new(),
                assignee: "rswe-bot".into(),
                sender: "maintainer".into(),
            })
        );
        let mut unassigned = payload.clone();
        unassigned["action"] = json!("unassigned");
        assert!(matches!(parse("issues", &unassigned), Delivery::Ignored(_)));
        let mut no_assignee = payload;
        no_assignee.as_object_mut().map(|object| object.remove("assignee"));
        assert!(matches!(parse("issues", &no_assignee), Delivery::Ignored(_)));
    }

    fn pull_request() -> Value {
        json!({"number": 12, "title": "Fix the crash", "body": "Fixes #42\n\n<!-- rswe-session: abc -->",
               "head": {"ref": "rswe/fix-crash", "sha": "deadbeef"}, "base": {"ref": "main"}})
    }

    #[test]
    fn reads_submitted_reviews() {
        let payload = json!({
            "action": "submitted",
            "review": {"id": 80, "body": "Please add a test.", "state": "changes_requested",
                       "user": {"login": "reviewer", "type": "User"}, "author_association": "OWNER"},
            "pull_request": pull_request(),
            "repository": repository(),
            "sender": {"login": "reviewer", "type": "User"},
        });
        assert_eq!(
            parse("pull_request_review", &payload),
            Delivery::Review(Review {
                repository: "octo-org/hello-world".into(),
                number: 12,
                author: "reviewer".into(),
                body: "Please add a test.".into(),
                head_ref: "rswe/fix-crash".into(),
                pr_body: "Fixes #42\n\n<!-- rswe-session: abc -->".into(),
                kind: ReviewKind::Submitted { review_id: 80, state: "changes_requested".into() },
            })
        );
        let mut bot = payload;
        bot["review"]["user"]["type"] = json!("Bot");
        assert!(matches!(parse("pull_request_review", &bot), Delivery::Ignored(_)));
    }

    #[test]
    fn reads_review_comments() {
        let payload = json!({
            "action": "created",
            "comment": {"id": 90, "body": "Off by one here.", "path": "src/main.rs", "line": 17,
                        "in_reply_to_id": 89, "user": {"login": "reviewer", "type": "User"}},
            "pull_request": pull_request(),
            "repository": repository(),
        });
        let Delivery::Review(review) = parse("pull_request_review_comment", &payload) else { panic!("not a review") };
        assert_eq!(review.body, "Off by one here.");
        assert_eq!(review.number, 12);
        assert_eq!(review.head_ref, "rswe/fix-crash");
        assert_eq!(
            review.kind,
            ReviewKind::DiffComment {
                comment_id: 90,
                path: "src/main.rs".into(),
                line: Some(17),
                in_reply_to_id: Some(89)
            }
        );
        let mut outdated = payload.clone();
        outdated["comment"]["line"] = Value::Null;
        outdated["comment"].as_object_mut().map(|object| object.remove("in_reply_to_id"));
        let Delivery::Review(review) = parse("pull_request_review_comment", &outdated) else { panic!("not a review") };
        assert!(matches!(review.kind, ReviewKind::DiffComment { line: None, in_reply_to_id: None, .. }));
        let mut edited = payload;
        edited["action"] = json!("edited");
        assert!(matches!(parse("pull_request_review_comment", &edited), Delivery::Ignored(_)));
    }

    #[test]
    fn finds_mentions() {
        let table = [
            ("@rswe fix this", true),
            ("hey @RSWE, fix this", true),
            ("(@rswe)", true),
            ("thanks @rswe.", true),
            ("first line\n  @rswe: second", true),
            ("@rswe-bot fix this", false),
            ("@rswe_bot fix this", false),
            ("@rswer fix this", false),
            ("mail me at me@rswe.dev", false),
            ("@org/@rswe", false),
            ("@rswe/team", false),
            ("run `@rswe fix` to ask it", false),
            ("run ``a ` @rswe`` to ask it", false),
            ("an unclosed `@rswe tick", true),
            ("`code` then @rswe", true),
            ("> @rswe fix this\nI agree", false),
            ("   > nested > @rswe", false),
            ("```\n@rswe in a fence\n```", false),
            ("~~~text\n@rswe in a fence\n~~~\n", false),
            ("````\n```\n@rswe still fenced\n````", false),
            ("```\nfenced\n```\nafter: @rswe", true),
            ("``` unclosed fence\n@rswe", false),
            ("nothing here", false),
            ("", false),
            ("été @rswe ünïcode", true),
            ("é@rswe", false),
        ];
        for (body, expected) in table {
            assert_eq!(mentions(body, "@rswe"), expected, "{body:?}");
        }
        assert!(mentions("@rswe-dev do it", "@rswe-dev"));
        assert!(!mentions("anything", ""));
    }
}
