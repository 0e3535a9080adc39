//! `concierge-loadgen`: runs N simulated calls at once through a real media worker
//! process, steps N up, and prints what held and where it stopped holding.
//!
//! Per step: a fresh worker (the release binary, embedded store), the fake edge, the
//! fake Twilio REST API and a lean Realtime endpoint (realtime.rs), all on loopback.
//! Each call streams 20 ms frames in real time for the step's length, the host and the
//! agent taking turns (turns.rs). The report gives frames sent, received and lost each
//! way, the time from a frame leaving the Twilio client to arriving at the Realtime
//! endpoint (p50/p99/max), the latency the bridge adds to a turn as the host hears it
//! (from the host's last frame of speech leaving to the reply's first audio arriving,
//! less the endpoint's own time; p50/p99), and the worker's CPU and memory per call,
//! read from /proc. For the worker it also gives its own figure for the same turns, read
//! from its `/metrics` (`concierge_worker_added_latency_seconds`).
//!
//! Every step runs twice, interleaved: through the media worker, then through the floor,
//! a bare WebSocket relay (relay.rs, this binary run as `--serve-relay`) driven by the
//! same callers. The report gives the worker's CPU per call, latency and most calls
//! held as multiples of the relay's. Runs stay bounded: loopback only, at most
//! [`MAX_CALLS`] calls a step and [`MAX_SECONDS`] of audio.
//!
//! With `--edge-bookings N` it times the edge Worker instead (edge_bench.rs).
//!
//! Usage: concierge-loadgen [--calls 50,100,200] [--seconds 12] [--audio-mode pcm24k|passthrough]
//!                          [--worker target/release/media-worker] [--worker-cpu 0]
//!
//! `--worker-cpu N` runs the worker (and the relay) on CPU N alone and the generator on
//! the others (`taskset`), so their figures are one core's, undisturbed by the generator.
//! `--wrap "valgrind --tool=callgrind"` starts both bridges under that command (it must
//! exec them in place); they are stopped with SIGTERM, so a profiler writes its data.
//! `TOKIO_WORKER_THREADS`, when set, is passed on to both bridges' runtimes.
//!        concierge-loadgen --edge-bookings 200
#![deny(unsafe_code)]

mod caller;
mod edge_bench;
mod proc_stats;
mod realtime;
mod relay;
mod turns;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use shared::auth;
use shared::booking::BookingRequest;
use shared::codec::mulaw;
use sim::fake_edge::FakeEdge;
use sim::twilio_rest::FakeTwilioRest;

use crate::caller::{CallPlan, CallerReport};
use crate::proc_stats::Usage;
use crate::realtime::Peer;

const SECRET: &str = "loadgen-internal-secret";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "loadgen-twilio-token";
/// Calls start spread over this long, as real traffic would arrive.
const RAMP: Duration = Duration::from_secs(2);
/// Targets from the performance issue: a step that misses one is past the knee.
const P99_TARGET: Duration = Duration::from_millis(5);
const MEMORY_TARGET_KIB: f64 = 200.0;
/// Frames sent this soon after the session is configured may still meet the pre-roll
/// being flushed; the steady path is timed after it.
const PRE_ROLL_SETTLE: Duration = Duration::from_millis(200);
/// Bounds on a run: each call holds four sockets and real-time tasks on this machine.
const MAX_CALLS: usize = 2_000;
const MAX_SECONDS: u64 = 60;

/// The generator's sockets. The library's 128 KiB read buffer is zeroed on every read,
/// which made clearing memory a quarter of the generator's time; frames are small.
fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

