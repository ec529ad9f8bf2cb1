//! The relay's counters and gauges, rendered in the Prometheus text format at `/metrics`.
//!
//! A handful of atomics is all we need; a metrics library would add more than it saves.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct Metrics {
    pub sessions_active: AtomicI64,
    pub sessions_total: AtomicU64,
    pub sessions_rejected: AtomicU64,
    pub streams_active: AtomicI64,
    pub streams_total: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub buffered_bytes: AtomicI64,
    pub refusals: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub http_connections_active: AtomicI64,
    pub http_connections_refused: AtomicU64,
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, i64); 12] = [
            (
                "soket_sessions_active",
                "gauge",
                "Sessions open now.",
                self.sessions_active.load(Relaxed),
            ),
            (
                "soket_sessions_total",
                "counter",
                "Sessions opened.",
                self.sessions_total.load(Relaxed) as i64,
            ),
            (
                "soket_sessions_rejected_total",
                "counter",
                "WebSocket upgrades refused (origin, token, subprotocol, session limits).",
                self.sessions_rejected.load(Relaxed) as i64,
            ),
            (
                "soket_streams_active",
                "gauge",
                "Streams (sockets) open now.",
                self.streams_active.load(Relaxed),
            ),
            (
                "soket_streams_total",
                "counter",
                "Streams opened.",
                self.streams_total.load(Relaxed) as i64,
            ),
            (
                "soket_bytes_up_total",
                "counter",
                "Bytes from pages written to real sockets.",
                self.bytes_up.load(Relaxed) as i64,
            ),
            (
                "soket_bytes_down_total",
                "counter",
                "Bytes from real sockets sent to pages.",
                self.bytes_down.load(Relaxed) as i64,
            ),
            (
                "soket_buffered_bytes",
                "gauge",
                "Bytes held in relay buffers now, all sessions.",
                self.buffered_bytes.load(Relaxed),
            ),
            (
                "soket_refusals_total",
                "counter",
                "Destinations refused by the egress policy.",
                self.refusals.load(Relaxed) as i64,
            ),
            (
                "soket_protocol_errors_total",
                "counter",
                "Sessions ended for breaking the protocol.",
                self.protocol_errors.load(Relaxed) as i64,
            ),
            (
                "soket_http_connections_active",
                "gauge",
                "HTTP connections open now, sessions' WebSockets included.",
                self.http_connections_active.load(Relaxed),
            ),
            (
                "soket_http_connections_refused_total",
                "counter",
                "HTTP connections closed on arrival: over --max-connections or --max-connections-per-ip.",
                self.http_connections_refused.load(Relaxed) as i64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}
