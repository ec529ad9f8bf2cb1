//! `BENCHMARKS.md`: the page ([`page`]), made of two parts between markers so that a run of one part keeps
//! the other ([`part_of`]), and the relay part itself ([`Report`]): figures, ratios, and each target marked
//! met or not met. Every figure of a part comes from the run that wrote that part.

use std::fmt::Write as _;
use std::time::Duration;

/// The day and the machine a part was measured on.
pub struct Machine {
    pub date: String,
    pub cores: String,
    pub cpu: String,
    pub kernel: String,
}

/// The two parts of the page, each between its own markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Relay,
    Browser,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Relay => "relay",
            Part::Browser => "browser",
        }
    }

    fn begin(self) -> String {
        format!("<!-- begin part: {} -->", self.name())
    }

    fn end(self) -> String {
        format!("<!-- end part: {} -->", self.name())
    }
}

/// The whole page around its two parts' markdown.
pub fn page(relay: &str, browser: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Made by `cargo xtask bench`, in two parts: the relay against plain TCP and websocat, then Soket's \
         page in headless Chromium against Pyodide and native CPython. `cargo xtask bench --browser-only` \
         measures the browser part alone and keeps the relay part as it was, so each part says when it was \
         made; every ratio compares figures of the same run. All traffic stays on loopback. Run the command \
         again to refresh this page; the targets are reported here, never asserted by tests.\n"
    );
    for (part, text) in [(Part::Relay, relay), (Part::Browser, browser)] {
        // Blank lines around the markers: a marker right under a table could be read as one of its rows.
        let _ = writeln!(
            md,
            "{}\n\n{}\n\n{}\n",
            part.begin(),
            text.trim(),
            part.end()
        );
    }
    md.truncate(md.trim_end().len());
    md.push('\n');
    md
}

/// The markdown of `part` in a page written before, if it has that part.
pub fn part_of(page: &str, part: Part) -> Option<String> {
    let (_, rest) = page.split_once(&part.begin())?;
    let (text, _) = rest.split_once(&part.end())?;
    Some(format!("{}\n", text.trim()))
}

/// What a part says when it was never measured.
pub fn unmeasured(part: Part) -> String {
    let how = match part {
        Part::Relay => "`cargo xtask bench`",
        Part::Browser => "`cargo xtask bench` or `cargo xtask bench --browser-only`",
    };
    format!(
        "The {} part has not been measured yet: run {how}.\n",
        part.name()
    )
}

/// The machine and the run's settings, said above the tables.
pub struct Setting {
    pub machine: Machine,
    pub websocat: String,
    pub command: String,
    /// The flags of the relay that carries the bulk and echo traffic, besides `--port`, `--www`, `--allow`.
    pub relay_flags: String,
    pub bulk_mib: u64,
    pub rounds: usize,
    pub rtt_size: usize,
    pub rtt_warmup: usize,
    pub rtt_count: usize,
}

/// MiB/s per round, for one path.
#[derive(Default)]
pub struct Bulk {
    pub up: Vec<f64>,
    pub down: Vec<f64>,
}

pub struct RoundTrip {
    /// How many were measured (fewer than asked when the path is slow: the series is bounded in time).
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
}

pub struct Memory {
    /// The relay's `--max-sessions`.
    pub max_sessions: usize,
    /// Handshakes under way at once while the sessions were opened.
    pub parallel: usize,
    pub sessions: usize,
    pub before_kib: u64,
    pub after_kib: u64,
}

impl Memory {
    pub fn per_session_kib(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / self.sessions as f64
    }
}

/// Figures per path, in the order plain TCP, relay, websocat.
pub struct Report {
    pub setting: Setting,
    pub bulk: [Bulk; 3],
    pub rtt: [RoundTrip; 3],
    pub memory: Memory,
    /// The relay held under load: alone, then beside a slowloris.
    pub held: Vec<crate::held::Held>,
}

