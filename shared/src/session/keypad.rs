//! Phone menus: the agent's `press_keys` tool. The keys are played in-band as DTMF
//! tones ([`crate::codec::dtmf`]) through the media stream, after whatever the agent
//! has already said, and followed by a mark. Until Twilio echoes that mark the keys are
//! still sounding: the agent's own audio is held back (so it never talks over its own
//! key presses), and the tool's result waits. Once they have played, the model is told
//! which keys were pressed, without being asked to speak: a menu answers a key press,
//! and the agent listens for it.

use std::time::Instant;

use super::{CallSession, Output, TwilioCommand};
use crate::codec::dtmf;
use crate::openai::events::{ClientEvent, Item};

/// Keys being played: the mark that follows them, and the tool call they answer.
#[derive(Debug, Clone)]
pub(super) struct PressingKeys {
    pub(super) mark: String,
    pub(super) call_id: String,
    pub(super) keys: String,
}

/// Agent audio that arrived while keys were playing, to play once they have.
#[derive(Debug, Clone)]
pub(super) struct HeldAudio {
    pub(super) response_id: String,
    pub(super) item_id: String,
    pub(super) base64: String,
}

impl CallSession {
    /// `press_keys({"digits": "…"})`: plays the keys, or tells the model why not.
    pub(super) fn press_keys(&mut self, call_id: &str, arguments: &str, _now: Instant) {
        let keys = serde_json::from_str::<serde_json::Value>(arguments)
            .ok()
            .and_then(|v| v.get("digits").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let tones = match (&self.pressing, dtmf::tones(&keys)) {
            (Some(_), _) => Err("keys are still being pressed; wait for their result".to_owned()),
            (None, Err(error)) => Err(error.to_string()),
            (None, Ok(tones)) => Ok(tones),
        };
        let tones = match tones {
            Ok(tones) => tones,
            Err(error) => {
                let reply = serde_json::json!({"ok": false, "error": error}).to_string();
                return self.tool_reply(call_id, reply);
            }
        };
        self.mark_seq += 1;
        let mark = format!("k{}", self.mark_seq);
        // After what the agent has said so far: its last partial frame goes out first.
        self.outputs.push_back(Output::FlushAgentAudio);
        self.outputs.push_back(Output::PlayTones { mulaw: tones });
        self.outputs.push_back(Output::ToTwilio(TwilioCommand::Mark(mark.clone())));
        self.pressing = Some(PressingKeys { mark, call_id: call_id.to_owned(), keys });
    }

    /// Whether `mark` ends the keys being pressed; if so, the model hears they were
    /// pressed and the agent audio held meanwhile plays.
    pub(super) fn keys_played(&mut self, mark: &str, now: Instant) -> bool {
        let Some(pressing) = self.pressing.take_if(|p| p.mark == mark) else { return false };
        // No `response.create`: the menu (or a person) answers the keys; the agent listens.
        let output = serde_json::json!({"ok": true, "pressed": pressing.keys}).to_string();
        self.send_openai(ClientEvent::ConversationItemCreate {
            previous_item_id: None,
            item: Item::FunctionCallOutput { call_id: pressing.call_id, output },
        });
        self.activity(now);
        for held in std::mem::take(&mut self.held_audio) {
            self.agent_audio(&held.response_id, &held.item_id, &held.base64, now);
        }
        true
    }

    /// Agent audio while keys are playing is held, not played over them.
    pub(super) fn hold_while_pressing(&mut self, response_id: &str, item_id: &str, base64: &str) -> bool {
        if self.pressing.is_none() {
            return false;
        }
        self.held_audio.push(HeldAudio {
            response_id: response_id.to_owned(),
            item_id: item_id.to_owned(),
            base64: base64.to_owned(),
        });
        true
    }
}
