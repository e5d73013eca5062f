//! The config file: one TOML file named by `--config` or `RSWE_CONFIG`, else
//! `$XDG_CONFIG_HOME/rswe/rswe.toml` when it exists. Environment variables override it.

use anyhow::{Context, Result, bail};
use rswe_llm::{Catalog, CatalogEntry, ProvidersConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub providers: ProvidersConfig,
    /// Catalog entries that add models or override the built-in ones.
    pub models: Vec<CatalogEntry>,
}

impl Config {
    /// Loads the file named explicitly, or the default one if present, or the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path.to_path_buf())
            }
            None => default_path().filter(|path| path.exists()),
        };
        let mut config = match &path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Config>(&text).with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.providers = config.providers.with_process_env();
        Ok(config)
    }

    /// The built-in catalog with this file's `[[models]]` applied.
    pub fn catalog(&self) -> Result<Catalog> {
        let mut catalog = Catalog::built_in();
        catalog.extend(self.models.iter().cloned()).context("invalid [[models]] entry in the config file")?;
        Ok(catalog)
    }
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("rswe").join("rswe.toml"))
}
