#![no_main]
//! Any text as a stream token, internal or webhook signature header, Authorization
//! header, API_KEYS list, callback URL or destination number.
use libfuzzer_sys::fuzz_target;
use shared::auth;

fuzz_target!(|text: &str| {
    let _ = auth::verify_stream_token("secret", "call_1", Some(text), 1_000);
    let _ = auth::verify_request("secret", Some(text), "POST", "/internal/calls/c/events", text.as_bytes(), 1_000);
    let _ = auth::key_owner("k1,k2", Some(text));
    let _ = shared::twiml::escape(text);
    let _ = shared::webhook::verify("whsec", Some(text), text.as_bytes(), 1_000);
    let _ = shared::webhook::secret_for_owner(text, "owner");
    let _ = shared::callback_url::check(text, false);
    let _ = shared::destination::Destinations::default().check(text);
});
