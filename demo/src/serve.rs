//! The local stack left running (`scripts/demo --serve`): the native edge, the media
//! worker, the fake Twilio and OpenAI, a scripted restaurant behind every number, a
//! webhook endpoint and (when installed) a redis-server, for a person to book, watch,
//! list and delete calls against with curl or the `concierge` CLI.
//!
//! Each booking gets the scenario its restaurant's name picks
//! ([`Scenario::for_restaurant`]): the phone network looks the call's booking up through
//! the public API to know how to answer, and the Realtime endpoint reads the restaurant's
//! name in the agent's instructions to choose the agent's script.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use sim::ai_restaurant::AiHost;
use sim::carrier::{AnswerCall, Carrier, CarrierOptions, PhoneBook, Pickup};
use sim::openai_realtime::FakeOpenAi;
use sim::realtime_router::RealtimeRouter;
use sim::redis_server::RedisServer;
use sim::twilio_rest::{FakeCall, FakeTwilioRest};
use sim::webhook_sink::WebhookSink;
use tokio::sync::mpsc;

use crate::{host_script, Core, CoreOptions, EdgeMode, Scenario, ACCOUNT, API_KEY, AUTH_TOKEN, RESTAURANT_PHONE};

/// The port `--serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8787;

pub struct ServeOptions {
    /// The edge's port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Start a redis-server for the media worker (else its embedded store).
    pub redis: bool,
}

pub struct ServedStack {
    pub edge_url: String,
    pub sink: WebhookSink,
    pub realtime: RealtimeRouter,
    pub twilio: FakeTwilioRest,
    redis: Option<RedisServer>,
    /// Lines worth showing as calls happen: each call's scenario, each webhook delivered.
    activity: Option<mpsc::UnboundedReceiver<String>>,
    _carrier: Carrier,
    /// The AI hosts' fake Realtime servers (`ai-host` bookings), kept while the stack runs.
    _hosts: Arc<Mutex<Vec<FakeOpenAi>>>,
    _watcher: tokio::task::JoinHandle<()>,
    core: Core,
}

/// Whether `redis-server` is on the PATH.
pub fn redis_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("redis-server").is_file()))
}

impl ServedStack {
    pub async fn start(options: ServeOptions) -> anyhow::Result<ServedStack> {
        let realtime = RealtimeRouter::start(Arc::new(|instructions: &str| {
            let name = restaurant_in_instructions(instructions).unwrap_or_default();
            Scenario::for_restaurant(&name).play().1
        }))
        .await?;
        let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await?;
        let sink = WebhookSink::start().await?;
        let redis = if options.redis { Some(RedisServer::start().await?) } else { None };
        let started = Core::start(CoreOptions {
            edge: EdgeMode::Native,
            edge_port: options.port,
            twilio_api_base: twilio.base_url.clone(),
            realtime_url: realtime.url.clone(),
            openai_key: "sk-local-fake".to_owned(),
            redis_url: redis.as_ref().map(|r| r.url.clone()),
            // A person trying things books the same number again and again.
            edge_vars: vec![("CALLS_PER_DESTINATION_PER_HOUR", "1000".to_owned())],
        })
        .await;
        let core = match started {
            Ok(core) => core,
            Err(error) => {
                // Nothing left behind when the port is taken: the redis-server goes too.
                if let Some(redis) = redis {
                    redis.kill().await;
                }
                return Err(error);
            }
        };
        let (activity_tx, activity) = mpsc::unbounded_channel();
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let answer = answer_by_restaurant(core.edge_url.clone(), hosts.clone(), activity_tx.clone());
        let carrier = Carrier::start_with(&twilio, PhoneBook::PerCall(answer), CarrierOptions::default());
        let watcher = tokio::spawn(report_webhooks(sink.watch(), activity_tx));
        Ok(ServedStack {
            edge_url: core.edge_url.clone(),
            sink,
            realtime,
            twilio,
            redis,
            activity: Some(activity),
            _carrier: carrier,
            _hosts: hosts,
            _watcher: watcher,
            core,
        })
    }

    /// The activity lines, once.
    pub fn take_activity(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.activity.take()
    }

