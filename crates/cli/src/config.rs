//! The config file: one TOML file named by `--config` or `RSWE_CONFIG`, else
//! `$XDG_CONFIG_HOME/rswe/rswe.toml` when it exists. Environment variables override it.

use anyhow::{Context, Result, bail};
use rswe_llm::{Catalog, CatalogEntry, ProvidersConfig};
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, SandboxMode};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub providers: ProvidersConfig,
    /// Catalog entries that add models or override the built-in ones.
    pub models: Vec<CatalogEntry>,
    pub agent: AgentSection,
    pub sandbox: SandboxSection,
    pub git: GitSection,
    pub server: ServerSection,
    /// Tool servers: see "Tools from MCP servers" in the README.
    pub mcp: McpSection,
    /// The Slack channel: see docs/slack.md.
    pub slack: SlackSection,
    /// The GitHub channel: see docs/github.md.
    pub github: GitHubSection,
    /// How the context is managed: see docs/context-economy.md.
    pub context: rswe_agent::context::EconomySettings,
    /// Where sessions and the database live (default: RSWE_DATA_DIR, else
    /// $XDG_DATA_HOME/rswe, else ~/.local/share/rswe).
    pub data_dir: Option<PathBuf>,
    /// The file this configuration came from, if any.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[agent]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// The model sessions use unless told otherwise.
    pub model: String,
    pub max_steps: Option<u32>,
    pub max_cost_usd: Option<f64>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection { model: "anthropic/claude-sonnet-4-5".into(), max_steps: Some(200), max_cost_usd: None }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// "auto" (bubblewrap when it works here), "bubblewrap", or "none".
    pub mode: String,
    /// Whether commands may use the network.
    pub network: bool,
    /// More host paths commands may read (the home directory is hidden otherwise).
    pub expose: Vec<PathBuf>,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection { mode: "auto".into(), network: true, expose: Vec::new() }
    }
}