struct Options {
    steps: Vec<usize>,
    seconds: u64,
    audio_mode: String,
    worker: PathBuf,
    /// Pin the worker to this CPU and the generator to the rest.
    worker_cpu: Option<usize>,
    /// A command both bridges are started under (a profiler).
    wrap: Vec<String>,
    edge_bookings: Option<usize>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        steps: vec![50, 100, 200, 400, 700, 1000],
        seconds: 12,
        audio_mode: "pcm24k".into(),
        worker: PathBuf::from("target/release/media-worker"),
        worker_cpu: None,
        wrap: Vec::new(),
        edge_bookings: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--calls" => {
                options.steps = value.split(',').map(|n| n.trim().parse()).collect::<Result<_, _>>()?;
            }
            "--seconds" => options.seconds = value.parse()?,
            "--audio-mode" => options.audio_mode = value,
            "--worker" => options.worker = value.into(),
            "--worker-cpu" => options.worker_cpu = Some(value.parse()?),
            "--wrap" => options.wrap = value.split_whitespace().map(str::to_owned).collect(),
            "--edge-bookings" => options.edge_bookings = Some(value.parse()?),
            _ => bail!("unknown option {flag}; see the top of loadgen/src/main.rs"),
        }
    }
    if options.seconds < RAMP.as_secs() + 5 || options.seconds > MAX_SECONDS {
        bail!("--seconds must be from {} (ramp, settle, measure) to {MAX_SECONDS}", RAMP.as_secs() + 5);
    }
    if options.steps.is_empty() || options.steps.iter().any(|&calls| calls == 0 || calls > MAX_CALLS) {
        bail!("--calls: each step from 1 to {MAX_CALLS}");
    }
    Ok(options)
}

/// What carries the calls between the Twilio callers and the Realtime endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bridge {
    /// The media worker: the product.
    Ours,
    /// The bare relay: the floor.
    Relay,
}

impl Bridge {
    fn name(self) -> &'static str {
        match self {
            Bridge::Ours => "ours",
            Bridge::Relay => "relay",
        }
    }
}

/// One step's figures.
struct StepReport {
    bridge: Bridge,
    calls: usize,
    failed_calls: usize,
    frames_in_sent: u64,
    frames_in_lost: u64,
    frames_out_expected: u64,
    frames_out_lost: u64,
    latency_us: Percentiles,
    /// What the bridge added to each turn, as the host hears it.
    turn_us: Percentiles,
    turns: usize,
    /// The worker's own measure of its share of those turns, from `/metrics`.
    self_measured: Option<SelfMeasured>,
    worker_cpu_cores: f64,
    loadgen_cpu_cores: f64,
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
}

impl StepReport {
    fn memory_per_call_kib(&self) -> f64 {
        self.rss_loaded_kib.saturating_sub(self.rss_idle_kib) as f64 / self.calls.max(1) as f64
    }

    fn cpu_per_call(&self) -> f64 {
        self.worker_cpu_cores / self.calls.max(1) as f64
    }