const PLAIN: usize = 0;
const RELAY: usize = 1;
const WEBSOCAT: usize = 2;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let m = &s.machine;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Relay part: made by `{}` on {}: {} cores ({}), Linux {}, {}. One run; every figure and ratio of \
             this part comes from it. Clients on 127.0.0.1, servers on 127.0.0.2.\n",
            s.command, m.date, m.cores, m.cpu, m.kernel, s.websocat
        );
        let _ = writeln!(md, "The paths:");
        let _ = writeln!(
            md,
            "- **plain TCP**: a tokio client straight to the server (the floor no relay can beat);"
        );
        let _ = writeln!(
            md,
            "- **relay**: `soket_client::Client` (the page's own network stack, `soket-netstack`, driven \
             natively; one session, one stream) through the release `soket-relay` in its own process \
             (`{}`);",
            s.relay_flags
        );
        let _ = writeln!(
            md,
            "- **websocat**: a tokio-tungstenite client sending binary messages through `websocat --binary -E \
             ws-l:… tcp:…`, the same WebSocket→TCP job.\n"
        );

        let _ = writeln!(
            md,
            "## Bulk throughput\n\n{} MiB per transfer in writes (messages) of 64 KiB; median of {} rounds \
             after a warm-up round. Upload: from the client's first write until the sink has counted the \
             last byte. Download: from the client's \"go\" until it has read the last byte.\n",
            s.bulk_mib, s.rounds
        );
        let _ = writeln!(
            md,
            "| path | upload MiB/s | download MiB/s | rounds (up / down) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---|");
        for (i, name) in ["plain TCP", "relay", "websocat"].iter().enumerate() {
            let b = &self.bulk[i];
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} / {} |",
                thousands(median(&b.up)),
                thousands(median(&b.down)),
                list(&b.up),
                list(&b.down)
            );
        }
        let (up, down) = (self.ratio_up(WEBSOCAT), self.ratio_down(WEBSOCAT));
        let _ = writeln!(
            md,
            "| relay / websocat | {} | {} | |",
            times(up),
            times(down)
        );
        let (up, down) = (self.ratio_up(PLAIN), self.ratio_down(PLAIN));
        let _ = writeln!(
            md,
            "| relay / plain TCP | {} | {} | |\n",
            times(up),
            times(down)
        );

        let _ = writeln!(
            md,
            "## Echo round trip\n\nUp to {} round trips (at most {} s) of a {}-byte message, each a write \
             then a read of the whole echo, after up to {} unmeasured ones (at most {} s); one connection \
             per path. Every client and the echo server have Nagle off (`soket_client::Client` turns it \
             off, and so does the websocat path's tokio-tungstenite client).\n",
            s.rtt_count,
            crate::measure::SERIES_BUDGET.as_secs(),
            s.rtt_size,
            s.rtt_warmup,
            crate::measure::WARMUP_BUDGET.as_secs()
        );
        let _ = writeln!(md, "| path | p50 µs | p99 µs | round trips |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for (i, name) in ["plain TCP", "relay", "websocat"].iter().enumerate() {
            let r = &self.rtt[i];
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} |",
                micros(r.p50),
                micros(r.p99),
                thousands(r.count as f64)
            );
        }
        let _ = writeln!(
            md,
            "| relay / websocat | {} | {} | |",
            times(self.rtt_ratio(WEBSOCAT, |r| r.p50)),
            times(self.rtt_ratio(WEBSOCAT, |r| r.p99))
        );
        let _ = writeln!(
            md,
            "| relay / plain TCP | {} | {} | |\n",
            times(self.rtt_ratio(PLAIN, |r| r.p50)),
            times(self.rtt_ratio(PLAIN, |r| r.p99))
        );

        let m = &self.memory;
        let _ = writeln!(
            md,
            "## Relay memory per idle session\n\nA fresh release relay (`--max-sessions {}`); `VmRSS` \
             from `/proc/<pid>/status` after one warm-up session, then with {} sessions open (WebSocket \
             upgraded, `Welcome` received, nothing else sent; opened {} at a time).\n",
            m.max_sessions,
            m.sessions,
            m.parallel
        );
        let _ = writeln!(md, "| sessions | RSS before | RSS after | per session |");
        let _ = writeln!(md, "|---:|---:|---:|---:|");
        let _ = writeln!(
            md,
            "| {} | {} KiB | {} KiB | {:.1} KiB |\n",
            thousands(m.sessions as f64),
            thousands(m.before_kib as f64),
            thousands(m.after_kib as f64),
            m.per_session_kib()
        );

        held_table(&mut md, &self.held);
        targets_table(&mut md, "Relay targets", &self.targets());
        md
    }

    /// (what, the measured figure, met) for every target.
    pub fn targets(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for (dir, up) in [("upload", true), ("download", false)] {
            let r = if up {
                self.ratio_up(WEBSOCAT)
            } else {
                self.ratio_down(WEBSOCAT)
            };
            out.push((
                format!("relay throughput ≥ 1.0× websocat ({dir})"),
                times(r),
                r >= 1.0,
            ));
        }
        for (dir, up) in [("upload", true), ("download", false)] {
            let r = if up {
                self.ratio_up(PLAIN)
            } else {
                self.ratio_down(PLAIN)
            };
            out.push((
                format!("relay throughput ≥ 1/3 of plain TCP ({dir})"),
                times(r),
                r >= 1.0 / 3.0,
            ));
        }
        let r = self.rtt_ratio(WEBSOCAT, |r| r.p50);
        out.push((
            "relay round trip p50 ≤ 1.0× websocat".into(),
            times(r),
            r <= 1.0,
        ));
        let r = self.rtt_ratio(PLAIN, |r| r.p50);
        out.push((
            "relay round trip p50 ≤ 1.5× plain TCP (the aim in DESIGN.md)".into(),
            times(r),
            r <= 1.5,
        ));
        let kib = self.memory.per_session_kib();
        out.push((
            "relay memory < 64 KiB per idle session".into(),
            format!("{kib:.1} KiB"),
            kib < 64.0,
        ));
        out
    }

    fn ratio_up(&self, other: usize) -> f64 {
        median(&self.bulk[RELAY].up) / median(&self.bulk[other].up)
    }

    fn ratio_down(&self, other: usize) -> f64 {
        median(&self.bulk[RELAY].down) / median(&self.bulk[other].down)
    }

    fn rtt_ratio(&self, other: usize, pick: impl Fn(&RoundTrip) -> Duration) -> f64 {
        pick(&self.rtt[RELAY]).as_secs_f64() / pick(&self.rtt[other]).as_secs_f64()
    }
}

