#![no_main]
//! Any bytes as a `POST /v1/calls` body: an error or a request, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    if let Ok(request) = shared::booking::BookingRequest::parse(data, now) {
        // Whatever is accepted must be usable downstream.
        let _ = request.starts_at();
        let _ = shared::openai::config::instructions(&request);
    }
});