    fn holds(&self) -> bool {
        self.failed_calls == 0
            && self.frames_in_lost == 0
            && self.frames_out_lost == 0
            && Duration::from_micros(self.latency_us.p99) < P99_TARGET
            && self.memory_per_call_kib() < MEMORY_TARGET_KIB
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Percentiles {
    p50: u64,
    p99: u64,
    max: u64,
}

fn percentiles(mut samples: Vec<u64>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Percentiles { p50: at(0.50), p99: at(0.99), max: at(1.0) }
}

/// 20 ms of mu-law silence: the host between turns.
fn silence_frame() -> String {
    STANDARD.encode([0xffu8; 160])
}

/// 20 ms of a 300 Hz tone, as the restaurant's side sends it.
fn restaurant_frame() -> String {
    let samples: Vec<i16> =
        (0..160).map(|i| (7_000.0 * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 8000.0).sin()) as i16).collect();
    let mut codes = [0u8; 160];
    let _ = mulaw::encode(&samples, &mut codes);
    STANDARD.encode(codes)
}

fn booking(index: usize) -> anyhow::Result<BookingRequest> {
    let date = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
    let body = serde_json::json!({
        "restaurant": {"name": realtime::restaurant_name(index), "phone": "+15105485525"},
        "reservation": {"date": date, "time": "19:30", "party_size": 2, "name": "Load Tester"},
        "timezone": "America/Los_Angeles"
    });
    BookingRequest::parse(body.to_string().as_bytes(), chrono::Utc::now()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Waits until something accepts connections on `port`.
async fn wait_listening(port: u16, child: &mut tokio::process::Child, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the {name} exited before listening: {status}");
        }
        if Instant::now() > deadline {
            bail!("the {name} did not listen within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A command for a bridge `program`: on the worker's CPU alone if one is given, under
/// the wrapping command if any, with the runtime's thread count passed on.
fn bridge_command(options: &Options, program: &std::path::Path) -> tokio::process::Command {
    // taskset and the wrapper exec the program in place: the pid stays the program's.
    let mut line: Vec<std::ffi::OsString> = Vec::new();
    if let Some(cpu) = options.worker_cpu {
        line.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    line.extend(options.wrap.iter().map(Into::into));
    line.push(program.into());
    let mut command = tokio::process::Command::new(&line[0]);
    command.args(&line[1..]).env_clear();
    if let Ok(threads) = std::env::var("TOKIO_WORKER_THREADS") {
        command.env("TOKIO_WORKER_THREADS", threads);
    }
    command
}

/// Stops a bridge with SIGTERM (the worker drains, a profiler writes its data), then
/// kills it if it has not exited within 60 s.
async fn stop(child: &mut tokio::process::Child, pid: u32) {
    let _ = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
    if tokio::time::timeout(Duration::from_secs(60), child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

async fn run_step(options: &Options, step: usize, calls: usize, bridge: Bridge) -> anyhow::Result<StepReport> {
    let audio = Duration::from_secs(options.seconds);
    let peer = match bridge {
        Bridge::Ours => Peer::Worker,
        Bridge::Relay => Peer::Relay,
    };
    // The agent stops talking 2 s before the restaurant hangs up: every reply is through.
    let (realtime_url, sessions) = realtime::start(&options.audio_mode, audio - Duration::from_secs(2), peer).await?;
    let call_ids: Vec<String> = (0..calls).map(|i| format!("call_load_{step}_{i}")).collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // The worker's services live until the step ends; the relay needs none.
    let mut services = None;
    let mut worker = match bridge {
        Bridge::Ours => {
            let edge = FakeEdge::start(SECRET).await?;
            let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await?;
            for (index, call_id) in call_ids.iter().enumerate() {
                edge.add_call(call_id, booking(index)?);
                twilio.register_call(&format!("CA{step:04}{index:028}"), "+15105485525");
            }
            let worker = spawn_worker(options, step, calls, port, &realtime_url, &edge.base_url, &twilio.base_url)?;
            services = Some((edge, twilio));
            worker
        }
        Bridge::Relay => bridge_command(options, &std::env::current_exe()?)
            .arg("--serve-relay")
            .arg(&realtime_url)
            .arg("--port")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relay (this binary, --serve-relay)")?,
    };
    wait_listening(port, &mut worker, if bridge == Bridge::Ours { "media worker" } else { "relay" }).await?;
    let pid = worker.id().context("the bridge has no pid")?;
    let rss_idle_kib = proc_stats::rss_kib(pid)?;
    let report = drive_calls(options, step, calls, bridge, port, &call_ids, pid, sessions).await;
    stop(&mut worker, pid).await;
    drop(services);
    let mut report = report?;
    report.rss_idle_kib = rss_idle_kib;
    Ok(report)
}

fn spawn_worker(
    options: &Options,
    step: usize,
    calls: usize,
    port: u16,
    realtime_url: &str,
    edge_url: &str,
    twilio_url: &str,
) -> anyhow::Result<tokio::process::Child> {
    bridge_command(options, &options.worker)
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .env("OPENAI_API_KEY", "sk-loadgen")
        .env("OPENAI_REALTIME_URL", realtime_url)
        .env("AUDIO_MODE", &options.audio_mode)
        .env("INTERNAL_SECRET", SECRET)
        .env("EDGE_BASE_URL", edge_url)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_API_BASE", twilio_url)
        .env("MAX_CONCURRENT_CALLS", (calls + 10).to_string())
        .env("MAX_CALL_SECONDS", "600")
        .env("INSTANCE_ID", format!("loadgen-{step}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (build it with cargo build --release)", options.worker.display()))
}

/// Runs the step's calls against the bridge listening on `port` (process `pid`).
#[allow(clippy::too_many_arguments)]
async fn drive_calls(
    options: &Options,
    step: usize,
    calls: usize,
    bridge: Bridge,
    port: u16,
    call_ids: &[String],
    pid: u32,
    sessions: realtime::Sessions,
) -> anyhow::Result<StepReport> {
    let audio = Duration::from_secs(options.seconds);
    let (speech, silence) = (restaurant_frame(), silence_frame());
    let started = Instant::now();
    let mut running = Vec::with_capacity(calls);
    for (index, call_id) in call_ids.iter().enumerate() {
        let plan = CallPlan {
            url: format!("ws://127.0.0.1:{port}/media"),
            call_id: call_id.clone(),
            token: auth::issue_stream_token(SECRET, call_id, chrono::Utc::now().timestamp() + 600),
            call_sid: format!("CA{step:04}{index:028}"),
            stream_sid: format!("MZ{step:04}{index:028}"),
            speech: speech.clone(),
            silence: silence.clone(),
            audio,
        };
        let start_at = tokio::time::Instant::from_std(started + RAMP.mul_f64(index as f64 / calls as f64));
        running.push(tokio::spawn(async move {
            tokio::time::sleep_until(start_at).await;
            caller::run(plan).await
        }));
    }

    // Measure while every call is up: after the ramp and a second to settle, until a
    // second before the first calls end.
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + RAMP + Duration::from_secs(1))).await;
    let (worker_before, loadgen_before, window_start) = (Usage::of(pid)?, Usage::of_self()?, Instant::now());
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + audio - Duration::from_secs(1))).await;
    let window = window_start.elapsed();
    let worker_cpu_cores = Usage::of(pid)?.cores_since(&worker_before, window);
    let loadgen_cpu_cores = Usage::of_self()?.cores_since(&loadgen_before, window);
    let rss_loaded_kib = proc_stats::rss_kib(pid)?;

    let mut reports: Vec<CallerReport> = Vec::with_capacity(calls);
    for call in running {
        reports
            .push(call.await.unwrap_or_else(|e| CallerReport { failure: Some(e.to_string()), ..Default::default() }));
    }
    // The Realtime sessions end when the worker closes them after each `stop`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = sessions.take();
    while logs.len() < calls && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        logs.extend(sessions.take());
    }
    // Ended streams are in the worker's histograms by now: its `stream_ended` came first.
    let self_measured = match bridge {
        Bridge::Ours => worker_added_latency(port).await,
        Bridge::Relay => None,
    };

    let mut latencies = Vec::new();
    let mut turn_latencies = Vec::new();
    let mut report = StepReport {
        bridge,
        calls,
        failed_calls: 0,
        frames_in_sent: 0,
        frames_in_lost: 0,
        frames_out_expected: 0,
        frames_out_lost: 0,
        latency_us: Percentiles::default(),
        turn_us: Percentiles::default(),
        turns: 0,
        self_measured,
        worker_cpu_cores,
        loadgen_cpu_cores,
        rss_idle_kib: 0,
        rss_loaded_kib,
    };
    for (index, caller) in reports.iter().enumerate() {
        let Some(session) = logs.get(&index) else {
            report.failed_calls += 1;
            continue;
        };
        if let Some(failure) = &caller.failure {
            eprintln!("call {index}: {failure}");
            report.failed_calls += 1;
        }
        report.frames_in_sent += caller.sent.len() as u64;
        report.frames_in_lost += (caller.sent.len() as u64).saturating_sub(session.appends.len() as u64);
        // Frames sent before the session was configured wait in the worker's pre-roll by
        // design; the path is timed from the first frame sent after it.
        let live_from = session.configured_at.unwrap_or(started) + PRE_ROLL_SETTLE;
        for (sent, arrived) in caller.sent.iter().zip(&session.appends) {
            if *sent >= live_from {
                latencies.push(arrived.saturating_duration_since(*sent).as_micros() as u64);
            }
        }
        for (turn, received) in &caller.replies {
            let Some(endpoint) = session.turns.iter().find(|t| t.turn == *turn) else { continue };
            let last_speech = usize::try_from((turn + 1) * turns::TURN_FRAMES - 1).ok();
            let Some(&sent) = last_speech.and_then(|index| caller.sent.get(index)) else { continue };
            if sent >= live_from {
                turn_latencies.push(turns::added(sent, *received, endpoint).as_micros() as u64);
            }
        }
        let expected = session.agent_ms / 20;
        report.frames_out_expected += expected;
        // One frame's worth stays in the resampler's delay line when the agent stops.
        report.frames_out_lost += expected.saturating_sub(caller.agent_frames() + 1);
    }
    report.latency_us = percentiles(latencies);
    report.turns = turn_latencies.len();
    report.turn_us = percentiles(turn_latencies);
    Ok(report)
}

/// The worker's own measure of its share of the turns (`concierge_worker_added_latency_seconds`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SelfMeasured {
    turns: u64,
    mean: Duration,
    /// The histogram bucket the 99th percentile falls in, by its upper bound; `None`
    /// past the last bound.
    p99_at_most: Option<Duration>,
}

/// The worker's own measure of its share of each turn, from its `/metrics`. `None` if it
/// could not be read or measured no turn.
async fn worker_added_latency(port: u16) -> Option<SelfMeasured> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?.text().await.ok()?;
    self_measured(&text)
}

fn self_measured(metrics: &str) -> Option<SelfMeasured> {
    const NAME: &str = "concierge_worker_added_latency_seconds";
    let value = |suffix: &str| -> Option<f64> {
        metrics.lines().find_map(|line| line.strip_prefix(NAME)?.strip_prefix(suffix)?.strip_prefix(' ')?.parse().ok())
    };
    let turns = value("_count")? as u64;
    let sum = value("_sum")?;
    if turns == 0 {
        return None;
    }
    // Buckets are cumulative: the first whose count reaches 99% holds the 99th percentile.
    let wanted = (turns as f64 * 0.99).ceil() as u64;
    let p99_at_most = metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(NAME)?.strip_prefix("_bucket{le=\"")?;
            let (bound, count) = rest.split_once("\"} ")?;
            // `+Inf` is no bound (and no Duration).
            let bound = bound.parse::<f64>().ok().filter(|b| b.is_finite())?;
            Some((bound, count.parse::<u64>().ok()?))
        })
        .find(|&(_, count)| count >= wanted)
        .map(|(bound, _)| Duration::from_secs_f64(bound));
    Some(SelfMeasured { turns, mean: Duration::from_secs_f64(sum / turns as f64), p99_at_most })
}

