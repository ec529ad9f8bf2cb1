//! The end-to-end harness: a real relay serving `www/` on a port 0 listener, Debian's chromedriver and
//! headless Chromium, and a WebDriver session between them (fantoccini).
//!
//! Chromium starts with the flags this machine needs (no sandbox as root, no background networking on a
//! closed network) and a fresh profile every time. When a check fails, [`Browser::dump`] prints what the
//! page knew: its console, its text and a screenshot path.
//!
//! [`Page`] is the page loaded with its runtime ready, and Python programs run in it through
//! `window.soket.run`: to their end ([`Page::run`]), or side by side ([`Page::start`] gives a [`Running`]
//! program to wait on, read from, and stop).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use soket_relay::{Config, Relay};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A relay serving the real `www/` in this process.
pub struct TestRelay {
    pub addr: SocketAddr,
    /// Sent (or dropped) to shut the relay down; `None` once [`TestRelay::stop`] did.
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    /// The relay's task: done once it shut down and let go of its port.
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

impl TestRelay {
    pub async fn start(flags: &[&str]) -> Result<TestRelay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        TestRelay::serve(listener, flags)
    }

    /// A relay on `addr` (where another one just stopped): the page reconnects to it.
    pub async fn start_at(addr: SocketAddr, flags: &[&str]) -> Result<TestRelay> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} again"))?;
        TestRelay::serve(listener, flags)
    }

    /// Shuts the relay down (every session gets its Goodbye) and waits until its port is free.
    pub async fn stop(&self) -> Result<()> {
        if let Some(stop) = self.stop.lock().expect("lock").take() {
            let _ = stop.send(());
        }
        let task = self.task.lock().expect("lock").take();
        if let Some(task) = task {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .context("the relay took over 15 s to shut down")???;
        }
        Ok(())
    }

    fn serve(listener: TcpListener, flags: &[&str]) -> Result<TestRelay> {
        let www = root().join("www");
        let mut args = vec![
            "soket-relay".to_string(),
            "--www".into(),
            www.display().to_string(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        if !flags.contains(&"--port-range") {
            // Relays that share a range race for its first ports: two sockets with SO_REUSEADDR may both
            // bind a port, and the second `listen` then fails with EADDRINUSE. Tests run side by side,
            // so each relay gets a range of its own.
            static RELAYS: AtomicU32 = AtomicU32::new(0);
            let slot = (std::process::id() + RELAYS.fetch_add(1, Ordering::Relaxed)) % 40;
            let first = 41_000 + slot * 100;
            args.extend(["--port-range".into(), format!("{first}-{}", first + 99)]);
        }
        let config = Config::try_parse_from(&args)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(Relay::new(config).serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(TestRelay {
            addr,
            stop: std::sync::Mutex::new(Some(stop)),
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// chromedriver, Chromium, and the WebDriver session with them.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// How many times a whole launch (chromedriver, Chromium, the session) is tried. On a busy machine
    /// chromedriver sometimes drops the connection while it makes the session (Chromium did not come up in
    /// time); retrying on that same driver fails the same way, a fresh driver and profile does not.
    const LAUNCHES: usize = 3;

    pub async fn start() -> Result<Browser> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(tool).exists() {
                bail!("{tool} is missing: install Debian's chromium and chromium-driver (cargo xtask test does)");
            }
        }
        let mut failures = Vec::new();
        for _ in 0..Self::LAUNCHES {
            match Self::launch().await {
                Ok(browser) => return Ok(browser),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        bail!(
            "no WebDriver session with chromedriver after {} launches: {}",
            Self::LAUNCHES,
            failures.join("; ")
        )
    }

    /// One launch: a chromedriver on a free port, then one try at a session with a fresh profile.
    async fn launch() -> Result<Browser> {
        let port = free_port()?;
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let profile = std::env::temp_dir().join(format!("soket-e2e-{}-{port}", std::process::id()));
        let session = Self::session(port, &profile).await;
        match session {
            Ok(client) => Ok(Browser {
                client,
                driver,
                profile,
            }),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                let _ = std::fs::remove_dir_all(&profile);
                Err(e)
            }
        }
    }

    /// Waits for chromedriver to listen on `port`, then asks it for a session.
    async fn session(port: u16, profile: &std::path::Path) -> Result<Client> {
        let listening = async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), listening)
            .await
            .context("chromedriver did not listen within 10 s")?;
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a json object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| anyhow::anyhow!("chromedriver made no session: {e}"))
    }

    /// The text of the element with this `data-testid`.
    pub async fn text(&self, testid: &str) -> Result<String> {
        let element = self
            .client
            .find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await?;
        Ok(element.text().await?)
    }

    /// Waits until the element with this `data-testid` reads `want`.
    pub async fn wait_text(&self, testid: &str, want: &str, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = self.text(testid).await.unwrap_or_default();
            if now == want {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{testid} reads {now:?}, not {want:?}, after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the browser's network this slow, in bytes per second each way (chromedriver's own command),
    /// so that a test can watch what a long download shows.
    pub async fn throttle(&self, bytes_per_second: u64) -> Result<()> {
        self.client
            .issue_cmd(ChromeCommand::throttle(bytes_per_second))
            .await?;
        Ok(())
    }

    /// Prints what the page knew: console, body text, and a screenshot.
    pub async fn dump(&self) {
        if let Ok(log) = self.client.issue_cmd(ChromeCommand::browser_log()).await {
            eprintln!("--- browser console ---\n{log:#}");
        }
        if let Ok(body) = self.client.find(Locator::Css("body")).await {
            eprintln!(
                "--- page text ---\n{}",
                body.text().await.unwrap_or_default()
            );
        }
        if let Ok(png) = self.client.screenshot().await {
            let path = std::env::temp_dir().join("soket-e2e-failure.png");
            if std::fs::write(&path, png).is_ok() {
                eprintln!("--- screenshot: {} ---", path.display());
            }
        }
    }

    /// Runs `checks` against this browser; when they fail, dumps what the page knew first. Closes the
    /// browser either way.
    pub async fn check(self, checks: impl AsyncFnOnce(&Browser) -> Result<()>) -> Result<()> {
        let result = checks(&self).await;
        if result.is_err() {
            self.dump().await;
        }
        self.close().await;
        result
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A port that was free a moment ago, for chromedriver (which cannot be told to take port 0).
fn free_port() -> Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.port())
}

/// One of chromedriver's own commands (not in the W3C protocol): a POST of `body` to
/// `session/{id}/{path}`.
#[derive(Debug)]
struct ChromeCommand {
    path: &'static str,
    body: String,
}

impl ChromeCommand {
    /// The browser's console log.
    fn browser_log() -> ChromeCommand {
        ChromeCommand {
            path: "se/log",
            body: r#"{"type":"browser"}"#.to_string(),
        }
    }

    /// Emulated network conditions: `bytes_per_second` each way, no added latency.
    fn throttle(bytes_per_second: u64) -> ChromeCommand {
        let rate = bytes_per_second;
        let body = json!({ "network_conditions": {
            "offline": false, "latency": 0, "download_throughput": rate, "upload_throughput": rate,
        }});
        ChromeCommand {
            path: "chromium/network_conditions",
            body: body.to_string(),
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.clone()))
    }
}

/// What a program did, as `window.soket.run(...).done` reported it, plus when each piece of output
/// arrived.
#[derive(Debug)]
pub struct Outcome {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// `(stream, text, ms)`: each piece of output as the page heard it, `ms` on the page's clock.
    pub pieces: Vec<(String, String, f64)>,
    /// When `done` resolved, on the page's clock.
    pub ended_ms: f64,
}

/// The exit code and both streams, for failure messages.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.exit_code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    fn from_json(value: &Value) -> Result<Outcome> {
        if let Some(error) = value.get("error") {
            bail!("window.soket.run failed: {error}");
        }
        let text = |key: &str| -> Result<String> {
            Ok(value[key]
                .as_str()
                .with_context(|| format!("{key} in {value}"))?
                .to_string())
        };
        let pieces = value["pieces"]
            .as_array()
            .context("pieces")?
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap_or_default().to_string(),
                    p[1].as_str().unwrap_or_default().to_string(),
                    p[2].as_f64().unwrap_or_default(),
                )
            })
            .collect();
        Ok(Outcome {
            exit_code: value["exitCode"].as_i64().context("exitCode")?,
            stdout: text("stdout")?,
            stderr: text("stderr")?,
            pieces,
            ended_ms: value["endedMs"].as_f64().context("endedMs")?,
        })
    }

    /// The program ended by itself with status 0, wrote nothing on stderr, and exactly `stdout`.
    pub fn expect(&self, name: &str, stdout: &str) -> Result<()> {
        ensure!(
            self.exit_code == 0 && self.stderr.is_empty() && self.stdout == stdout,
            "{name}: exit code {}\n--- stdout ---\n{}\n--- wanted stdout ---\n{stdout}\n--- stderr ---\n{}",
            self.exit_code,
            self.stdout,
            self.stderr
        );
        Ok(())
    }
}

