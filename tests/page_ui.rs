//! The playground through its UI in a real Chromium, as a learner uses it: type a program into an
//! editor (select all, then type: the keys go through CodeMirror), click Run (or Ctrl+Enter), read
//! the console and the status, see the server's public address, reach it from outside the browser,
//! run it again, click Stop. Only the page's contract (ARCHITECTURE.md) is used.
//!
//! Needs `www/pkg/` and `www/editor.js`: `cargo xtask test` builds both before these run.

use std::io::Read;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fantoccini::Locator;
use serde_json::json;
use soket_e2e::{root, Page, SEED_SERVER};

/// WebDriver's keys: Control (held until NULL), NULL, Enter.
const CONTROL: char = '\u{E009}';
const NULL: char = '\u{E000}';
const ENTER: char = '\u{E007}';

/// Where the page shows the playground (its first screen is the course's first lesson).
const PLAYGROUND: &str = "/#/playground";

/// How long a program started from the page may take to reach a state.
const WITHIN: Duration = Duration::from_secs(30);

/// The seed's server as the seed has it: Python 2, indented by three.
const SEED_SERVER_PY2: &str = "\
#!/usr/bin/python           # This is server.py file

import socket               # Import socket module

s = socket.socket()         # Create a socket object
host = socket.gethostname() # Get local machine name
port = 12345                # Reserve a port for your service.
s.bind((host, port))        # Bind to the port

s.listen(5)                 # Now wait for client connection.
while True:
   c, addr = s.accept()     # Establish connection with client.
   print 'Got connection from', addr
   c.send('Thank you for connecting')
   c.close()                # Close the connection";

/// How many highlighted pieces the server's editor shows.
const HIGHLIGHTED: &str =
    "return document.querySelectorAll('[data-testid=\"editor-server.py\"] .cm-line span').length";

fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// Replaces what the editor of `name` holds by typing `source` into it, as a person would: click,
/// select all, type. Lines are typed without their indentation, which the editor adds itself after a
/// `:`. The keys go to the contract's element, `editor-NAME`, which hands its focus to CodeMirror.
async fn type_program(page: &Page, name: &str, source: &str) -> Result<()> {
    let client = &page.browser.client;
    let holder = css(&format!("editor-{name}"));
    client
        .find(Locator::Css(&format!("{holder} .cm-content")))
        .await
        .context("no CodeMirror editor (was www/editor.js built?)")?;
    let editor = client.find(Locator::Css(&holder)).await?;
    editor.click().await?;
    let mut keys = format!("{CONTROL}a{NULL}");
    let lines: Vec<&str> = source.lines().map(str::trim_start).collect();
    keys.push_str(&lines.join(&ENTER.to_string()));
    editor.send_keys(&keys).await?;
    Ok(())
}

/// The console of `name`, exactly (the element's textContent), and its stderr part.
async fn console(page: &Page, name: &str) -> Result<(String, String)> {
    let script = "const [css] = arguments; const box = document.querySelector(css);
        return [box.textContent,
                [...box.querySelectorAll('.stderr')].map((s) => s.textContent).join('')];";
    let value = page
        .browser
        .client
        .execute(script, vec![json!(css(&format!("output-{name}")))])
        .await?;
    Ok((
        value[0].as_str().context("console")?.to_owned(),
        value[1].as_str().context("console")?.to_owned(),
    ))
}

async fn click(page: &Page, testid: &str) -> Result<()> {
    let button = page.browser.client.find(Locator::Css(&css(testid))).await?;
    ensure!(
        button.is_enabled().await?,
        "{testid} is disabled when it should be clicked"
    );
    button.click().await?;
    Ok(())
}