/// The CPUs this machine has online, from /sys (not this process's affinity).
fn online_cpus() -> Vec<usize> {
    // The file reads like "0-1" or "0,2-3".
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) {
            cpus.extend(first..=last);
        }
    }
    cpus
}

/// Moves every thread of this process onto the CPUs other than `worker_cpu`.
fn pin_generator_away_from(worker_cpu: usize) -> anyhow::Result<()> {
    let cpus = online_cpus();
    if !cpus.contains(&worker_cpu) {
        bail!("--worker-cpu {worker_cpu}: this machine's CPUs are {cpus:?}");
    }
    let others: Vec<String> = cpus.iter().filter(|&&c| c != worker_cpu).map(|c| c.to_string()).collect();
    if others.is_empty() {
        bail!("--worker-cpu needs a machine with a CPU to spare for the generator");
    }
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &others.join(","), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset could not pin the generator: {status}");
    }
    Ok(())
}

fn print_header(options: &Options) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find(|l| l.starts_with("model name")).map(|l| l.to_owned()))
        .and_then(|line| line.split_once(':').map(|(_, model)| model.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = online_cpus().len();
    let placement = match options.worker_cpu {
        Some(worker_cpu) => {
            format!("The worker (and the relay) run on CPU {worker_cpu} alone, the load generator on the others.")
        }
        None => "The load generator shares the machine.".to_owned(),
    };
    println!("# concierge-loadgen");
    println!();
    println!(
        "{cpu}, {cores} cores; AUDIO_MODE={}; {} s of audio per call each way, calls started over {} s; \
         worker: {}, embedded store. {placement} Each step runs through the worker (ours), then through \
         the floor (relay: a bare tokio WebSocket relay forwarding the callers' messages unparsed, \
         agent audio in passthrough-sized messages).",
        options.audio_mode,
        options.seconds,
        RAMP.as_secs(),
        options.worker.display()
    );
    println!();
    println!("| calls | bridge | failed | frames in (sent / lost) | frames out (expected / lost) | frame latency p50 / p99 / max | added to a turn p50 / p99 (turns) | bridge CPU (cores) | CPU per call | memory per call | loadgen CPU (cores) | holds |");
    println!("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// A short duration in ms, with the precision the worker's own figures need.
fn ms_f(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

fn print_row(row: &StepReport) {
    println!(
        "| {} | {} | {} | {} / {} | {} / {} | {} / {} / {} ms | {} / {} ms ({}) | {:.2} | {:.3}% | {:.0} KiB | {:.2} | {} |",
        row.calls,
        row.bridge.name(),
        row.failed_calls,
        row.frames_in_sent,
        row.frames_in_lost,
        row.frames_out_expected,
        row.frames_out_lost,
        ms(row.latency_us.p50),
        ms(row.latency_us.p99),
        ms(row.latency_us.max),
        ms(row.turn_us.p50),
        ms(row.turn_us.p99),
        row.turns,
        row.worker_cpu_cores,
        row.cpu_per_call() * 100.0,
        row.memory_per_call_kib(),
        row.loadgen_cpu_cores,
        if row.holds() { "yes" } else { "no" }
    );
}

/// `ours / floor` as a multiple, or "—" when the floor measured nothing.
fn ratio(ours: f64, floor: f64) -> String {
    if floor > 0.0 {
        format!("{:.2}×", ours / floor)
    } else {
        "—".to_owned()
    }
}

/// The worker's figures as multiples of the relay's, step by step, and the most calls
/// each held.
fn print_against_floor(pairs: &[(StepReport, StepReport)]) {
    println!();
    println!("Against the floor (ours ÷ relay, each step run through both):");
    println!();
    println!("| calls | CPU per call (ours / relay) | latency p50 (ours / relay) | latency p99 (ours / relay) | added to a turn p50 (ours / relay) | added to a turn p99 (ours / relay) | the worker's own figure (mean / p99, turns) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (ours, relay) in pairs {
        let own = match ours.self_measured {
            Some(own) => {
                let p99 = own.p99_at_most.map_or("> 100".to_owned(), |at_most| format!("≤ {}", ms_f(at_most)));
                format!("{} / {p99} ms ({})", ms_f(own.mean), own.turns)
            }
            None => "—".to_owned(),
        };
        // One latency cell: ours / relay in ms, and the multiple.
        let versus = |ours_us: u64, relay_us: u64| {
            format!("{} / {} ms = {}", ms(ours_us), ms(relay_us), ratio(ours_us as f64, relay_us as f64))
        };
        println!(
            "| {} | {:.3}% / {:.3}% = {} | {} | {} | {} | {} | {} |",
            ours.calls,
            ours.cpu_per_call() * 100.0,
            relay.cpu_per_call() * 100.0,
            ratio(ours.cpu_per_call(), relay.cpu_per_call()),
            versus(ours.latency_us.p50, relay.latency_us.p50),
            versus(ours.latency_us.p99, relay.latency_us.p99),
            versus(ours.turn_us.p50, relay.turn_us.p50),
            versus(ours.turn_us.p99, relay.turn_us.p99),
            own,
        );
    }
    println!();
    let most_held = |pick: fn(&(StepReport, StepReport)) -> &StepReport| {
        pairs.iter().map(pick).filter(|row| row.holds()).map(|row| row.calls).max().unwrap_or(0)
    };
    let (ours, relay) = (most_held(|pair| &pair.0), most_held(|pair| &pair.1));
    println!(
        "Most calls held (nothing lost, p99 under 5 ms): ours {ours}, relay {relay} ({} of the relay's).",
        ratio(ours as f64, relay as f64)
    );
    for bridge in [Bridge::Ours, Bridge::Relay] {
        let pick =
            |pair: &(StepReport, StepReport)| if bridge == Bridge::Ours { pair.0.holds() } else { pair.1.holds() };
        let names = |held: bool| -> Vec<String> {
            pairs.iter().filter(|pair| pick(pair) == held).map(|pair| pair.0.calls.to_string()).collect()
        };
        let (held, missed) = (names(true), names(false));
        // Every step is named: near the knee a step can miss between two that hold.
        match (held.is_empty(), missed.is_empty()) {
            (_, true) => println!("{}: every step held.", bridge.name()),
            (false, false) => {
                println!("{}: held at {} calls; missed at {}.", bridge.name(), held.join(", "), missed.join(", "))
            }
            (true, false) => println!("{}: no step held ({} calls).", bridge.name(), missed.join(", ")),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, upstream, port_flag, port] = args.as_slice() {
        if flag == "--serve-relay" && port_flag == "--port" {
            return relay::serve(port.parse().context("--port")?, upstream.clone()).await;
        }
    }
    let options = options()?;
    if let Some(bookings) = options.edge_bookings {
        return edge_bench::run(bookings.max(1)).await;
    }
    print_header(&options);
    if let Some(worker_cpu) = options.worker_cpu {
        pin_generator_away_from(worker_cpu)?;
    }
    let mut pairs = Vec::with_capacity(options.steps.len());
    for (step, &calls) in options.steps.iter().enumerate() {
        let ours = run_step(&options, step, calls, Bridge::Ours).await?;
        print_row(&ours);
        let relay = run_step(&options, step, calls, Bridge::Relay).await?;
        print_row(&relay);
        pairs.push((ours, relay));
    }
    print_against_floor(&pairs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_own_figure_is_read_from_its_histogram() {
        let metrics = "# TYPE concierge_worker_added_latency_seconds histogram\n\
            concierge_worker_added_latency_seconds_bucket{le=\"0.00005\"} 10\n\
            concierge_worker_added_latency_seconds_bucket{le=\"0.0001\"} 98\n\
            concierge_worker_added_latency_seconds_bucket{le=\"0.00025\"} 99\n\
            concierge_worker_added_latency_seconds_bucket{le=\"+Inf\"} 100\n\
            concierge_worker_added_latency_seconds_sum 0.0085\n\
            concierge_worker_added_latency_seconds_count 100\n";
        let own = self_measured(metrics).unwrap();
        assert_eq!(own.turns, 100);
        assert_eq!(own.mean, Duration::from_micros(85));
        assert_eq!(own.p99_at_most, Some(Duration::from_micros(250)));
        assert_eq!(self_measured("concierge_worker_added_latency_seconds_count 0\n"), None);
        // All past the last bound: the 99th percentile is only known to be beyond it.
        let beyond = "concierge_worker_added_latency_seconds_bucket{le=\"0.1\"} 0\n\
            concierge_worker_added_latency_seconds_bucket{le=\"+Inf\"} 2\n\
            concierge_worker_added_latency_seconds_sum 0.3\n\
            concierge_worker_added_latency_seconds_count 2\n";
        assert_eq!(self_measured(beyond).unwrap().p99_at_most, None);
    }
}
