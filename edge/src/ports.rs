//! What the handlers need from the outside, as small traits. The Worker glue implements
//! them over KV and `fetch`; tests implement them in memory.

use chrono::{DateTime, Utc};
use shared::twilio::rest::{CallResource, CreateCall, TwilioApiError, UpdateCall};

use crate::allowance::{Admission, Admit};
use crate::idempotency::Claim;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error body.
    #[error(transparent)]
    Api(TwilioApiError),
    /// No usable answer (connection refused, timeout, unreadable body).
    #[error("{0}")]
    Network(String),
}

/// Key-value storage for call ledgers and idempotency records (Workers KV).
#[allow(async_fn_in_trait)]
pub trait Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put(&self, key: &str, value: &str) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key starting with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Claims an `Idempotency-Key` for a request, or says who has it, in one atomic
    /// step ([`crate::idempotency::decide`]); KV cannot, so the Worker asks the key's
    /// Durable Object.
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError>;
    /// Binds a granted key to the call it made (`Some`), or gives its claim back (`None`).
    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError>;
    /// Uses a once-only key ([`crate::idempotency::spend`]): true the first time, atomically.
    async fn spend_key(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Asks an API key's or destination's allowance for a booking
    /// ([`crate::allowance::admit`]), atomically.
    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError>;
    /// Undoes an admission another allowance then refused ([`crate::allowance::withdraw`]).
    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError>;
    /// Gives an ended call's slot back to its key's allowance ([`crate::allowance::release`]).
    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError>;
}

/// The Twilio Calls REST API.
#[allow(async_fn_in_trait)]
pub trait TwilioApi {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError>;
    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError>;
}

/// POSTs the final record to the user's `callback_url` with its `Concierge-Signature`
/// header ([`shared::webhook`]); returns the HTTP status. Never follows a redirect.
#[allow(async_fn_in_trait)]
pub trait WebhookSender {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String>;
}

/// What time it is, and waiting a while (on the runtime's own timer).
#[allow(async_fn_in_trait)]
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    async fn sleep(&self, duration: std::time::Duration);
}

pub trait IdSource {
    /// A new, unguessable call id.
    fn call_id(&self) -> String;
}

/// Everything the edge talks to.
pub struct Ports<S, T, W, C, I> {
    pub store: S,
    pub twilio: T,
    pub webhooks: W,
    pub clock: C,
    pub ids: I,
}
