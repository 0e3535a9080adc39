#![no_main]
//! Any text as a Media Streams frame.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = shared::twilio::stream::StreamMessage::parse(text);
});
