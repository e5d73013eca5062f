//! The app manifests in docs/slack ask for what rswe uses: every scope and event it
//! needs, and the mode each is for.

const SOCKET_MODE: &str = include_str!("../../../docs/slack/manifest-socket-mode.yaml");
const EVENTS_API: &str = include_str!("../../../docs/slack/manifest-events-api.yaml");

const SCOPES: [&str; 9] = [
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "chat:write",
    "reactions:write",
    "files:read",
    "files:write",
    "users:read",
];
const EVENTS: [&str; 4] = ["app_mention", "message.channels", "message.groups", "message.im"];

fn listed(manifest: &str, item: &str) -> bool {
    manifest.lines().any(|line| line.trim_start().starts_with(&format!("- {item}")))
}

#[test]
fn both_manifests_ask_for_every_scope_and_event_rswe_uses() {
    for manifest in [SOCKET_MODE, EVENTS_API] {
        for item in SCOPES.iter().chain(EVENTS.iter()) {
            assert!(listed(manifest, item), "{item} missing from a manifest");
        }
        assert!(manifest.contains("messages_tab_enabled: true"), "direct messages need the messages tab");
    }
    assert!(SOCKET_MODE.contains("socket_mode_enabled: true") && !SOCKET_MODE.contains("request_url"));
    assert!(EVENTS_API.contains("socket_mode_enabled: false"));
    assert!(EVENTS_API.contains("request_url: https://rswe.example.com/slack/events"));
}