/// `3595.2` as `3,595`.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `[2856.3, 1976.0]` as `2856, 1976`.
pub fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn times(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

fn micros(d: Duration) -> String {
    thousands(d.as_secs_f64() * 1e6)
}

/// A `## title` section with one row per target: (what, the measured figure, met).
pub fn targets_table(md: &mut String, title: &str, targets: &[(String, String, bool)]) {
    let _ = writeln!(md, "## {title}\n");
    let _ = writeln!(md, "| target | measured | verdict |");
    let _ = writeln!(md, "|---|---:|---|");
    for (target, measured, met) in targets {
        let verdict = if *met { "met" } else { "**not met**" };
        let _ = writeln!(md, "| {target} | {measured} | {verdict} |");
    }
}

/// "Held under load": one row per run of [`crate::held::run`].
fn held_table(md: &mut String, rows: &[crate::held::Held]) {
    let Some(first) = rows.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## Held under load\n\nA release relay of its own (`--max-connections {}`, every session from \
         loopback so the per-client caps lifted); {} sessions, each a TCP connection through the relay to \
         an echo server, {} echoes of {} bytes a second for {} s, every echo numbered and compared (a lost \
         or reordered byte is an error). The slowloris row adds {} attackers from ten loopback addresses, \
         each sending half a request and waiting until the relay closes it, then again. Descriptors \
         (`/proc/<pid>/fd`) and `VmRSS` sampled every 500 ms.\n",
        first.cap,
        thousands(first.sessions as f64),
        crate::held::PER_SECOND,
        crate::held::MESSAGE,
        first.seconds,
        thousands(crate::held::SLOWLORIS as f64),
    );
    let _ = writeln!(
        md,
        "| load | sessions | bytes echoed | echoes | relay fds (peak) | relay RSS (peak) | p50 | p99 | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let load = if row.slowloris == 0 {
            "sessions alone".to_string()
        } else {
            format!(
                "with a slowloris ({} connections made)",
                thousands(row.attacks as f64)
            )
        };
        let _ = writeln!(
            md,
            "| {load} | {} | {:.1} MiB | {} | {} | {} MiB | {:.0} µs | {:.0} µs | {} |",
            thousands(row.sessions as f64),
            row.bytes as f64 / (1024.0 * 1024.0),
            thousands(row.echoes as f64),
            thousands(row.fds_peak as f64),
            row.rss_peak_kib / 1024,
            row.p50.as_secs_f64() * 1e6,
            row.p99.as_secs_f64() * 1e6,
            row.errors
        );
    }
    md.push('\n');
}
