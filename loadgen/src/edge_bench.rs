//! How long the edge Worker takes to answer a booking under `wrangler dev` (workerd,
//! local KV and Durable Objects): `POST /v1/calls` end to end with an `Idempotency-Key`,
//! as clients should send it, which validates, claims and binds the key in its Durable
//! Object, writes KV four times and creates the call at the fake Twilio REST API.
//! Bookings go one after another, so the figure is the time a user waits, not
//! throughput. Each booked call is then ended by a signed `busy` status callback (not
//! timed), so the key's in-flight list stays short, as it does in real use.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use shared::twilio::{form, signature};
use sim::twilio_rest::FakeTwilioRest;
use sim::wrangler::{free_port, WranglerDev};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "edge-bench-twilio-token";
const KEY: &str = "edge-bench-key";
/// Bookings answered before timing starts (workerd compiles the WASM on first use).
const WARM_UP: usize = 5;

pub async fn run(bookings: usize) -> anyhow::Result<()> {
    let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await?;
    let port = free_port()?;
    let public_base = format!("http://127.0.0.1:{port}");
    let vars = [
        ("PUBLIC_BASE_URL", public_base.clone()),
        ("MEDIA_WS_URL", "ws://127.0.0.1:9/media".to_owned()),
        ("TWILIO_API_BASE", twilio.base_url.clone()),
        ("TWILIO_FROM_NUMBER", "+15005550006".to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("INTERNAL_SECRET", "edge-bench-secret".to_owned()),
        ("API_KEYS", KEY.to_owned()),
        ("BOOKINGS_PER_MINUTE", (bookings + WARM_UP + 1).to_string()),
    ];
    let started = Instant::now();
    let edge = WranglerDev::start(port, &vars).await?;
    let ready_after = started.elapsed();
    let http = reqwest::Client::new();
    let date = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
    let mut timings = Vec::with_capacity(bookings);
    for n in 0..WARM_UP + bookings {
        let body = serde_json::json!({
            // A restaurant each: a number takes one live call and CALLS_PER_DESTINATION_PER_HOUR.
            "restaurant": {"name": "Chez Panisse", "phone": format!("+1510548{:04}", n % 10_000)},
            "reservation": {"date": date, "time": "19:30", "party_size": 2, "name": format!("Bench {n}")},
            "timezone": "America/Los_Angeles"
        });
        let sent = Instant::now();
        let response = http
            .post(format!("{}/v1/calls", edge.base_url))
            .bearer_auth(KEY)
            .header("Idempotency-Key", format!("edge-bench-{n}"))
            .json(&body)
            .send()
            .await
            .context("booking")?;
        let status = response.status();
        let body_bytes = response.bytes().await.unwrap_or_default();
        let took = sent.elapsed();
        if status != 201 {
            bail!("booking {n} answered {status}:\n{}", edge.log());
        }
        if n >= WARM_UP {
            timings.push(took);
        }
        let booked: serde_json::Value = serde_json::from_slice(&body_bytes).context("booking answer")?;
        let call_id = booked["call_id"].as_str().context("no call_id")?;
        let path = format!("/twilio/status/{call_id}");
        let params = [
            ("CallSid".to_owned(), format!("CA{n:032}")),
            ("CallStatus".to_owned(), "busy".to_owned()),
            ("Timestamp".to_owned(), chrono::Utc::now().to_rfc2822()),
        ];
        let signature = signature::compute(AUTH_TOKEN, &format!("{public_base}{path}"), &params);
        let ended = http
            .post(format!("{}{path}", edge.base_url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(form::encode(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .send()
            .await?;
        if ended.status() != 204 {
            bail!("ending call {call_id} answered {}", ended.status());
        }
    }
    timings.sort_unstable();
    let at = |q: f64| timings[((timings.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("# edge under wrangler dev: POST /v1/calls");
    println!();
    println!(
        "wrangler dev ready after {:.1} s; {bookings} bookings one after another, after {WARM_UP} to warm up.",
        ready_after.as_secs_f64()
    );
    println!();
    println!("| p50 | p90 | p99 | max |");
    println!("|---:|---:|---:|---:|");
    println!("| {} | {} | {} | {} |", ms(at(0.5)), ms(at(0.9)), ms(at(0.99)), ms(at(1.0)));
    Ok(())
}
