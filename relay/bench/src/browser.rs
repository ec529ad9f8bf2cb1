//! The browser part: Soket's page in headless Chromium, against Pyodide for starting up and against native
//! CPython for sockets, every pair measured in this run.
//!
//! - Loads ([`loads`]): a release `soket-relay` serves a temporary `--www` that holds `www/` and Pyodide's
//!   npm package side by side, so both pages come from the same server with the same headers; the browser
//!   reaches it through a [`CountingProxy`], which counts what each load ships. Each round starts a fresh
//!   Chromium (an empty profile: the cold load), loads the page, then loads it again from `about:blank`
//!   (the warm load), for Soket and Pyodide in turn; rounds alternate which goes first. A first round is
//!   not measured: it warms what every later load finds warm on the server's side (the files in the
//!   kernel's page cache, Chromium's own files), which would otherwise weigh on the first page only.
//! - The program ([`program`]): `relay/bench/browser/program.py` in the page through an in-process relay
//!   (the end-to-end harness's [`Page`]), then under `python3`, both against the same servers on
//!   127.0.0.2; [`PROGRAM_RUNS`] times each, in turn, so that a busy moment of the machine does not fall
//!   on one side only.
//!
//! The Chromium launcher and the page are `soket-e2e`'s lib (`tests/harness.rs`): the bench drives the
//! same browser with the same flags as the tests, and a failed load prints what the page knew, as a
//! failed test does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use fantoccini::wd::TimeoutConfiguration;
use serde_json::{json, Value};
use soket_e2e::{Browser, Page};

use crate::children;
use crate::measure::bounded;
use crate::proxy::CountingProxy;

/// What the browser part needs besides the relay binary.
pub struct Options {
    pub relay: PathBuf,
    /// The page's files (the relay's usual `--www`).
    pub www: PathBuf,
    /// `relay/bench/browser/`: `pyodide.html`, `program.py`, and `node_modules/pyodide` (with `.gz` files
    /// beside the ones Pyodide loads, which `cargo xtask bench` writes).
    pub pyodide: PathBuf,
    pub python: PathBuf,
    /// Cold loads (each followed by a warm one) per page.
    pub loads: usize,
}

/// The two pages that race to a Python that prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Soket,
    Pyodide,
}

impl Runtime {
    fn path(self) -> &'static str {
        match self {
            Runtime::Soket => "/",
            Runtime::Pyodide => "/pyodide.html",
        }
    }
}

/// One load of a page.
#[derive(Clone, Debug)]
pub struct Load {
    /// When the page said it was ready, in ms since navigation start (the page's own clock).
    pub ready_ms: f64,
    /// Bytes the server sent the browser, counted at the proxy.
    pub shipped: u64,
    /// The runtime's wasm as the Performance API saw it: `transferSize` and `decodedBodySize`.
    pub wasm: Option<WasmEntry>,
}

#[derive(Clone, Debug)]
pub struct WasmEntry {
    pub name: String,
    pub transfer: u64,
    pub decoded: u64,
}

/// Every load of one page.
#[derive(Default)]
pub struct Loads {
    pub cold: Vec<Load>,
    pub warm: Vec<Load>,
}

/// What one run of `program.py` printed about itself.
pub struct ProgramRun {
    pub round_trips: Vec<Duration>,
    pub download: Duration,
    pub upload: Duration,
}

/// Everything the browser part measured.
pub struct Figures {
    pub soket: Loads,
    pub pyodide: Loads,
    /// [`PROGRAM_RUNS`] runs of the program in the page, and as many under native CPython.
    pub page: Vec<ProgramRun>,
    pub native: Vec<ProgramRun>,
}

/// The in-process relay's flags besides `--allow`, named on the page.
pub const RELAY_FLAGS: [&str; 2] = ["--session-rate", "0"];

/// How many times the program runs on each side.
pub const PROGRAM_RUNS: usize = 3;

