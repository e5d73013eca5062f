//! Provider configuration: the `[providers]` table of the config file, overridden by the
//! standard environment variables of each ecosystem, and the factory that turns a model
//! name into a ready [`Model`].

use crate::catalog::{Catalog, ModelInfo, Provider};
use crate::client::{Model, ModelClient, RetryPolicy, Timeouts};
use crate::error::LlmError;
use crate::providers::anthropic::{self, AnthropicClient};
use crate::providers::bedrock::BedrockClient;
use crate::providers::openai::{self, OpenAiClient};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `[providers.anthropic]` and `[providers.openai]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProviderConfig {
    pub api_key: Option<Secret>,
    pub base_url: Option<String>,
}

/// `[providers.bedrock]`. Credentials always come from the AWS credential chain.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BedrockConfig {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// The `[providers]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    pub anthropic: HttpProviderConfig,
    pub openai: HttpProviderConfig,
    pub bedrock: BedrockConfig,
    pub connect_timeout_secs: u64,
    /// Wait for the response headers.
    pub response_timeout_secs: u64,
    /// Wait between two pieces of a streamed answer.
    pub idle_timeout_secs: u64,
    /// Attempts per model request, the first included.
    pub max_attempts: u32,
    /// No retry starts after this long.
    pub max_retry_secs: u64,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            anthropic: HttpProviderConfig::default(),
            openai: HttpProviderConfig::default(),
            bedrock: BedrockConfig::default(),
            connect_timeout_secs: 10,
            response_timeout_secs: 120,
            idle_timeout_secs: 120,
            max_attempts: 6,
            max_retry_secs: 300,
        }
    }
}

impl ProvidersConfig {
    /// Applies the standard environment variables, which win over the config file:
    /// `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_REGION` (or `AWS_DEFAULT_REGION`) and
    /// `AWS_PROFILE`. Empty values count as unset.
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if let Some(key) = var("ANTHROPIC_API_KEY") {
            self.anthropic.api_key = Some(Secret(key));
        }
        if let Some(url) = var("ANTHROPIC_BASE_URL") {
            self.anthropic.base_url = Some(url);
        }
        if let Some(key) = var("OPENAI_API_KEY") {
            self.openai.api_key = Some(Secret(key));
        }
        if let Some(url) = var("OPENAI_BASE_URL") {
            self.openai.base_url = Some(url);
        }
        if let Some(url) = var("AWS_ENDPOINT_URL_BEDROCK_RUNTIME") {
            self.bedrock.endpoint_url = Some(url);
        }
        if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
            self.bedrock.region = Some(region);
        }
        if let Some(profile) = var("AWS_PROFILE") {
            self.bedrock.profile = Some(profile);
        }
        self
    }

    /// The config file's values overridden by this process's environment.
    pub fn with_process_env(self) -> Self {
        self.with_env(|name| std::env::var(name).ok())
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            response: Duration::from_secs(self.response_timeout_secs.max(1)),
            idle: Duration::from_secs(self.idle_timeout_secs.max(1)),
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            max_elapsed: Duration::from_secs(self.max_retry_secs),
            ..RetryPolicy::default()
        }
    }

    /// Whether a provider has what it needs to be tried, and if not, what to set.
    pub fn status(&self, provider: Provider) -> ProviderStatus {
        match provider {
            Provider::Anthropic => match &self.anthropic.api_key {
                Some(_) => ProviderStatus::Ready,
                None => ProviderStatus::Missing(missing_key("ANTHROPIC_API_KEY", "anthropic")),
            },
            Provider::OpenAi => match (&self.openai.api_key, &self.openai.base_url) {
                (Some(_), _) | (None, Some(_)) => ProviderStatus::Ready,
                (None, None) => ProviderStatus::Missing(missing_key("OPENAI_API_KEY", "openai")),
            },
            // The AWS chain has too many sources to check without asking it; requests
            // report missing credentials clearly.
            Provider::Bedrock => ProviderStatus::Ready,
        }
    }
}

fn missing_key(variable: &str, section: &str) -> String {
    format!("{variable} is not set: export {variable}=… or set api_key under [providers.{section}] in the config file")
}

/// See [`ProvidersConfig::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    Ready,
    /// What is missing and how to fix it.
    Missing(String),
}

