//! The phone network behind the fake REST API: for each call created there, it rings
//! the number and plays out what that restaurant does. Every request to the edge is
//! what Twilio sends: form-encoded, signed with `X-Twilio-Signature` over the URL the
//! edge gave, status callbacks for initiated/ringing/answered/completed with sequence
//! numbers, the TwiML fetched on answer, and the Media Streams connection to the
//! `<Stream>` it names. Answering-machine detection follows the call's parameters as
//! Twilio documents them (https://www.twilio.com/docs/voice/answering-machine-detection):
//! synchronous, `AnsweredBy` comes with the TwiML request; with `AsyncAmd=true` the
//! TwiML is fetched at once and the verdict is POSTed to `AsyncAmdStatusCallback` while
//! the call runs (`machine_start` as soon as a machine is recognised with
//! `MachineDetection=Enable`, `machine_end_beep` at the end of its greeting with
//! `DetectMessageEnd`). With `Record=true` the finished recording is POSTed to
//! `RecordingStatusCallback` after the call.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use shared::twilio::{form, signature};
use tokio::sync::watch;

use crate::ai_restaurant::{AiHost, StreamTarget};
use crate::twilio_media::{Line, MediaCall, MediaReport};
use crate::twilio_rest::{FakeCall, FakeTwilioRest, Ledger};

/// What happens when a number is called.
#[derive(Debug, Clone)]
pub enum Pickup {
    /// A person answers and says these lines (the fake model's script has their words).
    Person {
        lines: Vec<Line>,
        hangs_up_after_last_line: bool,
    },
    /// A host played by a Realtime model (real OpenAI, or a fake in tests).
    Ai(Box<AiHost>),
    /// An answering machine: it plays a greeting, then waits for a message; AMD
    /// reports it as a machine.
    Voicemail,
    Busy,
    NoAnswer,
    /// A different answer each time the number is called: the first call gets the first,
    /// and so on; the last repeats (busy at first, then a host, say).
    Sequence(Vec<Pickup>),
}

/// Decides, for one call Twilio was asked to place, what happens on the line.
pub type AnswerCall = Arc<dyn Fn(FakeCall) -> Pin<Box<dyn Future<Output = Pickup> + Send>> + Send + Sync>;

/// Who answers: a fixed behaviour per number, or a decision per call (the local stack
/// left running picks each call's scenario from its booking).
#[derive(Clone)]
pub enum PhoneBook {
    /// Numbers not listed do not answer.
    Numbers(BTreeMap<String, Pickup>),
    PerCall(AnswerCall),
}

