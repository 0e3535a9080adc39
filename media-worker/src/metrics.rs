//! Prometheus metrics, as plain atomics rendered in the text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the frame-processing histogram, in seconds.
const FRAME_BUCKETS: [f64; 10] =
    [0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005];

#[derive(Default)]
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
    pub outbox_depth: AtomicU64,
    pub outbox_memory_bytes: AtomicU64,
    pub outbox_spilled: AtomicU64,
    frame_buckets: [AtomicU64; FRAME_BUCKETS.len()],
    frame_count: AtomicU64,
    frame_nanos: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time one frame took to process, either direction.
    pub fn observe_frame(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.frame_buckets.iter().zip(FRAME_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.frame_count.fetch_add(1, Ordering::Relaxed);
        self.frame_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
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
        line("concierge_outbox_depth", "gauge", "Events not yet accepted by the edge.", get(&self.outbox_depth));
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
        let name = "concierge_frame_processing_seconds";
        let _ =
            writeln!(out, "# HELP {name} Time to process one audio frame, either direction.\n# TYPE {name} histogram");
        for (bucket, bound) in self.frame_buckets.iter().zip(FRAME_BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.frame_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.frame_nanos) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}