/// Turns model names into ready [`Model`]s. Clients are made once and shared.
pub struct Providers {
    config: ProvidersConfig,
    catalog: Catalog,
    http: reqwest::Client,
    bedrock: tokio::sync::OnceCell<Arc<BedrockClient>>,
}

impl Providers {
    pub fn new(config: ProvidersConfig, catalog: Catalog) -> Result<Self, LlmError> {
        let http = crate::http::http_client(Duration::from_secs(config.connect_timeout_secs.max(1)))?;
        Ok(Providers { config, catalog, http, bedrock: tokio::sync::OnceCell::new() })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn config(&self) -> &ProvidersConfig {
        &self.config
    }

    /// The model named `provider/model-id`, with its provider's client, ready to ask.
    pub async fn model(&self, name: &str) -> Result<Model, LlmError> {
        let info = self.catalog.resolve(name)?;
        let client = self.client(&info).await?;
        Ok(Model::new(info, client).with_retry(self.config.retry_policy()).with_timeouts(self.config.timeouts()))
    }

    async fn client(&self, info: &ModelInfo) -> Result<Arc<dyn ModelClient>, LlmError> {
        if let ProviderStatus::Missing(hint) = self.config.status(info.provider) {
            return Err(LlmError::Configuration(format!("cannot use {}: {hint}", info.id)));
        }
        Ok(match info.provider {
            Provider::Anthropic => {
                let config = &self.config.anthropic;
                let key = config.api_key.clone().unwrap_or_else(|| Secret::new(""));
                let base_url = config.base_url.as_deref().unwrap_or(anthropic::DEFAULT_BASE_URL);
                Arc::new(AnthropicClient::new(self.http.clone(), base_url, key))
            }
            Provider::OpenAi => {
                let config = &self.config.openai;
                let base_url = config.base_url.as_deref().unwrap_or(openai::DEFAULT_BASE_URL);
                Arc::new(OpenAiClient::new(self.http.clone(), base_url, config.api_key.clone()))
            }
            Provider::Bedrock => {
                let client = self
                    .bedrock
                    .get_or_try_init(|| async {
                        BedrockClient::from_config(
                            &self.config.bedrock,
                            Duration::from_secs(self.config.connect_timeout_secs.max(1)),
                        )
                        .await
                        .map(Arc::new)
                    })
                    .await?;
                client.clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file: ProvidersConfig = toml::from_str(
            r#"
            anthropic = { api_key = "from-file", base_url = "https://proxy.example/anthropic" }
            bedrock = { region = "eu-west-1" }
            "#,
        )
        .unwrap();
        let config = file.with_env(env(&[
            ("ANTHROPIC_API_KEY", "from-env"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("OPENAI_API_KEY", ""),
        ]));
        assert_eq!(config.anthropic.api_key.as_ref().unwrap().expose(), "from-env");
        assert_eq!(config.anthropic.base_url.as_deref(), Some("https://proxy.example/anthropic"));
        assert_eq!(config.bedrock.endpoint_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(config.bedrock.region.as_deref(), Some("us-west-2"));
        assert!(config.openai.api_key.is_none(), "an empty variable counts as unset");
        assert!(!format!("{config:?}").contains("from-env"), "keys never show in debug output");
    }

    #[tokio::test]
    async fn a_missing_key_names_the_variable() {
        let providers = Providers::new(ProvidersConfig::default(), Catalog::built_in()).unwrap();
        let error = providers.model("anthropic/claude-sonnet-4-5").await.unwrap_err().to_string();
        assert!(error.contains("ANTHROPIC_API_KEY") && error.contains("[providers.anthropic]"), "{error}");
        let error = providers.model("openai/gpt-4.1").await.unwrap_err().to_string();
        assert!(error.contains("OPENAI_API_KEY"), "{error}");
    }

    #[test]
    fn an_openai_compatible_server_needs_no_key() {
        let config = ProvidersConfig::default().with_env(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]));
        assert_eq!(config.status(Provider::OpenAi), ProviderStatus::Ready);
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let error = toml::from_str::<ProvidersConfig>("anthropic = { apikey = \"x\" }").unwrap_err().to_string();
        assert!(error.contains("apikey"), "{error}");
    }
}
