//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use serde_json::Value;

/// One server-sent event: its `event:` name (if any) and its `data:` text.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("bad event data {:?}: {e}", self.data))
    }
}

/// Splits an SSE body into events.
pub fn parse_sse(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter(|chunk| !chunk.trim().is_empty())
        .map(|chunk| {
            let mut event = None;
            let mut data = String::new();
            for line in chunk.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            Sse { event, data }
        })
        .collect()
}

/// Reads a response body to its end or its first error: the bytes, and whether it broke.
pub async fn read_body(response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(_) => return (body, true),
        }
    }
    (body, false)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A text of `n` ASCII letters.
pub fn letters(n: usize) -> String {
    "a".repeat(n)
}
