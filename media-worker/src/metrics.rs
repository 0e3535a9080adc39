//! Prometheus metrics, as plain atomics rendered in the text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared::events::CallStats;

/// Upper bounds of the frame-processing histogram, in seconds.
const FRAME_BUCKETS: [f64; 10] =
    [0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005];
/// From the stream's start to the agent's first audio, in seconds.
const FIRST_AUDIO_BUCKETS: [f64; 9] = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0];
/// From the restaurant going quiet to the agent's reply, in seconds.
const REPLY_BUCKETS: [f64; 9] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0];
/// The latency a host hears per turn, in seconds: the model's time (hundreds of ms) and
/// the worker's share on top; the low buckets show a fast model (or the load generator's).
const HEARD_BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];
/// The worker's share of a turn's latency, in seconds: tens of microseconds when idle,
/// so the buckets step through the millisecond.
const WORKER_ADDED_BUCKETS: [f64; 12] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1];

/// A Prometheus histogram over fixed bounds, in seconds.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(self.bounds) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(self.bounds) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.nanos.load(Ordering::Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Realtime tokens by modality, direction and caching; input excludes the cached part,
/// so the series add up to what was billed.
const TOKEN_KINDS: [(&str, &str, &str); 6] = [
    ("text", "input", "false"),
    ("text", "input", "true"),
    ("audio", "input", "false"),
    ("audio", "input", "true"),
    ("text", "output", "false"),
    ("audio", "output", "false"),
];

pub struct Metrics {
    pub active_calls: AtomicU64,
    pub calls_started: AtomicU64,
    pub streams_refused: AtomicU64,
    pub unauthenticated_connections: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_timed_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub frames_malformed: AtomicU64,
    pub openai_errors: AtomicU64,
    pub openai_error_events: AtomicU64,
    pub twilio_errors: AtomicU64,
    pub edge_errors: AtomicU64,
    /// Events this instance has submitted and the edge has not yet accepted (the outbox
    /// alone writes it: up on submit, down once delivered or refused for good).
    pub outbox_depth: AtomicU64,
    pub outbox_memory_bytes: AtomicU64,
    pub outbox_spilled: AtomicU64,
    frames: Histogram,
    first_agent_audio: Histogram,
    reply_latency: Histogram,
    heard_latency: Histogram,
    worker_added_latency: Histogram,
    barge_ins: AtomicU64,
    tokens: [AtomicU64; TOKEN_KINDS.len()],
    audio_in_ms: AtomicU64,
    audio_out_ms: AtomicU64,
    transcribed_ms: AtomicU64,
    estimated_cost_micro_usd: AtomicU64,
    /// Ended streams whose cost could not be estimated (a model without prices).
    unpriced_streams: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            active_calls: AtomicU64::new(0),
            calls_started: AtomicU64::new(0),
            streams_refused: AtomicU64::new(0),
            unauthenticated_connections: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_timed_out: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            frames_malformed: AtomicU64::new(0),
            openai_errors: AtomicU64::new(0),
            openai_error_events: AtomicU64::new(0),
            twilio_errors: AtomicU64::new(0),
            edge_errors: AtomicU64::new(0),
            outbox_depth: AtomicU64::new(0),
            outbox_memory_bytes: AtomicU64::new(0),
            outbox_spilled: AtomicU64::new(0),
            frames: Histogram::new(&FRAME_BUCKETS),
            first_agent_audio: Histogram::new(&FIRST_AUDIO_BUCKETS),
            reply_latency: Histogram::new(&REPLY_BUCKETS),
            heard_latency: Histogram::new(&HEARD_BUCKETS),
            worker_added_latency: Histogram::new(&WORKER_ADDED_BUCKETS),
            barge_ins: AtomicU64::new(0),
            tokens: Default::default(),
            audio_in_ms: AtomicU64::new(0),
            audio_out_ms: AtomicU64::new(0),
            transcribed_ms: AtomicU64::new(0),
            estimated_cost_micro_usd: AtomicU64::new(0),
            unpriced_streams: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time one frame took to process, either direction.
    pub fn observe_frame(&self, elapsed: Duration) {
        self.frames.observe(elapsed);
    }

