//! Deterministic token counting and the prompt-cache simulation (see the README).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::Value;

/// OpenAI caches prompts of at least this many tokens, automatically.
pub const OPENAI_CACHE_MIN_TOKENS: u64 = 1024;

/// How many block boundaries before (and including) a breakpoint are checked for a hit.
pub const CACHE_LOOKBACK_BLOCKS: usize = 20;

/// Simulated tokens of one prompt block: `ceil(bytes / 4)` of its compact JSON with
/// every `cache_control` key removed.
pub fn block_tokens(block: &Value) -> u64 {
    let stripped = strip_cache_control(block);
    let bytes = serde_json::to_vec(&stripped).map_or(0, |b| b.len()) as u64;
    bytes.div_ceil(4)
}

/// Simulated tokens of a piece of text taken as a bare string (`ceil(bytes / 4)`).
pub(crate) fn bytes_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// `value` with every `cache_control` key removed, at any depth.
pub(crate) fn strip_cache_control(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "cache_control")
                .map(|(k, v)| (k.clone(), strip_cache_control(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_cache_control).collect()),
        other => other.clone(),
    }
}

fn hash_value<H: Hasher>(value: &Value, h: &mut H) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => {
            1u8.hash(h);
            b.hash(h);
        }
        Value::Number(n) => {
            2u8.hash(h);
            n.to_string().hash(h);
        }
        Value::String(s) => {
            3u8.hash(h);
            s.hash(h);
        }
        Value::Array(items) => {
            4u8.hash(h);
            items.len().hash(h);
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(map) => {
            5u8.hash(h);
            // The marker must not change the hash: count the keys without it.
            map.keys().filter(|k| k.as_str() != "cache_control").count().hash(h);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                if k == "cache_control" {
                    continue;
                }
                k.hash(h);
                if let Some(v) = map.get(k) {
                    hash_value(v, h);
                }
            }
        }
    }
}

/// One block of a flattened prompt.
#[derive(Debug, Clone)]
pub(crate) struct PromptBlock {
    /// Hash of the block's section (tool, system, message n and role) and its content.
    key: u64,
    pub tokens: u64,
    /// A cache breakpoint ends at this block.
    pub breakpoint: bool,
}

/// A request flattened into blocks in the order tools, system, messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prompt {
    pub blocks: Vec<PromptBlock>,
}

impl Prompt {
    pub fn push(&mut self, section: &str, value: &Value, breakpoint: bool) {
        let mut h = DefaultHasher::new();
        section.hash(&mut h);
        hash_value(value, &mut h);
        self.blocks.push(PromptBlock { key: h.finish(), tokens: block_tokens(value), breakpoint });
    }

    /// Marks the last block as a breakpoint (Bedrock's `cachePoint` follows a block).
    pub fn mark_last_breakpoint(&mut self) {
        if let Some(last) = self.blocks.last_mut() {
            last.breakpoint = true;
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.blocks.iter().map(|b| b.tokens).sum()
    }

    fn prefixes(&self, seed: u64) -> (Vec<u64>, Vec<u64>) {
        let mut hashes = Vec::with_capacity(self.blocks.len());
        let mut cumulative = Vec::with_capacity(self.blocks.len());
        let mut prev = seed;
        let mut sum = 0;
        for block in &self.blocks {
            let mut h = DefaultHasher::new();
            prev.hash(&mut h);
            block.key.hash(&mut h);
            prev = h.finish();
            sum += block.tokens;
            hashes.push(prev);
            cumulative.push(sum);
        }
        (hashes, cumulative)
    }
}

/// Token accounting of one request's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct InputTokens {
    pub total: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl InputTokens {
    /// Input neither read from nor written to the cache.
    pub fn uncached(&self) -> u64 {
        self.total.saturating_sub(self.cache_read).saturating_sub(self.cache_write)
    }
}

/// Live prefix hashes and their expiry.
#[derive(Debug, Default)]
pub(crate) struct PromptCache {
    entries: HashMap<u64, Instant>,
}

impl PromptCache {
    fn live(&mut self, hash: u64, now: Instant) -> bool {
        match self.entries.get(&hash) {
            Some(expiry) if *expiry > now => true,
            Some(_) => {
                self.entries.remove(&hash);
                false
            }
            None => false,
        }
    }

