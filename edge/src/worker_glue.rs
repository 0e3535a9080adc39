//! The Cloudflare Worker entry point: adapts `worker` types to the plain request and
//! ports the route table uses. Kept thin on purpose; everything testable is in `app`.
// Native clippy never sees this module, so its warnings fail the wasm build instead.
#![deny(warnings)]

use chrono::{DateTime, Utc};
use shared::twilio::rest::{basic_auth, check_response, recording_path, CallResource, CreateCall, UpdateCall};
use worker::{
    durable_object, event, Context, DurableObject, Env, Fetch, Headers, KvStore, Method, ObjectNamespace, Request,
    RequestInit, RequestRedirect, Response, State, Storage, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebsocketEvent,
};

use crate::allowance::{self, Admission, Admit, Allowance};
use crate::app::{sse_frame, Edge, MAX_BODY_BYTES};
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::idempotency::{self, Claim, Entry, KeyCommand, Write};
use crate::keeper::{Change, Keeper, LiveEvent, Publication, Refused, Reply};
use crate::keys;
use crate::listing::{CallSummary, IndexPage};
use crate::ports::{
    Arbiters, CallKeepers, Clock, IdSource, Ports, Records, StoreError, TwilioApi, TwilioError, WebhookSender,
};
use shared::call::CallLedger;

/// KV binding holding call ledgers.
const CALLS_BINDING: &str = "CALLS";
/// Durable Object namespace of [`Arbiter`]s: one per idempotency key and API key's allowance.
const ARBITERS_BINDING: &str = "ARBITERS";
/// Durable Object namespace of [`CallKeeper`]s: one per call, its record's only writer.
const KEEPERS_BINDING: &str = "CALL_KEEPERS";

/// What the edge asks an [`Arbiter`] (JSON over the stub's `fetch`).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "arbiter", content = "command", rename_all = "snake_case")]
enum ArbiterCommand {
    Key(KeyCommand),
    Admit(Admit),
    Release { call_id: String },
    Withdraw(Admit),
}

/// Call records in KV; what must be decided atomically, by [`Arbiter`]s; every change
/// to a call, by its [`CallKeeper`].
struct KvCalls {
    kv: KvStore,
    arbiters: ObjectNamespace,
    keepers: ObjectNamespace,
    /// Inside a call's own keeper: its id and storage, so its changes apply here
    /// rather than through a stub to itself.
    local: Option<(String, Storage)>,
    /// `RECORD_RETENTION_DAYS`.
    retention: chrono::Duration,
}

/// What the edge asks a [`CallKeeper`].
#[derive(serde::Serialize, serde::Deserialize)]
struct KeeperRequest {
    call_id: String,
    change: Change,
    now: DateTime<Utc>,
}

/// How a [`CallKeeper`] answers a change it will not take ([`Refused`], as JSON).
const REFUSED_STATUS: u16 = 409;

/// Storage keys of a [`CallKeeper`].
const KEEPER: &str = "keeper";
const KEEPER_CALL_ID: &str = "call_id";

