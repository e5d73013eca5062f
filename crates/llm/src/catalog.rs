//! The model catalog: what each model can do and what it costs, as data.
//!
//! The built-in list is `catalog.toml`, compiled in. The config file's `[[models]]`
//! entries extend it (a new id) or override it (an id it knows: only the fields given
//! change).

use crate::error::LlmError;
use rswe_protocol::Usage;
use serde::{Deserialize, Serialize};

const BUILT_IN: &str = include_str!("../catalog.toml");

/// Prefixes of Bedrock cross-region inference profiles.
const BEDROCK_REGION_PREFIXES: &[&str] = &["global.", "us-gov.", "us.", "eu.", "apac.", "jp.", "au.", "ca."];

/// Who serves the model, and so which wire format it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Bedrock,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Anthropic, Provider::OpenAi, Provider::Bedrock];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Bedrock => "bedrock",
        }
    }

    fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the provider caches prompts for this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Caching {
    /// The request marks cache breakpoints (Anthropic `cache_control`, Bedrock `cachePoint`).
    Explicit,
    /// The provider caches prefixes by itself (OpenAI); breakpoints are dropped.
    Automatic,
    /// No caching; breakpoints are dropped.
    None,
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Writing to the prompt cache, 5-minute TTL.
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Price {
    /// What `usage` costs, in dollars.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, per_million: f64| tokens as f64 * per_million / 1_000_000.0;
        per_token(usage.input_tokens, self.input)
            + per_token(usage.output_tokens, self.output)
            + per_token(usage.cache_write_tokens, self.cache_write)
            + per_token(usage.cache_read_tokens, self.cache_read)
    }
}

/// Everything rswe knows about one model, resolved for one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The name as given: `provider/model-id`.
    pub id: String,
    pub provider: Provider,
    /// The id sent to the provider (the part after `provider/`).
    pub model_id: String,
    pub display_name: String,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub images: bool,
    pub thinking: bool,
    pub caching: Caching,
    pub cache_min_tokens: u32,
    pub max_cache_breakpoints: usize,
    pub cache_tools: bool,
    pub anthropic_beta: Vec<String>,
    /// `None` when the catalog has no price: costs are then unknown, never zero.
    pub price: Option<Price>,
    /// Whether the catalog lists the model (false: conservative defaults).
    pub known: bool,
}

impl ModelInfo {
    /// What `usage` costs on this model, if its price is known.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        self.price.map(|price| price.cost(usage))
    }
}

/// A catalog entry as written in TOML. Every field but `ids` is optional so that an
/// override can name only what it changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub ids: Vec<String>,
    pub name: Option<String>,
    pub context_window: Option<u32>,
    pub max_output_tokens: Option<u32>,
    pub images: Option<bool>,
    pub thinking: Option<bool>,
    pub caching: Option<Caching>,
    pub cache_min_tokens: Option<u32>,
    pub max_cache_breakpoints: Option<usize>,
    pub cache_tools: Option<bool>,
    pub anthropic_beta: Option<Vec<String>>,
    pub price: Option<Price>,
}

impl CatalogEntry {
    /// Fields set in `other` replace ours; its ids are added.
    fn overlay(&mut self, other: &CatalogEntry) {
        for id in &other.ids {
            if !self.ids.contains(id) {
                self.ids.push(id.clone());
            }
        }
        macro_rules! take {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field.clone_from(&other.$field); } )* };
        }
        take!(
            name,
            context_window,
            max_output_tokens,
            images,
            thinking,
            caching,
            cache_min_tokens,
            max_cache_breakpoints,
            cache_tools,
            anthropic_beta,
            price
        );
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    models: Vec<CatalogEntry>,
}

/// The models rswe knows.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::built_in()
    }
}

impl Catalog {
    /// The compiled-in catalog.
    pub fn built_in() -> Self {
        match toml::from_str::<CatalogFile>(BUILT_IN) {
            Ok(file) => Catalog { entries: file.models },
            // The file is compiled in and checked by a test; an empty catalog still works
            // (every model gets conservative defaults), so this cannot take rswe down.
            Err(error) => {
                tracing::error!(%error, "the built-in model catalog does not parse");
                Catalog { entries: Vec::new() }
            }
        }
    }

