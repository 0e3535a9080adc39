//! What the handlers need from the outside, as small traits. The Worker glue implements
//! them over KV and `fetch`; tests implement them in memory.

use chrono::{DateTime, Utc};
use shared::twilio::rest::{CallResource, CreateCall, TwilioApiError, UpdateCall};

use crate::allowance::{Admission, Admit};
use crate::idempotency::Claim;
use crate::keeper::{Change, Refused, Reply};
use crate::listing::IndexPage;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written (the detail is for the operator's log).
    #[error("{0}")]
    Unavailable(String),
    /// A call's keeper would not take the change.
    #[error(transparent)]
    Refused(#[from] Refused),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error body.
    #[error(transparent)]
    Api(TwilioApiError),
    /// No usable answer (connection refused, timeout, unreadable body).
    #[error("{0}")]
    Network(String),
}

/// The read model (Workers KV): each call's record as its keeper last published it,
/// and each API key's list of its calls. Written only by the calls' keepers.
#[allow(async_fn_in_trait)]
pub trait Records {
    /// A call's published record.
    async fn record(&self, call_id: &str) -> Result<Option<String>, StoreError>;
    /// One page of `owner`'s list, newest first: up to `limit` entries after `cursor`
    /// (a cursor this store returned).
    async fn list_calls(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Result<IndexPage, StoreError>;
}

/// Every change to a call goes through the call's one writer ([`crate::keeper`]); in a
/// Worker, the call's Durable Object.
#[allow(async_fn_in_trait)]
pub trait CallKeepers {
    /// Applies one change to a call through its keeper, which publishes the record for reads.
    async fn change_call(&self, call_id: &str, change: Change, now: DateTime<Utc>) -> Result<Reply, StoreError>;
}

/// What must be decided in one atomic step for one name ([`crate::keys`]): idempotency
/// keys, an API key's or number's allowance; in a Worker, an Arbiter Durable Object.
#[allow(async_fn_in_trait)]
pub trait Arbiters {
    /// Claims an `Idempotency-Key` for a request, or says who has it, in one atomic
    /// step ([`crate::idempotency::decide`]).
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError>;
    /// Binds a granted key to the call it made (`Some`), or gives its claim back (`None`).
    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError>;
    /// Asks an API key's or destination's allowance for a booking
    /// ([`crate::allowance::admit`]), atomically.
    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError>;
    /// Undoes an admission another allowance then refused ([`crate::allowance::withdraw`]).
    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError>;
    /// Gives an ended call's slot back to its allowance ([`crate::allowance::release`]).
    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError>;
}

/// Everything the edge stores, by what it is: one type may provide all three.
pub trait Store: Records + CallKeepers + Arbiters {}

impl<T: Records + CallKeepers + Arbiters> Store for T {}

/// The Twilio Calls REST API.
#[allow(async_fn_in_trait)]
pub trait TwilioApi {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError>;
    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError>;
    /// Deletes a recording's audio ([`shared::twilio::rest::recording_path`]).
    async fn delete_recording(&self, recording_sid: &str) -> Result<(), TwilioError>;
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