/// The Python program's settings, prepended to `program.py` as constants.
pub const RTT_SIZE: usize = 32;
pub const RTT_WARMUP: usize = 100;
pub const RTT_COUNT: usize = 1000;
pub const RTT_WARMUP_BUDGET_S: u64 = 3;
pub const RTT_BUDGET_S: u64 = 20;
/// Large enough that native CPython's transfer lasts some ms, well above the timer's grain.
pub const BULK: u64 = 32 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Seconds any one socket call of the program may take.
const SOCKET_TIMEOUT_S: u64 = 30;

/// Waits (in the page, no WebDriver polling to share the CPU with) until either page says it is ready
/// or failed. Soket: `window.soket.timings.readyMs`, set as the `runtime-ready` marker appears.
const WAIT_READY: &str = r#"
const [withinMs, done] = arguments;
const started = Date.now();
(function poll() {
  const soket = window.soket?.timings?.readyMs;
  const pyodide = window.pyodideBench;
  if (soket !== undefined) return done({ readyMs: soket });
  if (pyodide?.readyMs !== undefined) return done({ readyMs: pyodide.readyMs });
  if (pyodide?.error) return done({ error: pyodide.error });
  if (document.getElementById('runtime-status')?.textContent === 'failed') {
    return done({ error: 'runtime-status reads failed' });
  }
  if (Date.now() - started > withinMs) return done({ error: `not ready after ${withinMs} ms` });
  setTimeout(poll, 20);
})();
"#;

/// The wasm modules among the page's Performance API entries (its main thread's fetches).
const WASM_ENTRIES: &str = r#"
return performance.getEntriesByType('resource')
  .filter((e) => new URL(e.name).pathname.endsWith('.wasm'))
  .map((e) => ({ name: new URL(e.name).pathname, transfer: e.transferSize, decoded: e.decodedBodySize }));
"#;

/// How long a page may take to get ready; a slower load is an error, not a figure.
const READY_WITHIN: Duration = Duration::from_secs(80);
/// The proxy's count is read once no byte came for this long after the page was ready.
const QUIET: Duration = Duration::from_millis(500);

/// Runs the browser part.
pub async fn run(options: &Options) -> Result<Figures> {
    let (soket, pyodide) = loads(options).await?;
    let (page, native) = program(options).await?;
    Ok(Figures {
        soket,
        pyodide,
        page,
        native,
    })
}

/// Cold and warm loads of both pages, `options.loads` of each.
async fn loads(options: &Options) -> Result<(Loads, Loads)> {
    let www = SharedWww::new(options)?;
    let relay = children::relay(&options.relay, &www.dir, &[])?;
    let proxy = CountingProxy::start(relay.addr).await?;
    let mut soket = Loads::default();
    let mut pyodide = Loads::default();
    for round in 0..=options.loads {
        let order = if round % 2 == 1 {
            [Runtime::Soket, Runtime::Pyodide]
        } else {
            [Runtime::Pyodide, Runtime::Soket]
        };
        for runtime in order {
            let url = format!("http://{}{}", proxy.addr, runtime.path());
            let label = match round {
                0 => "warm-up".to_string(),
                _ => format!("round {round}/{}", options.loads),
            };
            let what = format!("{runtime:?} loads, {label}");
            let (cold, warm) = bounded(&what, cold_and_warm(&proxy, &url)).await?;
            eprintln!(
                "{what}: cold {:.0} ms ({} bytes), warm {:.0} ms ({} bytes)",
                cold.ready_ms, cold.shipped, warm.ready_ms, warm.shipped
            );
            if round == 0 {
                continue;
            }
            let into = match runtime {
                Runtime::Soket => &mut soket,
                Runtime::Pyodide => &mut pyodide,
            };
            into.cold.push(cold);
            into.warm.push(warm);
        }
    }
    drop(proxy);
    let mut relay = relay;
    relay.child.check_alive()?;
    Ok((soket, pyodide))
}