/// Runs `source` as `name` in the page; `stop_after_ms` stops it that long after its first output.
const RUN: &str = r#"
const [name, source, stdin, stopAfterMs, done] = arguments;
window.soket.ready.then(() => {
  const pieces = [];
  let program;
  program = window.soket.run(name, source, {
    stdin,
    onOutput: (stream, text) => {
      pieces.push([stream, text, performance.now()]);
      if (stopAfterMs !== null && pieces.length === 1) setTimeout(() => program.stop(), stopAfterMs);
    },
  });
  return program.done.then((r) => done({ ...r, pieces, endedMs: performance.now() }));
}).catch((e) => done({ error: String(e) }));
"#;

/// Starts a program and keeps it in `window.soketTests` under a number, which it returns.
const START: &str = r#"
const [name, source, stdin, done] = arguments;
window.soket.ready.then(() => {
  const tests = (window.soketTests ??= { next: 0, programs: {} });
  const id = tests.next++;
  const entry = { stdout: '', stderr: '', pieces: [], result: null };
  const program = window.soket.run(name, source, {
    stdin: stdin ?? undefined,
    onOutput: (stream, text) => {
      entry[stream] += text;
      entry.pieces.push([stream, text, performance.now()]);
    },
  });
  entry.stop = program.stop;
  entry.write = program.write;
  entry.done = program.done.then((r) => {
    entry.result = { ...r, pieces: entry.pieces, endedMs: performance.now() };
    return entry.result;
  });
  tests.programs[id] = entry;
  done(id);
}).catch((e) => done({ error: String(e) }));
"#;

