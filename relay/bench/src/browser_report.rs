//! The browser part of `BENCHMARKS.md`: its tables and its targets, each met or not met, from one run's
//! [`Figures`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::browser::{self, Figures, Load, Loads, ProgramRun};
use crate::measure::quantile;
use crate::report::{list, median, thousands, times, Machine};

/// The run's settings and the versions it compared, said above the tables.
pub struct BrowserSetting {
    pub machine: Machine,
    pub command: String,
    pub chromium: String,
    pub pyodide: String,
    pub python: String,
    pub loads: usize,
}

pub struct BrowserReport {
    pub setting: BrowserSetting,
    pub figures: Figures,
}

/// The targets of issue 3.
const WARM_TARGET_MS: f64 = 1000.0;
const WASM_TARGET_MB: f64 = 8.0;
const RTT_TARGET_RATIO: f64 = 5.0;

impl BrowserReport {
    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let m = &s.machine;
        let f = &self.figures;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "## Browser: cold and warm start\n\nBrowser part: made by `{}` on {}: {} cores ({}), Linux {}, \
             {} (headless, with the flags of `tests/harness.rs`), Pyodide {} (npm), native {}. One run; \
             every figure and ratio of this part comes from it.\n",
            s.command, m.date, m.cores, m.cpu, m.kernel, s.chromium, s.pyodide, s.python
        );
        let _ = writeln!(
            md,
            "Both pages come from the same release `soket-relay`, whose `--www` is a temporary directory \
             holding `www/` and Pyodide's npm package (so the same headers, COOP/COEP included), through a \
             loopback proxy that counts the bytes sent to the browser. **Soket**: `/` until \
             `window.soket.timings.readyMs` (the `runtime-ready` marker: the wasm compiled and instantiated \
             and the interpreter built in a worker). **Pyodide**: `/pyodide.html` \
             (`relay/bench/browser/pyodide.html`) until `loadPyodide()` and `runPython(\"print(1)\")` have \
             returned. Both in ms since navigation start, on the page's clock. Cold: a new Chromium with an \
             empty profile; warm: the same browser loads the page again (from `about:blank`). {} cold and \
             {} warm loads of each page, alternating which page goes first, after one unmeasured round \
             (it warms the server's page cache and Chromium's own files); medians.\n",
            s.loads, s.loads
        );
        let _ = writeln!(md, "| page | cold ms | warm ms | cold loads | warm loads |");
        let _ = writeln!(md, "|---|---:|---:|---|---|");
        for (name, loads) in [("Soket", &f.soket), ("Pyodide", &f.pyodide)] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} |",
                thousands(ready(&loads.cold)),
                thousands(ready(&loads.warm)),
                list_ms(&loads.cold),
                list_ms(&loads.warm)
            );
        }
        let _ = writeln!(
            md,
            "| Soket / Pyodide | {} | {} | | |\n",
            times(ready(&f.soket.cold) / ready(&f.pyodide.cold)),
            times(ready(&f.soket.warm) / ready(&f.pyodide.warm))
        );

        let _ = writeln!(
            md,
            "## Browser: bytes shipped\n\nWhat the server sent the browser per load (median), counted at \
             the proxy: every response's status line, headers and body, for the page and its workers \
             (and, for Soket, the WebSocket's handshake and first frames). MB are 10⁶ bytes, kB 10³. The relay \
             serves `x.br` or `x.gz` beside `x` to browsers that accept brotli or gzip: Soket's build makes \
             them for its two wasm modules (its JavaScript and CSS ship uncompressed); for Pyodide the bench makes them, at \
             the same level, for every file the page loads ({}), as a CDN would compress them. The wasm \
             columns are the runtime's main wasm module in the page's Performance API (`transferSize`, \
             `decodedBodySize`).\n",
            browser::PYODIDE_COMPRESSED
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            md,
            "| page | shipped cold | shipped warm | wasm module | wasm shipped | wasm uncompressed |"
        );
        let _ = writeln!(md, "|---|---:|---:|---|---:|---:|");
        for (name, loads) in [("Soket", &f.soket), ("Pyodide", &f.pyodide)] {
            let wasm = first_wasm(loads);
            let _ = writeln!(
                md,
                "| {name} | {} | {} | `{}` | {} | {} |",
                mb(shipped(&loads.cold)),
                mb(shipped(&loads.warm)),
                wasm.map_or("–".into(), |w| w.name.trim_start_matches('/').to_owned()),
                wasm.map_or("–".into(), |w| mb(w.transfer as f64)),
                wasm.map_or("–".into(), |w| mb(w.decoded as f64)),
            );
        }
        let ratio = |pick: fn(&Loads) -> f64| times(pick(&f.soket) / pick(&f.pyodide));
        let _ = writeln!(
            md,
            "| Soket / Pyodide | {} | | | {} | {} |\n",
            ratio(|l| shipped(&l.cold)),
            ratio(|l| first_wasm(l).map_or(f64::NAN, |w| w.transfer as f64)),
            ratio(|l| first_wasm(l).map_or(f64::NAN, |w| w.decoded as f64)),
        );

        let _ = writeln!(
            md,
            "## Browser: a Python program's sockets\n\nThe same program, `relay/bench/browser/program.py`, \
             run {} times in Soket's page (`window.soket.run`; RustPython in a worker, its sockets through the \
             page's network worker and an in-process relay, the end-to-end harness's, allowed to dial the \
             three servers, with `{}`) and as many times under native CPython (`python3 -c`, straight to the servers), \
             one after the other; both \
             talk to the same echo, source and drain servers on 127.0.0.2 and time themselves with \
             `time.perf_counter()`. Up to {} round trips (at most {} s) of a {}-byte message, each a \
             `sendall` then `recv` until the whole echo is back, after up to {} unmeasured ones; then {} MiB \
             downloaded from a source (from the request until it closed) and {} MiB uploaded in 64 KiB \
             `sendall`s (until the drain answered its count). Nagle is off on every socket: the program \
             sets `TCP_NODELAY`, the relay sets it on the sockets it dials, the servers on theirs. \
             Quantiles are over the round trips of every run; throughput is the median run's.\n",
            browser::PROGRAM_RUNS,
            browser::RELAY_FLAGS.join(" "),
            browser::RTT_COUNT,
            browser::RTT_BUDGET_S,
            browser::RTT_SIZE,
            browser::RTT_WARMUP,
            browser::BULK / (1024 * 1024),
            browser::BULK / (1024 * 1024)
        );
        let _ = writeln!(
            md,
            "| Python | p50 µs | p99 µs | round trips | download MiB/s | upload MiB/s | runs (down / up) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
        for (name, runs) in [
            ("Soket's page, through the relay", &f.page),
            (s.python.as_str(), &f.native),
        ] {
            let (down, up) = (
                throughputs(runs, |r| r.download),
                throughputs(runs, |r| r.upload),
            );
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} / {} |",
                micros(p(runs, 0.50)),
                micros(p(runs, 0.99)),
                thousands(runs.iter().map(|r| r.round_trips.len()).sum::<usize>() as f64),
                thousands(median(&down)),
                thousands(median(&up)),
                list(&down),
                list(&up),
            );
        }
        let ratio = |pick: fn(&ProgramRun) -> Duration| {
            times(median(&throughputs(&f.page, pick)) / median(&throughputs(&f.native, pick)))
        };
        let _ = writeln!(
            md,
            "| page / native | {} | {} | | {} | {} | |\n",
            times(self.rtt_ratio(0.50)),
            times(self.rtt_ratio(0.99)),
            ratio(|r| r.download),
            ratio(|r| r.upload),
        );

        crate::report::targets_table(&mut md, "Browser targets", &self.targets());
        md
    }

    /// (what, the measured figure, met) for every target.
    pub fn targets(&self) -> Vec<(String, String, bool)> {
        let f = &self.figures;
        let (soket, pyodide) = (ready(&f.soket.cold), ready(&f.pyodide.cold));
        let cold = soket / pyodide;
        let warm = ready(&f.soket.warm);
        let wasm = first_wasm(&f.soket).map_or(f64::NAN, |w| w.transfer as f64);
        let rtt = self.rtt_ratio(0.50);
        vec![
            (
                "Soket cold start ≤ 1.0× Pyodide's (median, to ready)".into(),
                format!(
                    "{} ({} / {} ms)",
                    times(cold),
                    thousands(soket),
                    thousands(pyodide)
                ),
                cold <= 1.0,
            ),
            (
                "Soket warm start < 1 s (median, to ready)".into(),
                format!("{} ms", thousands(warm)),
                warm < WARM_TARGET_MS,
            ),
            (
                format!("Soket's wasm ≤ {WASM_TARGET_MB} MB compressed (shipped on a cold load)"),
                mb(wasm),
                wasm <= WASM_TARGET_MB * 1e6,
            ),
            (
                format!("Python round trip p50 in the page ≤ {RTT_TARGET_RATIO}× native CPython"),
                format!(
                    "{} ({} / {} µs)",
                    times(rtt),
                    micros(p(&f.page, 0.5)),
                    micros(p(&f.native, 0.5))
                ),
                rtt <= RTT_TARGET_RATIO,
            ),
        ]
    }

    fn rtt_ratio(&self, q: f64) -> f64 {
        let f = &self.figures;
        p(&f.page, q).as_secs_f64() / p(&f.native, q).as_secs_f64()
    }
}

