//! The bodies the API takes and gives.

use crate::service::Activity;
use rswe_protocol::{Event, SessionStatus};
use rswe_store::{DayUsage, ModelUsage, Session, SessionPeriodUsage, UsageTotals};
use serde::{Deserialize, Serialize};

/// A file or image sent with a message. Images (PNG, JPEG, GIF, WebP) are shown to the
/// model; other files are put in the workspace under `.rswe/inbox/`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentBody {
    /// A plain file name, e.g. `screenshot.png`.
    pub name: String,
    /// e.g. `image/png`; guessed from the name when absent.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The file's bytes, base64 (standard alphabet).
    pub data: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// The task, in words.
    pub message: String,
    /// A git URL (or a path on the server) to clone into the workspace.
    #[serde(default)]
    pub repository: Option<String>,
    /// `provider/model-id`; the server's default when absent.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentBody>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<AttachmentBody>,
}

/// A session, and whether a task runs for it right now.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: Session,
    pub activity: Activity,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<SessionStatus>,
    /// Where sessions were started: web, api, cli, slack, github.
    pub channel: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MessagePosted {
    /// The message's sequence number in the session's log.
    pub seq: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events with a greater sequence number (default 0: from the start).
    pub after: Option<u64>,
    /// At most this many events (default and maximum 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EventList {
    pub events: Vec<Event>,
    /// Whether more events follow the last one returned.
    pub more: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC), inclusive. Default: 30 days before `to`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive. Default: today.
    pub to: Option<String>,
}

/// Usage of one UTC month.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MonthUsage {
    /// `YYYY-MM`.
    pub month: String,
    pub totals: UsageTotals,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    pub total: UsageTotals,
    pub by_day: Vec<DayUsage>,
    pub by_month: Vec<MonthUsage>,
    pub by_model: Vec<ModelUsage>,
    /// The costliest sessions of the period, most expensive first (at most 100).
    pub by_session: Vec<SessionPeriodUsage>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ModelList {
    /// The model new sessions get by default.
    pub default: String,
    pub models: Vec<String>,
}
