//! `rswe keys`: the API keys of `rswe serve` — create, list, revoke.

use anyhow::{Context, Result};
use rswe_server::auth::{self, KeyInfo};
use rswe_store::Store;
use std::fmt::Write as _;

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key and print it (once: only its hash is stored).
    Create {
        /// What the key is for, e.g. "ci" or "alice-laptop".
        name: String,
    },
    /// List the keys that are not revoked, newest first (never the keys themselves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: requests and browser sessions using it are refused from now on.
    Revoke {
        /// The key's id (the part after `rswe_`, as `rswe keys list` shows it).
        id: String,
    },
}

pub async fn keys(store: &Store, command: KeysCommand) -> Result<u8> {
    match command {
        KeysCommand::Create { name } => {
            let created = auth::new_api_key(store, &name).await.context("cannot create the API key")?;
            // The key alone on stdout, so that `KEY=$(rswe keys create ci)` works.
            println!("{}", created.key);
            eprintln!(
                "Created API key {:?} (id {}). Copy it now: it is stored only hashed and will not be shown again.",
                created.info.name, created.info.id
            );
            eprintln!(
                "Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`, or paste it on the sign-in page. \
                 Revoke it with `rswe keys revoke {}`.",
                created.info.id
            );
            Ok(0)
        }
        KeysCommand::List { json } => {
            let list = auth::list_api_keys(store).await.context("cannot list the API keys")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.keys.is_empty() {
                eprintln!("No API keys. Create one with `rswe keys create NAME`.");
            } else {
                print!("{}", table(&list.keys));
            }
            Ok(0)
        }
        KeysCommand::Revoke { id } => {
            let id = id.trim();
            // Accept a whole key too: its id is what gets revoked.
            let id = auth::key_id(id).unwrap_or(id);
            if store.revoke_api_key(id).await.context("cannot revoke the API key")? {
                eprintln!("Revoked API key {id}: requests and browser sessions using it are refused from now on.");
                Ok(0)
            } else {
                eprintln!("error: there is no API key {id} (or it was revoked already); see `rswe keys list`");
                Ok(1)
            }
        }
    }
}

fn table(keys: &[KeyInfo]) -> String {
    let width = keys.iter().map(|k| k.name.chars().count()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    let _ = writeln!(out, "{:<8}  {:<width$}  {:<20}  last used", "id", "name", "created");
    for key in keys {
        let last_used = key.last_used_ms.map_or_else(|| "never".to_string(), time);
        let _ = writeln!(out, "{:<8}  {:<width$}  {:<20}  {last_used}", key.id, key.name, time(key.created_ms));
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC`.
fn time(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{} {:02}:{:02} UTC", rswe_server::api::sessions::format_day(ms), minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_to_the_minute() {
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(time(86_400_000 + 13 * 3_600_000 + 7 * 60_000 + 59_999), "1970-01-02 13:07 UTC");
    }

    #[test]
    fn the_table_lines_up() {
        let keys = vec![
            KeyInfo { id: "abcd1234".into(), name: "ci".into(), created_ms: 0, last_used_ms: None },
            KeyInfo { id: "efgh5678".into(), name: "alice-laptop".into(), created_ms: 0, last_used_ms: Some(60_000) },
        ];
        let text = table(&keys);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("abcd1234  ci            1970-01-01 00:00 UTC  never"), "{text}");
        assert!(lines[2].ends_with("1970-01-01 00:01 UTC"), "{text}");
    }

    #[tokio::test]
    async fn keys_are_created_listed_and_revoked() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(keys(&store, KeysCommand::Create { name: "ci".into() }).await.unwrap(), 0);
        let listed = auth::list_api_keys(&store).await.unwrap();
        assert_eq!(listed.keys.len(), 1);
        let id = listed.keys[0].id.clone();
        assert_eq!(keys(&store, KeysCommand::List { json: true }).await.unwrap(), 0);
        assert_eq!(keys(&store, KeysCommand::Revoke { id: id.clone() }).await.unwrap(), 0);
        assert_eq!(keys(&store, KeysCommand::Revoke { id }).await.unwrap(), 1);
        assert!(keys(&store, KeysCommand::Create { name: " ".into() }).await.is_err());
    }
}