/// Waits for a started program to end; stops it if it has not after `withinMs` (null: waits for ever).
const FINISH: &str = r#"
const [id, withinMs, done] = arguments;
const entry = window.soketTests.programs[id];
const timer = withinMs === null ? null : setTimeout(() => entry.stop(), withinMs);
entry.done.then((r) => { clearTimeout(timer); done(r); });
"#;

/// How a started program is doing: its output so far, its result once it ended, and the listeners.
const LOOK: &str = r#"
const [id] = arguments;
const entry = window.soketTests.programs[id];
return { stdout: entry.stdout, stderr: entry.stderr, result: entry.result,
         listeners: window.soket.listeners() };
"#;

/// A relay, a browser, and the page loaded in it with its runtime ready.
pub struct Page {
    pub browser: Browser,
    pub relay: TestRelay,
}

/// A program started with [`Page::start`].
#[derive(Clone, Debug)]
pub struct Running {
    pub name: String,
    id: Value,
}

impl Page {
    /// The page against a relay with no flags.
    pub async fn open() -> Result<Page> {
        Page::open_with(&[]).await
    }

    /// The page against a relay started with these `flags` (`--allow 127.0.0.2:PORT`, ...).
    pub async fn open_with(flags: &[&str]) -> Result<Page> {
        Page::open_at("/", flags).await
    }