    /// Anthropic and Bedrock: explicit breakpoints.
    pub fn explicit(
        &mut self,
        prompt: &Prompt,
        seed: u64,
        now: Instant,
        ttl: Duration,
        min_tokens: u64,
    ) -> InputTokens {
        let (hashes, cumulative) = prompt.prefixes(seed);
        let total = prompt.total_tokens();
        let breakpoints: Vec<usize> =
            prompt.blocks.iter().enumerate().filter(|(_, b)| b.breakpoint).map(|(i, _)| i).collect();
        let mut best: Option<usize> = None;
        for &k in &breakpoints {
            let lowest = k.saturating_sub(CACHE_LOOKBACK_BLOCKS - 1);
            for j in (lowest..=k).rev() {
                if self.live(hashes[j], now) {
                    if best.is_none_or(|b| j > b) {
                        best = Some(j);
                    }
                    break;
                }
            }
        }
        let cache_read = best.map_or(0, |j| cumulative[j]);
        if let Some(j) = best {
            self.entries.insert(hashes[j], now + ttl);
        }
        for &k in &breakpoints {
            if cumulative[k] >= min_tokens {
                self.entries.insert(hashes[k], now + ttl);
            }
        }
        let cache_write = match breakpoints.last() {
            Some(&k) if cumulative[k] >= min_tokens && cumulative[k] > cache_read => cumulative[k] - cache_read,
            _ => 0,
        };
        InputTokens { total, cache_read, cache_write }
    }

    /// OpenAI: automatic caching of every block-boundary prefix.
    pub fn automatic(&mut self, prompt: &Prompt, seed: u64, now: Instant, ttl: Duration) -> InputTokens {
        let (hashes, cumulative) = prompt.prefixes(seed);
        let total = prompt.total_tokens();
        if total < OPENAI_CACHE_MIN_TOKENS {
            return InputTokens { total, ..InputTokens::default() };
        }
        let mut cache_read = 0;
        for j in (0..hashes.len()).rev() {
            if cumulative[j] < OPENAI_CACHE_MIN_TOKENS {
                break;
            }
            if self.live(hashes[j], now) {
                cache_read = cumulative[j];
                break;
            }
        }
        for j in 0..hashes.len() {
            if cumulative[j] >= OPENAI_CACHE_MIN_TOKENS {
                self.entries.insert(hashes[j], now + ttl);
            }
        }
        InputTokens { total, cache_read, cache_write: 0 }
    }
}

/// Seed of the prefix hashes: caches are per API and model.
pub(crate) fn cache_seed(api: &str, model: &str) -> u64 {
    let mut h = DefaultHasher::new();
    api.hash(&mut h);
    model.hash(&mut h);
    h.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(n: usize) -> Value {
        json!({"type": "text", "text": "a".repeat(n)})
    }

    #[test]
    fn tokens_ignore_cache_control() {
        // {"type":"text","text":"aaaa"} is 29 bytes -> 8 tokens.
        assert_eq!(block_tokens(&text(4)), 8);
        let mut marked = text(4);
        marked["cache_control"] = json!({"type": "ephemeral"});
        assert_eq!(block_tokens(&marked), 8);
    }

    #[test]
    fn explicit_write_then_read() {
        let mut cache = PromptCache::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(300);
        let mut p = Prompt::default();
        p.push("system", &text(4075), true); // 4100 bytes -> 1025 tokens
        p.push("msg0:user", &text(75), false); // 100 bytes -> 25
        let first = cache.explicit(&p, 1, now, ttl, 1024);
        assert_eq!(first, InputTokens { total: 1050, cache_read: 0, cache_write: 1025 });
        let second = cache.explicit(&p, 1, now, ttl, 1024);
        assert_eq!(second.cache_read, 1025);
        assert_eq!(second.cache_write, 0);
        assert_eq!(second.uncached(), 25);
        // Expired.
        let later = cache.explicit(&p, 1, now + Duration::from_secs(301), ttl, 1024);
        assert_eq!(later.cache_read, 0);
        assert_eq!(later.cache_write, 1025);
        // Another model shares nothing.
        assert_eq!(cache.explicit(&p, 2, now, ttl, 1024).cache_read, 0);
    }

    #[test]
    fn lookback_finds_earlier_breakpoint() {
        let mut cache = PromptCache::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(300);
        let mut p = Prompt::default();
        p.push("system", &text(4075), true);
        cache.explicit(&p, 1, now, ttl, 1024);
        p.blocks[0].breakpoint = false;
        p.push("msg0:user", &text(75), false);
        p.push("msg1:assistant", &text(75), true);
        let t = cache.explicit(&p, 1, now, ttl, 1024);
        assert_eq!((t.total, t.cache_read, t.cache_write), (1075, 1025, 50));
    }

    #[test]
    fn automatic_caching() {
        let mut cache = PromptCache::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(300);
        let mut p = Prompt::default();
        p.push("m0", &text(4075), false);
        assert_eq!(cache.automatic(&p, 1, now, ttl).cache_read, 0);
        p.push("m1", &text(75), false);
        let t = cache.automatic(&p, 1, now, ttl);
        assert_eq!((t.total, t.cache_read), (1050, 1025));
    }
}

#[cfg(test)]
mod marker_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_block_hashes_the_same_with_or_without_its_cache_marker() {
        let plain = json!({"type": "text", "text": "hello"});
        let marked = json!({"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}});
        let hash = |v: &Value| {
            let mut h = DefaultHasher::new();
            hash_value(v, &mut h);
            h.finish()
        };
        assert_eq!(hash(&plain), hash(&marked));
    }
}
