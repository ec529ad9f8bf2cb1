//! Python programs in a real Chromium through `window.soket.run`: output, streaming, exit statuses,
//! tracebacks, the Python 2 hint, threads, `time.sleep`, Stop, and the seed's server and client (the rest of
//! the sockets: `sockets.rs`).
//!
//! Needs `www/pkg/` (the wasm and its glue): `cargo xtask test` builds it before these run.

use anyhow::{ensure, Context, Result};
use serde_json::json;
use soket_e2e::{Page, SEED_CLIENT, SEED_SERVER};

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

#[tokio::test]
async fn input_waits_for_the_console_and_stop_interrupts_it() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        // select() on stdin wakes when a line arrives, not before.
        let source = "import select, sys, time\n\
                      t = time.monotonic()\n\
                      r, _, _ = select.select([sys.stdin], [], [], 0.3)\n\
                      print('quiet', r == [] and time.monotonic() - t >= 0.29, flush=True)\n\
                      r, _, _ = select.select([sys.stdin], [], [], 30)\n\
                      print('ready', r == [sys.stdin], flush=True)\n\
                      print('got', input())\n\
                      try:\n    input('again? ')\n\
                      except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise\n";
        let program = page.start("main.py", source).await?;
        page.wait_output(&program, "quiet True").await?;
        page.write(&program, "first line\n").await?;
        page.wait_output(&program, "got first line").await?;
        page.wait_output(&program, "again? ").await?;
        // Blocked in input(): Stop raises KeyboardInterrupt there, and the status is 130. (Its traceback
        // may not make it: a program silent for the grace after Stop is terminated, and importing what
        // prints a traceback can take longer on a loaded machine.)
        let out = page.stop(&program).await?;
        ensure!(out.exit_code == 130, "exit code {}: {out:?}", out.exit_code);
        ensure!(
            out.stdout.contains("ready True") && out.stdout.ends_with("again? interrupted\n"),
            "{out:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn telnetlib_and_nntplib_are_shipped_as_in_python_3_12() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let source = "import telnetlib, nntplib, inspect\n\
                      print(telnetlib.Telnet.__name__, telnetlib.IAC, nntplib.NNTP_PORT)\n\
                      print(inspect.getsource(nntplib).startswith('\"\"\"An NNTP client class'))\n\
                      telnetlib.Telnet('lab', 1)\n";
        let out = page.run("main.py", source).await?;
        ensure!(out.stdout == "Telnet b'\\xff' 119\nTrue\n", "{out}");
        // Its frames show in a traceback with their file and source line, as an installed module's do.
        ensure!(
            out.stderr
                .contains("File \"pylib/telnetlib/__init__.py\", line")
                && out.stderr.contains("ConnectionRefusedError"),
            "{out}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn signal_and_subprocess_import_in_a_browser_without_processes() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let source = "import signal, subprocess, sys\n\
                      print(sys.platform, signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n\
                      print(signal.Signals.SIGTERM.name, signal.strsignal(signal.SIGTERM))\n\
                      signal.signal(signal.SIGUSR1, lambda n, frame: print('handled', n))\n\
                      signal.raise_signal(signal.SIGUSR1)\n\
                      try:\n    subprocess.run(['ls'])\n\
                      except OSError as e:\n    print(type(e).__name__)\n";
        let out = page.run("main.py", source).await?;
        ensure!(
            out.exit_code == 0
                && out.stdout
                    == "emscripten True\nSIGTERM Terminated\nhandled 10\nOSError\n",
            "{out}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn asyncio_streams_talk_to_the_lab_and_serve_on_the_sessions_host() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let source = "import asyncio\n\
                      async def handle(reader, writer):\n    data = await reader.readline()\n    writer.write(data.upper())\n    await writer.drain()\n    writer.close()\n\
                      async def main():\n\
                      \x20   reader, writer = await asyncio.open_connection('lab', 7)\n\
                      \x20   writer.write(b'hello asyncio\\n')\n\
                      \x20   print(await reader.readline())\n\
                      \x20   writer.close()\n\
                      \x20   server = await asyncio.start_server(handle, '127.0.0.1', 7600)\n\
                      \x20   r, w = await asyncio.open_connection('127.0.0.1', 7600)\n\
                      \x20   w.write(b'shout\\n')\n\
                      \x20   print(await r.readline())\n\
                      \x20   server.close()\n\
                      \x20   await asyncio.wait_for(asyncio.sleep(0.05), 1)\n\
                      asyncio.run(main())\n";
        let out = page.run("main.py", source).await?;
        ensure!(
            out.exit_code == 0 && out.stdout == "b'hello asyncio\\n'\nb'SHOUT\\n'\n",
            "{out}"
        );
        Ok(())
    })
    .await
}