/// A fresh browser's first load of `url`, then its second; the browser is closed either way.
async fn cold_and_warm(proxy: &CountingProxy, url: &str) -> Result<(Load, Load)> {
    let browser = Browser::start().await?;
    let result = async {
        let timeouts = TimeoutConfiguration::new(
            Some(READY_WITHIN + Duration::from_secs(10)),
            Some(Duration::from_secs(60)),
            None,
        );
        browser.client.update_timeouts(timeouts).await?;
        let cold = load(&browser, proxy, url).await.context("cold load")?;
        browser.client.goto("about:blank").await?;
        let warm = load(&browser, proxy, url).await.context("warm load")?;
        Ok((cold, warm))
    }
    .await;
    if result.is_err() {
        browser.dump().await;
    }
    browser.close().await;
    result
}

/// Loads `url` and waits until the page is ready.
async fn load(browser: &Browser, proxy: &CountingProxy, url: &str) -> Result<Load> {
    proxy.reset();
    browser.client.goto(url).await?;
    let within = json!(READY_WITHIN.as_millis() as u64);
    let ready = browser
        .client
        .execute_async(WAIT_READY, vec![within])
        .await?;
    if let Some(error) = ready.get("error") {
        bail!("{url}: {}", error.as_str().unwrap_or_default());
    }
    let ready_ms = ready["readyMs"].as_f64().context("readyMs")?;
    let shipped = proxy.settled(QUIET, Duration::from_secs(10)).await;
    let entries = browser.client.execute(WASM_ENTRIES, vec![]).await?;
    // The runtime's own wasm is the largest the page's main thread fetched.
    let wasm = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| WasmEntry {
            name: e["name"].as_str().unwrap_or_default().to_owned(),
            transfer: e["transfer"].as_f64().unwrap_or_default() as u64,
            decoded: e["decoded"].as_f64().unwrap_or_default() as u64,
        })
        .max_by_key(|e| e.decoded);
    Ok(Load {
        ready_ms,
        shipped,
        wasm,
    })
}

/// A temporary `--www`: a symbolic link to each entry of `www/`, and `pyodide.html` with the `pyodide/`
/// package beside them. Removed when dropped (the links, not what they point to).
struct SharedWww {
    dir: PathBuf,
}

