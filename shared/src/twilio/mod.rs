//! Twilio's wire formats (PROTOCOLS.md §1–3).
//!
//! - [`form`]: `application/x-www-form-urlencoded` bodies as ordered pairs.
//! - [`status`]: the call status callback.
//! - [`stream`]: Media Streams messages, both directions.
//! - [`rest`]: the Calls API: create, update (hang up), the Call resource and errors.
//! - [`signature`]: the `X-Twilio-Signature` header.

pub mod form;
pub mod rest;
pub mod signature;
pub mod status;
pub mod stream;
