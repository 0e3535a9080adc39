//! The whole system on one machine: the edge (native, or the WASM build under
//! `wrangler dev`), the media worker, and the fakes of the outside world: the Twilio
//! REST API and carrier, the OpenAI Realtime server and a scripted restaurant.
//!
//! [`LocalStack::start`] wires them together on loopback ports for one scenario; the demo
//! binary and the end-to-end tests both use it. [`serve::ServedStack`] is the same stack
//! left running for many bookings, each with the scenario its restaurant's name picks.
#![deny(unsafe_code)]

pub mod serve;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use sim::ai_restaurant::AiHost;
use sim::carrier::{Carrier, CarrierOptions, Pickup};
use sim::openai_realtime::{AgentTurn, FakeOpenAi, Script};
use sim::redis_server::RedisServer;
use sim::twilio_media::Line;
use sim::twilio_rest::FakeTwilioRest;
use sim::webhook_sink::WebhookSink;
use sim::wrangler::WranglerDev;
use tokio::net::TcpListener;

pub const RESTAURANT_PHONE: &str = "+15105485525";
pub const API_KEY: &str = "demo-key";
/// The demo key's webhook signing secret, configured beside it in `API_KEYS`.
pub const WEBHOOK_SECRET: &str = "whsec_demo_0123456789abcdef0123";
pub(crate) const ACCOUNT: &str = "AC00000000000000000000000000000001";
pub(crate) const AUTH_TOKEN: &str = "local-twilio-auth-token";
const SECRET: &str = "local-internal-secret";
const FROM: &str = "+15005550006";

