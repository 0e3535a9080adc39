//! What a call cost: the Realtime model's token prices and the input transcription's
//! per-minute price, and the arithmetic, in whole micro-dollars so sums are exact.
//!
//! Default prices are OpenAI's list prices per model, from the model pages
//! (https://developers.openai.com/api/docs/models/gpt-realtime-2.1,
//! https://developers.openai.com/api/docs/models/gpt-realtime-2.1-mini,
//! https://developers.openai.com/api/docs/models/gpt-transcribe,
//! https://developers.openai.com/api/docs/models/gpt-live-transcribe), which the pricing
//! page (https://developers.openai.com/api/docs/pricing) refers to. Realtime usage is
//! billed per response from the tokens `response.done` reports; input transcription is
//! billed apart, by the transcription model, per minute of audio
//! (https://developers.openai.com/api/docs/guides/realtime-costs). A model without a
//! default has no estimate unless its prices are configured.

use serde::{Deserialize, Serialize};

use crate::events::TokenUsage;

/// An amount of US dollars in millionths, parsed from decimal text without floats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MicroUsd(pub u64);

impl MicroUsd {
    pub const fn from_usd_millionths(micros: u64) -> MicroUsd {
        MicroUsd(micros)
    }

    /// Reads "32", "0.4" or "0.0045" (dollars, at most six decimals).
    pub fn parse(text: &str) -> Result<MicroUsd, PriceError> {
        let bad = || PriceError(format!("'{text}' is not an amount in dollars with at most six decimals"));
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if (whole.is_empty() && fraction.is_empty())
            || fraction.len() > 6
            || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let fraction: u64 =
            if fraction.is_empty() { 0 } else { format!("{fraction:0<6}").parse().map_err(|_| bad())? };
        whole.checked_mul(1_000_000).and_then(|w| w.checked_add(fraction)).map(MicroUsd).ok_or_else(bad)
    }
}

/// Realtime token prices, each in dollars per million tokens (held as micro-dollars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPrices {
    pub text_input: MicroUsd,
    pub text_cached_input: MicroUsd,
    pub text_output: MicroUsd,
    pub audio_input: MicroUsd,
    pub audio_cached_input: MicroUsd,
    pub audio_output: MicroUsd,
}

const fn usd(micros: u64) -> MicroUsd {
    MicroUsd(micros)
}

impl TokenPrices {
    /// OpenAI's list prices for the models this service is meant to run.
    pub fn default_for(model: &str) -> Option<TokenPrices> {
        match model {
            // $4 / $0.40 / $24 text, $32 / $0.40 / $64 audio, per 1M tokens.
            "gpt-realtime-2.1" => Some(TokenPrices {
                text_input: usd(4_000_000),
                text_cached_input: usd(400_000),
                text_output: usd(24_000_000),
                audio_input: usd(32_000_000),
                audio_cached_input: usd(400_000),
                audio_output: usd(64_000_000),
            }),
            // $0.60 / $0.06 / $2.40 text, $10 / $0.30 / $20 audio, per 1M tokens.
            "gpt-realtime-2.1-mini" => Some(TokenPrices {
                text_input: usd(600_000),
                text_cached_input: usd(60_000),
                text_output: usd(2_400_000),
                audio_input: usd(10_000_000),
                audio_cached_input: usd(300_000),
                audio_output: usd(20_000_000),
            }),
            _ => None,
        }
    }

    /// Reads `text_input=4,text_cached_input=0.4,...` over `base` (all six keys are
    /// needed when there is no base).
    pub fn parse(text: &str, base: Option<TokenPrices>) -> Result<TokenPrices, PriceError> {
        let mut slots: [Option<MicroUsd>; 6] = match base {
            Some(b) => [
                Some(b.text_input),
                Some(b.text_cached_input),
                Some(b.text_output),
                Some(b.audio_input),
                Some(b.audio_cached_input),
                Some(b.audio_output),
            ],
            None => [None; 6],
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| PriceError(format!("'{pair}' is not key=dollars")))?;
            let index = PRICE_KEYS.iter().position(|k| *k == key.trim()).ok_or_else(|| {
                PriceError(format!("unknown price '{}'; known: {}", key.trim(), PRICE_KEYS.join(", ")))
            })?;
            slots[index] = Some(MicroUsd::parse(value)?);
        }
        let missing: Vec<&str> = PRICE_KEYS.iter().zip(&slots).filter(|(_, s)| s.is_none()).map(|(k, _)| *k).collect();
        if !missing.is_empty() {
            return Err(PriceError(format!("no default prices for this model; set {}", missing.join(", "))));
        }
        let [a, b, c, d, e, f] = slots.map(Option::unwrap_or_default);
        Ok(TokenPrices {
            text_input: a,
            text_cached_input: b,
            text_output: c,
            audio_input: d,
            audio_cached_input: e,
            audio_output: f,
        })
    }
}

pub const PRICE_KEYS: [&str; 6] =
    ["text_input", "text_cached_input", "text_output", "audio_input", "audio_cached_input", "audio_output"];