    /// The page at `path` (`/#/playground`, `/#/lesson/echo`) against a relay started with `flags`.
    pub async fn open_at(path: &str, flags: &[&str]) -> Result<Page> {
        ensure!(
            root().join("www/pkg/soket_frontend_bg.wasm").exists(),
            "www/pkg/ is missing: run `cargo xtask test` (it builds the wasm first)"
        );
        let relay = TestRelay::start(flags).await?;
        let browser = Browser::start().await?;
        let page = Page { browser, relay };
        let loaded = async {
            let client = &page.browser.client;
            // Programs that move a lot of data or wait on each other take longer than WebDriver's 30 s.
            let timeouts = TimeoutConfiguration::new(Some(Duration::from_secs(120)), None, None);
            client.update_timeouts(timeouts).await?;
            client.goto(&page.relay.url(path)).await?;
            wait_for(
                client,
                "[data-testid=\"runtime-ready\"]",
                Duration::from_secs(60),
            )
            .await?;
            page.browser
                .wait_text("relay-status", "connected", Duration::from_secs(10))
                .await
        }
        .await;
        if let Err(e) = loaded {
            page.browser.dump().await;
            page.browser.close().await;
            return Err(e);
        }
        Ok(page)
    }

    /// Runs `source` as `name` to its end.
    pub async fn run(&self, name: &str, source: &str) -> Result<Outcome> {
        self.run_with(name, source, "", None).await
    }

    /// Runs `source` as `name` with this `stdin`, stopping it `stop_after_ms` after its first output.
    pub async fn run_with(
        &self,
        name: &str,
        source: &str,
        stdin: &str,
        stop_after_ms: Option<u64>,
    ) -> Result<Outcome> {
        let args = vec![
            json!(name),
            json!(source),
            json!(stdin),
            json!(stop_after_ms),
        ];
        let value = self.browser.client.execute_async(RUN, args).await?;
        Outcome::from_json(&value)
    }

    /// Starts `source` as `name` and returns at once. Its stdin is the console: see [`Page::write`].
    pub async fn start(&self, name: &str, source: &str) -> Result<Running> {
        let args = vec![json!(name), json!(source), Value::Null];
        let id = self.browser.client.execute_async(START, args).await?;
        if let Some(error) = id.get("error") {
            bail!("window.soket.run failed: {error}");
        }
        Ok(Running {
            name: name.to_owned(),
            id,
        })
    }

    /// Types `text` into the console of `program`, as `p.write(text)` of `window.soket.run` does.
    pub async fn write(&self, program: &Running, text: &str) -> Result<()> {
        let script = "const [id, text] = arguments; window.soketTests.programs[id].write(text);";
        self.browser
            .client
            .execute(script, vec![program.id.clone(), json!(text)])
            .await?;
        Ok(())
    }

    /// Waits for `program` to end by itself, for at most `within`; then stops it (exit code 130).
    pub async fn finish(&self, program: &Running, within: Duration) -> Result<Outcome> {
        let args = vec![program.id.clone(), json!(within.as_millis() as u64)];
        let value = self.browser.client.execute_async(FINISH, args).await?;
        Outcome::from_json(&value)
    }

    /// Stops `program` and returns what it did.
    pub async fn stop(&self, program: &Running) -> Result<Outcome> {
        self.finish(program, Duration::ZERO).await
    }

    async fn look(&self, program: &Running) -> Result<Value> {
        Ok(self
            .browser
            .client
            .execute(LOOK, vec![program.id.clone()])
            .await?)
    }

    /// Waits until `program`'s stdout holds `text` (and fails at once if it ends without).
    pub async fn wait_output(&self, program: &Running, text: &str) -> Result<()> {
        self.wait_until(program, &format!("{text:?} on stdout"), |look| {
            look["stdout"].as_str().unwrap_or_default().contains(text)
        })
        .await
        .map(drop)
    }

    /// Waits until `program` listens on `port` of the session; returns the listener's public address.
    pub async fn wait_listener(&self, program: &Running, port: u16) -> Result<String> {
        let look = self
            .wait_until(program, &format!("a listener on port {port}"), |look| {
                listener(look, port).is_some()
            })
            .await?;
        let public = listener(&look, port).unwrap_or_default();
        Ok(public)
    }