impl SharedWww {
    fn new(options: &Options) -> Result<SharedWww> {
        let package = options.pyodide.join("node_modules").join("pyodide");
        // Without them Pyodide would ship uncompressed, and its bytes would not compare with Soket's.
        for file in PYODIDE_COMPRESSED {
            for packed in [format!("{file}.br"), format!("{file}.gz")] {
                let packed = package.join(packed);
                ensure!(
                    packed.is_file(),
                    "{} is missing: `cargo xtask bench` installs Pyodide and compresses its files",
                    packed.display()
                );
            }
        }
        let dir = std::env::temp_dir().join(format!("soket-bench-www-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let www = SharedWww { dir };
        let www_dir = options
            .www
            .canonicalize()
            .with_context(|| format!("{}", options.www.display()))?;
        for entry in std::fs::read_dir(&www_dir)? {
            let entry = entry?;
            link(&entry.path(), &www.dir.join(entry.file_name()))?;
        }
        link(&package.canonicalize()?, &www.dir.join("pyodide"))?;
        let page = options.pyodide.join("pyodide.html").canonicalize()?;
        link(&page, &www.dir.join("pyodide.html"))?;
        Ok(www)
    }
}

impl Drop for SharedWww {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The files of Pyodide's package that `pyodide.html` loads, which `cargo xtask bench` compresses (`x.br`
/// and `x.gz` beside `x`, as the build does for Soket's wasm).
pub const PYODIDE_COMPRESSED: [&str; 5] = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
];

fn link(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("link {} to {}", link.display(), target.display()))
}

/// `program.py` in the page, then under native CPython, against the same servers, [`PROGRAM_RUNS`] times.
async fn program(options: &Options) -> Result<(Vec<ProgramRun>, Vec<ProgramRun>)> {
    let echo = crate::servers::echo("127.0.0.2")?;
    let source = crate::servers::source("127.0.0.2", BULK)?;
    let drain = crate::servers::drain("127.0.0.2")?;
    let path = options.pyodide.join("program.py");
    let body =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let code = format!(
        "HOST = '127.0.0.2'\nECHO, SOURCE, DRAIN = {}, {}, {}\nSIZE, WARMUP, COUNT = {RTT_SIZE}, \
         {RTT_WARMUP}, {RTT_COUNT}\nWARMUP_BUDGET, BUDGET = {RTT_WARMUP_BUDGET_S}, {RTT_BUDGET_S}\n\
         BULK, CHUNK, TIMEOUT = {BULK}, {CHUNK}, {SOCKET_TIMEOUT_S}\n{body}",
        echo.port(),
        source.port(),
        drain.port()
    );
    let allow: Vec<String> = [echo, source, drain]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut flags: Vec<&str> = allow.iter().flat_map(|a| ["--allow", a.as_str()]).collect();
    // As in the relay part: else the default rate (16 MiB/s per session) would be the throughput measured.
    flags.extend(RELAY_FLAGS);
    let page = Page::open_with(&flags).await?;
    let runs = async {
        let (mut in_page, mut native) = (Vec::new(), Vec::new());
        for run in 1..=PROGRAM_RUNS {
            let what = format!("program.py in the page, run {run}/{PROGRAM_RUNS}");
            let figures = bounded(&what, run_in_page(&page, &code)).await?;
            eprintln!("{what}: {}", summary(&figures));
            in_page.push(figures);
            let what = format!("program.py under python3, run {run}/{PROGRAM_RUNS}");
            let figures = bounded(&what, run_native(&options.python, &code)).await?;
            eprintln!("{what}: {}", summary(&figures));
            native.push(figures);
        }
        Ok((in_page, native))
    }
    .await;
    if runs.is_err() {
        page.browser.dump().await;
    }
    page.browser.close().await;
    page.relay.stop().await?;
    runs
}

fn summary(run: &ProgramRun) -> String {
    format!(
        "{} round trips, p50 {:.0} µs, download {:.2} s, upload {:.2} s",
        run.round_trips.len(),
        crate::measure::quantile(&run.round_trips, 0.5).as_secs_f64() * 1e6,
        run.download.as_secs_f64(),
        run.upload.as_secs_f64()
    )
}

/// Runs `code` in the page to its end.
async fn run_in_page(page: &Page, code: &str) -> Result<ProgramRun> {
    let outcome = page.run("bench.py", code).await?;
    ensure!(
        outcome.exit_code == 0 && outcome.stderr.is_empty(),
        "bench.py: {outcome}"
    );
    parse(&outcome.stdout)
}

/// Runs `code` with `python3 -c`.
async fn run_native(python: &Path, code: &str) -> Result<ProgramRun> {
    let output = tokio::process::Command::new(python)
        .arg("-c")
        .arg(code)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("run {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "{} -c program.py: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        python.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&stdout)
}

/// The program's line of JSON; round trips sorted, for quantiles.
fn parse(stdout: &str) -> Result<ProgramRun> {
    let value: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("program.py printed {stdout:?}"))?;
    let mut round_trips: Vec<Duration> = value["round_trips_us"]
        .as_array()
        .context("round_trips_us")?
        .iter()
        .map(|t| Duration::from_secs_f64(t.as_f64().unwrap_or_default() / 1e6))
        .collect();
    ensure!(!round_trips.is_empty(), "no round trip was measured");
    round_trips.sort();
    let seconds = |key: &str| -> Result<Duration> {
        let s = value[key].as_f64().with_context(|| key.to_owned())?;
        Ok(Duration::from_secs_f64(s))
    };
    Ok(ProgramRun {
        round_trips,
        download: seconds("download_s")?,
        upload: seconds("upload_s")?,
    })
}