/// What the restaurant does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The host confirms and spells a confirmation code.
    Confirms,
    /// The asked time is taken; another is offered.
    OffersAnotherTime,
    FullyBooked,
    /// The host puts the caller on hold, then confirms.
    OnHold,
    /// The host talks over the agent's long opening.
    Interrupts,
    Voicemail,
    Busy,
    NoAnswer,
    /// The host is a Realtime model session (a second fake here; real OpenAI with
    /// `--real-openai`), talking with the agent through the phone line.
    AiHost,
    /// The model reports a code other than the one the host spelled: the record keeps
    /// it, flagged `mismatch`, with the host's code beside it.
    MisreadsCode,
    /// The agent reads the code back wrong, the host corrects it, and the agent reports
    /// the corrected code.
    CorrectsReadBack,
    /// The line is busy; the second attempt, a little later, reaches the host, who confirms.
    BusyThenAnswers,
    /// A phone menu answers ("for reservations, press 2"); the host comes on only once
    /// the 2 has been heard on the line as a key tone, then confirms.
    PhoneMenu,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::Confirms,
        Scenario::OffersAnotherTime,
        Scenario::FullyBooked,
        Scenario::OnHold,
        Scenario::Interrupts,
        Scenario::Voicemail,
        Scenario::Busy,
        Scenario::NoAnswer,
        Scenario::AiHost,
        Scenario::MisreadsCode,
        Scenario::CorrectsReadBack,
        Scenario::BusyThenAnswers,
        Scenario::PhoneMenu,
    ];

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Confirms => "confirms",
            Scenario::OffersAnotherTime => "offers-another-time",
            Scenario::FullyBooked => "fully-booked",
            Scenario::OnHold => "on-hold",
            Scenario::Interrupts => "interrupts",
            Scenario::Voicemail => "voicemail",
            Scenario::Busy => "busy",
            Scenario::NoAnswer => "no-answer",
            Scenario::AiHost => "ai-host",
            Scenario::MisreadsCode => "misreads-code",
            Scenario::CorrectsReadBack => "corrects-read-back",
            Scenario::BusyThenAnswers => "busy-then-answers",
            Scenario::PhoneMenu => "phone-menu",
        }
    }

    /// What the restaurant does, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::Confirms => "confirms 19:30 for four and spells the code A73X",
            Scenario::OffersAnotherTime => "19:30 is taken; offers 21:15",
            Scenario::FullyBooked => "declines: fully booked",
            Scenario::OnHold => "puts the caller on hold for 5 s, then confirms (K91)",
            Scenario::Interrupts => "talks over the agent's long opening, then confirms (B22)",
            Scenario::Voicemail => "an answering machine picks up (nothing is said)",
            Scenario::Busy => "the line is busy",
            Scenario::NoAnswer => "rings until the ring timeout (10 s)",
            Scenario::AiHost => "the host is itself a Realtime session (a second fake); confirms A73X",
            Scenario::MisreadsCode => "the host spells A73X, the model reports A73Y: flagged mismatch",
            Scenario::CorrectsReadBack => "the host corrects the agent's read-back of K91",
            Scenario::BusyThenAnswers => "the line is busy; the next attempt, a second later, reaches the host: A73X",
            Scenario::PhoneMenu => {
                "a menu answers (\"for reservations, press 2\"); the host comes on once 2 is heard: A73X"
            }
        }
    }

    /// The scenario of a booking at the local stack left running (`--serve`): the one
    /// whose name, as words, is among the restaurant's name's words ("Fully Booked
    /// Diner" is `fully-booked`, "the no-answer grill" `no-answer`), the longest if
    /// several are ("Busy Then Answers" is not `busy`); any other name gets `confirms`.
    pub fn for_restaurant(name: &str) -> Scenario {
        let words: Vec<String> =
            name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        let words = format!("-{}-", words.join("-"));
        Scenario::ALL
            .into_iter()
            .filter(|s| words.contains(&format!("-{}-", s.name())))
            .max_by_key(|s| s.name().len())
            .unwrap_or(Scenario::Confirms)
    }

    /// The restaurant's side (lines of real audio) and the fake model's script.
    pub(crate) fn play(self) -> (Pickup, Script) {
        let hello = AgentTurn::say(
            "Hello! I'd like to book a table for four tonight at seven thirty, under Ada Lovelace.",
            1200,
        );
        let goodbye = AgentTurn::call("end_call", json!({}));
        let person = |lines: Vec<Line>| Pickup::Person { lines, hangs_up_after_last_line: false };
        let script = |restaurant: &[&str], agent: Vec<AgentTurn>| Script {
            restaurant: restaurant.iter().map(|s| s.to_string()).collect(),
            agent,
            ..Script::default()
        };
        match self {
            Scenario::Confirms => (
                person(vec![Line::says(800), Line::says(1600)]),
                script(
                    &["Chez Panisse, good evening.", "Yes, seven thirty for four works. Your confirmation number is A as in apple, seven, three, X."],
                    vec![
                        hello,
                        AgentTurn::say("Wonderful, that's A, seven, three, X. Thank you, goodbye!", 1000).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "A73X", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::OffersAnotherTime => (
                person(vec![Line::says(800), Line::says(1400)]),
                script(
                    &["Chez Panisse.", "Seven thirty is taken, but I can offer nine fifteen."],
                    vec![
                        hello,
                        AgentTurn::say("Thank you, I'll check with the guest and call back. Goodbye!", 900).then_call(
                            "report_outcome",
                            json!({"result": "alternative_offered", "confirmed_time": "21:15", "party_size": 4, "notes": "9:15 PM offered instead of 7:30 PM"}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::FullyBooked => (
                person(vec![Line::says(800), Line::says(1000)]),
                script(
                    &["Chez Panisse.", "Sorry, we're fully booked tonight."],
                    vec![
                        hello,
                        AgentTurn::say("I understand, thank you anyway. Goodbye!", 800)
                            .then_call("report_outcome", json!({"result": "declined", "notes": "fully booked"})),
                        goodbye,
                    ],
                ),
            ),
            Scenario::OnHold => (
                person(vec![Line::says(900), Line::after_pause(1600, 5000)]),
                script(
                    &["Chez Panisse, can you hold for a moment?", "Thanks for holding. Yes, we can do that. Confirmation is K as in kilo, nine, one."],
                    vec![
                        AgentTurn::say("Of course.", 500),
                        AgentTurn::say("Great, K, nine, one. Thank you, goodbye!", 900).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "K91", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::Interrupts => (
                person(vec![Line::says(700), Line::interrupts_after(1700, 800)]),
                script(
                    &["Chez Panisse.", "Yes yes, four at seven thirty is fine, confirmation bravo two two."],
                    vec![
                        AgentTurn::say("Hello! I'm calling on behalf of a guest, Ada Lovelace, who would like to book a table for four people tonight at seven thirty if you have anything available.", 5000),
                        AgentTurn::say("Perfect, B, two, two. Thank you, goodbye!", 900).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "B22", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::MisreadsCode => (
                person(vec![Line::says(800), Line::says(1600)]),
                script(
                    &["Chez Panisse, good evening.", "Yes, seven thirty for four works. Your confirmation number is A as in apple, seven, three, X."],
                    vec![
                        hello,
                        AgentTurn::say("Wonderful, thank you so much. Goodbye!", 1000).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "A73Y", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::CorrectsReadBack => (
                person(vec![Line::says(800), Line::says(1600), Line::says(900)]),
                script(
                    &[
                        "Chez Panisse, good evening.",
                        "Yes, seven thirty for four works. Your confirmation is K as in kilo, nine, one.",
                        "No, K, nine, one.",
                    ],
                    vec![
                        hello,
                        AgentTurn::say("Let me read that back: K, nine, seven?", 900),
                        AgentTurn::say("K, nine, one. Thank you, goodbye!", 900).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "K91", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            // The host's side is set up in LocalStack::start; this is the agent's script.
            Scenario::AiHost => (
                Pickup::NoAnswer,
                script(
                    &["Chez Panisse, good evening.", "Seven thirty for four is fine. Your confirmation is A as in apple, seven, three, X."],
                    vec![
                        hello,
                        AgentTurn::say("Wonderful, A, seven, three, X. Thank you, goodbye!", 900).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "A73X", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::Voicemail => (Pickup::Voicemail, Script::default()),
            Scenario::Busy => (Pickup::Busy, Script::default()),
            Scenario::PhoneMenu => (
                person(vec![Line::says(2400), Line::after_keys(900, "2"), Line::says(1600)]),
                script(
                    &[
                        "Thank you for calling Chez Panisse. For reservations, press 2. For directions, press 3.",
                        "Reservations, Chez Panisse, good evening.",
                        "Yes, seven thirty for four works. Your confirmation number is A as in apple, seven, three, X.",
                    ],
                    vec![
                        AgentTurn::call("press_keys", json!({"digits": "2"})),
                        hello,
                        AgentTurn::say("Wonderful, that's A, seven, three, X. Thank you, goodbye!", 1000).then_call(
                            "report_outcome",
                            json!({"result": "confirmed", "confirmation_number": "A73X", "confirmed_time": "19:30", "party_size": 4}),
                        ),
                        goodbye,
                    ],
                ),
            ),
            Scenario::BusyThenAnswers => {
                let (host, script) = Scenario::Confirms.play();
                (Pickup::Sequence(vec![Pickup::Busy, host]), script)
            }
            Scenario::NoAnswer => (Pickup::NoAnswer, Script::default()),
        }
    }
}

/// Which edge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    /// The route table as a native server (fast to start; the demo).
    Native,
    /// The WASM Worker under `wrangler dev` (the end-to-end tests).
    Wrangler,
}

/// Which Realtime API the agent (and an AI host) talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiMode {
    /// The local fake: no account, no network.
    Fake,
    /// The real API with this key: the agent and an AI host are real models.
    Real { api_key: String },
}

/// The fake host's script: what it hears (the agent) and what it says.
pub(crate) fn host_script() -> Script {
    Script {
        restaurant: vec![
            "Hello! I'd like to book a table for four tonight at seven thirty.".into(),
            "Thank you, goodbye!".into(),
        ],
        agent: vec![
            AgentTurn::say("Chez Panisse, good evening.", 900),
            AgentTurn::say("Seven thirty for four is fine. Your confirmation is A as in apple, seven, three, X.", 1600),
            AgentTurn::say("Goodbye!", 400),
        ],
        ..Script::default()
    }
}

pub struct StackOptions {
    pub scenario: Scenario,
    pub openai: OpenAiMode,
    pub edge: EdgeMode,
    /// Start a real redis-server for the media worker (else its embedded store).
    pub redis: bool,
    /// Deliver Twilio's status callbacks out of order and twice.
    pub unruly_callbacks: bool,
    pub speed: u32,
}

enum RunningEdge {
    Native(tokio::task::JoinHandle<std::io::Result<()>>),
    Wrangler(Box<WranglerDev>),
}

pub struct LocalStack {
    pub edge_url: String,
    pub sink: WebhookSink,
    pub openai: FakeOpenAi,
    /// The AI host's fake Realtime server, in the `ai-host` scenario.
    pub host_openai: Option<FakeOpenAi>,
    pub twilio: FakeTwilioRest,
    pub carrier: Carrier,
    _redis: Option<RedisServer>,
    core: Core,
}

/// What [`Core::start`] needs: where the fakes are, and the edge's mode and port.
pub(crate) struct CoreOptions {
    pub edge: EdgeMode,
    /// 0: any free port.
    pub edge_port: u16,
    pub twilio_api_base: String,
    pub realtime_url: String,
    pub openai_key: String,
    /// A redis-server's URL; `None`: the media worker's embedded store.
    pub redis_url: Option<String>,
    /// Edge settings added to (or replacing) the local ones.
    pub edge_vars: Vec<(&'static str, String)>,
}

/// The two services of the product, the edge and the media worker, wired to each other
/// and to the fakes; both stop when this is dropped.
pub(crate) struct Core {
    pub edge_url: String,
    pub worker_addr: std::net::SocketAddr,
    edge: RunningEdge,
    worker: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.worker.abort();
        if let RunningEdge::Native(task) = &self.edge {
            task.abort();
        }
    }
}

impl Core {
    pub(crate) async fn start(options: CoreOptions) -> anyhow::Result<Core> {
        // Ports first: the edge and the worker each need the other's address.
        let worker_listener = TcpListener::bind("127.0.0.1:0").await?;
        let worker_addr = worker_listener.local_addr()?;
        let native_listener = match options.edge {
            EdgeMode::Native => Some(TcpListener::bind(("127.0.0.1", options.edge_port)).await.with_context(|| {
                format!("binding the edge's port {} (taken? --port picks another)", options.edge_port)
            })?),
            EdgeMode::Wrangler => None,
        };
        let edge_port = match (&native_listener, options.edge_port) {
            (Some(listener), _) => listener.local_addr()?.port(),
            (None, 0) => sim::wrangler::free_port()?,
            (None, port) => port,
        };
        let edge_url = format!("http://127.0.0.1:{edge_port}");

        let mut edge_vars = vec![
            ("PUBLIC_BASE_URL", edge_url.clone()),
            ("MEDIA_WS_URL", format!("ws://{worker_addr}/media")),
            ("TWILIO_API_BASE", options.twilio_api_base.clone()),
            ("TWILIO_FROM_NUMBER", FROM.to_owned()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
            ("INTERNAL_SECRET", SECRET.to_owned()),
            ("API_KEYS", format!("{API_KEY}:{WEBHOOK_SECRET}")),
            // The webhook sink listens on loopback over plain http.
            ("ALLOW_INSECURE_CALLBACKS", "1".to_owned()),
            ("WEBHOOK_RETRY_BASE_SECONDS", "1".to_owned()),
            ("RING_TIMEOUT_SECONDS", "10".to_owned()),
            // Locally the restaurant takes calls at any hour, and a busy line or no answer
            // is tried again (three attempts in all) a second later, not ten minutes.
            ("CALLING_WINDOW", "00:00-24:00".to_owned()),
            ("RETRY_INTERVAL_SECONDS", "1".to_owned()),
        ];
        for (name, value) in options.edge_vars {
            edge_vars.retain(|(k, _)| *k != name);
            edge_vars.push((name, value));
        }
        let edge = match native_listener {
            Some(listener) => {
                let config = edge::config::EdgeConfig::from_lookup(|name| {
                    edge_vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
                })?;
                let native = Arc::new(edge::native::edge(config));
                RunningEdge::Native(tokio::spawn(edge::native::serve(listener, native, std::future::pending())))
            }
            None => RunningEdge::Wrangler(Box::new(WranglerDev::start(edge_port, &edge_vars).await?)),
        };

        let worker_vars = vec![
            ("OPENAI_API_KEY", options.openai_key),
            ("OPENAI_REALTIME_URL", options.realtime_url),
            ("INTERNAL_SECRET", SECRET.to_owned()),
            ("EDGE_BASE_URL", edge_url.clone()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
            ("TWILIO_API_BASE", options.twilio_api_base),
            ("MAX_CALL_SECONDS", "120".to_owned()),
            ("INSTANCE_ID", "local".to_owned()),
            ("REDIS_URL", options.redis_url.unwrap_or_default()),
        ];
        let config = media_worker::config::MediaConfig::from_lookup(|name| {
            worker_vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        })?;
        let store = media_worker::server::open_store(&config).await?;
        let worker = tokio::spawn(media_worker::server::run(worker_listener, config, store, std::future::pending()));
        Ok(Core { edge_url, worker_addr, edge, worker })
    }
}

impl LocalStack {
    pub async fn start(options: StackOptions) -> anyhow::Result<LocalStack> {
        let (pickup, script) = options.scenario.play();
        let openai = FakeOpenAi::start(script).await?;
        let (pickup, host_openai) = match (&options.openai, options.scenario) {
            (OpenAiMode::Real { api_key }, _) => {
                (Pickup::Ai(Box::new(AiHost::chez_panisse(shared::openai::DEFAULT_REALTIME_URL, api_key))), None)
            }
            (OpenAiMode::Fake, Scenario::AiHost) => {
                let host = FakeOpenAi::start(host_script()).await?;
                (Pickup::Ai(Box::new(AiHost::chez_panisse(&host.url, "sk-local-host"))), Some(host))
            }
            (OpenAiMode::Fake, _) => (pickup, None),
        };
        let (realtime_url, openai_key) = match &options.openai {
            OpenAiMode::Real { api_key } => (shared::openai::DEFAULT_REALTIME_URL.to_owned(), api_key.clone()),
            OpenAiMode::Fake => (openai.url.clone(), "sk-local-fake".to_owned()),
        };
        let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await?;
        let carrier = Carrier::start(
            &twilio,
            BTreeMap::from([(RESTAURANT_PHONE.to_owned(), pickup)]),
            CarrierOptions { reorder_and_repeat: options.unruly_callbacks, speed: options.speed },
        );
        let sink = WebhookSink::start().await?;
        let redis = if options.redis { Some(RedisServer::start().await?) } else { None };
        let core = Core::start(CoreOptions {
            edge: options.edge,
            edge_port: 0,
            twilio_api_base: twilio.base_url.clone(),
            realtime_url,
            openai_key,
            redis_url: redis.as_ref().map(|r| r.url.clone()),
            edge_vars: Vec::new(),
        })
        .await?;
        Ok(LocalStack {
            edge_url: core.edge_url.clone(),
            sink,
            openai,
            host_openai,
            twilio,
            carrier,
            _redis: redis,
            core,
        })
    }

    /// The booking the demo and tests make.
    pub fn booking(&self) -> Value {
        let date = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        json!({
            "restaurant": {"name": "Chez Panisse", "phone": RESTAURANT_PHONE},
            "reservation": {"date": date, "time": "19:30", "party_size": 4, "name": "Ada Lovelace",
                            "special_requests": "window seat if possible", "flexibility_minutes": 30},
            "timezone": "America/Los_Angeles",
            "callback_url": format!("{}/hooks/concierge", self.sink.base_url)
        })
    }

    /// Books [`LocalStack::booking`]; returns the call id.
    pub async fn book(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        let created = self.book_with(http, &self.booking()).await?;
        created["call_id"].as_str().map(str::to_owned).context("no call_id in the answer")
    }

    /// Books `body` (a variation of [`LocalStack::booking`]); returns the 201's body.
    pub async fn book_with(&self, http: &reqwest::Client, body: &Value) -> anyhow::Result<Value> {
        let response = http.post(format!("{}/v1/calls", self.edge_url)).bearer_auth(API_KEY).json(body).send().await?;
        let status = response.status();
        let created: Value = response.json().await?;
        anyhow::ensure!(status.as_u16() == 201, "booking refused: {status} {created}");
        Ok(created)
    }

    pub async fn record(&self, http: &reqwest::Client, call_id: &str) -> anyhow::Result<Value> {
        Ok(http.get(format!("{}/v1/calls/{call_id}", self.edge_url)).bearer_auth(API_KEY).send().await?.json().await?)
    }

    /// Waits for the completion webhook: the final record, pushed by the edge, its
    /// signature checked with the key's webhook secret.
    pub async fn final_record(&self) -> anyhow::Result<Value> {
        let mut deliveries = self.sink.watch();
        let delivery = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                if let Some(first) = deliveries.borrow_and_update().iter().find(|d| d.status < 300).cloned() {
                    return Ok(first);
                }
                deliveries.changed().await?;
            }
        })
        .await
        .context("no completion webhook within two minutes")?
        .map_err(|e: tokio::sync::watch::error::RecvError| anyhow::anyhow!(e))?;
        delivery
            .verify(WEBHOOK_SECRET, chrono::Utc::now().timestamp())
            .map_err(|e| anyhow::anyhow!("the completion webhook's signature: {e}"))?;
        Ok(serde_json::from_str(&delivery.body)?)
    }

    /// Follows `GET /v1/calls/{id}/events` (Server-Sent Events) from `last_event_id`,
    /// handing each event to `on_event` until the stream ends (the call is final) or
    /// `on_event` returns false (the listener drops the connection).
    pub async fn follow(
        &self,
        http: &reqwest::Client,
        call_id: &str,
        last_event_id: Option<u64>,
        mut on_event: impl FnMut(&LiveEvent) -> bool,
    ) -> anyhow::Result<()> {
        let mut request = http.get(format!("{}/v1/calls/{call_id}/events", self.edge_url)).bearer_auth(API_KEY);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let mut response = request.send().await?;
        anyhow::ensure!(response.status().as_u16() == 200, "events refused: {}", response.status());
        let mut buffer = String::new();
        while let Some(chunk) = response.chunk().await? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(event) = LiveEvent::parse(&frame) {
                    if !on_event(&event) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    pub fn edge_log(&self) -> String {
        match &self.core.edge {
            RunningEdge::Wrangler(dev) => dev.log(),
            RunningEdge::Native(_) => String::new(),
        }
    }
}

/// One Server-Sent Event of a call's live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub id: u64,
    pub kind: String,
    pub data: Value,
}

impl LiveEvent {
    /// Reads one SSE frame (`id:`, `event:`, `data:` lines); comments give `None`.
    pub fn parse(frame: &str) -> Option<LiveEvent> {
        let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        Some(LiveEvent {
            id: field("id:")?.parse().ok()?,
            kind: field("event:")?.to_owned(),
            data: serde_json::from_str(field("data:")?).ok()?,
        })
    }
}

/// Installs the TLS provider reqwest and the WebSocket clients share.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