    /// Parses catalog entries from TOML text holding `[[models]]` tables.
    pub fn parse_entries(text: &str) -> Result<Vec<CatalogEntry>, LlmError> {
        toml::from_str::<CatalogFile>(text)
            .map(|file| file.models)
            .map_err(|error| LlmError::Configuration(format!("invalid model catalog: {error}")))
    }

    /// Adds or overrides entries. An entry naming an id the catalog knows changes that
    /// model; any other entry is a new model.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = CatalogEntry>) -> Result<(), LlmError> {
        for entry in entries {
            if entry.ids.is_empty() {
                return Err(LlmError::Configuration(
                    "a [[models]] entry needs `ids`, e.g. ids = [\"openai/my-model\"]".into(),
                ));
            }
            for id in &entry.ids {
                split_name(id)?;
            }
            let existing = self.entries.iter_mut().find(|known| entry.ids.iter().any(|id| known.ids.contains(id)));
            match existing {
                Some(known) => known.overlay(&entry),
                None => self.entries.push(entry),
            }
        }
        Ok(())
    }

    /// Every entry, built-in and added.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// Resolves `provider/model-id`. Unknown models of a known provider get conservative
    /// defaults and no price.
    pub fn resolve(&self, name: &str) -> Result<ModelInfo, LlmError> {
        let (provider, model_id) = split_name(name)?;
        let key = match provider {
            Provider::Bedrock => format!("bedrock/{}", strip_region_prefix(model_id)),
            _ => name.to_string(),
        };
        let defaults = provider_defaults(provider, model_id);
        let entry = self.entries.iter().find(|e| e.ids.contains(&key));
        let mut merged = defaults.clone();
        if let Some(entry) = entry {
            merged.overlay(entry);
        }
        Ok(ModelInfo {
            id: name.to_string(),
            provider,
            model_id: model_id.to_string(),
            display_name: merged.name.unwrap_or_else(|| model_id.to_string()),
            context_window: merged.context_window.unwrap_or(128_000),
            max_output_tokens: merged.max_output_tokens.unwrap_or(4096),
            images: merged.images.unwrap_or(false),
            thinking: merged.thinking.unwrap_or(false),
            caching: merged.caching.unwrap_or(Caching::None),
            cache_min_tokens: merged.cache_min_tokens.unwrap_or(1024),
            max_cache_breakpoints: merged.max_cache_breakpoints.unwrap_or(4).min(4),
            cache_tools: merged.cache_tools.unwrap_or(true),
            anthropic_beta: merged.anthropic_beta.unwrap_or_default(),
            price: merged.price,
            known: entry.is_some(),
        })
    }
}

/// Splits `provider/model-id`, with an error that shows the expected form.
fn split_name(name: &str) -> Result<(Provider, &str), LlmError> {
    let hint = "models are named provider/model-id, e.g. anthropic/claude-sonnet-4-5, \
                bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0 or openai/gpt-4.1";
    let Some((provider, model_id)) = name.split_once('/') else {
        return Err(LlmError::Configuration(format!("model `{name}` names no provider: {hint}")));
    };
    let Some(provider) = Provider::parse(provider) else {
        return Err(LlmError::Configuration(format!(
            "unknown provider `{provider}` in model `{name}`: use anthropic, openai or bedrock ({hint})"
        )));
    };
    if model_id.is_empty() {
        return Err(LlmError::Configuration(format!("model `{name}` has an empty model id: {hint}")));
    }
    Ok((provider, model_id))
}

fn strip_region_prefix(model_id: &str) -> &str {
    BEDROCK_REGION_PREFIXES.iter().find_map(|prefix| model_id.strip_prefix(prefix)).unwrap_or(model_id)
}

