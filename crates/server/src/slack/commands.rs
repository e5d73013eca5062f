//! Thread commands: `stop`, `status`, `dump_history`, `take_over <session>`, and for
//! admins `approve_user @a @b` and `revoke_user @a`.

use super::SlackChannel;
use rswe_protocol::{ContentBlock, EventKind, SessionId};
use rswe_slack::events::{Incoming, mentioned_users};
use std::fmt::Write as _;

/// Commands that are the whole message ("stop the flaky test" is a task, not `stop`).
const BARE_COMMANDS: [&str; 3] = ["stop", "status", "dump_history"];

/// Whether a message (without the bot's mention) is a command: a bare command alone, or
/// a command with what it acts on (people for approvals, a session for `take_over`), so
/// that "approve_user flow is broken" stays a task.
pub(super) fn is_command(text: &str) -> bool {
    let text = text.trim();
    let mut words = text.split_whitespace();
    let (Some(first), rest) = (words.next(), words.collect::<Vec<_>>().join(" ")) else {
        return false;
    };
    match first {
        _ if BARE_COMMANDS.contains(&text) => true,
        "approve_user" | "revoke_user" => !mentioned_users(&rest).is_empty(),
        "take_over" => session_argument(&rest).is_some(),
        _ => false,
    }
}

/// The session id in `take_over`'s argument: a link to the session's page, or an id as
/// rswe makes them (16 letters and digits), alone.
fn session_argument(argument: &str) -> Option<SessionId> {
    let argument = argument.trim();
    if argument.split_whitespace().count() != 1 {
        return None;
    }
    let argument = argument.trim_start_matches('<').trim_end_matches('>');
    let argument = argument.split('|').next().unwrap_or_default();
    if let Some((_, id)) = argument.trim_end_matches('/').rsplit_once("/sessions/") {
        return SessionId::parse(id);
    }
    let looks_made = argument.len() == 16 && argument.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    looks_made.then(|| SessionId::parse(argument)).flatten()
}

impl SlackChannel {
    pub(super) async fn command(&self, message: &Incoming, text: &str) {
        let mut words = text.split_whitespace();
        let command = words.next().unwrap_or_default();
        let argument = words.collect::<Vec<_>>().join(" ");
        match command {
            "approve_user" | "revoke_user" => self.approvals(message, command == "approve_user", &argument).await,
            "take_over" => self.take_over(message, &argument).await,
            _ => {
                let bound = self.inner.store.slack_thread(&message.channel, message.thread()).await.ok().flatten();
                let Some(thread) = bound else {
                    self.reply(message, "This thread has no session. Mention me with a task to start one.").await;
                    return;
                };
                match command {
                    "stop" => self.stop(message, &thread.session_id).await,
                    "status" => self.status(message, &thread.session_id).await,
                    _ => self.dump_history(message, &thread.session_id).await,
                }
            }
        }
    }

    async fn approvals(&self, message: &Incoming, approve: bool, argument: &str) {
        if !self.is_admin(&message.user) {
            self.reply(message, "Only an admin can approve or revoke people (ADMIN_USER_ID_LIST).").await;
            return;
        }
        let users: Vec<String> = mentioned_users(argument).into_iter().filter(|user| user != self.bot_user()).collect();
        if users.is_empty() {
            self.reply(message, "Name the people: `approve_user @ann @bob` or `revoke_user @ann`.").await;
            return;
        }
        let mut done = Vec::new();
        for user in users.iter().filter(|user| approve || !self.is_admin(user)) {
            let result = if approve {
                self.inner.store.slack_approve(user, &message.user).await
            } else {
                self.inner.store.slack_revoke(user).await
            };
            match result {
                Ok(_) => done.push(format!("<@{user}>")),
                Err(error) => tracing::error!(%error, "Slack: could not change an approval"),
            }
        }
        if done.is_empty() {
            let text = if approve {
                "Nobody was approved (see the server's log)."
            } else {
                "Nobody was revoked: admins stay admins (ADMIN_USER_ID_LIST)."
            };
            self.reply(message, text).await;
            return;
        }
        let verb = if approve { "Approved" } else { "Revoked" };
        let tail = if approve { ": they can use rswe now." } else { ": they can no longer use rswe." };
        self.reply(message, &format!("{verb} {}{tail}", done.join(", "))).await;
    }

    async fn stop(&self, message: &Incoming, session: &SessionId) {
        if self.inner.service.activity(session) == crate::service::Activity::Resting {
            self.reply(message, "Nothing is running in this session. Say what to do next to carry on.").await;
            return;
        }
        match self.inner.service.interrupt(session, Some(message.user.clone())).await {
            Ok(()) => self.reply(message, "Stopping. Say what to do next to carry on.").await,
            Err(error) => {
                let text = format!(":warning: Could not stop the session: {error}");
                self.reply(message, &rswe_slack::mrkdwn::escape(&text)).await;
            }
        }
    }

