//! Settings from the environment (CONTRACT.md "Configuration").

use shared::openai::config::{AgentSettings, AudioMode, DEFAULT_VOICE};
use shared::openai::{DEFAULT_MODEL, DEFAULT_REALTIME_URL};
use shared::twilio::rest::DEFAULT_API_BASE;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub port: u16,
    /// Without it, the embedded in-process store is used.
    pub redis_url: Option<String>,
    pub openai_api_key: String,
    pub openai_realtime_url: String,
    pub agent: AgentSettings,
    pub internal_secret: String,
    pub edge_base_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub twilio_api_base: String,
    pub max_call_seconds: u64,
    pub max_concurrent_calls: u32,
    /// How long live calls may run on after SIGTERM; below fly.toml's kill_timeout.
    pub drain_seconds: u64,
    /// This process's name in the session registry.
    pub instance_id: String,
    /// A live session not renewed for this long is taken as dead (heartbeat: a third of it).
    pub session_ttl_seconds: u64,
    /// How often the outbox is swept for events of calls whose worker died.
    pub outbox_sweep_seconds: u64,
    /// Bytes of undelivered events' JSON the outbox keeps in memory; past it, events
    /// the store holds are read back from it (see [`crate::outbox::Outbox`]).
    pub outbox_memory_bytes: usize,
    /// From accepting a connection to a `start` with a valid token (the upgrade
    /// request's headers included); past it the connection is closed.
    pub start_deadline_ms: u64,
    /// Connections without a valid token yet held at once; more are closed on arrival.
    pub max_unauthenticated_connections: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("media worker configuration: {0}")]
pub struct ConfigError(pub String);

impl MediaConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<MediaConfig, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or_else(|| ConfigError(format!("{name} is not set")));
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError(format!("{name} must be a whole number, not '{v}'"))),
            }
        };
        let audio_mode: AudioMode =
            get("AUDIO_MODE").unwrap_or_else(|| "pcm24k".into()).parse().map_err(ConfigError)?;
        let agent = AgentSettings::new(
            &get("OPENAI_REALTIME_MODEL").unwrap_or_else(|| DEFAULT_MODEL.into()),
            &get("REALTIME_VOICE").unwrap_or_else(|| DEFAULT_VOICE.into()),
            audio_mode,
        )
        .map_err(ConfigError)?;
        let port = number("PORT", 8080)?;
        let config = MediaConfig {
            port: u16::try_from(port).map_err(|_| ConfigError(format!("PORT {port} is not a port")))?,
            redis_url: get("REDIS_URL"),
            openai_api_key: required("OPENAI_API_KEY")?,
            openai_realtime_url: get("OPENAI_REALTIME_URL").unwrap_or_else(|| DEFAULT_REALTIME_URL.into()),
            agent,
            internal_secret: required("INTERNAL_SECRET")?,
            edge_base_url: required("EDGE_BASE_URL")?.trim_end_matches('/').to_owned(),
            twilio_account_sid: required("TWILIO_ACCOUNT_SID")?,
            twilio_auth_token: required("TWILIO_AUTH_TOKEN")?,
            twilio_api_base: get("TWILIO_API_BASE")
                .unwrap_or_else(|| DEFAULT_API_BASE.into())
                .trim_end_matches('/')
                .to_owned(),
            max_call_seconds: number("MAX_CALL_SECONDS", 600)?,
            max_concurrent_calls: u32::try_from(number("MAX_CONCURRENT_CALLS", 100)?)
                .map_err(|_| ConfigError("MAX_CONCURRENT_CALLS is too large".into()))?,
            drain_seconds: number("DRAIN_SECONDS", 25)?,
            session_ttl_seconds: number("SESSION_TTL_SECONDS", 15)?.max(3),
            outbox_sweep_seconds: number("OUTBOX_SWEEP_SECONDS", 10)?.max(1),
            outbox_memory_bytes: usize::try_from(number("OUTBOX_MEMORY_BYTES", 8 * 1024 * 1024)?)
                .map_err(|_| ConfigError("OUTBOX_MEMORY_BYTES is too large".into()))?,
            start_deadline_ms: number("START_DEADLINE_MS", 10_000)?.max(1),
            max_unauthenticated_connections: number("MAX_UNAUTHENTICATED_CONNECTIONS", 256)?,
            instance_id: get("FLY_MACHINE_ID")
                .or_else(|| get("INSTANCE_ID"))
                .unwrap_or_else(|| format!("pid-{}", std::process::id())),
        };
        if !config.openai_realtime_url.starts_with("wss://") && !config.openai_realtime_url.starts_with("ws://") {
            return Err(ConfigError("OPENAI_REALTIME_URL must be a ws:// or wss:// URL".into()));
        }
        Ok(config)
    }

    /// The Realtime URL with the model, as OpenAI expects it.
    pub fn realtime_url(&self) -> String {
        let separator = if self.openai_realtime_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}model={}", self.openai_realtime_url, self.agent.model)
    }
}
