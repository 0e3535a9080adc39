#![no_main]
//! Any bytes as a status callback form, and as input to signature validation.
use libfuzzer_sys::fuzz_target;
use shared::twilio::{form, signature, status::StatusCallback};

fuzz_target!(|data: &[u8]| {
    let pairs = form::parse(data);
    let _ = StatusCallback::from_form(&pairs);
    let text = String::from_utf8_lossy(data);
    let _ = signature::validate("token", &text, &pairs, &text);
    let _ = signature::validate_json_body("token", &text, data, &text);
});
