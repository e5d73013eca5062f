//! Usage turned into dollars, summed per model.

use crate::catalog::ModelInfo;
use rswe_protocol::Usage;
use serde::Serialize;
use std::collections::BTreeMap;

/// The usage and cost of one model within a ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelSpend {
    pub usage: Usage,
    pub requests: u64,
    /// `None` when the model has no price in the catalog.
    pub dollars: Option<f64>,
}

/// Sums usage and cost per model (for a session, or any period).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostLedger {
    by_model: BTreeMap<String, ModelSpend>,
}

/// A ledger's total. Unpriced usage is listed, never counted as free.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostTotal {
    pub usage: Usage,
    /// Dollars of the models whose price is known.
    pub known_dollars: f64,
    /// Models used without a known price.
    pub unpriced_models: Vec<String>,
}

impl CostTotal {
    /// The total when every model is priced.
    pub fn dollars(&self) -> Option<f64> {
        self.unpriced_models.is_empty().then_some(self.known_dollars)
    }
}

impl std::fmt::Display for CostTotal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dollars() {
            Some(dollars) => write!(f, "${dollars:.4}"),
            None if self.known_dollars > 0.0 => write!(
                f,
                "${:.4} + unknown ({} has no price in the model catalog)",
                self.known_dollars,
                self.unpriced_models.join(", ")
            ),
            None => write!(f, "unknown ({} has no price in the model catalog)", self.unpriced_models.join(", ")),
        }
    }
}

impl CostLedger {
    /// Records one request's usage; returns its cost when the model is priced.
    pub fn record(&mut self, model: &ModelInfo, usage: &Usage) -> Option<f64> {
        let cost = model.cost(usage);
        let spend = self
            .by_model
            .entry(model.id.clone())
            .or_insert_with(|| ModelSpend { dollars: model.price.map(|_| 0.0), ..Default::default() });
        spend.usage += *usage;
        spend.requests += 1;
        spend.dollars = match (spend.dollars, cost) {
            (Some(sum), Some(cost)) => Some(sum + cost),
            _ => None,
        };
        cost
    }

    pub fn by_model(&self) -> &BTreeMap<String, ModelSpend> {
        &self.by_model
    }

    pub fn total(&self) -> CostTotal {
        let mut total = CostTotal::default();
        for (model, spend) in &self.by_model {
            total.usage += spend.usage;
            match spend.dollars {
                Some(dollars) => total.known_dollars += dollars,
                None => total.unpriced_models.push(model.clone()),
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn sonnet_cost_matches_hand_arithmetic() {
        let sonnet = Catalog::built_in().resolve("anthropic/claude-sonnet-4-5").unwrap();
        // 100k written to cache, 1M read from cache, 20k output, 5k uncached input:
        // 0.1 * 3.75 + 1.0 * 0.30 + 0.02 * 15 + 0.005 * 3 = 0.375 + 0.30 + 0.30 + 0.015
        let usage = Usage {
            input_tokens: 5_000,
            output_tokens: 20_000,
            cache_read_tokens: 1_000_000,
            cache_write_tokens: 100_000,
        };
        assert!(close(sonnet.cost(&usage).unwrap(), 0.99));
    }

    #[test]
    fn ledger_sums_per_model_and_keeps_unpriced_usage_unknown() {
        let catalog = Catalog::built_in();
        let haiku = catalog.resolve("bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0").unwrap();
        let gpt = catalog.resolve("openai/gpt-4.1").unwrap();
        let local = catalog.resolve("openai/my-local-model").unwrap();
        let mut ledger = CostLedger::default();
        // Haiku 4.5: 2000 in * $1 + 1000 out * $5 = 0.002 + 0.005
        assert!(close(
            ledger.record(&haiku, &Usage { input_tokens: 2000, output_tokens: 1000, ..Default::default() }).unwrap(),
            0.007
        ));
        ledger.record(&haiku, &Usage { input_tokens: 2000, output_tokens: 1000, ..Default::default() });
        // GPT-4.1: 10k cached at $0.50 + 1000 uncached at $2 + 500 out at $8 = 0.005 + 0.002 + 0.004
        ledger.record(
            &gpt,
            &Usage { input_tokens: 1000, output_tokens: 500, cache_read_tokens: 10_000, cache_write_tokens: 0 },
        );
        let total = ledger.total();
        assert!(close(total.dollars().unwrap(), 0.014 + 0.011));
        assert_eq!(ledger.by_model()[&haiku.id].requests, 2);

        ledger.record(&local, &Usage { input_tokens: 10, output_tokens: 10, ..Default::default() });
        let total = ledger.total();
        assert_eq!(total.dollars(), None);
        assert!(close(total.known_dollars, 0.025));
        assert_eq!(total.unpriced_models, vec!["openai/my-local-model".to_string()]);
        assert!(total.to_string().contains("unknown"), "{total}");
        assert_eq!(total.usage.input_tokens, 5010);
    }
}