    /// Where everything listens, how to book, and which restaurant names pick which
    /// scenario.
    pub fn banner(&self) -> String {
        let url = &self.edge_url;
        let hook = format!("{}/hooks/concierge", self.sink.base_url);
        let store = match &self.redis {
            Some(redis) => format!(
                "redis-server            {} (pid {})",
                redis.url,
                redis.pid().map_or_else(|| "?".to_owned(), |p| p.to_string())
            ),
            None => "store                   the media worker's embedded store (no redis-server)".to_owned(),
        };
        let date = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
        let mut text = format!(
            "Concierge is running on this machine; Ctrl-C stops all of it.

  edge (the public API)   {url}
  media worker            ws://{worker}/media
  fake Twilio REST API    {twilio}
  fake OpenAI Realtime    {realtime}
  webhook endpoint        {hook}   (deliveries are shown below)
  {store}

  API key                 {API_KEY}

Book with curl:
  curl -sS {url}/v1/calls -H 'Authorization: Bearer {API_KEY}' -H 'Content-Type: application/json' -d '{{
    \"restaurant\": {{\"name\": \"Chez Panisse\", \"phone\": \"{RESTAURANT_PHONE}\"}},
    \"reservation\": {{\"date\": \"{date}\", \"time\": \"19:30\", \"party_size\": 4, \"name\": \"Ada Lovelace\"}},
    \"timezone\": \"America/Los_Angeles\", \"callback_url\": \"{hook}\"}}'
  curl -sSN {url}/v1/calls/CALL_ID/events -H 'Authorization: Bearer {API_KEY}'
  curl -sS '{url}/v1/calls?limit=5' -H 'Authorization: Bearer {API_KEY}'

Or with the CLI (cargo install --path cli, once):
  export CONCIERGE_URL={url} CONCIERGE_API_KEY={API_KEY}
  concierge book --restaurant 'Chez Panisse' --phone {RESTAURANT_PHONE} --date {date} --time 19:30 \\
    --party-size 4 --name 'Ada Lovelace' --timezone America/Los_Angeles --wait
  concierge list
  concierge delete CALL_ID

The restaurant's name picks what happens (any +1 geographic number may be dialed, one call
at a time each; calls go out at any hour; a busy line, no answer or a machine is called three
times, a second apart):
",
            worker = self.core.worker_addr,
            twilio = self.twilio.base_url,
            realtime = self.realtime.url,
        );
        for scenario in Scenario::ALL {
            let words = if scenario == Scenario::Confirms {
                "(any other name)".to_owned()
            } else {
                format!("\"{}\"", scenario.name().replace('-', " "))
            };
            text.push_str(&format!("  {words:<24}{}\n", scenario.description()));
        }
        text.push_str("The agent and the host follow a script (a table for four at 19:30), whatever the booking asks.");
        text
    }

    /// Stops everything: the redis-server is killed and waited for, the servers closed.
    pub async fn stop(mut self) {
        if let Some(redis) = self.redis.take() {
            redis.kill().await;
        }
    }
}

/// The restaurant's name in the agent's instructions (`shared::openai::config::instructions`
/// quotes it as a JSON string after "the restaurant ").
pub fn restaurant_in_instructions(instructions: &str) -> Option<String> {
    let quoted = instructions.split_once("the restaurant ")?.1;
    serde_json::Deserializer::from_str(quoted).into_iter::<String>().next()?.ok()
}

/// How each call is answered: as its restaurant's name says, read from the booking the
/// call's TwiML URL (`/twilio/twiml/{call_id}`) names.
fn answer_by_restaurant(
    edge_url: String,
    hosts: Arc<Mutex<Vec<FakeOpenAi>>>,
    activity: mpsc::UnboundedSender<String>,
) -> AnswerCall {
    let http = reqwest::Client::new();
    // Calls placed so far per booking: a scenario answering differently attempt by
    // attempt (`busy-then-answers`) follows its own booking's attempts, not its number's.
    let attempts: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    Arc::new(move |call: FakeCall| {
        let (http, edge_url, hosts, activity) = (http.clone(), edge_url.clone(), hosts.clone(), activity.clone());
        let attempts = attempts.clone();
        Box::pin(async move {
            let (call_id, name) = match booking_of(&http, &edge_url, &call).await {
                Ok(found) => found,
                Err(error) => {
                    let _ = activity.send(format!("the line does not answer: {error:#}"));
                    return Pickup::NoAnswer;
                }
            };
            let scenario = Scenario::for_restaurant(&name);
            let attempt = {
                let Ok(mut attempts) = attempts.lock() else { return Pickup::NoAnswer };
                let n = attempts.entry(call_id.clone()).or_default();
                *n += 1;
                *n
            };
            let _ = activity.send(match attempt {
                1 => format!("{call_id}  {name}: {} ({})", scenario.name(), scenario.description()),
                n => format!("{call_id}  {name}: {}, attempt {n}", scenario.name()),
            });
            if scenario == Scenario::AiHost {
                let Ok(host) = FakeOpenAi::start(host_script()).await else { return Pickup::NoAnswer };
                let pickup = Pickup::Ai(Box::new(AiHost::chez_panisse(&host.url, "sk-local-host")));
                if let Ok(mut hosts) = hosts.lock() {
                    hosts.push(host);
                }
                return pickup;
            }
            match scenario.play().0 {
                Pickup::Sequence(answers) => {
                    answers.get(attempt - 1).or(answers.last()).cloned().unwrap_or(Pickup::NoAnswer)
                }
                pickup => pickup,
            }
        })
    })
}