    async fn wait_until(
        &self,
        program: &Running,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let look = self.look(program).await?;
            if ready(&look) {
                return Ok(look);
            }
            let name = &program.name;
            ensure!(
                look["result"].is_null(),
                "{name} ended before {what}: {:#}",
                look["result"]
            );
            if tokio::time::Instant::now() > deadline {
                let _ = self.stop(program).await;
                bail!("{name}: no {what} after 30 s: {look:#}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The text of the editor `editor-NAME`, line by line as CodeMirror shows it (it draws the lines in
    /// view: enough for the programs of a lesson).
    pub async fn editor_text(&self, name: &str) -> Result<String> {
        let script = "const [css] = arguments;
            const lines = document.querySelectorAll(css + ' .cm-line');
            return [...lines].map((l) => l.textContent).join('\\n');";
        let css = format!("[data-testid=\"editor-{name}\"]");
        let value = self
            .browser
            .client
            .execute(script, vec![json!(css)])
            .await?;
        Ok(value.as_str().context("editor text")?.to_owned())
    }

    /// Runs the checks, dumping what the page knew if they fail, and closes the browser.
    /// Starts watching the main thread (see [`WATCH`]); `measure` names performance measures to time too.
    pub async fn watch_main_thread(&self, measure: Option<&str>) -> Result<()> {
        let arg = measure.map_or(Value::Null, |m| json!(m));
        self.browser.client.execute(WATCH, vec![arg]).await?;
        Ok(())
    }

    /// Stops watching; returns how late the timer fired each time and the measures' durations, in ms.
    pub async fn watched(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let found = self
            .browser
            .client
            .execute("return window.soketTests.watched()", vec![])
            .await?;
        let list = |v: &Value| -> Vec<f64> {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        Ok((list(&found[0]), list(&found[1])))
    }

    pub async fn check(self, checks: impl AsyncFnOnce(&Page) -> Result<()>) -> Result<()> {
        let result = checks(&self).await;
        if result.is_err() {
            self.browser.dump().await;
        }
        self.browser.close().await;
        result
    }
}

/// The public address of the listener on `port` in a [`LOOK`] answer.
fn listener(look: &Value, port: u16) -> Option<String> {
    look["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["port"] == port)
        .map(|l| l["public"].as_str().unwrap_or_default().to_owned())
}

/// Waits until an element matches `css`.
pub async fn wait_for(client: &Client, css: &str, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client.find(Locator::Css(css)).await.is_ok() {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no {css} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 100,000 one-byte sends on two connections to the lab's discard service, in turn, so that no two in a
/// row merge into one network event; prints `sent` at the end.
pub const TIGHT_SEND_LOOP: &str = "\
import socket

a = socket.create_connection(('lab', 9))
b = socket.create_connection(('lab', 9))
for i in range(100_000):
    (a if i % 2 else b).send(b'x')
a.close()
b.close()
print('sent')
";

/// Watches the page's main thread: how late a 20 ms timer fires (how long a click would wait for the page
/// to answer), and the durations of the performance measures named by the argument, if any.
const WATCH: &str = "
const [measure] = arguments;
const late = [];
const measured = [];
let expected = performance.now() + 20;
const timer = setInterval(() => {
  const now = performance.now();
  late.push(Math.max(0, now - expected));
  expected = now + 20;
}, 20);
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntriesByName(measure)) measured.push(entry.duration);
});
if (measure) observer.observe({ entryTypes: ['measure'] });
window.soketTests = window.soketTests ?? {};
window.soketTests.watched = () => { clearInterval(timer); observer.disconnect(); return [late, measured]; };
";

/// The `p`-th percentile and the largest of `samples` (there must be more than ten), and how many.
pub fn spread(samples: &[f64], p: usize) -> Result<(f64, f64, usize)> {
    ensure!(samples.len() > 10, "too few samples: {samples:?}");
    let mut all = samples.to_vec();
    all.sort_by(f64::total_cmp);
    Ok((all[all.len() * p / 100], all[all.len() - 1], all.len()))
}

/// The seed's example, in Python 3: a server that thanks whoever connects, and a client.
pub const SEED_SERVER: &str = "\
import socket

s = socket.socket()
host = socket.gethostname()
port = 12345
s.bind((host, port))

s.listen(5)
while True:
    c, addr = s.accept()
    print('Got connection from', addr)
    c.send(b'Thank you for connecting')
    c.close()
";

/// The seed's client, in Python 3.
pub const SEED_CLIENT: &str = "\
import socket

s = socket.socket()
host = socket.gethostname()
port = 12345

s.connect((host, port))
print(s.recv(1024).decode())
s.close()
";
