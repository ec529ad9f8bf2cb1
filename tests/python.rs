//! Python programs in a real Chromium through `window.soket.run`: output, streaming, exit statuses,
//! tracebacks, the Python 2 hint, threads, `time.sleep`, Stop, and sockets (the seed's server and client).
//!
//! Needs `www/pkg/` (the wasm and its glue): `cargo xtask test` builds it before these run.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use soket_e2e::{root, Browser, TestRelay};

/// What a program did, as `window.soket.run(...).done` reported it, plus when each piece of output
/// arrived.
#[derive(Debug)]
struct Outcome {
    exit_code: i64,
    stdout: String,
    stderr: String,
    /// `(stream, text, ms)`: each piece of output as the page heard it, `ms` on the page's clock.
    pieces: Vec<(String, String, f64)>,
    /// When `done` resolved, on the page's clock.
    ended_ms: f64,
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

/// A relay, a browser, and the page loaded in it with its runtime ready.
struct Page {
    browser: Browser,
    relay: TestRelay,
}

impl Page {
    async fn open() -> Result<Page> {
        ensure!(
            root().join("www/pkg/soket_frontend_bg.wasm").exists(),
            "www/pkg/ is missing: run `cargo xtask test` (it builds the wasm first)"
        );
        let relay = TestRelay::start(&[]).await?;
        let browser = Browser::start().await?;
        let page = Page { browser, relay };
        let loaded = async {
            let client = &page.browser.client;
            client.goto(&page.relay.url("/")).await?;
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

    async fn run(&self, name: &str, source: &str) -> Result<Outcome> {
        self.run_with(name, source, "", None).await
    }

    async fn run_with(
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
        if let Some(error) = value.get("error") {
            anyhow::bail!("window.soket.run failed: {error}");
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

    /// Runs the checks, dumping what the page knew if they fail, and closes the browser.
    async fn check(self, checks: impl AsyncFnOnce(&Page) -> Result<()>) -> Result<()> {
        let result = checks(&self).await;
        if result.is_err() {
            self.browser.dump().await;
        }
        self.browser.close().await;
        result
    }
}

/// Waits until an element matches `css`.
async fn wait_for(client: &fantoccini::Client, css: &str, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client.find(fantoccini::Locator::Css(css)).await.is_ok() {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no {css} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_runtime_gets_ready_and_runs_print() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let timings = page
            .browser
            .client
            .execute("return window.soket.timings", vec![])
            .await?;
        eprintln!("page load to runtime-ready: {timings}");
        let listeners = page
            .browser
            .client
            .execute("return window.soket.listeners()", vec![])
            .await?;
        ensure!(listeners == json!([]), "listeners() = {listeners}");

        let out = page.run("main.py", "print(1)\n").await?;
        ensure!(out.stdout == "1\n", "stdout {:?}", out.stdout);
        ensure!(out.stderr.is_empty(), "stderr {:?}", out.stderr);
        ensure!(out.exit_code == 0, "exit code {}", out.exit_code);

        let out = page
            .run_with(
                "main.py",
                "name = input('name? ')\nprint('hello', name)\n",
                "Ada\n",
                None,
            )
            .await?;
        ensure!(out.stdout == "name? hello Ada\n", "stdout {:?}", out.stdout);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn output_streams_while_the_program_runs() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let source = "import time\nprint('first')\ntime.sleep(0.5)\nprint('second')\n";
        let out = page.run("main.py", source).await?;
        ensure!(out.stdout == "first\nsecond\n", "stdout {:?}", out.stdout);
        let first = out
            .pieces
            .iter()
            .find(|(stream, text, _)| stream == "stdout" && text.contains("first"))
            .context("no piece with `first`")?;
        ensure!(
            out.ended_ms - first.2 >= 400.0,
            "`first` arrived {:.0} ms before the end, not while the program slept: {:?}",
            out.ended_ms - first.2,
            out.pieces
        );

        let source = "import time\nt = time.monotonic()\ntime.sleep(0.2)\n\
                      print(time.monotonic() - t)\n";
        let out = page.run("main.py", source).await?;
        let slept: f64 = out.stdout.trim().parse().context(out.stdout.clone())?;
        ensure!(slept >= 0.18, "time.sleep(0.2) took {slept} s");
        eprintln!("time.sleep(0.2) took {slept:.4} s");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn stop_ends_a_busy_program() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let source = "print('spinning', flush=True)\nwhile True:\n    pass\n";
        let out = page.run_with("main.py", source, "", Some(200)).await?;
        ensure!(out.exit_code == 130, "exit code {}", out.exit_code);
        ensure!(out.stdout == "spinning\n", "stdout {:?}", out.stdout);
        // The next program gets a fresh worker.
        let out = page.run("main.py", "print(2)\n").await?;
        ensure!(out.stdout == "2\n" && out.exit_code == 0, "{out:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn errors_and_exit_statuses_are_cpythons() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        // An uncaught exception: CPython's traceback, with the source line, and status 1.
        let source = "def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n";
        let out = page.run("crash.py", source).await?;
        ensure!(out.exit_code == 1, "exit code {}", out.exit_code);
        ensure!(out.stdout == "before\n", "stdout {:?}", out.stdout);
        for want in [
            "Traceback (most recent call last):\n",
            "  File \"crash.py\", line 5, in <module>\n    f(0)\n",
            "  File \"crash.py\", line 2, in f\n    return 1 / x\n",
            "ZeroDivisionError: division by zero\n",
        ] {
            ensure!(
                out.stderr.contains(want),
                "stderr lacks {want:?}: {}",
                out.stderr
            );
        }
        ensure!(
            out.stderr
                .ends_with("ZeroDivisionError: division by zero\n"),
            "{}",
            out.stderr
        );

        let out = page.run("main.py", "import sys\nsys.exit(3)\n").await?;
        ensure!(out.exit_code == 3, "exit code {}", out.exit_code);
        ensure!(out.stderr.is_empty(), "stderr {:?}", out.stderr);

        // The seed's Python 2 server.
        let seed = "import socket\n\ns = socket.socket()\nhost = socket.gethostname()\n\
                    port = 12345\ns.bind((host, port))\n\ns.listen(5)\nwhile True:\n   \
                    c, addr = s.accept()\n   print 'Got connection from', addr\n   \
                    c.send('Thank you for connecting')\n   c.close()\n";
        let out = page.run("server.py", seed).await?;
        ensure!(out.exit_code == 1, "exit code {}", out.exit_code);
        ensure!(out.stdout.is_empty(), "stdout {:?}", out.stdout);
        for want in [
            "  File \"server.py\", line 11\n",
            "    print 'Got connection from', addr\n",
            "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?\n",
        ] {
            ensure!(
                out.stderr.contains(want),
                "stderr lacks {want:?}: {}",
                out.stderr
            );
        }

        let source = "import threading\nthreading.Thread(target=print).start()\n";
        let out = page.run("main.py", source).await?;
        ensure!(out.exit_code == 1, "exit code {}", out.exit_code);
        ensure!(
            out.stdout.is_empty(),
            "the thread ran: stdout {:?}",
            out.stdout
        );
        ensure!(
            out.stderr.contains("RuntimeError: can't start new thread")
                && out.stderr.contains("select"),
            "stderr {}",
            out.stderr
        );
        Ok(())
    })
    .await
}

/// Starts `server` and waits until it listens on `port`, runs `client` to its end, then stops the server.
/// Returns both outcomes as `[server, client]` objects (`exitCode`, `stdout`, `stderr`) and the
/// listeners the page showed while the server ran.
const SERVER_AND_CLIENT: &str = r#"
const [server, client, port, done] = arguments;
window.soket.ready.then(async () => {
  const s = window.soket.run('server.py', server);
  const deadline = performance.now() + 20000;
  let listeners = [];
  while (!(listeners = window.soket.listeners()).some((l) => l.port === port)) {
    if (performance.now() > deadline) {
      s.stop();
      return done({ error: 'the server never listened', server: await s.done });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const c = await window.soket.run('client.py', client).done;
  s.stop();
  done({ server: await s.done, client: c, listeners });
}).catch((e) => done({ error: String(e) }));
"#;

/// The seed's example, in Python 3: a server that thanks whoever connects, and a client.
const SEED_SERVER: &str = "\
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

const SEED_CLIENT: &str = "\
import socket

s = socket.socket()
host = socket.gethostname()
port = 12345

s.connect((host, port))
print(s.recv(1024).decode())
s.close()
";

#[tokio::test]
async fn the_seed_server_and_client_talk_over_real_tcp() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let args = vec![json!(SEED_SERVER), json!(SEED_CLIENT), json!(12345)];
        let value = page
            .browser
            .client
            .execute_async(SERVER_AND_CLIENT, args)
            .await?;
        ensure!(value.get("error").is_none(), "{value:#}");
        let client = &value["client"];
        ensure!(client["exitCode"] == 0, "client: {client:#}");
        ensure!(
            client["stdout"] == "Thank you for connecting\n",
            "client: {client:#}"
        );
        let server = &value["server"];
        let printed = server["stdout"].as_str().unwrap_or_default();
        ensure!(
            printed.starts_with("Got connection from ('127.0.0.1', ") && printed.ends_with(")\n"),
            "server: {server:#}"
        );
        ensure!(
            server["exitCode"] == 130,
            "a stopped server exits 130: {server:#}"
        );
        let listener = &value["listeners"][0];
        ensure!(
            listener["program"] == "server.py" && listener["port"] == 12345,
            "{value:#}"
        );
        // The public address really reaches the learner's server from outside the browser.
        ensure!(
            listener["public"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{value:#}"
        );
        Ok(())
    })
    .await
}
