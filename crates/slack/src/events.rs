//! What Slack sends: an Events API callback (the same JSON arrives over Socket Mode), read
//! into the messages rswe acts on.

use serde_json::Value;

/// How a message reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The bot was mentioned in a channel.
    Mention,
    /// A direct message to the bot.
    Direct,
    /// A message in a channel without a mention (it matters in a thread bound to a session).
    Channel,
}

/// A file a person attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingFile {
    pub name: String,
    pub mimetype: String,
    /// Downloaded with the bot token.
    pub url_private: String,
    pub size: u64,
}

/// A person's message for the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub kind: Kind,
    pub channel: String,
    pub ts: String,
    /// The thread it was posted in; `None` for a top-level message.
    pub thread_ts: Option<String>,
    pub user: String,
    /// The workspace the person belongs to (`user_team`), when Slack says: in a shared
    /// (Slack Connect) channel it may be another organisation's.
    pub user_team: Option<String>,
    /// As Slack sent it (mentions as `<@U123>`).
    pub text: String,
    pub files: Vec<IncomingFile>,
}

impl Incoming {
    /// The message's identity: one message is handled once, however often it arrives.
    pub fn key(&self) -> String {
        format!("{}/{}", self.channel, self.ts)
    }

    /// The thread a session for this message lives in: its own thread, or the one it
    /// starts.
    pub fn thread(&self) -> &str {
        self.thread_ts.as_deref().unwrap_or(&self.ts)
    }

    /// The text without the mention of the bot, trimmed.
    pub fn text_for(&self, bot_user: &str) -> String {
        self.text.replace(&format!("<@{bot_user}>"), " ").trim().to_string()
    }
}

/// What a callback asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// Slack checks the request URL: answer with the challenge.
    UrlVerification {
        challenge: String,
    },
    Message(Incoming),
    /// Something rswe does not act on (the bot's own messages, edits, other events).
    Ignored(String),
}

/// Reads a callback's JSON. `bot_user` is the bot's user id: its own messages are
/// ignored, and a channel message that mentions it counts as a mention.
pub fn parse_callback(body: &Value, bot_user: &str) -> Callback {
    let string = |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map(str::to_string);
    match body.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            return Callback::UrlVerification { challenge: string(body, "challenge").unwrap_or_default() };
        }
        Some("event_callback") => {}
        other => return Callback::Ignored(format!("callback type {other:?}")),
    }
    let Some(event) = body.get("event") else {
        return Callback::Ignored("no event".into());
    };
    let event_type = event.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(event_type, "app_mention" | "message") {
        return Callback::Ignored(format!("event type {event_type}"));
    }
    // Edits, deletions, joins and bots' messages are not people talking to rswe.
    if let Some(subtype) = event.get("subtype").and_then(Value::as_str)
        && subtype != "file_share"
    {
        return Callback::Ignored(format!("message subtype {subtype}"));
    }
    let user = string(event, "user").unwrap_or_default();
    if event.get("bot_id").is_some() || user.is_empty() || user == bot_user {
        return Callback::Ignored("a bot's message".into());
    }
    let (Some(channel), Some(ts)) = (string(event, "channel"), string(event, "ts")) else {
        return Callback::Ignored("a message without channel or ts".into());
    };
    let text = string(event, "text").unwrap_or_default();
    let kind = if event.get("channel_type").and_then(Value::as_str) == Some("im") {
        Kind::Direct
    } else if event_type == "app_mention" || text.contains(&format!("<@{bot_user}>")) {
        Kind::Mention
    } else {
        Kind::Channel
    };
    let files = event
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|file| {
                    Some(IncomingFile {
                        name: string(file, "name").unwrap_or_else(|| "file".into()),
                        mimetype: string(file, "mimetype").unwrap_or_else(|| "application/octet-stream".into()),
                        url_private: string(file, "url_private_download").or_else(|| string(file, "url_private"))?,
                        size: file.get("size").and_then(Value::as_u64).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let user_team = string(event, "user_team").or_else(|| string(event, "team"));
    Callback::Message(Incoming {
        kind,
        channel,
        ts,
        thread_ts: string(event, "thread_ts"),
        user,
        user_team,
        text,
        files,
    })
}

/// The user ids mentioned in a text (`<@U123>` or `<@U123|name>`), in order.
pub fn mentioned_users(text: &str) -> Vec<String> {
    let mut users = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else { break };
        let id = after[..end].split('|').next().unwrap_or_default();
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
            users.push(id.to_string());
        }
        rest = &after[end + 1..];
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn callback(event: Value) -> Callback {
        parse_callback(&json!({"type": "event_callback", "event_id": "Ev1", "event": event}), "UBOT")
    }

    #[test]
    fn mentions_direct_messages_and_thread_replies_are_read() {
        let mention = callback(json!({"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.1",
            "text": "<@UBOT> fix the build", "files": [{"name": "log.txt", "mimetype": "text/plain",
            "url_private": "https://files.slack.com/x", "size": 12}]}));
        let Callback::Message(message) = mention else { panic!("{mention:?}") };
        assert_eq!(message.kind, Kind::Mention);
        assert_eq!((message.key(), message.thread()), ("C1/1.1".to_string(), "1.1"));
        assert_eq!(message.text_for("UBOT"), "fix the build");
        assert_eq!(message.files[0].name, "log.txt");
        assert_eq!(message.user_team, None);
        let shared = callback(json!({"type": "app_mention", "user": "U7", "user_team": "TOTHER", "channel": "C1",
            "ts": "1.2", "text": "<@UBOT> hi"}));
        assert!(matches!(shared, Callback::Message(Incoming { user_team: Some(ref team), .. }) if team == "TOTHER"));

        let reply = callback(json!({"type": "message", "user": "U2", "channel": "C1", "ts": "1.5",
            "thread_ts": "1.1", "text": "also the docs"}));
        let Callback::Message(reply) = reply else { panic!() };
        assert_eq!((reply.kind, reply.thread()), (Kind::Channel, "1.1"));

        let direct = callback(json!({"type": "message", "channel_type": "im", "user": "U2", "channel": "D1",
            "ts": "2.1", "text": "hi"}));
        assert!(matches!(direct, Callback::Message(Incoming { kind: Kind::Direct, .. })));

        let top = callback(json!({"type": "message", "user": "U2", "channel": "C1", "ts": "3.1",
            "text": "hey <@UBOT> look"}));
        assert!(
            matches!(top, Callback::Message(Incoming { kind: Kind::Mention, .. })),
            "the message event of a mention"
        );
    }

    #[test]
    fn bots_edits_and_other_events_are_ignored() {
        for event in [
            json!({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1"}),
            json!({"type": "message", "bot_id": "B1", "user": "U9", "channel": "C1", "ts": "1", "text": "x"}),
            json!({"type": "message", "user": "UBOT", "channel": "C1", "ts": "1", "text": "my own"}),
            json!({"type": "reaction_added", "user": "U1"}),
        ] {
            assert!(matches!(callback(event.clone()), Callback::Ignored(_)), "{event}");
        }
        let verification = parse_callback(&json!({"type": "url_verification", "challenge": "abc"}), "UBOT");
        assert_eq!(verification, Callback::UrlVerification { challenge: "abc".into() });
    }

    #[test]
    fn mentioned_users_are_found() {
        assert_eq!(mentioned_users("<@UBOT> approve_user <@U1> <@U2|ann> <@bad id>"), ["UBOT", "U1", "U2"]);
        assert!(mentioned_users("no one").is_empty());
    }
}
