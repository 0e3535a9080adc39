//! Twilio's wire formats (docs/wire-formats.md: Media Streams, the Calls REST API, status
//! callbacks, `X-Twilio-Signature`).
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