/// What an unlisted model is assumed to support: Claude models anywhere keep Claude's
/// shape; anything else gets a modest window, no images and no thinking.
fn provider_defaults(provider: Provider, model_id: &str) -> CatalogEntry {
    let claude = provider == Provider::Anthropic || model_id.contains("anthropic.claude");
    if claude {
        CatalogEntry {
            context_window: Some(200_000),
            max_output_tokens: Some(8192),
            images: Some(true),
            caching: Some(Caching::Explicit),
            cache_min_tokens: Some(1024),
            ..Default::default()
        }
    } else if provider == Provider::OpenAi {
        CatalogEntry {
            context_window: Some(128_000),
            max_output_tokens: Some(4096),
            caching: Some(Caching::Automatic),
            ..Default::default()
        }
    } else {
        CatalogEntry {
            context_window: Some(32_000),
            max_output_tokens: Some(4096),
            caching: Some(Caching::None),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses_and_covers_the_families() {
        let entries = Catalog::parse_entries(BUILT_IN).unwrap();
        let catalog = Catalog::built_in();
        assert_eq!(catalog.entries().len(), entries.len());
        for name in [
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-sonnet-4-0",
            "anthropic/claude-opus-4-1",
            "anthropic/claude-haiku-4-5",
            "anthropic/claude-3-7-sonnet-latest",
            "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "bedrock/eu.anthropic.claude-sonnet-4-20250514-v1:0",
            "bedrock/global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "bedrock/apac.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "bedrock/anthropic.claude-opus-4-1-20250805-v1:0",
            "bedrock/us.amazon.nova-pro-v1:0",
            "openai/gpt-4.1",
            "openai/gpt-4.1-mini",
            "openai/gpt-5",
            "openai/gpt-5-mini",
        ] {
            let info = catalog.resolve(name).unwrap();
            assert!(info.known, "{name} is not in the catalog");
            assert!(info.price.is_some(), "{name} has no price");
            assert!(info.context_window >= 128_000 && info.max_output_tokens >= 8192, "{name}");
        }
        for entry in catalog.entries() {
            let price = entry.price.unwrap();
            assert!(price.cache_read < price.input && price.output > price.input, "{:?}", entry.name);
        }
    }

    #[test]
    fn bedrock_profile_keeps_its_prefix_in_the_model_id() {
        let info = Catalog::built_in().resolve("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap();
        assert_eq!(info.model_id, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(info.display_name, "Claude Sonnet 4.5");
        assert_eq!(info.provider, Provider::Bedrock);
    }

    #[test]
    fn unknown_models_get_defaults_and_no_price() {
        let catalog = Catalog::built_in();
        let local = catalog.resolve("openai/llama-3.1-8b-instruct").unwrap();
        assert!(!local.known);
        assert_eq!(local.price, None);
        assert_eq!(local.cost(&Usage { input_tokens: 1000, ..Default::default() }), None);
        assert_eq!(local.caching, Caching::Automatic);
        let future_claude = catalog.resolve("bedrock/us.anthropic.claude-sonnet-9-v1:0").unwrap();
        assert_eq!(future_claude.caching, Caching::Explicit);
        assert_eq!(future_claude.context_window, 200_000);
    }

    #[test]
    fn names_without_a_known_provider_are_explained() {
        let catalog = Catalog::built_in();
        let error = catalog.resolve("claude-sonnet-4-5").unwrap_err().to_string();
        assert!(error.contains("provider/model-id"), "{error}");
        let error = catalog.resolve("vertex/claude").unwrap_err().to_string();
        assert!(error.contains("unknown provider `vertex`"), "{error}");
    }

    #[test]
    fn config_entries_override_fields_and_add_models() {
        let mut catalog = Catalog::built_in();
        let entries = Catalog::parse_entries(
            r#"
            [[models]]
            ids = ["anthropic/claude-sonnet-4-5"]
            price = { input = 2.0, output = 10.0, cache_write = 2.5, cache_read = 0.2 }

            [[models]]
            ids = ["openai/qwen2.5-coder-32b"]
            name = "Qwen 2.5 Coder 32B (vLLM)"
            context_window = 32768
            max_output_tokens = 8192
            price = { input = 0.0, output = 0.0, cache_write = 0.0, cache_read = 0.0 }
            "#,
        )
        .unwrap();
        catalog.extend(entries).unwrap();
        let sonnet = catalog.resolve("anthropic/claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.price.unwrap().input, 2.0);
        assert_eq!(sonnet.context_window, 200_000, "fields not named keep their value");
        let qwen = catalog.resolve("openai/qwen2.5-coder-32b").unwrap();
        assert!(qwen.known);
        assert_eq!(qwen.context_window, 32768);
        assert_eq!(qwen.cost(&Usage { input_tokens: 5000, ..Default::default() }), Some(0.0));

        let error = Catalog::parse_entries("[[models]]\nids = [\"openai/x\"]\ncontext_windw = 3\n").unwrap_err();
        assert!(error.to_string().contains("context_windw"), "{error}");
    }
}
