//! `concierge-demo`: books a table at a simulated restaurant through the public API and
//! shows the call as it happens. Everything runs on this machine; no accounts needed.
//!
//! Usage: concierge-demo [scenario]   (confirms, offers-another-time, fully-booked,
//!        on-hold, interrupts, voicemail, busy, no-answer, ai-host, misreads-code,
//!        corrects-read-back, busy-then-answers, phone-menu; default: confirms)
//!        concierge-demo --real-openai  (needs OPENAI_API_KEY: the agent is the real
//!        Realtime model, and so is the restaurant's host, on a simulated phone line)
//!        concierge-demo --serve [--port N] [--no-redis]  (the stack left running for
//!        curl and the CLI, each booking's scenario picked by its restaurant's name;
//!        Ctrl-C stops it)
#![deny(unsafe_code)]

use anyhow::Context;
use demo::serve::{ServeOptions, ServedStack, DEFAULT_PORT};
use demo::{EdgeMode, LocalStack, OpenAiMode, Scenario, StackOptions};
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};

/// The scenario and which Realtime API to use, from the command line.
fn choose(argument: &str) -> anyhow::Result<(Scenario, OpenAiMode)> {
    if argument == "--real-openai" {
        let api_key = std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.trim().is_empty());
        let Some(api_key) = api_key else { anyhow::bail!("--real-openai needs OPENAI_API_KEY in the environment") };
        println!("Using the real OpenAI Realtime API for the agent and for the restaurant's host.");
        return Ok((Scenario::AiHost, OpenAiMode::Real { api_key }));
    }
    match Scenario::parse(argument) {
        Some(scenario) => Ok((scenario, OpenAiMode::Fake)),
        None => {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            anyhow::bail!("unknown scenario '{argument}'; try one of: {}, --real-openai or --serve", names.join(", "))
        }
    }
}

/// `--serve`'s options, from the arguments after it.
fn serve_options(arguments: &[String]) -> anyhow::Result<ServeOptions> {
    let mut options = ServeOptions { port: DEFAULT_PORT, redis: demo::serve::redis_installed() };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--port" => {
                let port = arguments.next().context("--port needs a number")?;
                options.port = port.parse().with_context(|| format!("--port: '{port}' is not a port"))?;
            }
            "--no-redis" => options.redis = false,
            other => anyhow::bail!("--serve takes --port N and --no-redis, not '{other}'"),
        }
    }
    Ok(options)
}

/// Runs the stack until SIGINT (Ctrl-C) or SIGTERM, then stops all of it.
async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // Before anything starts: a signal from here on stops the stack in order.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    println!("Starting the edge, the media worker, and local stand-ins for Twilio, OpenAI and the restaurants…");
    let mut stack = ServedStack::start(options).await?;
    println!(
        "{}
",
        stack.banner()
    );
    // The line scripts (and the tests) wait for.
    println!("ready: {}", stack.edge_url);
    let mut activity = stack.take_activity().context("activity already taken")?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            Some(line) = activity.recv() => println!("  {line}"),
        }
    }
    println!("Stopping…");
    // The fake OpenAI checks every client event; anything it refused is a bug to see.
    for violation in stack.realtime.violations() {
        eprintln!("  the fake OpenAI refused: {violation}");
    }
    stack.stop().await;
    println!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    demo::install_tls();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().is_some_and(|a| a == "--serve") {
        return serve(serve_options(&arguments[1..])?).await;
    }
    let (scenario, openai) = choose(&std::env::args().nth(1).unwrap_or_else(|| "confirms".into()))?;
    println!("Starting the edge, the media worker, and local stand-ins for Twilio, OpenAI and the restaurant…");
    let options =
        StackOptions { scenario, openai, edge: EdgeMode::Native, redis: false, unruly_callbacks: false, speed: 1 };
    let stack = LocalStack::start(options).await?;
    println!("  edge (public API) on {}", stack.edge_url);
    let http = reqwest::Client::new();
    println!("\nPOST {}/v1/calls\n{}", stack.edge_url, serde_json::to_string_pretty(&stack.booking())?);
    let call_id = stack.book(&http).await?;
    println!("→ 201 call_id {call_id}\n\nThe call, as it happens (scenario: {}):", scenario.name());

    // The call's live events (Server-Sent Events), as they happen, until it is final.
    let mut record = Value::Null;
    stack
        .follow(&http, &call_id, None, |event| {
            match event.kind.as_str() {
                "status" => println!("  [status] {}", event.data["status"].as_str().unwrap_or_default()),
                "transcript" => println!(
                    "  [{:>10}] {}",
                    event.data["speaker"].as_str().unwrap_or_default(),
                    event.data["text"].as_str().unwrap_or_default()
                ),
                "outcome" => println!("  [   outcome] {}", event.data["result"].as_str().unwrap_or_default()),
                "end" => record = event.data.clone(),
                _ => {}
            }
            true
        })
        .await?;
    println!("\nThe final record (GET /v1/calls/{call_id}, also POSTed to the callback_url):");
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}