/// Applies one change to the keeper in `storage` and sets the alarm for whatever is due
/// next: publishing the record to KV, a webhook retry, or forgetting the call
/// `retention` after its last change. It awaits storage only, so the object's input gate keeps every
/// other request out from the read to the write: changes apply one at a time. KV is
/// written by the alarm alone ([`publish`]): one write in flight, in order.
async fn apply_in(
    storage: &Storage,
    call_id: &str,
    change: Change,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Result<Reply, StoreError> {
    let failed = |e: worker::Error| StoreError::Unavailable(format!("call keeper {call_id}: {e}"));
    let read_only = matches!(change, Change::Read { .. });
    let mut keeper = storage.get::<Keeper>(KEEPER).await.map_err(failed)?.unwrap_or_default();
    let reply = keeper.apply(change, now)?;
    if (keeper.ledger.is_some() || keeper.erased.is_some()) && !read_only {
        store_keeper(storage, &keeper, call_id, now, retention).await.map_err(failed)?;
    }
    Ok(reply)
}

/// Writes the record to KV if it is behind and KV's rate allows; run by the alarm only,
/// so writes never overlap. A refused write is tried again a second later.
async fn publish(
    storage: &Storage,
    kv: &KvStore,
    call_id: &str,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> worker::Result<()> {
    let mut keeper = storage.get::<Keeper>(KEEPER).await?.unwrap_or_default();
    let publication = keeper.publication();
    let (Some(version), Some(publication)) = (keeper.start_publish(now), publication) else { return Ok(()) };
    store_keeper(storage, &keeper, call_id, now, retention).await?;
    if let Publication::Remove { record_key, index_key } = &publication {
        // An erased call: once KV has dropped it, so does this object.
        if kv.delete(record_key).await.is_ok() && kv.delete(index_key).await.is_ok() {
            storage.delete_all().await?;
            storage.delete_alarm().await?;
        }
        return Ok(());
    }
    if put_publication(kv, &publication, retention).await.is_ok() {
        // Read again: changes applied meanwhile are kept, and stay due if newer.
        let mut keeper = storage.get::<Keeper>(KEEPER).await?.unwrap_or_default();
        keeper.finish_publish(version);
        store_keeper(storage, &keeper, call_id, now, retention).await?;
    }
    Ok(())
}

/// Stores the keeper and sets its alarm for the next thing due.
async fn store_keeper(
    storage: &Storage,
    keeper: &Keeper,
    call_id: &str,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> worker::Result<()> {
    storage.put(KEEPER, keeper).await?;
    storage.put(KEEPER_CALL_ID, call_id).await?;
    let last_change = keeper.ledger.as_ref().map_or(now, |l| l.record.updated_at);
    // An absolute time: `set_alarm` takes a bare number as an offset from now.
    storage.set_alarm(keeper.next_wake().unwrap_or(last_change + retention).max(now)).await
}

/// Writes a record and its entry in its key's list, both expiring `retention` after
/// this, their last write (KV's own expiry: nothing has to remember to delete them).
async fn put_publication(kv: &KvStore, publication: &Publication, retention: chrono::Duration) -> worker::Result<()> {
    let Publication::Put { record_key, record, index_key, summary } = publication else { return Ok(()) };
    let ttl = u64::try_from(retention.num_seconds()).unwrap_or(u64::MAX);
    kv.put(record_key, record.as_str())?.expiration_ttl(ttl).execute().await?;
    kv.put(index_key, "")?.metadata(summary)?.expiration_ttl(ttl).execute().await?;
    Ok(())
}

impl KvCalls {
    /// Sends `command` to the arbiter named `name` and reads its JSON answer.
    async fn ask<T: serde::de::DeserializeOwned>(&self, name: &str, command: &ArbiterCommand) -> Result<T, StoreError> {
        let failed = |e: worker::Error| StoreError::Unavailable(format!("arbiter {name}: {e}"));
        let body = serde_json::to_string(command).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://arbiter/", &init).map_err(failed)?;
        let stub = self.arbiters.get_by_name(name).map_err(failed)?;
        let mut response = stub.fetch_with_request(request).await.map_err(failed)?;
        let bytes = response.bytes().await.map_err(failed)?;
        match response.status_code() {
            200..=299 => {
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Unavailable(format!("arbiter {name}: {e}")))
            }
            status => Err(StoreError::Unavailable(format!(
                "arbiter {name} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }
}

impl Records for KvCalls {
    async fn record(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        self.kv.get(&keys::record(call_id)).text().await.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// One KV `list` of the key's entries; their summaries are the keys' metadata.
    async fn list_calls(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Result<IndexPage, StoreError> {
        let mut list = self.kv.list().prefix(keys::index_prefix(owner)).limit(u64::from(limit));
        if let Some(cursor) = cursor {
            list = list.cursor(cursor.to_owned());
        }
        let listed = list.execute().await.map_err(|e| StoreError::Unavailable(format!("listing calls: {e}")))?;
        let entries = listed
            .keys
            .into_iter()
            // An entry without readable metadata is skipped, not fatal to the page.
            .filter_map(|key| serde_json::from_value::<CallSummary>(key.metadata?).ok())
            .collect();
        Ok(IndexPage { entries, cursor: listed.cursor.filter(|c| !listed.list_complete && !c.is_empty()) })
    }
}

impl Arbiters for KvCalls {
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        self.ask(key, &ArbiterCommand::Key(KeyCommand::Claim { request_hash: request_hash.to_owned(), now })).await
    }

    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError> {
        let command = KeyCommand::Settle { request_hash: request_hash.to_owned(), call_id: call_id.map(str::to_owned) };
        self.ask(key, &ArbiterCommand::Key(command)).await
    }

    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError> {
        self.ask(key, &ArbiterCommand::Admit(request.clone())).await
    }

    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError> {
        self.ask(key, &ArbiterCommand::Release { call_id: call_id.to_owned() }).await
    }

    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError> {
        self.ask(key, &ArbiterCommand::Withdraw(request.clone())).await
    }
}

impl CallKeepers for KvCalls {
    async fn change_call(&self, call_id: &str, change: Change, now: DateTime<Utc>) -> Result<Reply, StoreError> {
        if let Some((local_id, storage)) = &self.local {
            if local_id == call_id {
                return apply_in(storage, call_id, change, now, self.retention).await;
            }
        }
        let failed = |e: worker::Error| StoreError::Unavailable(format!("call keeper {call_id}: {e}"));
        let request = KeeperRequest { call_id: call_id.to_owned(), change, now };
        let body = serde_json::to_string(&request).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://keeper/", &init).map_err(failed)?;
        let stub = self.keepers.get_by_name(call_id).map_err(failed)?;
        let mut response = stub.fetch_with_request(request).await.map_err(failed)?;
        let bytes = response.bytes().await.map_err(failed)?;
        match response.status_code() {
            200..=299 => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Unavailable(format!("call keeper {call_id}: {e}"))),
            REFUSED_STATUS => match serde_json::from_slice::<Refused>(&bytes) {
                Ok(refused) => Err(StoreError::Refused(refused)),
                Err(e) => Err(StoreError::Unavailable(format!("call keeper {call_id}: {e}"))),
            },
            status => Err(StoreError::Unavailable(format!(
                "call keeper {call_id} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }
}

/// Decides what must be decided atomically, for one name: an idempotency key, or an
/// API key's or destination number's allowance. A Durable Object
/// runs one request at a time and its storage is strongly consistent, so its decisions
/// hold across isolates and locations (KV's read-modify-writes do not). The rules are
/// sans-IO, in [`idempotency`] and [`allowance`]; this only stores what they return.
#[durable_object]
pub struct Arbiter {
    state: State,
    env: Env,
}

/// Storage keys: an idempotency key's entry, an API key's or number's allowance.
const ENTRY: &str = "entry";
const ALLOWANCE: &str = "allowance";

impl Arbiter {
    /// Writes `value` and (re)starts the object's retention (`RECORD_RETENTION_DAYS`).
    async fn store<T: serde::Serialize>(&self, key: &str, value: &T) -> worker::Result<()> {
        let storage = self.state.storage();
        storage.put(key, value).await?;
        // An absolute time: `set_alarm` takes a bare number as an offset from now.
        let expires_at = WorkerClock.now() + retention(&self.env);
        storage.set_alarm(expires_at).await
    }

    /// Applies one of [`idempotency`]'s rules to the stored entry and answers with its result.
    async fn entry<R: serde::Serialize>(
        &self,
        rule: impl FnOnce(Option<&Entry>) -> (R, Write),
    ) -> worker::Result<Response> {
        let stored = self.state.storage().get::<Entry>(ENTRY).await?;
        let (answer, write) = rule(stored.as_ref());
        match write {
            Write::Put(entry) => self.store(ENTRY, &entry).await?,
            Write::Delete => {
                self.state.storage().delete_all().await?;
                self.state.storage().delete_alarm().await?;
            }
            Write::Keep => {}
        }
        Response::from_json(&answer)
    }

    /// Applies one of [`allowance`]'s rules to the stored allowance and answers with its result.
    async fn allowance<R: serde::Serialize>(&self, rule: impl FnOnce(&mut Allowance) -> R) -> worker::Result<Response> {
        let mut state = self.state.storage().get::<Allowance>(ALLOWANCE).await?.unwrap_or_default();
        let answer = rule(&mut state);
        self.store(ALLOWANCE, &state).await?;
        Response::from_json(&answer)
    }
}

impl DurableObject for Arbiter {
    fn new(state: State, env: Env) -> Self {
        Arbiter { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let command: ArbiterCommand = match req.json().await {
            Ok(command) => command,
            Err(error) => return Response::error(format!("unreadable arbiter command: {error}"), 400),
        };
        // Storage only between reading and writing: the object's input gate keeps every
        // other request to this name out until the write is done.
        match command {
            ArbiterCommand::Key(KeyCommand::Claim { request_hash, now }) => {
                self.entry(|stored| idempotency::decide(stored, &request_hash, now)).await
            }
            ArbiterCommand::Key(KeyCommand::Settle { request_hash, call_id }) => {
                self.entry(|stored| idempotency::settle(stored, &request_hash, call_id.as_deref())).await
            }
            ArbiterCommand::Admit(request) => self.allowance(|state| allowance::admit(state, &request)).await,
            ArbiterCommand::Release { call_id } => self.allowance(|state| allowance::release(state, &call_id)).await,
            ArbiterCommand::Withdraw(request) => self.allowance(|state| allowance::withdraw(state, &request)).await,
        }
    }

    /// `RECORD_RETENTION_DAYS` after its last write the name is forgotten.
    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::empty()
    }
}

/// The one writer of one call's record ([`crate::keeper`]): every change to the call
/// passes through here, one at a time, in strongly consistent storage; KV gets the
/// record after changes (at most once a second, KV's per-key rate), and the alarm
/// publishes what is left, retries the completion webhook, and forgets the call `RECORD_RETENTION_DAYS`
/// after its last change.
///
/// It also feeds the call's live event streams: each listener is a hibernatable
/// WebSocket from the Worker serving its SSE response, so an idle listener keeps the
/// object in no memory; each change's new events are sent to all of them, and a final
/// call closes them.
#[durable_object]
pub struct CallKeeper {
    state: State,
    env: Env,
}

/// What a listener's Worker asks its call's keeper (a WebSocket upgrade of
/// `GET https://keeper/listen?after=N`).
const LISTEN_PATH: &str = "/listen";
/// The close code a final call's listeners get: normal closure.
const CLOSE_FINAL: u16 = 1000;

impl CallKeeper {
    /// Sends `events` to every listener; a final call closes their sockets.
    fn tell_listeners(&self, events: &[LiveEvent], is_final: bool) {
        let frames: String = events.iter().map(sse_frame).collect();
        for listener in self.state.get_websockets() {
            // A listener gone meanwhile is the runtime's to clean up.
            if !frames.is_empty() {
                let _sent = listener.send_with_str(&frames);
            }
            if is_final {
                let _closed = listener.close(Some(CLOSE_FINAL), Some("the call is final"));
            }
        }
    }

    /// A listener: the events after `after` at once, then each change's as it comes.
    async fn listen(&self, after: u64) -> worker::Result<Response> {
        let keeper = self.state.storage().get::<Keeper>(KEEPER).await?.unwrap_or_default();
        let backlog: String = keeper.log.iter().filter(|e| e.id > after).map(sse_frame).collect();
        let is_final = keeper.ledger.as_ref().is_none_or(CallLedger::is_final);
        let pair = WebSocketPair::new()?;
        // Accepted by the runtime, not by this object: it may hibernate with it open.
        self.state.accept_web_socket(&pair.server);
        pair.server.send_with_str(if backlog.is_empty() { ": listening\n\n".to_owned() } else { backlog })?;
        if is_final {
            pair.server.close(Some(CLOSE_FINAL), Some("the call is final"))?;
        }
        Response::from_websocket(pair.client)
    }
}

impl DurableObject for CallKeeper {
    fn new(state: State, env: Env) -> Self {
        CallKeeper { state, env }
    }

    /// Listeners send nothing that matters.
    async fn websocket_message(&self, _ws: WebSocket, _message: WebSocketIncomingMessage) -> worker::Result<()> {
        Ok(())
    }

    /// A listener that went away: complete the closing handshake.
    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _clean: bool) -> worker::Result<()> {
        let code = u16::try_from(code).ok().filter(|c| *c >= 1000 && *c != 1005 && *c != 1006).unwrap_or(CLOSE_FINAL);
        let _closed = ws.close(Some(code), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        if url.path() == LISTEN_PATH {
            let after = url.query_pairs().find(|(k, _)| k == "after").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            return self.listen(after).await;
        }
        // Parsed here, not by JavaScript's JSON (which would round u64 ids to floats).
        let request: KeeperRequest = match serde_json::from_str(&req.text().await?) {
            Ok(request) => request,
            Err(error) => return Response::error(format!("unreadable keeper request: {error}"), 400),
        };
        let retention = retention(&self.env);
        match apply_in(&self.state.storage(), &request.call_id, request.change, request.now, retention).await {
            Ok(reply) => {
                let is_final = reply.ledger.as_ref().is_some_and(CallLedger::is_final);
                self.tell_listeners(&reply.events, is_final);
                Response::from_json(&reply)
            }
            Err(StoreError::Refused(refused)) => Ok(Response::from_json(&refused)?.with_status(REFUSED_STATUS)),
            Err(error) => Response::error(error.to_string(), 500),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let storage = self.state.storage();
        let Some(call_id) = storage.get::<String>(KEEPER_CALL_ID).await? else { return Response::empty() };
        let now = WorkerClock.now();
        let keeper = storage.get::<Keeper>(KEEPER).await?.unwrap_or_default();
        let idle_since = keeper.ledger.as_ref().map_or(now, |l| l.record.updated_at);
        let retention = retention(&self.env);
        if keeper.next_wake().is_none() && now >= idle_since + retention {
            // A recorded call's audio goes with its record; while Twilio cannot delete
            // it, the keeper (and the recording's sid) stays and tries again hourly.
            if let Some(recording) = keeper.ledger.as_ref().and_then(|l| l.record.recording.as_ref()) {
                let deleted = match edge(&self.env, None) {
                    Ok(edge) => edge.delete_recording(&recording.sid).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                if let Err(error) = deleted {
                    crate::app::log_line(&serde_json::json!({
                        "call_id": call_id, "recording_delete": "failed", "error": error
                    }));
                    storage.set_alarm(now + chrono::Duration::hours(1)).await?;
                    return Response::empty();
                }
            }
            storage.delete_all().await?;
            return Response::empty();
        }
        let edge = match edge(&self.env, Some((call_id.clone(), storage))) {
            Ok(edge) => edge,
            Err(error) => return Response::error(error.to_string(), 500),
        };
        // Publishes what is due, then sends the webhook if it is due (only once KV holds
        // the final record).
        let kv = self.env.kv(CALLS_BINDING)?;
        if let Err(error) = publish(&self.state.storage(), &kv, &call_id, now, retention).await {
            crate::app::log_line(
                &serde_json::json!({"call_id": call_id, "publish": "failed", "error": error.to_string()}),
            );
        }
        if let Err(error) = edge.wake(&call_id).await {
            crate::app::log_line(
                &serde_json::json!({"call_id": call_id, "alarm": "failed", "error": error.to_string()}),
            );
        }
        Response::empty()
    }
}

/// POSTs a form to the REST API (`form` given) or DELETEs (`None`), and reads the answer:
/// the body of a 2xx, or Twilio's error ([`check_response`], as every caller of the REST
/// API does).
async fn twilio_request(url: &str, authorization: &str, form: Option<String>) -> Result<Vec<u8>, TwilioError> {
    let send = async {
        let headers = Headers::new();
        headers.set("Authorization", authorization)?;
        headers.set("Accept", "application/json")?;
        let mut init = RequestInit::new();
        match form {
            Some(form) => {
                headers.set("Content-Type", "application/x-www-form-urlencoded")?;
                init.with_method(Method::Post).with_body(Some(form.into()));
            }
            None => {
                init.with_method(Method::Delete);
            }
        }
        init.with_headers(headers);
        let mut response = Fetch::Request(Request::new_with_init(url, &init)?).send().await?;
        Ok::<_, worker::Error>((response.status_code(), response.bytes().await?))
    };
    let (status, body) = send.await.map_err(|e| TwilioError::Network(e.to_string()))?;
    check_response(status, &body).map_err(TwilioError::Api)?;
    Ok(body)
}

struct FetchTwilio {
    api_base: String,
    account_sid: String,
    authorization: String,
}

impl TwilioApi for FetchTwilio {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        let url = format!("{}{}", self.api_base, CreateCall::path(&self.account_sid));
        let body = twilio_request(&url, &self.authorization, Some(call.to_form())).await?;
        serde_json::from_slice(&body).map_err(|e| TwilioError::Network(format!("unreadable Call resource: {e}")))
    }

    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError> {
        let url = format!("{}{}", self.api_base, UpdateCall::path(&self.account_sid, call_sid));
        twilio_request(&url, &self.authorization, Some(update.to_form())).await.map(|_| ())
    }

    async fn delete_recording(&self, recording_sid: &str) -> Result<(), TwilioError> {
        let url = format!("{}{}", self.api_base, recording_path(&self.account_sid, recording_sid));
        twilio_request(&url, &self.authorization, None).await.map(|_| ())
    }
}

/// Sends completion webhooks with `fetch`. The URL passed [`shared::callback_url`] at
/// booking and again before each send (`app`); a redirect is not followed but
/// answered as the refusal it is (`redirect: manual`). Names that resolve inside are
/// left to Cloudflare: a deployed Worker's `fetch` leaves from Cloudflare's network, not
/// ours, so a private address leads nowhere of ours (reaching a private network takes a
/// bound Tunnel, https://developers.cloudflare.com/workers-vpc/configuration/vpc-networks/,
/// which this Worker has none of), and it never connects to a bare IP address
/// (https://developers.cloudflare.com/workers/platform/known-issues/#fetch-to-ip-addresses).
/// How long a completion webhook's endpoint has to answer.
const WEBHOOK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

struct FetchWebhooks;

impl WebhookSender for FetchWebhooks {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        let send = async {
            let headers = Headers::new();
            headers.set("Content-Type", "application/json")?;
            headers.set(shared::webhook::SIGNATURE_HEADER, signature)?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_redirect(RequestRedirect::Manual)
                .with_body(Some(body.into()));
            let response = Fetch::Request(Request::new_with_init(url, &init)?).send().await?;
            Ok::<u16, worker::Error>(response.status_code())
        };
        // Well inside the keeper's attempt lease, so a slow endpoint is a refusal (retried
        // with backoff), never a second attempt overlapping the first.
        let deadline = worker::Delay::from(WEBHOOK_DEADLINE);
        match futures_util::future::select(std::pin::pin!(send), deadline).await {
            futures_util::future::Either::Left((sent, _)) => sent.map_err(|e| e.to_string()),
            futures_util::future::Either::Right(_) => Err(format!("no answer within {WEBHOOK_DEADLINE:?}")),
        }
    }
}

struct WorkerClock;

impl Clock for WorkerClock {
    fn now(&self) -> DateTime<Utc> {
        let millis = worker::Date::now().as_millis();
        DateTime::from_timestamp_millis(i64::try_from(millis).unwrap_or(i64::MAX)).unwrap_or_default()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        worker::Delay::from(duration).await;
    }
}

struct RandomIds;

impl IdSource for RandomIds {
    fn call_id(&self) -> String {
        let mut bytes = [0u8; 16];
        // crypto.getRandomValues cannot fail in workerd; fall back to time if it ever does.
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes[..8].copy_from_slice(&worker::Date::now().as_millis().to_le_bytes());
        }
        format!("call_{}", hex::encode(bytes))
    }
}

/// A setting from the Worker's secrets or vars.
fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
}

/// `RECORD_RETENTION_DAYS` alone, for a Durable Object's own bookkeeping (on every
/// change: the rest of the configuration is not read for it); its default if the
/// setting is unreadable, which the Worker's requests then report as a misconfiguration.
fn retention(env: &Env) -> chrono::Duration {
    let days = crate::config::record_retention_days(&|name| setting(env, name)).unwrap_or(30);
    chrono::Duration::days(i64::from(days))
}

fn config(env: &Env) -> Result<EdgeConfig, ApiError> {
    EdgeConfig::from_lookup(|name| setting(env, name)).map_err(|e| ApiError::Misconfigured(e.to_string()))
}

/// The request as the route table sees it, or the 413 for a body declared larger
/// than [`MAX_BODY_BYTES`], refused before a byte of it is read.
async fn read_request(mut req: Request) -> worker::Result<Result<EdgeRequest, EdgeResponse>> {
    let declared = req.headers().get("Content-Length")?.and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Ok(Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES).to_response()));
    }
    let url = req.url()?;
    let headers = req.headers().entries().collect();
    Ok(Ok(EdgeRequest {
        method: req.method().to_string(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers,
        body: req.bytes().await.unwrap_or_default(),
    }))
}

fn write_response(response: EdgeResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", response.content_type)?;
    if let Some(seconds) = response.retry_after_seconds {
        headers.set("Retry-After", &seconds.to_string())?;
    }
    // 204 must have no body at all, not an empty one.
    let body = if response.body.is_empty() { Response::empty()? } else { Response::from_bytes(response.body)? };
    Ok(body.with_status(response.status).with_headers(headers))
}

type WorkerEdge = Edge<KvCalls, FetchTwilio, FetchWebhooks, WorkerClock, RandomIds>;

/// The edge over this Worker's bindings; `local` inside a call's own keeper.
fn edge(env: &Env, local: Option<(String, Storage)>) -> Result<WorkerEdge, ApiError> {
    let config = config(env)?;
    let kv = env.kv(CALLS_BINDING).map_err(|e| ApiError::Misconfigured(format!("KV binding {CALLS_BINDING}: {e}")))?;
    let arbiters = env
        .durable_object(ARBITERS_BINDING)
        .map_err(|e| ApiError::Misconfigured(format!("Durable Object binding {ARBITERS_BINDING}: {e}")))?;
    let keepers = env
        .durable_object(KEEPERS_BINDING)
        .map_err(|e| ApiError::Misconfigured(format!("Durable Object binding {KEEPERS_BINDING}: {e}")))?;
    let store = KvCalls { kv, arbiters, keepers, local, retention: config.record_retention() };
    let twilio = FetchTwilio {
        api_base: config.twilio_api_base.clone(),
        account_sid: config.twilio_account_sid.clone(),
        authorization: basic_auth(&config.twilio_account_sid, &config.twilio_auth_token),
    };
    let ports = Ports { store, twilio, webhooks: FetchWebhooks, clock: WorkerClock, ids: RandomIds };
    Ok(Edge::new(config, ports))
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let request = match read_request(req).await? {
        Ok(request) => request,
        Err(too_large) => return write_response(too_large),
    };
    let edge = match edge(&env, None) {
        Ok(edge) => edge,
        Err(error) => return write_response(error.to_response()),
    };
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    if let ("GET", ["v1", "calls", call_id, "events"]) = (request.method.as_str(), segments.as_slice()) {
        return live(&env, &edge, &request, call_id).await;
    }
    write_response(edge.handle(&request).await)
}

/// `GET /v1/calls/{id}/events`: checked here (the key must own the call), then fed by
/// the call's keeper over a hibernatable WebSocket, each message one or more SSE frames,
/// relayed as they come until the keeper closes it (the call is final).
async fn live(env: &Env, edge: &WorkerEdge, request: &EdgeRequest, call_id: &str) -> worker::Result<Response> {
    let page = match edge.live_events(request, call_id).await {
        Ok(page) => page,
        Err(error) => return write_response(error.to_response()),
    };
    if page.done {
        return write_response(EdgeResponse::event_stream(page.events.iter().map(sse_frame).collect()));
    }
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let upgrade = Request::new_with_init(&format!("https://keeper{LISTEN_PATH}?after={}", page.after), &init)?;
    let stub = env.durable_object(KEEPERS_BINDING)?.get_by_name(call_id)?;
    let Some(socket) = stub.fetch_with_request(upgrade).await?.websocket() else {
        return write_response(ApiError::Storage(format!("call keeper {call_id} refused the listener")).to_response());
    };
    socket.accept()?;
    let (frames, stream) = futures_channel::mpsc::unbounded::<worker::Result<String>>();
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(mut events) = socket.events() {
            while let Some(event) = futures_util::StreamExt::next(&mut events).await {
                let Ok(WebsocketEvent::Message(message)) = event else { break };
                if frames.unbounded_send(Ok(message.text().unwrap_or_default())).is_err() {
                    break; // the listener went away
                }
            }
        }
        let _closed = socket.close(Some(CLOSE_FINAL), Some("done"));
    });
    let headers = Headers::new();
    headers.set("Content-Type", "text/event-stream")?;
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}