/// Waits until the element with `testid` has text that `ready` accepts; returns that text.
async fn wait_until(page: &Page, testid: &str, ready: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let text = page.browser.text(testid).await.unwrap_or_default();
        if ready(&text) {
            return Ok(text);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{testid} reads {text:?} after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_seed_example_runs_through_the_editors() -> Result<()> {
    ensure!(
        root().join("www/editor.js").exists(),
        "www/editor.js is missing: run `cargo xtask test` (it bundles the editor first)"
    );
    let page = Page::open_at(PLAYGROUND, &[]).await?;
    page.check(async |page| {
        let browser = &page.browser;
        ensure!(browser.text("status-server.py").await?.is_empty());
        ensure!(browser.text("output-server.py").await?.is_empty());

        // As the editor should hold it once typed: no newline after the last line.
        let seed_server = SEED_SERVER.trim_end();
        type_program(page, "server.py", seed_server).await?;
        let typed = page.editor_text("server.py").await?;
        ensure!(
            typed == seed_server,
            "the editor holds, after typing:\n{typed}\n--- instead of ---\n{seed_server}"
        );
        // The editor highlights Python: keywords sit in spans of their own.
        let highlighted = browser.client.execute(HIGHLIGHTED, vec![]).await?;
        ensure!(
            highlighted.as_u64().unwrap_or(0) > 5,
            "no highlighting: {highlighted}"
        );

        click(page, "run-server.py").await?;
        browser
            .wait_text("status-server.py", "running", WITHIN)
            .await?;
        let listening = wait_until(page, "listening-server.py", |t| {
            t.starts_with("listening on ")
        })
        .await?;
        let listeners = browser
            .client
            .execute("return window.soket.listeners()", vec![])
            .await?;
        let public = listeners[0]["public"].as_str().context("listeners()")?;
        ensure!(
            listeners[0]["program"] == "server.py" && listeners[0]["port"] == 12345,
            "listeners() = {listeners}"
        );
        let (host, port) = public.rsplit_once(':').context("host:port")?;
        ensure!(
            listening == format!("listening on {public} — try nc {host} {port}"),
            "the address line reads {listening:?}; listeners() = {listeners}"
        );

        click(page, "run-client.py").await?;
        browser
            .wait_text("status-client.py", "exited 0", WITHIN)
            .await?;
        let (client_out, client_err) = console(page, "client.py").await?;
        ensure!(
            client_out == "Thank you for connecting\n" && client_err.is_empty(),
            "client.py's console: {client_out:?}"
        );

        // What the address line says works from a terminal: the server thanks this test too.
        let public = public.to_owned();
        let thanks = tokio::task::spawn_blocking(move || -> Result<String> {
            let mut stream = std::net::TcpStream::connect(&public)?;
            stream.set_read_timeout(Some(WITHIN))?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        })
        .await??;
        ensure!(
            thanks == "Thank you for connecting",
            "nc would read {thanks:?}"
        );

        let (server_out, _) =
            wait_console(page, "server.py", |out| out.matches('\n').count() >= 2).await?;
        let lines: Vec<&str> = server_out.lines().collect();
        ensure!(
            lines.len() == 2
                && lines.iter().all(
                    |l| l.starts_with("Got connection from ('127.0.0.1', ") && l.ends_with(')')
                ),
            "server.py's console: {server_out:?}"
        );
        ensure!(browser.text("status-server.py").await? == "running");

        // Run while it runs starts afresh: the old run ends and frees port 12345 for the new one.
        click(page, "run-server.py").await?;
        wait_console(page, "server.py", str::is_empty).await?;
        let listens = |t: &str| t.starts_with("listening on ");
        wait_until(page, "listening-server.py", listens).await?;
        click(page, "run-client.py").await?;
        // The server hears the new client, whose console was emptied when it started. A print arrives in
        // pieces as it is written: wait for the whole line.
        let (server_out, _) = wait_console(page, "server.py", |out| out.contains('\n')).await?;
        ensure!(
            server_out.starts_with("Got connection from ('127.0.0.1', ")
                && server_out.lines().count() == 1,
            "server.py's console after Run again: {server_out:?}"
        );
        let thanked = |out: &str| out == "Thank you for connecting\n";
        wait_console(page, "client.py", thanked).await?;
        browser
            .wait_text("status-client.py", "exited 0", WITHIN)
            .await?;
        ensure!(browser.text("status-server.py").await? == "running");

        click(page, "stop-server.py").await?;
        browser
            .wait_text("status-server.py", "exited 130", WITHIN)
            .await?;
        wait_until(page, "listening-server.py", str::is_empty).await?;
        let stop = browser
            .client
            .find(Locator::Css(&css("stop-server.py")))
            .await?;
        ensure!(!stop.is_enabled().await?, "Stop is enabled after the end");
        Ok(())
    })
    .await
}

/// Waits until the console of `name` satisfies `ready`; returns it as [`console`] does.
async fn wait_console(
    page: &Page,
    name: &str,
    ready: impl Fn(&str) -> bool,
) -> Result<(String, String)> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let now = console(page, name).await?;
        if ready(&now.0) {
            return Ok(now);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "output-{name} reads {:?} after {WITHIN:?}",
            now.0
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_seeds_python_2_gets_cpythons_hint() -> Result<()> {
    let page = Page::open_at(PLAYGROUND, &[]).await?;
    page.check(async |page| {
        type_program(page, "server.py", SEED_SERVER_PY2).await?;
        // Ctrl+Enter in the editor is Run.
        let editor = page
            .browser
            .client
            .find(Locator::Css(&css("editor-server.py")))
            .await?;
        editor.send_keys(&format!("{CONTROL}{ENTER}{NULL}")).await?;
        page.browser
            .wait_text("status-server.py", "exited 1", WITHIN)
            .await?;
        let (out, err) = console(page, "server.py").await?;
        ensure!(out == err, "stdout in the console: {out:?}");
        for want in [
            "  File \"server.py\", line 13\n",
            "    print 'Got connection from', addr\n",
            "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?\n",
        ] {
            ensure!(err.contains(want), "the console lacks {want:?}: {err}");
        }
        // The traceback's line is marked in the editor, and a click on it in the console goes there.
        let marked = "return [...document.querySelectorAll(
            '[data-testid=\"editor-server.py\"] .cm-error-line')].map((l) => l.textContent)";
        let marked = page.browser.client.execute(marked, vec![]).await?;
        ensure!(
            marked.as_array().is_some_and(|lines| lines.len() == 1
                && lines[0]
                    .as_str()
                    .is_some_and(|l| l.contains("print 'Got connection from'"))),
            "marked lines: {marked}"
        );
        let link = format!("{} .trace-link[data-line=\"13\"]", css("output-server.py"));
        page.browser
            .client
            .find(Locator::Css(&link))
            .await?
            .click()
            .await?;
        let active = "const line = document.querySelector(
            '[data-testid=\"editor-server.py\"] .cm-focused .cm-activeLine');
            return line ? line.textContent : null";
        // The editor takes focus and moves its cursor in the click's handlers: on a busy machine that
        // lands a frame or two after WebDriver's click returns.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let now = page.browser.client.execute(active, vec![]).await?;
            if now
                .as_str()
                .is_some_and(|l| l.contains("print 'Got connection from'"))
            {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "after the click the cursor is on {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Clear empties the console.
        click(page, "clear-server.py").await?;
        let (out, _) = console(page, "server.py").await?;
        ensure!(out.is_empty(), "the console after Clear: {out:?}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn input_is_answered_through_the_console() -> Result<()> {
    let page = Page::open_at(PLAYGROUND, &[]).await?;
    page.check(async |page| {
        let program = "name = input('Your name? ')\nprint('Hello,', name)\nimport sys\nrest = sys.stdin.read()\nprint('rest:', repr(rest))";
        type_program(page, "client.py", program).await?;
        click(page, "run-client.py").await?;
        wait_console(page, "client.py", |text| text.contains("Your name? ")).await?;
        // The program waits for the learner: it is still running.
        tokio::time::sleep(Duration::from_millis(300)).await;
        ensure!(page.browser.text("status-client.py").await? == "running");
        let input = page
            .browser
            .client
            .find(Locator::Css(&css("stdin-client.py")))
            .await?;
        input.send_keys(&format!("Ada{ENTER}")).await?;
        wait_console(page, "client.py", |text| text.contains("Hello, Ada")).await?;
        // Two more lines, then Ctrl-D ends the input: sys.stdin.read() returns them.
        input.send_keys(&format!("one{ENTER}two{ENTER}")).await?;
        input.send_keys(&format!("{CONTROL}d{NULL}")).await?;
        page.browser
            .wait_text("status-client.py", "exited 0", WITHIN)
            .await?;
        let (out, err) = console(page, "client.py").await?;
        ensure!(err.is_empty(), "stderr: {err:?}");
        // The typed lines show in the console as a terminal echoes them.
        ensure!(
            out == "Your name? Ada\nHello, Ada\none\ntwo\n^D\nrest: 'one\\ntwo\\n'\n",
            "console: {out:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_program_that_prints_forever_keeps_the_console_bounded() -> Result<()> {
    let page = Page::open_at(PLAYGROUND, &[]).await?;
    page.check(async |page| {
        type_program(page, "client.py", "while True:\nprint('x' * 99)").await?;
        click(page, "run-client.py").await?;
        // A few megabytes of output go by; the console keeps its last 200,000 characters.
        let deadline = tokio::time::Instant::now() + WITHIN;
        let mut longest = 0;
        loop {
            longest = longest.max(console(page, "client.py").await?.0.len());
            if longest >= 190_000 {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the console grew to {longest} only"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = console(page, "client.py").await?.0.len();
        ensure!(now <= 200_000, "the console holds {now} characters");
        click(page, "stop-client.py").await?;
        page.browser
            .wait_text("status-client.py", "exited 130", WITHIN)
            .await
    })
    .await
}