/// The call id and restaurant name of the booking behind a call Twilio was asked to place.
async fn booking_of(http: &reqwest::Client, edge_url: &str, call: &FakeCall) -> anyhow::Result<(String, String)> {
    let twiml_url = call.param("Url").context("the call has no TwiML URL")?;
    let call_id = twiml_url.rsplit('/').next().unwrap_or_default().to_owned();
    anyhow::ensure!(call_id.starts_with("call_"), "no call id in the TwiML URL {twiml_url}");
    let url = format!("{edge_url}/v1/calls/{call_id}");
    // The record is written before Twilio is asked; a few tries cover a slow store.
    let mut last = String::new();
    for _ in 0..20 {
        let response = http.get(&url).bearer_auth(API_KEY).send().await?;
        let status = response.status();
        let record: Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            let name = record["request"]["restaurant"]["name"].as_str().context("the record has no restaurant")?;
            return Ok((call_id, name.to_owned()));
        }
        last = format!("{status} {record}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("GET {url}: {last}")
}

/// One line per webhook delivered: the call, its status and outcome.
async fn report_webhooks(
    mut deliveries: tokio::sync::watch::Receiver<Vec<sim::webhook_sink::Delivery>>,
    activity: mpsc::UnboundedSender<String>,
) {
    let mut seen = 0;
    loop {
        let new: Vec<_> = deliveries.borrow_and_update().iter().skip(seen).cloned().collect();
        seen += new.len();
        for delivery in new {
            let record: Value = serde_json::from_str(&delivery.body).unwrap_or_default();
            let outcome = &record["outcome"];
            let mut line = format!(
                "{}  webhook: {}",
                record["call_id"].as_str().unwrap_or("?"),
                record["status"].as_str().unwrap_or("?").replace('_', " ")
            );
            if let Some(result) = outcome["result"].as_str() {
                line.push_str(&format!(", {}", result.replace('_', " ")));
            }
            if let Some(code) = outcome["confirmation_number"].as_str() {
                line.push_str(&format!(" {code}"));
            }
            if activity.send(line).is_err() {
                return;
            }
        }
        if deliveries.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restaurant_is_read_from_the_agents_instructions() {
        let request: shared::booking::BookingRequest = serde_json::from_value(serde_json::json!({
            "restaurant": {"name": "The \"Fully Booked\" Diner", "phone": "+15105485525"},
            "reservation": {"date": "2026-12-05", "time": "19:30", "party_size": 4, "name": "Ada"},
            "timezone": "America/Los_Angeles"
        }))
        .unwrap();
        let instructions = shared::openai::config::instructions(&request);
        let name = restaurant_in_instructions(&instructions).unwrap();
        assert_eq!(name, "The \"Fully Booked\" Diner");
        assert_eq!(Scenario::for_restaurant(&name), Scenario::FullyBooked);
        assert_eq!(restaurant_in_instructions("no restaurant here"), None);
    }

    #[test]
    fn the_readme_lists_every_scenario_serve_plays() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for scenario in Scenario::ALL.into_iter().filter(|s| *s != Scenario::Confirms) {
            let row = format!("| \"{}\" | {} |", scenario.name().replace('-', " "), scenario.description());
            assert!(readme.contains(&row), "README.md has no row {row}");
        }
        let row = format!("| (none of these, e.g. \"Chez Panisse\") | {} |", Scenario::Confirms.description());
        assert!(readme.contains(&row), "README.md has no row {row}");
    }

    #[test]
    fn a_restaurants_name_picks_its_scenario_by_whole_words() {
        assert_eq!(Scenario::for_restaurant("Chez Panisse"), Scenario::Confirms);
        assert_eq!(Scenario::for_restaurant("Busy Bee Café"), Scenario::Busy);
        assert_eq!(Scenario::for_restaurant("the NO-ANSWER grill"), Scenario::NoAnswer);
        assert_eq!(Scenario::for_restaurant("On Hold Oyster Bar"), Scenario::OnHold);
        assert_eq!(Scenario::for_restaurant("AI Host"), Scenario::AiHost);
        assert_eq!(Scenario::for_restaurant("Corrects read-back Bistro"), Scenario::CorrectsReadBack);
        // The longest name that matches: not `busy`.
        assert_eq!(Scenario::for_restaurant("Busy Then Answers Café"), Scenario::BusyThenAnswers);
        // Part of a word is not the word.
        assert_eq!(Scenario::for_restaurant("Busybody Bistro"), Scenario::Confirms);
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::for_restaurant(&scenario.name().replace('-', " ")), scenario);
        }
    }
}