/// The median time to ready.
fn ready(loads: &[Load]) -> f64 {
    median(&loads.iter().map(|l| l.ready_ms).collect::<Vec<_>>())
}

/// The median bytes shipped.
fn shipped(loads: &[Load]) -> f64 {
    median(&loads.iter().map(|l| l.shipped as f64).collect::<Vec<_>>())
}

/// The wasm entry of the first cold load (every cold load ships the same file).
fn first_wasm(loads: &Loads) -> Option<&browser::WasmEntry> {
    loads.cold.first().and_then(|l| l.wasm.as_ref())
}

fn list_ms(loads: &[Load]) -> String {
    loads
        .iter()
        .map(|l| format!("{:.0}", l.ready_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `q`-quantile of the round trips of every run.
fn p(runs: &[ProgramRun], q: f64) -> Duration {
    let mut all: Vec<Duration> = runs.iter().flat_map(|r| r.round_trips.clone()).collect();
    all.sort();
    quantile(&all, q)
}

/// MiB/s of each run's transfer, as `pick` times it.
fn throughputs(runs: &[ProgramRun], pick: fn(&ProgramRun) -> Duration) -> Vec<f64> {
    runs.iter()
        .map(|r| crate::measure::mib_per_s(browser::BULK, pick(r)))
        .collect()
}

/// `12466484` bytes as `12.47 MB`, `361` as `0.4 kB`.
fn mb(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "–".into();
    }
    if bytes < 1e6 {
        return format!("{:.1} kB", bytes / 1e3);
    }
    format!("{:.2} MB", bytes / 1e6)
}

fn micros(d: Duration) -> String {
    thousands(d.as_secs_f64() * 1e6)
}
