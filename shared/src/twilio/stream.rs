//! Media Streams over WebSocket (docs/wire-formats.md, "Twilio Media Streams"). Incoming messages borrow from the
//! frame's text (the base64 payload is never copied); counters arrive as JSON strings.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

/// A message Twilio sends on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum StreamMessage<'a> {
    Connected(#[serde(borrow)] Connected<'a>),
    Start(#[serde(borrow)] Start<'a>),
    Media(#[serde(borrow)] MediaMessage<'a>),
    Mark(#[serde(borrow)] MarkMessage<'a>),
    Dtmf(#[serde(borrow)] DtmfMessage<'a>),
    Stop(#[serde(borrow)] StopMessage<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Connected<'a> {
    #[serde(borrow, default)]
    pub protocol: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Start<'a> {
    #[serde(rename = "sequenceNumber", deserialize_with = "counter")]
    pub sequence_number: u64,
    #[serde(borrow)]
    pub start: StartMeta<'a>,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaMessage<'a> {
    #[serde(rename = "sequenceNumber", deserialize_with = "counter")]
    pub sequence_number: u64,
    #[serde(borrow)]
    pub media: Media<'a>,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MarkMessage<'a> {
    #[serde(rename = "sequenceNumber", deserialize_with = "counter")]
    pub sequence_number: u64,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
    #[serde(borrow)]
    pub mark: MarkName<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DtmfMessage<'a> {
    #[serde(rename = "sequenceNumber", deserialize_with = "counter")]
    pub sequence_number: u64,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
    #[serde(borrow)]
    pub dtmf: Dtmf<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StopMessage<'a> {
    #[serde(rename = "sequenceNumber", deserialize_with = "counter")]
    pub sequence_number: u64,
    #[serde(borrow)]
    pub stop: StopMeta<'a>,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StartMeta<'a> {
    #[serde(rename = "accountSid", borrow)]
    pub account_sid: Cow<'a, str>,
    #[serde(rename = "streamSid", borrow)]
    pub stream_sid: Cow<'a, str>,
    #[serde(rename = "callSid", borrow)]
    pub call_sid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub tracks: Vec<Cow<'a, str>>,
    #[serde(rename = "mediaFormat")]
    pub media_format: MediaFormat,
    #[serde(rename = "customParameters", default)]
    pub custom_parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaFormat {
    pub encoding: String,
    #[serde(rename = "sampleRate")]
    pub sample_rate: u32,
    pub channels: u32,
}

impl MediaFormat {
    /// The only format a bidirectional stream carries.
    pub fn is_mulaw_8k_mono(&self) -> bool {
        self.encoding == "audio/x-mulaw" && self.sample_rate == 8000 && self.channels == 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Media<'a> {
    #[serde(borrow, default)]
    pub track: Cow<'a, str>,
    #[serde(deserialize_with = "counter")]
    pub chunk: u64,
    /// Milliseconds since the stream started.
    #[serde(deserialize_with = "counter")]
    pub timestamp: u64,
    /// Base64 mu-law.
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MarkName<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dtmf<'a> {
    #[serde(borrow, default)]
    pub track: Cow<'a, str>,
    #[serde(borrow)]
    pub digit: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StopMeta<'a> {
    #[serde(rename = "accountSid", borrow, default)]
    pub account_sid: Cow<'a, str>,
    #[serde(rename = "callSid", borrow, default)]
    pub call_sid: Cow<'a, str>,
}

/// Twilio sends counters as strings ("4"); numbers are accepted too. A visitor rather
/// than an untagged enum, which would buffer each value: three of these per frame.
fn counter<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Counter;
    impl serde::de::Visitor<'_> for Counter {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a counter: a non-negative integer, as a string or a number")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom(format!("negative counter {n}")))
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            text.parse().map_err(|_| E::custom(format!("counter {text:?} is not a non-negative integer")))
        }
    }
    deserializer.deserialize_any(Counter)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid Media Streams message: {0}")]
pub struct StreamParseError(#[from] serde_json::Error);

impl<'a> StreamMessage<'a> {
    /// Parses one text frame. `media`, the message that arrives 50 times a second,
    /// is read straight into its struct without serde's tag buffering, so it does
    /// not allocate.
    pub fn parse(text: &'a str) -> Result<StreamMessage<'a>, StreamParseError> {
        // Twilio writes `event` first: then one pass reads the frame (the struct
        // ignores the tag). Anything else takes the general route below.
        if text.starts_with(r#"{"event":"media","#) {
            return Ok(StreamMessage::Media(serde_json::from_str(text)?));
        }
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(borrow)]
            event: Option<Cow<'a, str>>,
        }
        let tag: Tag<'a> = serde_json::from_str(text)?;
        if tag.event.as_deref() == Some("media") {
            return Ok(StreamMessage::Media(serde_json::from_str(text)?));
        }
        Ok(serde_json::from_str(text)?)
    }
}

/// A message we send to Twilio. Serialized into a reused buffer with [`StreamCommand::write_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum StreamCommand<'a> {
    Media {
        #[serde(rename = "streamSid", borrow)]
        stream_sid: Cow<'a, str>,
        #[serde(borrow)]
        media: OutboundMedia<'a>,
    },
    Mark {
        #[serde(rename = "streamSid", borrow)]
        stream_sid: Cow<'a, str>,
        #[serde(borrow)]
        mark: MarkName<'a>,
    },
    Clear {
        #[serde(rename = "streamSid", borrow)]
        stream_sid: Cow<'a, str>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundMedia<'a> {
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}

impl<'a> StreamCommand<'a> {
    pub fn media(stream_sid: &'a str, payload: &'a str) -> StreamCommand<'a> {
        StreamCommand::Media {
            stream_sid: Cow::Borrowed(stream_sid),
            media: OutboundMedia { payload: Cow::Borrowed(payload) },
        }
    }

    pub fn mark(stream_sid: &'a str, name: &'a str) -> StreamCommand<'a> {
        StreamCommand::Mark { stream_sid: Cow::Borrowed(stream_sid), mark: MarkName { name: Cow::Borrowed(name) } }
    }

    pub fn clear(stream_sid: &'a str) -> StreamCommand<'a> {
        StreamCommand::Clear { stream_sid: Cow::Borrowed(stream_sid) }
    }

    /// Replaces `out` with the JSON text, reusing its capacity.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.clear();
        // Writing plain structs of strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
    }
}