/// `[server]`: how `rswe serve` listens and runs sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The address to listen on. Keep the default (loopback) unless a reverse proxy
    /// with TLS sits in front.
    pub listen: String,
    /// The address people use to reach the server (links, cookie `Secure` flag).
    /// Default: http://<listen>.
    pub public_url: Option<String>,
    /// Sessions working at once; more wait their turn.
    pub max_working: usize,
    /// Seconds a session rests before its sandbox is released (made again, workspace
    /// intact, when spoken to).
    pub idle_release_secs: u64,
    /// Whether /metrics answers without a key.
    pub metrics_public: bool,
    /// The largest request body, in megabytes (attachments travel base64 in JSON).
    pub max_body_mb: usize,
    /// Seconds working sessions get to finish a step on shutdown; the rest resume on
    /// the next start.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_working: 4,
            idle_release_secs: 900,
            metrics_public: true,
            max_body_mb: 25,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[mcp]`: the MCP servers whose tools sessions get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSection {
    /// An `mcpServers` JSON file (the format of Claude Desktop, Claude Code's
    /// `.mcp.json` and Cursor); relative to this config file.
    pub config: Option<PathBuf>,
    /// Servers written inline, `[mcp.servers.<name>]`, with the same fields; they win
    /// over the file's servers of the same name.
    pub servers: toml::Table,
    /// Whether a repository's own `.mcp.json` is used (its stdio servers, in the
    /// sandbox). Off: a repository must not start processes on its own.
    pub repository_config: bool,
    /// Seconds a server has to start and answer the MCP handshake.
    pub startup_timeout_secs: u64,
    /// Seconds one tool call may take, unless a server's `timeout` says otherwise.
    pub tool_timeout_secs: u64,
}

impl Default for McpSection {
    fn default() -> Self {
        McpSection {
            config: None,
            servers: toml::Table::new(),
            repository_config: false,
            startup_timeout_secs: 30,
            tool_timeout_secs: 120,
        }
    }
}

/// `[slack]`: the Slack app (environment variables win over the file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSection {
    /// SLACK_BOT_TOKEN (`xoxb-…`).
    pub bot_token: Option<String>,
    /// SLACK_SIGNING_SECRET: takes events at `POST /slack/events`.
    pub signing_secret: Option<String>,
    /// SLACK_APP_TOKEN (`xapp-…`): takes events over Socket Mode, no public URL needed.
    pub app_token: Option<String>,
    /// SLACK_API_URL, for a proxy.
    pub api_url: Option<String>,
    /// ADMIN_USER_ID_LIST: Slack user ids who may use rswe and approve others.
    pub admins: Vec<String>,
    /// The repository sessions started from Slack work on.
    pub repository: Option<String>,
    /// The largest attachment fetched from Slack, in megabytes.
    pub max_file_mb: usize,
}

impl std::fmt::Debug for SlackSection {
    /// Without the tokens and the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSection")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "…"))
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "…"))
            .field("app_token", &self.app_token.as_ref().map(|_| "…"))
            .field("api_url", &self.api_url)
            .field("admins", &self.admins)
            .field("repository", &self.repository)
            .finish()
    }
}

impl Default for SlackSection {
    fn default() -> Self {
        SlackSection {
            bot_token: None,
            signing_secret: None,
            app_token: None,
            api_url: None,
            admins: Vec::new(),
            repository: None,
            max_file_mb: 20,
        }
    }
}

/// `[github]`: how rswe works with GitHub (environment variables win over the file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubSection {
    /// GITHUB_API_URL: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.
    pub api_url: Option<String>,
    /// GITHUB_TOKEN: a personal access token (classic or fine-grained).
    pub token: Option<String>,
    /// GITHUB_APP_ID: a GitHub App instead of a token.
    pub app_id: Option<toml::Value>,
    /// GITHUB_APP_PRIVATE_KEY_PATH: the App's private key (.pem), relative to this config file.
    pub private_key_file: Option<PathBuf>,
    /// GITHUB_APP_INSTALLATION_ID: the App's installation for every repository (default: found per
    /// repository).
    pub installation_id: Option<toml::Value>,
    /// GITHUB_WEBHOOK_SECRET: verifies deliveries to `POST /github/webhook`.
    pub webhook_secret: Option<String>,
    /// The phrase that calls rswe in a comment.
    pub trigger: String,
    /// An issue assigned to this login starts a session (default: the credentials' own login).
    pub bot_user: Option<String>,
    /// Forks are made under this organisation instead of the token's account.
    pub fork_organization: Option<String>,
    /// The commit author's name (default: the credentials' identity).
    pub commit_name: Option<String>,
    /// The commit author's email (default: the identity's noreply address).
    pub commit_email: Option<String>,
    /// The longest `wait_for_checks` waits, in seconds.
    pub checks_timeout_secs: u64,
}

impl std::fmt::Debug for GitHubSection {
    /// Without the token and the webhook secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSection")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("app_id", &self.app_id)
            .field("private_key_file", &self.private_key_file)
            .field("installation_id", &self.installation_id)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "…"))
            .field("trigger", &self.trigger)
            .field("bot_user", &self.bot_user)
            .field("fork_organization", &self.fork_organization)
            .field("commit_name", &self.commit_name)
            .field("commit_email", &self.commit_email)
            .field("checks_timeout_secs", &self.checks_timeout_secs)
            .finish()
    }
}

impl Default for GitHubSection {
    fn default() -> Self {
        GitHubSection {
            api_url: None,
            token: None,
            app_id: None,
            private_key_file: None,
            installation_id: None,
            webhook_secret: None,
            trigger: rswe_github::settings::DEFAULT_TRIGGER.to_string(),
            bot_user: None,
            fork_organization: None,
            commit_name: None,
            commit_email: None,
            checks_timeout_secs: rswe_github::settings::DEFAULT_CHECKS_TIMEOUT.as_secs(),
        }
    }
}

/// `[git]`: the identity of the agent's commits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitSection {
    pub author_name: String,
    pub author_email: String,
}

impl Default for GitSection {
    fn default() -> Self {
        GitSection { author_name: "rswe".into(), author_email: "rswe@localhost".into() }
    }
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
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Config>(&text).with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.providers = config.providers.with_process_env();
        if let Ok(model) = std::env::var("RSWE_MODEL")
            && !model.trim().is_empty()
        {
            config.agent.model = model;
        }
        config.path = path;
        Ok(config)
    }

    /// Where sessions and the database live. `RSWE_DATA_DIR` wins over the file.
    pub fn data_dir(&self) -> PathBuf {
        match (std::env::var_os("RSWE_DATA_DIR"), &self.data_dir) {
            (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
            (_, Some(dir)) => dir.clone(),
            _ => rswe_store::data_dir(),
        }
    }

    /// The local sandbox for a session: its directory under the data directory, the data
    /// directory and the config file hidden, toolchains under the home directory visible
    /// read-only.
    pub fn sandbox(&self, session_dir: &Path, workspace: &Path, data_dir: &Path) -> Result<LocalSandbox> {
        let mode = match self.sandbox.mode.as_str() {
            "auto" => SandboxMode::Auto,
            "bubblewrap" => SandboxMode::Bubblewrap,
            "none" => SandboxMode::None,
            other => bail!("sandbox.mode = \"{other}\" is not one of \"auto\", \"bubblewrap\", \"none\""),
        };
        let mut config = LocalSandboxConfig::new(session_dir);
        config.workspace = Some(workspace.to_path_buf());
        config.mode = mode;
        config.network = self.sandbox.network;
        config.hidden_paths.push(data_dir.to_path_buf());
        if let Some(path) = &self.path {
            config.hidden_paths.push(path.clone());
        }
        // The MCP server file holds tokens too, and the GitHub App's key signs its tokens.
        if let Some(file) = self.mcp_file() {
            config.hidden_paths.push(file);
        }
        if let Some((key, _)) = self.github_private_key_path(&process_env)
            && key.exists()
        {
            config.hidden_paths.push(key);
        }
        config.readonly_paths = self.sandbox.expose.clone();
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            for toolchain in [".rustup", ".cargo/bin", ".cargo/registry", ".cargo/git", ".pyenv", ".nvm", ".local/bin"]
            {
                let path = home.join(toolchain);
                if path.exists() && !config.readonly_paths.contains(&path) {
                    config.readonly_paths.push(path);
                }
            }
        }
        LocalSandbox::new(config).with_context(|| format!("cannot create the sandbox in {}", session_dir.display()))
    }

    /// The MCP servers of `[mcp]`: the file named by `config`, then the inline ones.
    /// `${VAR}`s are expanded from the environment now, so a missing one is found at start.
    pub fn mcp_servers(&self) -> Result<rswe_mcp::McpConfig> {
        let env = |name: &str| std::env::var(name).ok();
        let mut servers = match self.mcp_file() {
            Some(file) => {
                rswe_mcp::McpConfig::from_file(&file, &env).with_context(|| format!("in {}", file.display()))?
            }
            None => rswe_mcp::McpConfig::default(),
        };
        let inline = rswe_mcp::McpConfig::from_toml(&self.mcp.servers, &env).context("in [mcp.servers]")?;
        servers.servers.extend(inline.servers);
        Ok(servers)
    }

    /// The `mcpServers` file of `[mcp] config`, relative to this config file.
    fn mcp_file(&self) -> Option<PathBuf> {
        let file = self.mcp.config.as_ref()?;
        Some(self.relative_to_file(file))
    }

    /// A path written in this config file: a relative one is relative to the file.
    fn relative_to_file(&self, path: &Path) -> PathBuf {
        match (&self.path, path.is_relative()) {
            (Some(config), true) => config.parent().unwrap_or(Path::new(".")).join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The timeouts of `[mcp]`.
    pub fn mcp_settings(&self) -> Result<rswe_mcp::McpSettings> {
        if self.mcp.startup_timeout_secs == 0 || self.mcp.tool_timeout_secs == 0 {
            bail!("mcp.startup_timeout_secs and mcp.tool_timeout_secs must be at least 1");
        }
        Ok(rswe_mcp::McpSettings {
            startup_timeout: std::time::Duration::from_secs(self.mcp.startup_timeout_secs),
            call_timeout: std::time::Duration::from_secs(self.mcp.tool_timeout_secs),
        })
    }

    /// The Slack channel's settings, `None` when Slack is not configured (no bot token).
    pub fn slack_settings(&self) -> Result<Option<rswe_server::slack::SlackSettings>> {
        let env = |name: &str| std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|v| !v.is_empty());
        let slack = &self.slack;
        let bot_token = env("SLACK_BOT_TOKEN");
        let from_file =
            |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let bot_token = bot_token.or_else(|| from_file(&slack.bot_token));
        let signing_secret = env("SLACK_SIGNING_SECRET").or_else(|| from_file(&slack.signing_secret));
        let app_token = env("SLACK_APP_TOKEN").or_else(|| from_file(&slack.app_token));
        let Some(bot_token) = bot_token else {
            if signing_secret.is_some() || app_token.is_some() {
                bail!("Slack: SLACK_BOT_TOKEN (the app's xoxb- bot token) is not set; see docs/slack.md");
            }
            return Ok(None);
        };
        if signing_secret.is_none() && app_token.is_none() {
            bail!(
                "Slack: set SLACK_SIGNING_SECRET (events at /slack/events) or SLACK_APP_TOKEN (Socket Mode, no public \
                 URL needed) beside SLACK_BOT_TOKEN; see docs/slack.md"
            );
        }
        let admins = match env("ADMIN_USER_ID_LIST") {
            Some(list) => list.split([',', ' ', '\t']).filter(|id| !id.is_empty()).map(str::to_string).collect(),
            None => slack.admins.iter().map(|id| id.trim().to_string()).filter(|id| !id.is_empty()).collect(),
        };
        Ok(Some(rswe_server::slack::SlackSettings {
            api_url: env("SLACK_API_URL")
                .or_else(|| slack.api_url.clone())
                .unwrap_or_else(|| rswe_slack::api::DEFAULT_API_URL.to_string()),
            bot_token,
            signing_secret,
            app_token,
            admins,
            repository: slack.repository.clone(),
            max_file_bytes: slack.max_file_mb.max(1) * 1024 * 1024,
        }))
    }

    /// The GitHub channel's settings, `None` when GitHub is not configured (neither a token nor an
    /// App id). The App's private key is read now, so a key that cannot be read is found at start.
    pub fn github_settings(&self) -> Result<Option<rswe_github::GitHubSettings>> {
        self.github_settings_with(&process_env)
    }

    fn github_settings_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<rswe_github::GitHubSettings>> {
        use rswe_github::{AppCredentials, Credentials, GitHubSettings};
        let github = &self.github;
        let file =
            |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let token = match env("GITHUB_TOKEN") {
            Some(token) => Some((token, "GITHUB_TOKEN")),
            None => file(&github.token).map(|token| (token, "[github] token")),
        };
        let app_id = github_id(env, "GITHUB_APP_ID", github.app_id.as_ref(), "[github] app_id")?;
        let installation_id =
            github_id(env, "GITHUB_APP_INSTALLATION_ID", github.installation_id.as_ref(), "[github] installation_id")?;
        let key_path = self.github_private_key_path(env);
        let key_pem = env("GITHUB_APP_PRIVATE_KEY");
        if key_pem.is_some() && env("GITHUB_APP_PRIVATE_KEY_PATH").is_some() {
            bail!(
                "GitHub: both GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are set; keep one (the key itself, \
                 or the path of its .pem file)"
            );
        }
        let key_source = match (&key_pem, &key_path) {
            (Some(_), _) => Some("GITHUB_APP_PRIVATE_KEY"),
            (None, Some((_, source))) => Some(*source),
            (None, None) => None,
        };
        let webhook_secret = env("GITHUB_WEBHOOK_SECRET").or_else(|| file(&github.webhook_secret));

        let credentials = match (token, app_id) {
            (Some((_, token_source)), Some((_, app_source))) => bail!(
                "GitHub: both a personal access token ({token_source}) and a GitHub App ({app_source}) are set; keep \
                 one: remove {token_source} to use the App, or {app_source} to use the token"
            ),
            (_, None) if key_source.is_some() || installation_id.is_some() => {
                let source = key_source.or(installation_id.map(|(_, source)| source)).unwrap_or_default();
                bail!(
                    "GitHub: {source} is set but not the App's id: set GITHUB_APP_ID (or [github] app_id) to the App \
                     ID shown on the App's settings page, or remove {source}"
                )
            }
            (None, None) if webhook_secret.is_some() => bail!(
                "GitHub: a webhook secret is set but no credentials: set GITHUB_TOKEN (a personal access token), or \
                 GITHUB_APP_ID and the App's private key; see docs/github.md"
            ),
            (None, None) => return Ok(None),
            (Some((token, _)), None) => Credentials::Token(token),
            (None, Some((app_id, app_source))) => {
                let private_key_pem = match (key_pem, key_path) {
                    (Some(pem), _) => private_key_pem(&pem, "GITHUB_APP_PRIVATE_KEY")?,
                    (None, Some((path, source))) => {
                        let pem = std::fs::read_to_string(&path).with_context(|| {
                            format!(
                                "GitHub: cannot read the App's private key {} ({source}): check the path and that \
                                 rswe may read the file",
                                path.display()
                            )
                        })?;
                        private_key_pem(&pem, &format!("{} ({source})", path.display()))?
                    }
                    (None, None) => bail!(
                        "GitHub: {app_source} is set but not the App's private key: set GITHUB_APP_PRIVATE_KEY_PATH \
                         (or [github] private_key_file) to the .pem file generated on the App's settings page, or \
                         GITHUB_APP_PRIVATE_KEY to its contents"
                    ),
                };
                Credentials::App(AppCredentials {
                    app_id,
                    private_key_pem,
                    installation_id: installation_id.map(|(id, _)| id),
                })
            }
        };

        let trigger = github.trigger.trim();
        if trigger.is_empty() {
            bail!(
                "GitHub: [github] trigger is empty: set the phrase that calls rswe in a comment, such as \"{}\" (the \
                 default)",
                rswe_github::settings::DEFAULT_TRIGGER
            );
        }
        if github.checks_timeout_secs == 0 {
            bail!("GitHub: [github] checks_timeout_secs must be at least 1 (default: 1200, twenty minutes)");
        }
        let mut settings = GitHubSettings::new(credentials);
        settings.api_url = env("GITHUB_API_URL")
            .or_else(|| file(&github.api_url))
            .unwrap_or_else(|| rswe_github::api::DEFAULT_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(settings.api_url.starts_with("https://") || settings.api_url.starts_with("http://")) {
            bail!(
                "GitHub: the API URL {:?} (GITHUB_API_URL or [github] api_url) is not an http(s) URL: use {} for \
                 github.com, or https://HOST/api/v3 for GitHub Enterprise Server",
                settings.api_url,
                rswe_github::api::DEFAULT_API_URL
            );
        }
        settings.webhook_secret = webhook_secret;
        settings.trigger = trigger.to_string();
        settings.bot_user = file(&github.bot_user).map(|login| login.trim_start_matches('@').to_string());
        settings.fork_organization = file(&github.fork_organization);
        settings.commit_name = file(&github.commit_name);
        settings.commit_email = file(&github.commit_email);
        settings.checks_timeout = std::time::Duration::from_secs(github.checks_timeout_secs);
        Ok(Some(settings))
    }

    /// The GitHub App's private key file and where it was named: GITHUB_APP_PRIVATE_KEY_PATH (as
    /// given), else `[github] private_key_file` (relative to this config file).
    fn github_private_key_path(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, &'static str)> {
        match env("GITHUB_APP_PRIVATE_KEY_PATH") {
            Some(path) => Some((PathBuf::from(path), "GITHUB_APP_PRIVATE_KEY_PATH")),
            None => {
                let file = self.github.private_key_file.as_ref().filter(|path| !path.as_os_str().is_empty())?;
                Some((self.relative_to_file(file), "[github] private_key_file"))
            }
        }
    }

    /// The built-in catalog with this file's `[[models]]` applied.
    pub fn catalog(&self) -> Result<Catalog> {
        let mut catalog = Catalog::built_in();
        catalog.extend(self.models.iter().cloned()).context("invalid [[models]] entry in the config file")?;
        Ok(catalog)
    }
}

/// An environment variable, trimmed; `None` when unset or blank.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

/// A GitHub id (App, installation) from the environment, else the file, with where it came from.
fn github_id(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    value: Option<&toml::Value>,
    setting: &'static str,
) -> Result<Option<(u64, &'static str)>> {
    let (text, source) = match (env(variable), value) {
        (Some(text), _) => (text, variable),
        (None, Some(toml::Value::Integer(id))) => (id.to_string(), setting),
        (None, Some(toml::Value::String(text))) if text.trim().is_empty() => return Ok(None),
        (None, Some(toml::Value::String(text))) => (text.trim().to_string(), setting),
        (None, Some(other)) => bail!("GitHub: {setting} must be a number, not {other}"),
        (None, None) => return Ok(None),
    };
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(Some((id, source))),
        _ => bail!(
            "GitHub: {source} = {text:?} is not a number: use the numeric id GitHub shows (the App ID on the App's \
             settings page; the installation id ends the installation's settings URL)"
        ),
    }
}

/// A private key as given in the environment or a file: `\n` sequences (common in env files) become
/// newlines and surrounding quotes go; it must be PEM.
fn private_key_pem(text: &str, source: &str) -> Result<String> {
    let mut text = text.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            text = inner.trim();
        }
    }
    let pem = text.replace("\\r\\n", "\n").replace("\\n", "\n");
    if !(pem.contains("-----BEGIN") && pem.contains("PRIVATE KEY-----")) {
        bail!(
            "GitHub: {source} does not hold a PEM private key (-----BEGIN RSA PRIVATE KEY----- …): use the .pem file \
             generated on the App's settings page{}",
            if source == "GITHUB_APP_PRIVATE_KEY" { "; to name the file, use GITHUB_APP_PRIVATE_KEY_PATH" } else { "" }
        );
    }
    Ok(format!("{}\n", pem.trim()))
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("rswe").join("rswe.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rswe_github::Credentials;

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\nkeybody\n-----END RSA PRIVATE KEY-----\n";

    /// A config file in a directory of its own (for relative paths), parsed as `load` would.
    fn config(dir: &Path, text: &str) -> Config {
        let path = dir.join("rswe.toml");
        std::fs::write(&path, text).unwrap();
        let mut config: Config = toml::from_str(text).unwrap();
        config.path = Some(path);
        config
    }

    /// The environment `pairs` describe, read the way the process environment is (trimmed, blank unset).
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_string())
                .filter(|v| !v.is_empty())
        }
    }

    fn settings(config: &Config, pairs: &[(&str, &str)]) -> Result<Option<rswe_github::GitHubSettings>> {
        config.github_settings_with(&env(pairs))
    }

    fn error(config: &Config, pairs: &[(&str, &str)]) -> String {
        format!("{:#}", settings(config, pairs).unwrap_err())
    }

    #[test]
    fn github_is_off_until_a_token_or_an_app_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "[github]\ntrigger = \"@bot\"\n");
        assert!(settings(&config, &[]).unwrap().is_none());
        assert!(settings(&config, &[("GITHUB_TOKEN", "  ")]).unwrap().is_none());
        let message = error(&config, &[("GITHUB_WEBHOOK_SECRET", "s3cret")]);
        assert!(message.contains("no credentials") && message.contains("GITHUB_TOKEN"), "{message}");
    }

    #[test]
    fn a_token_from_the_environment_wins_over_the_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = config(dir.path(), "[github]\ntoken = \"ghp_fromfile\"\nwebhook_secret = \"file-secret\"\n");
        let github = settings(&file, &[("GITHUB_TOKEN", " ghp_fromenv\n")]).unwrap().unwrap();
        assert_eq!(github.credentials, Credentials::Token("ghp_fromenv".into()));
        assert_eq!(github.api_url, "https://api.github.com");
        assert_eq!(github.webhook_secret.as_deref(), Some("file-secret"));
        assert_eq!(github.trigger, "@rswe");
        assert_eq!(github.checks_timeout, std::time::Duration::from_secs(1200));
        assert_eq!(github.bot_user, None);
        let github = settings(&file, &[]).unwrap().unwrap();
        assert_eq!(github.credentials, Credentials::Token("ghp_fromfile".into()));

        let file = config(
            dir.path(),
            "[github]\ntoken = \"ghp_x\"\napi_url = \"https://ghe.example.com/api/v3/\"\ntrigger = \" @helper \"\n\
             bot_user = \"@helper-bot\"\nfork_organization = \"acme-forks\"\ncommit_name = \"Helper\"\n\
             commit_email = \"helper@example.com\"\nchecks_timeout_secs = 60\n",
        );
        let github = settings(&file, &[("GITHUB_WEBHOOK_SECRET", "env-secret")]).unwrap().unwrap();
        assert_eq!(github.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(github.webhook_secret.as_deref(), Some("env-secret"));
        assert_eq!(github.trigger, "@helper");
        assert_eq!(github.bot_user.as_deref(), Some("helper-bot"));
        assert_eq!(github.fork_organization.as_deref(), Some("acme-forks"));
        assert_eq!(github.commit_name.as_deref(), Some("Helper"));
        assert_eq!(github.commit_email.as_deref(), Some("helper@example.com"));
        assert_eq!(github.checks_timeout, std::time::Duration::from_secs(60));
        let github = settings(&file, &[("GITHUB_API_URL", "http://127.0.0.1:9/api/v3")]).unwrap().unwrap();
        assert_eq!(github.api_url, "http://127.0.0.1:9/api/v3");
    }

    #[test]
    fn an_app_reads_its_key_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.pem"), PEM).unwrap();
        let file = config(dir.path(), "[github]\napp_id = 12345\nprivate_key_file = \"app.pem\"\n");
        let github = settings(&file, &[]).unwrap().unwrap();
        let Credentials::App(app) = &github.credentials else { panic!("{:?}", github.credentials) };
        assert_eq!((app.app_id, app.private_key_pem.as_str(), app.installation_id), (12345, PEM, None));
        assert_eq!(file.github_private_key_path(&env(&[])).unwrap().0, dir.path().join("app.pem"));

        // The environment wins; ids may be strings; an inline key may carry literal \n and quotes.
        let file = config(dir.path(), "[github]\napp_id = \"777\"\ninstallation_id = \"42\"\n");
        let inline = format!("\"{}\"", PEM.trim().replace('\n', "\\n"));
        let github = settings(&file, &[("GITHUB_APP_PRIVATE_KEY", &inline), ("GITHUB_APP_INSTALLATION_ID", "43")])
            .unwrap()
            .unwrap();
        let Credentials::App(app) = &github.credentials else { panic!("{:?}", github.credentials) };
        assert_eq!((app.app_id, app.private_key_pem.as_str(), app.installation_id), (777, PEM, Some(43)));
        let path = dir.path().join("app.pem");
        let github =
            settings(&file, &[("GITHUB_APP_ID", "778"), ("GITHUB_APP_PRIVATE_KEY_PATH", path.to_str().unwrap())])
                .unwrap()
                .unwrap();
        let Credentials::App(app) = &github.credentials else { panic!("{:?}", github.credentials) };
        assert_eq!((app.app_id, app.installation_id), (778, Some(42)));
    }

    #[test]
    fn mistakes_say_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let empty = config(dir.path(), "");

        let message = error(&empty, &[("GITHUB_APP_ID", "12345")]);
        assert!(message.contains("GITHUB_APP_ID is set but not the App's private key"), "{message}");
        assert!(
            message.contains("GITHUB_APP_PRIVATE_KEY_PATH") && message.contains("GITHUB_APP_PRIVATE_KEY "),
            "{message}"
        );

        let message = error(&empty, &[("GITHUB_TOKEN", "ghp_x"), ("GITHUB_APP_ID", "12345")]);
        assert!(message.contains("both a personal access token (GITHUB_TOKEN) and a GitHub App (GITHUB_APP_ID)"));
        assert!(message.contains("keep one"), "{message}");
        let app_in_file = config(dir.path(), "[github]\napp_id = 5\nprivate_key_file = \"app.pem\"\n");
        let message = error(&app_in_file, &[("GITHUB_TOKEN", "ghp_x")]);
        assert!(message.contains("(GITHUB_TOKEN) and a GitHub App ([github] app_id)"), "{message}");

        let message = error(&app_in_file, &[]);
        assert!(message.contains("cannot read the App's private key") && message.contains("app.pem"), "{message}");
        assert!(message.contains("[github] private_key_file"), "{message}");

        let message = error(&empty, &[("GITHUB_APP_ID", "my-app"), ("GITHUB_APP_PRIVATE_KEY", PEM)]);
        assert!(message.contains("GITHUB_APP_ID = \"my-app\" is not a number"), "{message}");
        let message = error(&config(dir.path(), "[github]\napp_id = -3\n"), &[]);
        assert!(message.contains("[github] app_id = \"-3\" is not a number"), "{message}");
        let message = error(&config(dir.path(), "[github]\napp_id = 1.5\n"), &[]);
        assert!(message.contains("[github] app_id must be a number"), "{message}");

        let message = error(&empty, &[("GITHUB_APP_PRIVATE_KEY_PATH", "/etc/rswe/app.pem")]);
        assert!(message.contains("GITHUB_APP_PRIVATE_KEY_PATH is set but not the App's id: set GITHUB_APP_ID"));
        let message = error(&empty, &[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", "/etc/rswe/app.pem")]);
        assert!(message.contains("does not hold a PEM private key") && message.contains("_PATH"), "{message}");
        let message = error(
            &empty,
            &[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", PEM), ("GITHUB_APP_PRIVATE_KEY_PATH", "/k.pem")],
        );
        assert!(message.contains("keep one"), "{message}");

        let message = error(&config(dir.path(), "[github]\ntrigger = \" \"\n"), &[("GITHUB_TOKEN", "ghp_x")]);
        assert!(message.contains("[github] trigger is empty") && message.contains("\"@rswe\""), "{message}");
        let message = error(&config(dir.path(), "[github]\nchecks_timeout_secs = 0\n"), &[("GITHUB_TOKEN", "ghp_x")]);
        assert!(message.contains("checks_timeout_secs must be at least 1"), "{message}");
        let message = error(&empty, &[("GITHUB_TOKEN", "ghp_x"), ("GITHUB_API_URL", "api.github.com")]);
        assert!(message.contains("is not an http(s) URL") && message.contains("/api/v3"), "{message}");

        let unknown = toml::from_str::<Config>("[github]\napp_key = \"x\"\n").unwrap_err().to_string();
        assert!(unknown.contains("app_key"), "{unknown}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = config(dir.path(), "[github]\ntoken = \"ghp_secret_token\"\nwebhook_secret = \"hook-secret\"\n");
        let shown = format!("{file:?}");
        assert!(!shown.contains("ghp_secret_token") && !shown.contains("hook-secret"), "{shown}");
        let github = settings(&file, &[]).unwrap().unwrap();
        assert!(!format!("{:?}", github.credentials).contains("ghp_secret_token"));
    }
}