    /// Adds what one ended stream measured (the figures the record keeps as `metrics`).
    pub fn observe_call(&self, stats: &CallStats) {
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        if let Some(ms) = stats.first_agent_audio_ms {
            self.first_agent_audio.observe(Duration::from_millis(ms));
        }
        for ms in &stats.reply_latencies_ms {
            self.reply_latency.observe(Duration::from_millis(*ms));
        }
        for ms in &stats.heard_latencies_ms {
            self.heard_latency.observe(Duration::from_millis(*ms));
        }
        for us in &stats.worker_added_latencies_us {
            self.worker_added_latency.observe(Duration::from_micros(*us));
        }
        add(&self.barge_ins, u64::from(stats.barge_ins));
        let u = &stats.usage;
        let counts = [
            u.text_input_tokens.saturating_sub(u.cached_text_tokens),
            u.cached_text_tokens,
            u.audio_input_tokens.saturating_sub(u.cached_audio_tokens),
            u.cached_audio_tokens,
            u.text_output_tokens,
            u.audio_output_tokens,
        ];
        for (counter, n) in self.tokens.iter().zip(counts) {
            add(counter, n);
        }
        add(&self.audio_in_ms, stats.audio_in_ms);
        add(&self.audio_out_ms, stats.audio_out_ms);
        add(&self.transcribed_ms, stats.transcribed_ms);
        match stats.estimated_cost_micro_usd {
            Some(micros) => add(&self.estimated_cost_micro_usd, micros),
            None => add(&self.unpriced_streams, 1),
        };
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        line("concierge_active_calls", "gauge", "Calls this instance is carrying now.", get(&self.active_calls));
        line("concierge_calls_started_total", "counter", "Media streams accepted.", get(&self.calls_started));
        line(
            "concierge_streams_refused_total",
            "counter",
            "Media streams refused (bad token, token already used, capacity).",
            get(&self.streams_refused),
        );
        line(
            "concierge_unauthenticated_connections",
            "gauge",
            "Connections that have not yet shown a valid stream token (bounded by MAX_UNAUTHENTICATED_CONNECTIONS).",
            get(&self.unauthenticated_connections),
        );
        line(
            "concierge_connections_refused_total",
            "counter",
            "Connections closed on arrival: MAX_UNAUTHENTICATED_CONNECTIONS were already waiting.",
            get(&self.connections_refused),
        );
        line(
            "concierge_connections_timed_out_total",
            "counter",
            "Connections cut for not sending a request and a valid start within START_DEADLINE_MS.",
            get(&self.connections_timed_out),
        );
        line("concierge_frames_in_total", "counter", "Audio frames received from Twilio.", get(&self.frames_in));
        line("concierge_frames_out_total", "counter", "Audio frames sent to Twilio.", get(&self.frames_out));
        line(
            "concierge_frames_malformed_total",
            "counter",
            "Frames from either side that could not be read.",
            get(&self.frames_malformed),
        );
        line(
            "concierge_openai_errors_total",
            "counter",
            "OpenAI sockets that failed to open, dropped or stalled.",
            get(&self.openai_errors),
        );
        line(
            "concierge_openai_error_events_total",
            "counter",
            "OpenAI error events on an open socket (logged; the call goes on).",
            get(&self.openai_error_events),
        );
        line("concierge_twilio_errors_total", "counter", "Twilio REST failures.", get(&self.twilio_errors));
        line("concierge_edge_errors_total", "counter", "Failed deliveries to the edge.", get(&self.edge_errors));
        line(
            "concierge_outbox_depth",
            "gauge",
            "Events this instance has submitted that the edge has not yet accepted.",
            get(&self.outbox_depth),
        );
        line(
            "concierge_outbox_memory_bytes",
            "gauge",
            "JSON of undelivered events held in memory (bounded by OUTBOX_MEMORY_BYTES).",
            get(&self.outbox_memory_bytes),
        );
        line(
            "concierge_outbox_spilled_total",
            "counter",
            "Events kept only in the live store because the outbox's memory was full.",
            get(&self.outbox_spilled),
        );
        line(
            "concierge_barge_ins_total",
            "counter",
            "Times the restaurant spoke over agent audio still playing.",
            get(&self.barge_ins),
        );
        line(
            "concierge_unpriced_streams_total",
            "counter",
            "Ended streams with no cost estimate: a model without configured prices.",
            get(&self.unpriced_streams),
        );
        let mut float = |name: &str, help: &str, labels: &[(&str, u64)], scale: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, value) in labels {
                let _ = writeln!(out, "{name}{label} {}", *value as f64 / scale);
            }
        };
        float(
            "concierge_call_audio_seconds_total",
            "Call audio, in from the restaurant (Twilio) and out from the agent.",
            &[("{direction=\"in\"}", get(&self.audio_in_ms)), ("{direction=\"out\"}", get(&self.audio_out_ms))],
            1e3,
        );
        float(
            "concierge_transcribed_audio_seconds_total",
            "Restaurant speech committed by the model's VAD, which input transcription bills.",
            &[("", get(&self.transcribed_ms))],
            1e3,
        );
        float(
            "concierge_estimated_cost_usd_total",
            "Estimated OpenAI cost of ended streams, from the configured prices.",
            &[("", get(&self.estimated_cost_micro_usd))],
            1e6,
        );
        let name = "concierge_openai_tokens_total";
        let _ = writeln!(
            out,
            "# HELP {name} Realtime tokens billed, from response.done usage; input excludes the cached part.\n# TYPE {name} counter"
        );
        for ((modality, direction, cached), counter) in TOKEN_KINDS.iter().zip(&self.tokens) {
            let _ = writeln!(
                out,
                "{name}{{modality=\"{modality}\",direction=\"{direction}\",cached=\"{cached}\"}} {}",
                get(counter)
            );
        }
        self.frames.render(
            &mut out,
            "concierge_frame_processing_seconds",
            "Time to process one audio frame, either direction.",
        );
        self.first_agent_audio.render(
            &mut out,
            "concierge_first_agent_audio_seconds",
            "From a stream's start to the agent's first audio sent to Twilio.",
        );
        self.reply_latency.render(
            &mut out,
            "concierge_reply_latency_seconds",
            "From the restaurant going quiet to the agent's reply starting, per turn.",
        );
        self.heard_latency.render(
            &mut out,
            "concierge_heard_latency_seconds",
            "Per turn, from reading the frame where the model's VAD ended the host's speech to the reply's first audio written to Twilio.",
        );
        self.worker_added_latency.render(
            &mut out,
            "concierge_worker_added_latency_seconds",
            "Per turn, the worker's share of the heard latency: that frame's way to OpenAI plus the reply's first audio's way to Twilio.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::TokenUsage;

    #[test]
    fn an_ended_stream_feeds_the_histograms_and_counters() {
        let metrics = Metrics::default();
        metrics.observe_call(&CallStats {
            first_agent_audio_ms: Some(1_200),
            reply_latencies_ms: vec![400, 900, 2_500],
            heard_latencies_ms: vec![3, 420],
            worker_added_latencies_us: vec![40, 800, 1_500],
            barge_ins: 2,
            usage: TokenUsage {
                responses: 3,
                text_input_tokens: 1_000,
                audio_input_tokens: 5_000,
                cached_text_tokens: 200,
                cached_audio_tokens: 1_000,
                text_output_tokens: 300,
                audio_output_tokens: 2_000,
            },
            audio_in_ms: 61_500,
            audio_out_ms: 30_000,
            transcribed_ms: 90_000,
            estimated_cost_micro_usd: Some(273_630),
            ..CallStats::default()
        });
        metrics.observe_call(&CallStats::default());
        let text = metrics.render();
        for expected in [
            "# TYPE concierge_first_agent_audio_seconds histogram",
            "concierge_first_agent_audio_seconds_bucket{le=\"1\"} 0",
            "concierge_first_agent_audio_seconds_bucket{le=\"1.5\"} 1",
            "concierge_first_agent_audio_seconds_count 1",
            "concierge_first_agent_audio_seconds_sum 1.2",
            "# TYPE concierge_reply_latency_seconds histogram",
            "concierge_reply_latency_seconds_bucket{le=\"0.5\"} 1",
            "concierge_reply_latency_seconds_bucket{le=\"1\"} 2",
            "concierge_reply_latency_seconds_bucket{le=\"+Inf\"} 3",
            "concierge_reply_latency_seconds_sum 3.8",
            "# TYPE concierge_heard_latency_seconds histogram",
            "concierge_heard_latency_seconds_bucket{le=\"0.005\"} 1",
            "concierge_heard_latency_seconds_bucket{le=\"0.25\"} 1",
            "concierge_heard_latency_seconds_bucket{le=\"0.5\"} 2",
            "concierge_heard_latency_seconds_count 2",
            "concierge_heard_latency_seconds_sum 0.423",
            "# TYPE concierge_worker_added_latency_seconds histogram",
            "concierge_worker_added_latency_seconds_bucket{le=\"0.00005\"} 1",
            "concierge_worker_added_latency_seconds_bucket{le=\"0.0005\"} 1",
            "concierge_worker_added_latency_seconds_bucket{le=\"0.001\"} 2",
            "concierge_worker_added_latency_seconds_bucket{le=\"0.002\"} 3",
            "concierge_worker_added_latency_seconds_count 3",
            "concierge_worker_added_latency_seconds_sum 0.00234",
            "concierge_barge_ins_total 2",
            "concierge_openai_tokens_total{modality=\"text\",direction=\"input\",cached=\"false\"} 800",
            "concierge_openai_tokens_total{modality=\"text\",direction=\"input\",cached=\"true\"} 200",
            "concierge_openai_tokens_total{modality=\"audio\",direction=\"input\",cached=\"false\"} 4000",
            "concierge_openai_tokens_total{modality=\"audio\",direction=\"input\",cached=\"true\"} 1000",
            "concierge_openai_tokens_total{modality=\"audio\",direction=\"output\",cached=\"false\"} 2000",
            "concierge_call_audio_seconds_total{direction=\"in\"} 61.5",
            "concierge_call_audio_seconds_total{direction=\"out\"} 30",
            "concierge_transcribed_audio_seconds_total 90",
            "concierge_estimated_cost_usd_total 0.27363",
            "concierge_unpriced_streams_total 1",
        ] {
            assert!(text.lines().any(|l| l == expected), "missing {expected:?} in:\n{text}");
        }
    }
}