/// Dollars per minute of audio for an input transcription model.
pub fn default_transcription_price(model: &str) -> Option<MicroUsd> {
    match model {
        "gpt-transcribe" => Some(usd(4_500)),
        "gpt-live-transcribe" | "gpt-realtime-whisper" => Some(usd(17_000)),
        _ => None,
    }
}

/// Prices for one call's models; either part may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pricing {
    pub tokens: Option<TokenPrices>,
    pub transcription_per_minute: Option<MicroUsd>,
}

impl Pricing {
    pub fn default_for(model: &str, transcription_model: &str) -> Pricing {
        Pricing {
            tokens: TokenPrices::default_for(model),
            transcription_per_minute: default_transcription_price(transcription_model),
        }
    }

    /// The estimated cost in micro-dollars, rounded to the nearest; `None` unless both
    /// prices are known (a partial sum would read as the whole cost).
    pub fn estimate(&self, usage: &TokenUsage, transcribed_ms: u64) -> Option<u64> {
        let (Some(p), Some(per_minute)) = (self.tokens, self.transcription_per_minute) else {
            return None;
        };
        let terms = [
            (usage.text_input_tokens.saturating_sub(usage.cached_text_tokens), p.text_input),
            (usage.cached_text_tokens, p.text_cached_input),
            (usage.audio_input_tokens.saturating_sub(usage.cached_audio_tokens), p.audio_input),
            (usage.cached_audio_tokens, p.audio_cached_input),
            (usage.text_output_tokens, p.text_output),
            (usage.audio_output_tokens, p.audio_output),
        ];
        // Micro-dollars per million tokens times tokens: divide by a million once, at the end.
        let tokens: u128 = terms.iter().map(|(n, price)| u128::from(*n) * u128::from(price.0)).sum();
        let transcription = u128::from(transcribed_ms) * u128::from(per_minute.0);
        let micros = (tokens + 500_000) / 1_000_000 + (transcription + 30_000) / 60_000;
        Some(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PriceError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(MicroUsd::parse("32"), Ok(MicroUsd(32_000_000)));
        assert_eq!(MicroUsd::parse("0.4"), Ok(MicroUsd(400_000)));
        assert_eq!(MicroUsd::parse("0.0045"), Ok(MicroUsd(4_500)));
        assert_eq!(MicroUsd::parse(".5"), Ok(MicroUsd(500_000)));
        for bad in ["", ".", "-1", "1e3", "0.0000001", "1,5", "99999999999999999999"] {
            assert!(MicroUsd::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configured_prices_override_the_defaults_key_by_key() {
        let base = TokenPrices::default_for("gpt-realtime-2.1");
        let prices = TokenPrices::parse("audio_output=50, text_input=3.5", base).unwrap();
        assert_eq!(prices.audio_output, MicroUsd(50_000_000));
        assert_eq!(prices.text_input, MicroUsd(3_500_000));
        assert_eq!(prices.audio_input, MicroUsd(32_000_000));
        let error = TokenPrices::parse("text_input=1", None).unwrap_err();
        assert!(error.0.contains("text_cached_input"), "{error}");
        assert!(TokenPrices::parse("speed=1", base).is_err());
        assert!(TokenPrices::parse("text_input", base).is_err());
    }

    #[test]
    fn the_estimate_is_exact_for_gpt_realtime_2_1_with_gpt_transcribe() {
        let usage = TokenUsage {
            responses: 3,
            text_input_tokens: 1_000,
            audio_input_tokens: 5_000,
            cached_text_tokens: 200,
            cached_audio_tokens: 1_000,
            text_output_tokens: 300,
            audio_output_tokens: 2_000,
        };
        let pricing = Pricing::default_for("gpt-realtime-2.1", "gpt-transcribe");
        // Text in: 800 × $4 + 200 × $0.40; audio in: 4000 × $32 + 1000 × $0.40;
        // out: 300 × $24 + 2000 × $64 (per million) = $0.26688. Transcription:
        // 90 s at $0.0045 a minute = $0.00675.
        assert_eq!(pricing.estimate(&usage, 90_000), Some(266_880 + 6_750));
        assert_eq!(pricing.estimate(&TokenUsage::default(), 0), Some(0));
        assert_eq!(Pricing::default_for("some-future-model", "gpt-transcribe").estimate(&usage, 0), None);
        assert_eq!(Pricing::default_for("gpt-realtime-2.1", "whisper-9").estimate(&usage, 0), None);
    }

    #[test]
    fn sub_micro_dollar_remainders_round_to_the_nearest() {
        let pricing = Pricing::default_for("gpt-realtime-2.1-mini", "gpt-transcribe");
        // One cached text token at $0.06 per million: 0.06 µ$, rounds to 0; ten: 0.6 µ$, to 1.
        let one = TokenUsage { text_input_tokens: 1, cached_text_tokens: 1, ..TokenUsage::default() };
        assert_eq!(pricing.estimate(&one, 0), Some(0));
        let ten = TokenUsage { text_input_tokens: 10, cached_text_tokens: 10, ..TokenUsage::default() };
        assert_eq!(pricing.estimate(&ten, 0), Some(1));
        // 10 ms at $0.0045 a minute is 0.75 µ$: 1.
        assert_eq!(pricing.estimate(&TokenUsage::default(), 10), Some(1));
    }
}
