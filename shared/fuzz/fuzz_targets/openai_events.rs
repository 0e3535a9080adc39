#![no_main]
//! Any text as an OpenAI server event, a client event, or tool arguments.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = shared::openai::events::ServerEvent::parse(text);
    let _ = serde_json::from_str::<shared::openai::events::ClientEvent>(text);
    let _ = shared::events::Outcome::from_tool_arguments(text);
    let _ = shared::session::confirmation::extract(text);
});
