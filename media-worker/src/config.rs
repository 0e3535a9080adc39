//! Settings from the environment (README.md, "Configuration").

use shared::openai::config::{AgentSettings, AudioMode, SettingsError, DEFAULT_TRANSCRIPTION_MODEL, DEFAULT_VOICE};
use shared::openai::pricing::{MicroUsd, TokenPrices};
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
        let audio_mode: AudioMode = get("AUDIO_MODE")
            .unwrap_or_else(|| "pcm24k".into())
            .parse()
            .map_err(|e: SettingsError| ConfigError(e.to_string()))?;
        let agent = AgentSettings::new(
            &get("OPENAI_REALTIME_MODEL").unwrap_or_else(|| DEFAULT_MODEL.into()),
            &get("REALTIME_VOICE").unwrap_or_else(|| DEFAULT_VOICE.into()),
            audio_mode,
        )
        .and_then(|a| {
            a.with_transcription_model(
                &get("OPENAI_TRANSCRIPTION_MODEL").unwrap_or_else(|| DEFAULT_TRANSCRIPTION_MODEL.into()),
            )
        })
        .map_err(|e| ConfigError(e.to_string()))?;
        let agent = {
            let mut pricing = agent.pricing;
            if let Some(text) = get("OPENAI_REALTIME_PRICES") {
                pricing.tokens = Some(
                    TokenPrices::parse(&text, pricing.tokens)
                        .map_err(|e| ConfigError(format!("OPENAI_REALTIME_PRICES: {e}")))?,
                );
            }
            if let Some(text) = get("OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE") {
                pricing.transcription_per_minute = Some(
                    MicroUsd::parse(&text)
                        .map_err(|e| ConfigError(format!("OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE: {e}")))?,
                );
            }
            agent.with_pricing(pricing)
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::openai::pricing::Pricing;

    fn config(extra: &[(&str, &str)]) -> Result<MediaConfig, ConfigError> {
        let base = [
            ("OPENAI_API_KEY", "sk-test"),
            ("INTERNAL_SECRET", "secret"),
            ("EDGE_BASE_URL", "http://edge"),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "token"),
        ];
        MediaConfig::from_lookup(|name| {
            extra.iter().chain(base.iter()).find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn models_default_to_current_ones_with_list_prices() {
        let agent = config(&[]).unwrap().agent;
        assert_eq!(agent.model, "gpt-realtime-2.1");
        assert_eq!(agent.transcription_model, "gpt-transcribe");
        assert_eq!(agent.pricing, Pricing::default_for("gpt-realtime-2.1", "gpt-transcribe"));
        assert!(agent.pricing.tokens.is_some() && agent.pricing.transcription_per_minute.is_some());
    }

    #[test]
    fn the_transcription_model_and_prices_are_settings() {
        let agent = config(&[
            ("OPENAI_TRANSCRIPTION_MODEL", "gpt-realtime-whisper"),
            ("OPENAI_REALTIME_PRICES", "audio_output=50"),
        ])
        .unwrap()
        .agent;
        assert_eq!(agent.transcription_model, "gpt-realtime-whisper");
        assert_eq!(agent.pricing.transcription_per_minute, Some(MicroUsd(17_000)));
        assert_eq!(
            agent.pricing.tokens.map(|t| (t.audio_output, t.audio_input)),
            Some((MicroUsd(50_000_000), MicroUsd(32_000_000)))
        );

        // A model without list prices: no estimate unless all of them are given.
        let agent = config(&[("OPENAI_REALTIME_MODEL", "gpt-realtime-9"), ("OPENAI_TRANSCRIPTION_MODEL", "stt-9")])
            .unwrap()
            .agent;
        assert_eq!(agent.pricing, Pricing::default());
        let error = config(&[("OPENAI_REALTIME_MODEL", "gpt-realtime-9"), ("OPENAI_REALTIME_PRICES", "text_input=1")])
            .unwrap_err();
        assert!(error.0.starts_with("OPENAI_REALTIME_PRICES: no default prices"), "{error}");
        let agent = config(&[
            ("OPENAI_REALTIME_MODEL", "gpt-realtime-9"),
            (
                "OPENAI_REALTIME_PRICES",
                "text_input=1,text_cached_input=0.1,text_output=2,audio_input=3,audio_cached_input=0.3,audio_output=4",
            ),
            ("OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE", "0.006"),
        ])
        .unwrap()
        .agent;
        assert_eq!(agent.pricing.tokens.map(|t| t.audio_output), Some(MicroUsd(4_000_000)));
        assert_eq!(agent.pricing.transcription_per_minute, Some(MicroUsd(6_000)));
        assert!(config(&[("OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE", "cheap")]).is_err());
    }
}