impl PhoneBook {
    async fn pickup(&self, call: &FakeCall) -> Pickup {
        match self {
            PhoneBook::Numbers(numbers) => {
                numbers.get(call.param("To").unwrap_or_default()).cloned().unwrap_or(Pickup::NoAnswer)
            }
            PhoneBook::PerCall(answer) => answer(call.clone()).await,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CarrierOptions {
    /// Deliver some status callbacks out of order and twice, as Twilio may.
    pub reorder_and_repeat: bool,
    /// Media pacing: how many times faster than real time.
    pub speed: u32,
}

impl Default for CarrierOptions {
    fn default() -> CarrierOptions {
        CarrierOptions { reorder_and_repeat: false, speed: 1 }
    }
}

/// What the carrier did with one call.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    pub callbacks: Vec<(String, u16)>,
    pub twiml: Option<String>,
    pub media: Option<MediaReport>,
    /// The asynchronous AMD verdict sent, and the edge's answer.
    pub amd: Option<(String, u16)>,
    /// The recording callback's answer, if the call was recorded.
    pub recording: Option<u16>,
    pub finished: bool,
}

/// How long a machine's greeting plays.
const MACHINE_GREETING_MS: u32 = 4_000;
/// When AMD's verdict comes after the answer: a person is recognised by a short
/// greeting and a pause, a machine by a long greeting.
const HUMAN_VERDICT_MS: u64 = 1_800;
const MACHINE_VERDICT_MS: u64 = 2_600;

pub struct Carrier {
    log: watch::Sender<BTreeMap<String, CallLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Carrier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Context {
    auth_token: String,
    phone_book: PhoneBook,
    options: CarrierOptions,
    http: reqwest::Client,
    ledger: watch::Receiver<Ledger>,
    log: watch::Sender<BTreeMap<String, CallLog>>,
    /// Calls placed to each number so far (for [`Pickup::Sequence`]).
    calls_to: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl Carrier {
    /// Starts carrying the calls created on `rest`; numbers not in `numbers` do not answer.
    pub fn start(rest: &FakeTwilioRest, numbers: BTreeMap<String, Pickup>, options: CarrierOptions) -> Carrier {
        Carrier::start_with(rest, PhoneBook::Numbers(numbers), options)
    }

    /// Starts carrying the calls created on `rest`, each answered as `phone_book` says.
    pub fn start_with(rest: &FakeTwilioRest, phone_book: PhoneBook, options: CarrierOptions) -> Carrier {
        let log = watch::channel(BTreeMap::new()).0;
        let context = Arc::new(Context {
            auth_token: rest.auth_token.clone(),
            phone_book,
            options,
            http: reqwest::Client::new(),
            ledger: rest.watch(),
            log: log.clone(),
            calls_to: std::sync::Mutex::default(),
        });
        let mut ledger = rest.watch();
        let task = tokio::spawn(async move {
            let mut started = 0usize;
            loop {
                let calls: Vec<FakeCall> = ledger.borrow_and_update().calls.clone();
                for call in calls.into_iter().skip(started).filter(|c| c.param("Url").is_some()) {
                    started += 1;
                    tokio::spawn(place_call(context.clone(), call));
                }
                if ledger.changed().await.is_err() {
                    return;
                }
            }
        });
        Carrier { log, task }
    }

    pub fn log(&self) -> BTreeMap<String, CallLog> {
        self.log.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<BTreeMap<String, CallLog>> {
        self.log.subscribe()
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The `<Stream url>` and its `<Parameter>`s, if the TwiML connects a stream.
pub fn stream_of(twiml: &str) -> Option<(String, BTreeMap<String, String>)> {
    let url = twiml.split("<Stream url=\"").nth(1)?.split('"').next()?;
    let mut parameters = BTreeMap::new();
    for part in twiml.split("<Parameter ").skip(1) {
        let name = part.split("name=\"").nth(1)?.split('"').next()?;
        let value = part.split("value=\"").nth(1)?.split('"').next()?;
        parameters.insert(unescape(name), unescape(value));
    }
    Some((unescape(url), parameters))
}

impl Context {
    /// What the number does on this call: its pickup, or for a sequence the entry for
    /// how many times it has been called.
    async fn pickup_for(&self, call: &FakeCall) -> Pickup {
        let pickup = self.phone_book.pickup(call).await;
        let Pickup::Sequence(answers) = pickup else { return pickup };
        let to = call.param("To").unwrap_or_default();
        let mut calls = self.calls_to.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = calls.entry(to.to_owned()).or_default();
        let answer = answers.get(*n).or(answers.last()).cloned().unwrap_or(Pickup::NoAnswer);
        *n += 1;
        answer
    }

    fn record(&self, sid: &str, change: impl FnOnce(&mut CallLog)) {
        self.log.send_modify(|log| change(log.entry(sid.to_owned()).or_default()));
    }

    /// POSTs a signed form to the edge, as Twilio does.
    async fn post(&self, url: &str, params: &[(&str, String)]) -> Option<(u16, String)> {
        let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let signature = signature::compute(&self.auth_token, url, &pairs);
        let body = form::encode(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    async fn callback(&self, call: &FakeCall, status: &str, sequence: u32, extra: &[(&str, String)]) {
        let Some(url) = call.param("StatusCallback") else { return };
        let mut params = vec![
            ("CallSid", call.sid.clone()),
            ("AccountSid", "AC00000000000000000000000000000001".to_owned()),
            ("From", call.param("From").unwrap_or_default().to_owned()),
            ("To", call.param("To").unwrap_or_default().to_owned()),
            ("CallStatus", status.to_owned()),
            ("Direction", "outbound-api".to_owned()),
            ("ApiVersion", "2010-04-01".to_owned()),
            ("CallbackSource", "call-progress-events".to_owned()),
            ("SequenceNumber", sequence.to_string()),
            ("Timestamp", chrono::Utc::now().to_rfc2822()),
        ];
        params.extend(extra.iter().cloned());
        let answer = self.post(url, &params).await.map_or(0, |(status, _)| status);
        self.record(&call.sid, |log| log.callbacks.push((status.to_owned(), answer)));
    }

    /// The edge or media worker asked Twilio to end this call.
    fn ended_by_api(&self, sid: &str) -> bool {
        self.ledger.borrow().calls.iter().any(|c| c.sid == sid && !c.updates.is_empty())
    }
}

async fn place_call(context: Arc<Context>, call: FakeCall) {
    let started = Instant::now();
    let to = call.param("To").unwrap_or_default().to_owned();
    let reorder = context.options.reorder_and_repeat;
    context.callback(&call, "initiated", 0, &[]).await;
    let pickup = context.pickup_for(&call).await;
    if matches!(pickup, Pickup::Busy) {
        context.callback(&call, "busy", 1, &[]).await;
        context.record(&call.sid, |log| log.finished = true);
        return;
    }
    if !reorder {
        context.callback(&call, "ringing", 1, &[]).await;
    }
    if matches!(pickup, Pickup::NoAnswer) {
        // It rings for the call's Timeout (scaled by the run's speed), or until canceled.
        let seconds: u64 = call.param("Timeout").and_then(|t| t.parse().ok()).unwrap_or(60);
        let ring = std::time::Duration::from_millis(seconds * 1000 / u64::from(context.options.speed.max(1)));
        let mut ledger = context.ledger.clone();
        let sid = call.sid.clone();
        let _ = tokio::time::timeout(
            ring,
            ledger.wait_for(|l| l.calls.iter().any(|c| c.sid == sid && !c.updates.is_empty())),
        )
        .await;
    }
    if matches!(pickup, Pickup::NoAnswer) || context.ended_by_api(&call.sid) {
        let status = if context.ended_by_api(&call.sid) { "canceled" } else { "no-answer" };
        context.callback(&call, status, 2, &[]).await;
        context.record(&call.sid, |log| log.finished = true);
        return;
    }
    let machine = matches!(pickup, Pickup::Voicemail);
    let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let detection = call.param("MachineDetection").map(str::to_owned);
    let asynchronous = detection.is_some() && call.param("AsyncAmd") == Some("true");
    let answered_by = match (machine, detection.as_deref()) {
        (false, _) => "human",
        (true, Some("DetectMessageEnd")) => "machine_end_beep",
        (true, _) => "machine_start",
    };
    let mut answer_params = vec![
        ("CallSid", call.sid.clone()),
        ("AccountSid", "AC00000000000000000000000000000001".to_owned()),
        ("To", to.clone()),
        ("CallStatus", "in-progress".to_owned()),
    ];
    // Synchronous AMD answers before the TwiML request, which carries the verdict (and
    // so does the answered callback); asynchronous AMD posts it later, on its own.
    let sync_verdict: Vec<(&str, String)> =
        if detection.is_some() && !asynchronous { vec![("AnsweredBy", answered_by.to_owned())] } else { Vec::new() };
    answer_params.extend(sync_verdict.iter().cloned());
    let twiml = match call.param("Url") {
        Some(url) => context.post(url, &answer_params).await.map(|(_, body)| body).unwrap_or_default(),
        None => String::new(),
    };
    context.record(&call.sid, |log| log.twiml = Some(twiml.clone()));
    context.callback(&call, "in-progress", 2, &sync_verdict).await;
    if asynchronous {
        let waited = match (machine, detection.as_deref()) {
            (false, _) => HUMAN_VERDICT_MS,
            (true, Some("DetectMessageEnd")) => u64::from(MACHINE_GREETING_MS) + 400,
            (true, _) => MACHINE_VERDICT_MS,
        };
        tokio::spawn(send_amd_verdict(context.clone(), call.clone(), answered_by, waited, ended.clone()));
    }
    if reorder {
        // Ringing arrives late, after the answer.
        context.callback(&call, "ringing", 1, &[]).await;
    }
    // A machine's greeting plays on the stream; then it waits, as for a message.
    let (stream_lines, hangs_up) = match &pickup {
        Pickup::Person { lines, hangs_up_after_last_line } => (Some(lines.clone()), *hangs_up_after_last_line),
        Pickup::Voicemail => (Some(vec![Line::says(MACHINE_GREETING_MS)]), false),
        _ => (None, false),
    };
    if let (Some(lines), Some((url, parameters))) = (stream_lines, stream_of(&twiml)) {
        let media = MediaCall {
            url,
            parameters,
            call_sid: call.sid.clone(),
            stream_sid: format!("MZ{}", &call.sid[2..]),
            lines,
            speed: context.options.speed,
            max_audio_ms: 300_000,
            hang_up_after_last_line: hangs_up,
            malformed_frames: false,
        };
        let report = media.run(context.ledger.clone()).await.unwrap_or_default();
        context.record(&call.sid, |log| log.media = Some(report));
    }
    if let (Pickup::Ai(host), Some((url, parameters))) = (&pickup, stream_of(&twiml)) {
        let target = StreamTarget {
            url,
            parameters: parameters.clone(),
            call_sid: call.sid.clone(),
            stream_sid: format!("MZ{}", &call.sid[2..]),
        };
        let report = match host
            .as_ref()
            .clone()
            .run(target, context.ledger.clone(), std::time::Duration::from_secs(180))
            .await
        {
            Ok(report) => report,
            Err(error) => {
                MediaReport { violations: vec![format!("the AI host failed: {error}")], ..MediaReport::default() }
            }
        };
        context.record(&call.sid, |log| log.media = Some(report));
    }
    // A call over before AMD decided gets no verdict (the sender looks before posting).
    ended.store(true, std::sync::atomic::Ordering::SeqCst);
    let seconds = started.elapsed().as_secs().max(1).to_string();
    context.callback(&call, "completed", 3, &[("CallDuration", seconds.clone())]).await;
    if reorder {
        context.callback(&call, "completed", 3, &[("CallDuration", seconds.clone())]).await;
    }
    if let Some(url) = call.param("RecordingStatusCallback").filter(|_| call.param("Record") == Some("true")) {
        let channels = if call.param("RecordingChannels") == Some("dual") { "2" } else { "1" };
        let params = vec![
            ("AccountSid", "AC00000000000000000000000000000001".to_owned()),
            ("CallSid", call.sid.clone()),
            ("RecordingSid", format!("RE{}", &call.sid[2..])),
            (
                "RecordingUrl",
                format!(
                    "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Recordings/RE{}",
                    &call.sid[2..]
                ),
            ),
            ("RecordingStatus", "completed".to_owned()),
            ("RecordingDuration", seconds),
            ("RecordingChannels", channels.to_owned()),
            ("RecordingSource", "OutboundAPI".to_owned()),
        ];
        let answer = context.post(url, &params).await.map_or(0, |(status, _)| status);
        context.record(&call.sid, |log| log.recording = Some(answer));
    }
    context.record(&call.sid, |log| log.finished = true);
}

/// POSTs the asynchronous AMD verdict `waited_ms` after the answer (scaled by the run's
/// speed), unless the call has ended by then (`ended`, or hung up through the API).
async fn send_amd_verdict(
    context: Arc<Context>,
    call: FakeCall,
    answered_by: &'static str,
    waited_ms: u64,
    ended: Arc<std::sync::atomic::AtomicBool>,
) {
    let Some(url) = call.param("AsyncAmdStatusCallback").map(str::to_owned) else { return };
    tokio::time::sleep(std::time::Duration::from_millis(waited_ms / u64::from(context.options.speed.max(1)))).await;
    if context.ended_by_api(&call.sid) || ended.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let params = vec![
        ("CallSid", call.sid.clone()),
        ("AccountSid", "AC00000000000000000000000000000001".to_owned()),
        ("AnsweredBy", answered_by.to_owned()),
        ("MachineDetectionDuration", waited_ms.to_string()),
    ];
    let answer = context.post(&url, &params).await.map_or(0, |(status, _)| status);
    context.record(&call.sid, |log| log.amd = Some((answered_by.to_owned(), answer)));
}
