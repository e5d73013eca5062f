//! The system prompt, rendered from templates (`prompts/*.j2`), never by concatenation.

use crate::knowledge::Instructions;
use minijinja::{Environment, context};

const SYSTEM: &str = include_str!("../prompts/system.md.j2");
const INSTRUCTIONS: &str = include_str!("../prompts/instructions.md.j2");

/// What the system prompt says about the session. It is rendered once per session so
/// the prompt prefix stays byte-for-byte stable (and cached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptContext {
    pub os: String,
    pub workspace: String,
    /// The session's start date (not the time: that would change the prefix).
    pub date: String,
    pub tools: Vec<String>,
    /// Whether a code forge is configured, so the agent should open pull requests.
    pub forge: bool,
    pub network: bool,
}

fn render(template: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    Environment::new().render_str(template, ctx)
}

/// The main system prompt.
pub fn system_prompt(ctx: &PromptContext) -> Result<String, minijinja::Error> {
    render(
        SYSTEM,
        context! {
            os => &ctx.os, workspace => &ctx.workspace, date => &ctx.date, tools => &ctx.tools,
            forge => ctx.forge, network => ctx.network,
        },
    )
}

/// The repository instructions as a system block of their own, after the main prompt.
pub fn instructions_prompt(instructions: &Instructions) -> Result<Option<String>, minijinja::Error> {
    if instructions.is_empty() {
        return Ok(None);
    }
    render(INSTRUCTIONS, context! { files => minijinja::Value::from(minijinja::value::Serde(&instructions.files)) })
        .map(Some)
}

/// Today's date as YYYY-MM-DD (UTC), without a date library.
pub fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0)
            as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_environment_and_the_forge_rule() {
        let ctx = PromptContext {
            os: "Linux".into(),
            workspace: "/data/sessions/x/workspace".into(),
            date: "2026-11-25".into(),
            tools: vec!["shell".into(), "editor".into()],
            forge: false,
            network: false,
        };
        let text = system_prompt(&ctx).unwrap();
        assert!(
            text.contains("Workspace (the repository checkout, your working directory): /data/sessions/x/workspace")
        );
        assert!(text.contains("Tools: shell, editor"));
        assert!(text.contains("No code forge is configured"));
        assert!(text.contains("no network access"));
        assert!(!text.contains("{{") && !text.contains("{%"));
        let with_forge = system_prompt(&PromptContext { forge: true, ..ctx }).unwrap();
        assert!(with_forge.contains("open a pull request"));
    }

    #[test]
    fn today_is_a_plausible_date() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.as_str() >= "2024-01-01", "{date}");
    }
}
