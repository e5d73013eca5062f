//! Trajectories: recorded agent sessions that `rswe bench context` replays through each
//! context policy.
//!
//! A trajectory is the task, then steps, then the closing answer. A step is one model
//! answer (an optional short text and one to three tool calls) and the results the tools
//! gave back, as the tools print them, before any context policy bounds them. The JSON:
//!
//! ```json
//! {"name": "…", "description": "…", "task": "…",
//!  "steps": [{"assistant": {"text": "…", "tool_calls": [{"name": "shell", "input": {"command": "…"}}]},
//!             "results": [{"tool": "shell", "text": "…", "is_error": false}]}],
//!  "final_text": "…"}
//! ```

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trajectory {
    pub name: String,
    pub description: String,
    /// The person's request: the first user message.
    pub task: String,
    pub steps: Vec<Step>,
    /// The model's last answer, after the last step's results.
    pub final_text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub assistant: AssistantTurn,
    /// One per tool call, in the same order.
    pub results: Vec<ToolResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantTurn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolResult {
    pub tool: String,
    pub text: String,
    #[serde(default)]
    pub is_error: bool,
}

impl Trajectory {
    /// The fixture file's content: pretty JSON and a final newline.
    pub fn to_json(&self) -> Result<String> {
        Ok(format!("{}\n", serde_json::to_string_pretty(self)?))
    }

    pub fn load(path: &Path) -> Result<Trajectory> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let trajectory: Trajectory =
            serde_json::from_str(&text).with_context(|| format!("{} is not a trajectory", path.display()))?;
        trajectory.check().with_context(|| format!("{} is not a valid trajectory", path.display()))?;
        Ok(trajectory)
    }

    /// Every `*.json` of `dir`, by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Trajectory>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| {
                format!(
                    "cannot read the trajectories in {}: give --fixtures DIR, or create them with \
                     `rswe bench context --generate DIR`",
                    dir.display()
                )
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        ensure!(!paths.is_empty(), "{} holds no trajectory (*.json)", dir.display());
        paths.iter().map(|path| Trajectory::load(path)).collect()
    }

    /// Each step has one to three tool calls and exactly one result per call, of the
    /// same tool.
    pub fn check(&self) -> Result<()> {
        ensure!(!self.task.trim().is_empty(), "the task is empty");
        ensure!(!self.final_text.trim().is_empty(), "the final text is empty");
        for (n, step) in self.steps.iter().enumerate() {
            let calls = &step.assistant.tool_calls;
            ensure!((1..=3).contains(&calls.len()), "step {} has {} tool calls (1 to 3 expected)", n + 1, calls.len());
            ensure!(
                calls.len() == step.results.len(),
                "step {} has {} tool calls but {} results",
                n + 1,
                calls.len(),
                step.results.len()
            );
            for (call, result) in calls.iter().zip(&step.results) {
                ensure!(call.name == result.tool, "step {}: a {} call has a {} result", n + 1, call.name, result.tool);
                ensure!(call.input.is_object(), "step {}: a tool input must be a JSON object", n + 1);
            }
            if let Some(text) = &step.assistant.text {
                ensure!(!text.trim().is_empty(), "step {} has an empty text", n + 1);
            }
        }
        Ok(())
    }

    /// Bytes of all tool results, as the tools printed them.
    pub fn result_bytes(&self) -> usize {
        self.steps.iter().flat_map(|s| &s.results).map(|r| r.text.len()).sum()
    }
}

/// A small, fast, deterministic PRNG (SplitMix64). The generator must give the same
/// fixtures on every machine and every version of every dependency, so it does not use
/// a library generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent generator derived from this one and `label`.
    pub fn fork(&self, label: &str) -> Rng {
        let mut hash = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for byte in label.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(hash)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo { lo } else { lo + self.below(hi - lo + 1) }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Roughly log-uniform in `lo..=hi`: an octave drawn uniformly, then a value in it, so
    /// small values are as likely per octave as large ones (the shape of file sizes and
    /// log lengths). Integer arithmetic only, so every platform draws the same values.
    pub fn log_range(&mut self, lo: usize, hi: usize) -> usize {
        let lo = lo.max(1);
        let hi = hi.max(lo);
        let (low_octave, high_octave) = (lo.ilog2(), hi.ilog2());
        let octave = low_octave + self.below((high_octave - low_octave + 1) as usize) as u32;
        let start = (1usize << octave).max(lo);
        let end = ((1usize << octave) * 2 - 1).min(hi);
        self.range(start, end)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn by weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return 0;
        }
        let mut draw = self.next_u64() % total;
        for (i, &w) in weights.iter().enumerate() {
            if draw < u64::from(w) {
                return i;
            }
            draw -= u64::from(w);
        }
        weights.len() - 1
    }

    /// A lowercase hexadecimal string of `len` digits.
    pub fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b"0123456789abcdef"[self.below(16)])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rng_is_deterministic_and_spread() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        // SplitMix64's first output for seed 0 is a published value.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut r = Rng::new(1);
        let mut seen = [0usize; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            let v = r.log_range(50, 800);
            assert!((50..=800).contains(&v));
        }
        assert_ne!(Rng::new(1).fork("a").next_u64(), Rng::new(1).fork("b").next_u64());
    }

    #[test]
    fn a_step_needs_a_result_per_call() {
        let mut t = Trajectory {
            name: "t".into(),
            description: "d".into(),
            task: "do it".into(),
            steps: vec![Step {
                assistant: AssistantTurn {
                    text: None,
                    tool_calls: vec![ToolCall { name: "shell".into(), input: serde_json::json!({"command": "ls"}) }],
                },
                results: vec![ToolResult { tool: "shell".into(), text: "a\nb".into(), is_error: false }],
            }],
            final_text: "done".into(),
        };
        t.check().unwrap();
        t.steps[0].results.clear();
        assert!(t.check().is_err());
    }
}