    async fn status(&self, message: &Incoming, session_id: &SessionId) {
        let inner = &self.inner;
        let Ok(Some(session)) = inner.store.session(session_id).await else {
            self.reply(message, "The session is gone.").await;
            return;
        };
        let mut text = format!(
            "*Session* <{}/sessions/{}|{}>: {}\n",
            inner.public_url,
            session.id,
            rswe_slack::mrkdwn::escape(session.title.as_deref().unwrap_or("untitled")),
            session.status.as_str()
        );
        let cost = if session.cost_unknown {
            format!("at least ${:.2}", session.cost_usd)
        } else {
            format!("${:.2}", session.cost_usd)
        };
        let _ = writeln!(text, "*Cost* {cost} · *model* {}", session.model);
        if let Some(tokens) = self.last_context(session_id).await {
            let _ = writeln!(text, "*Context* {tokens} tokens in the last request");
        }
        let repository = rswe_slack::mrkdwn::escape(session.repository.as_deref().unwrap_or("none"));
        let _ = writeln!(text, "*Repository* {repository}");
        let workspace = inner.service.workspace(session_id);
        let branch = tokio::task::spawn_blocking(move || current_branch(&workspace)).await.ok().flatten();
        if let Some(branch) = branch {
            let _ = writeln!(text, "*Branch* {}", rswe_slack::mrkdwn::escape(&branch));
        }
        self.reply(message, text.trim_end()).await;
    }

    /// The input tokens of the session's last model request.
    async fn last_context(&self, session: &SessionId) -> Option<u64> {
        let last = self.inner.store.session(session).await.ok()??.last_seq;
        let from = last.saturating_sub(200);
        let events = self.inner.store.events(session, from, 200).await.ok()?;
        events.iter().rev().find_map(|event| match &event.kind {
            EventKind::AssistantMessage { usage, .. } => Some(usage.total_input()),
            _ => None,
        })
    }

    async fn dump_history(&self, message: &Incoming, session: &SessionId) {
        let mut transcript = format!("# Session {session}\n\n");
        let mut after = 0;
        loop {
            let Ok(events) = self.inner.store.events(session, after, 500).await else { break };
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                write_event(&mut transcript, &event.kind);
            }
        }
        self.inner
            .delivery
            .deliverer()
            .upload_bytes(&message.channel, message.thread(), &format!("session-{session}.md"), transcript.into_bytes())
            .await;
    }

    async fn take_over(&self, message: &Incoming, argument: &str) {
        // With admins configured, only they may attach someone else's session.
        if !self.inner.settings.admins.is_empty() && !self.is_admin(&message.user) {
            self.reply(message, "Only an admin can take over a session (ADMIN_USER_ID_LIST).").await;
            return;
        }
        let Some(session_id) = session_argument(argument) else {
            self.reply(message, "Say which session: `take_over <link to the session or its id>`.").await;
            return;
        };
        let Ok(Some(session)) = self.inner.store.session(&session_id).await else {
            self.reply(message, &format!("There is no session {session_id}.")).await;
            return;
        };
        self.bind(message, &session.id, session.last_seq).await;
        self.reply(
            message,
            &format!(
                "This thread now follows <{}/sessions/{}|session {}>: what it says from now on comes here too, and \
                 replies here reach it.",
                self.inner.public_url, session.id, session.id
            ),
        )
        .await;
    }
}

/// The branch checked out in a workspace, read from `.git/HEAD` (no git command runs on
/// the agent's repository; the file is the agent's, so it is read as an untrusted one).
fn current_branch(workspace: &std::path::Path) -> Option<String> {
    let head = super::delivery::read_workspace_file(workspace, &workspace.join(".git/HEAD"), 256).ok()?;
    let head = String::from_utf8_lossy(&head);
    let head = head.trim();
    Some(match head.strip_prefix("ref: refs/heads/") {
        Some(branch) => branch.to_string(),
        None => format!("detached at {}", head.chars().take(12).collect::<String>()),
    })
}

/// One event of the transcript.
fn write_event(out: &mut String, kind: &EventKind) {
    let texts = |content: &[ContentBlock]| {
        content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.clone()),
                ContentBlock::ToolUse { name, input, .. } => Some(format!("→ `{name}` {input}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let _ = match kind {
        EventKind::UserMessage { content, author } => {
            writeln!(out, "## {}\n\n{}\n", author.as_deref().unwrap_or("Person"), texts(content))
        }
        EventKind::AssistantMessage { content, .. } => writeln!(out, "## rswe\n\n{}\n", texts(content)),
        EventKind::ToolResult { name, content, is_error, .. } => {
            let text: String = content
                .iter()
                .filter_map(|part| match part {
                    rswe_protocol::ToolResultContent::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n");
            let label = if *is_error { "error" } else { "result" };
            writeln!(out, "`{name}` {label}:\n\n```\n{}\n```\n", text.chars().take(4000).collect::<String>())
        }
        EventKind::AgentMessage { text } => writeln!(out, "## rswe (message)\n\n{text}\n"),
        EventKind::Error { message, .. } => writeln!(out, "**Error:** {message}\n"),
        EventKind::FileSent { path, .. } => writeln!(out, "*Sent file {path}*\n"),
        _ => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_session_arguments_are_recognised() {
        assert!(is_command("stop"));
        assert!(is_command(&format!("take_over https://rswe.example.com/sessions/{}", SessionId::new())));
        assert!(is_command(" status "));
        assert!(is_command("approve_user <@U1>"));
        assert!(!is_command("approve_user flow is broken"), "no one named: a task");
        assert!(!is_command("take_over the login code"), "no session named: a task");
        assert!(!is_command("stop the build from failing"), "a task that starts with a command's word");
        assert!(!is_command("please stop"));
        let id = SessionId::new();
        assert_eq!(session_argument(&format!("<https://rswe.example.com/sessions/{id}>")), Some(id.clone()));
        assert_eq!(session_argument(&format!("<https://x/sessions/{id}|session>")), Some(id.clone()));
        assert_eq!(session_argument(id.as_str()), Some(id));
        assert_eq!(session_argument("nonsense"), None);
    }
}
