//! The network view in a real Chromium: the playground's seed server and client, run with their Run
//! buttons, show in the view as a learner would watch them — the server's LISTEN row with its public
//! address, a copy button and an `nc` line; the calls in causal order in the timeline, with arrows from
//! the client's connect to the server's accept and from the server's send to the client's recv; and the
//! view agrees with `window.soket.events()` and `sockets()`. Only the page's contract (ARCHITECTURE.md)
//! is used. It also takes screenshots at 1280×800 and 390×844 (a phone, where the view is a toggle) into
//! the temporary directory (`netview-*.png`), for a person to look at. And 100,000 sends leave the page
//! answering (a 20 ms timer late by under 200 ms, p95) while the view draws them, the diagram holding
//! its last 300 and saying how many came before.
//!
//! Needs `www/pkg/` and `www/editor.js`: `cargo xtask test` builds both before these run.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fantoccini::Locator;
use serde_json::{json, Value};
use soket_e2e::{spread, Page, TIGHT_SEND_LOOP};

/// How long a program started from the page may take to reach a state.
const WITHIN: Duration = Duration::from_secs(30);

const THANKS: &str = "Thank you for connecting";

fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

async fn click(page: &Page, css: &str) -> Result<()> {
    let button = page.browser.client.find(Locator::Css(css)).await?;
    ensure!(button.is_enabled().await?, "{css} is disabled");
    button.click().await?;
    Ok(())
}

/// The network view as the DOM has it: its socket rows and its timeline's events.
const VIEW: &str = r#"
const text = (node) => node?.textContent ?? null;
const rows = [...document.querySelectorAll('[data-testid="net-sockets"] [data-testid="net-socket"]')].map((tr) => ({
  program: tr.dataset.program, fd: Number(tr.dataset.fd), state: tr.dataset.state,
  cells: [...tr.cells].map((td) => td.textContent),
  nc: text(tr.querySelector('[data-testid="net-nc"]')),
  copy: tr.querySelector('[data-testid="net-copy"]') !== null,
}));
const events = [...document.querySelectorAll('[data-testid="net-timeline"] [data-testid="net-event"]')].map((li) => ({
  type: li.dataset.type, seq: Number(li.dataset.seq), program: li.dataset.program,
  bytes: li.dataset.bytes === undefined ? null : Number(li.dataset.bytes),
  from: li.dataset.from === undefined ? null : Number(li.dataset.from),
  text: li.textContent,
}));
const empty = [...document.querySelectorAll('.net-empty')].filter((p) => !p.hidden).map((p) => p.textContent);
return { rows, events, empty, all: window.soket.events() };
"#;

async fn view(page: &Page) -> Result<Value> {
    Ok(page.browser.client.execute(VIEW, vec![]).await?)
}

/// Waits until the view satisfies `ready`; returns it.
async fn wait_view(page: &Page, what: &str, ready: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let now = view(page).await?;
        if ready(&now) {
            return Ok(now);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the network view shows no {what} after {WITHIN:?}: {now:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first event of `program` of this type in the timeline, after seq `after`.
fn find<'a>(events: &'a [Value], program: &str, kind: &str, after: i64) -> Option<&'a Value> {
    events.iter().find(|e| {
        e["program"] == program && e["type"] == kind && e["seq"].as_i64().unwrap_or(-1) > after
    })
}

/// Makes the page's viewport `width`×`height` (the window is larger by the browser's own bars).
async fn viewport(page: &Page, width: u32, height: u32) -> Result<()> {
    let client = &page.browser.client;
    let inner = "return [window.innerWidth, window.innerHeight]";
    client.set_window_size(width, height).await?;
    let now = client.execute(inner, vec![]).await?;
    let (w, h) = (
        now[0].as_u64().context("innerWidth")?,
        now[1].as_u64().context("innerHeight")?,
    );
    let grow = |want: u32, got: u64| (2 * u64::from(want)).saturating_sub(got) as u32;
    client
        .set_window_size(grow(width, w), grow(height, h))
        .await?;
    let now = client.execute(inner, vec![]).await?;
    ensure!(
        now == json!([width, height]),
        "the viewport is {now}, not {width}×{height}"
    );
    Ok(())
}

async fn screenshot(page: &Page, name: &str) -> Result<()> {
    let png = page.browser.client.screenshot().await?;
    let path = std::env::temp_dir().join(format!("netview-{name}.png"));
    std::fs::write(&path, png)?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

#[tokio::test]
async fn the_seed_pair_shows_in_the_network_view() -> Result<()> {
    let page = Page::open_at("/#/playground", &[]).await?;
    page.check(async |page| {
        let browser = &page.browser;
        let client = &browser.client;
        viewport(page, 1280, 800).await?;

        // Before any program: the view says so.
        let before = view(page).await?;
        ensure!(
            before["rows"].as_array().is_some_and(Vec::is_empty)
                && before["empty"].as_array().is_some_and(|e| e.contains(&json!("no sockets yet — run a program"))),
            "the view before any run: {before:#}"
        );

        // The playground's own server.py, by its Run button.
        click(page, &css("run-server.py")).await?;
        browser.wait_text("status-server.py", "running", WITHIN).await?;
        let listening = wait_view(page, "LISTEN row of server.py", |v| {
            v["rows"].as_array().is_some_and(|rows| {
                rows.iter().any(|r| r["program"] == "server.py" && r["state"] == "LISTEN" && r["nc"].is_string())
            })
        })
        .await?;
        let listeners = client.execute("return window.soket.listeners()", vec![]).await?;
        let public = listeners[0]["public"].as_str().context("listeners()")?.to_owned();
        let (host, port) = public.rsplit_once(':').context("host:port")?;
        let row = listening["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["state"] == "LISTEN"))
            .context("a LISTEN row")?;
        ensure!(
            row["nc"] == format!("nc {host} {port}")
                && row["copy"] == true
                && row["cells"][1] == "TCP"
                && row["cells"][3].as_str().is_some_and(|local| local.ends_with(":12345"))
                && row["cells"][4].as_str().is_some_and(|peer| peer.contains(public.as_str())),
            "the LISTEN row: {row:#}; listeners() = {listeners}"
        );
        // The table is sockets(), row for row.
        let sockets = client.execute("return window.soket.sockets()", vec![]).await?;
        let listen = sockets
            .as_array()
            .and_then(|s| s.iter().find(|s| s["state"] == "LISTEN"))
            .with_context(|| format!("no LISTEN in sockets() = {sockets}"))?;
        ensure!(
            listen["program"] == "server.py"
                && listen["transport"] == "tcp"
                && listen["public"] == public
                && listen["fd"] == row["fd"],
            "sockets() = {sockets}; the row = {row:#}"
        );

        // The copy button copies the address and says so.
        click(page, &format!("tr[data-state=\"LISTEN\"] {}", css("net-copy"))).await?;
        let copied = client
            .execute("return document.querySelector('tr[data-state=\"LISTEN\"] .net-copied').textContent", vec![])
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut said = copied;
        while said != "copied" && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            said = client
                .execute("return document.querySelector('tr[data-state=\"LISTEN\"] .net-copied').textContent", vec![])
                .await?;
        }
        ensure!(said == "copied", "after Copy the row says {said}");

        // Then client.py, which the server thanks.
        click(page, &css("run-client.py")).await?;
        browser.wait_text("status-client.py", "exited 0", WITHIN).await?;
        let out = browser.text("output-client.py").await?;
        ensure!(out.trim_end() == THANKS, "client.py's console: {out:?}");

        let seen = wait_view(page, "recv of 24 bytes by client.py", |v| {
            v["events"].as_array().is_some_and(|events| {
                events.iter().any(|e| e["program"] == "client.py" && e["type"] == "recv" && e["bytes"] == 24)
            })
        })
        .await?;
        let events = seen["events"].as_array().context("events")?;
        let seq = |e: &Value| e["seq"].as_i64().unwrap_or(-1);
        let order = || -> Result<()> {
            let listen = find(events, "server.py", "listen", -1).context("server.py's listen")?;
            let connect = find(events, "client.py", "connect", seq(listen)).context("client.py's connect after the listen")?;
            let accept = find(events, "server.py", "accept", seq(connect)).context("server.py's accept after the connect")?;
            let send = find(events, "server.py", "send", seq(accept)).context("server.py's send after the accept")?;
            let recv = find(events, "client.py", "recv", seq(send)).context("client.py's recv after the send")?;
            ensure!(send["bytes"] == 24 && send["text"].as_str().is_some_and(|t| t.contains(THANKS)), "the send: {send}");
            ensure!(recv["bytes"] == 24 && recv["text"].as_str().is_some_and(|t| t.contains(THANKS)), "the recv: {recv}");
            // The arrows: the accept answers the client's connect; the recv reads the server's send.
            ensure!(accept["from"] == connect["seq"], "no arrow from the connect to the accept: {accept} {connect}");
            ensure!(recv["from"] == send["seq"], "no arrow from the send to the recv: {recv} {send}");
            Ok(())
        };
        order().with_context(|| format!("the timeline: {:#}", seen["events"]))?;
        // Its items in seq order, one per call.
        ensure!(events.windows(2).all(|w| seq(&w[0]) < seq(&w[1])), "the timeline is out of order: {events:#?}");

        // window.soket.events() agrees: the same calls (the diagram may be a draw behind: wait for it).
        let key = |e: &Value| (seq(e), e["type"].clone(), e["program"].clone(), e["bytes"].clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let both = loop {
            let both = view(page).await?;
            let agree = |v: &Value| -> Option<bool> {
                let ours: Vec<_> = v["events"].as_array()?.iter().map(key).collect();
                let theirs: Vec<_> = v["all"].as_array()?.iter().map(|e| {
                    let bytes = if e["type"] == "send" || e["type"] == "recv" { e["bytes"].clone() } else { Value::Null };
                    (seq(e), e["type"].clone(), e["program"].clone(), bytes)
                }).collect();
                Some(ours == theirs)
            };
            if agree(&both) == Some(true) || tokio::time::Instant::now() > deadline {
                ensure!(agree(&both) == Some(true), "the timeline draws {:#}\nbut events() = {:#}", both["events"], both["all"]);
                break both;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The connection's two ends match.
        let all = both["all"].as_array().context("events()")?;
        let connected = all
            .iter()
            .find(|e| e["program"] == "client.py" && e["type"] == "connected")
            .context("no connected in events()")?;
        let accepted = all
            .iter()
            .find(|e| e["program"] == "server.py" && e["type"] == "accept")
            .context("no accept in events()")?;
        ensure!(
            connected["local"] == accepted["peer"] && connected["peer"] == accepted["local"],
            "the ends do not match: {connected} and {accepted}"
        );

        // A refused connect shows as such, by its errno's name, in a lane of its own program.
        let refused = page.run("refused.py", REFUSED).await?;
        refused.expect("refused.py", "refused\n")?;
        let shown = wait_view(page, "error of refused.py", |v| {
            v["events"].as_array().is_some_and(|events| {
                events.iter().any(|e| e["program"] == "refused.py" && e["type"] == "error")
            })
        })
        .await?;
        let error = shown["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["type"] == "error"))
            .context("the error")?;
        ensure!(
            error["text"].as_str().is_some_and(|t| t.starts_with("connect: ECONNREFUSED")),
            "the refused connect reads {error}"
        );
        let red = client
            .execute(
                "return getComputedStyle(document.querySelector('[data-testid=\"net-event\"][data-type=\"error\"]')).color",
                vec![],
            )
            .await?;
        ensure!(red == "rgb(179, 38, 30)", "the error is not drawn in red: {red}");

        // The view speaks the learner's language.
        click(page, &css("lang-id")).await?;
        let toggle = browser.text("net-toggle").await?;
        click(page, &css("lang-en")).await?;
        ensure!(toggle.starts_with("Jaringan"), "in Bahasa Indonesia the toggle reads {toggle:?}");

        // What a person sees: the page at 1280×800, the view scrolled into sight, and a phone.
        screenshot(page, "1280-top").await?;
        client
            .execute("document.querySelector('[data-testid=\"net-toggle\"]').scrollIntoView()", vec![])
            .await?;
        screenshot(page, "1280-view").await?;
        viewport(page, 390, 844).await?;
        let toggle = css("net-toggle");
        let expanded = "return document.querySelector(arguments[0]).getAttribute('aria-expanded')";
        let mut now = Value::Null;
        for _ in 0..40 {
            now = client.execute(expanded, vec![json!(toggle)]).await?;
            if now == "false" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(now == "false", "on a phone the view starts collapsed: aria-expanded = {now}");
        client.execute("window.scrollTo(0, 0)", vec![]).await?;
        screenshot(page, "390-collapsed").await?;
        click(page, &toggle).await?;
        let now = client.execute(expanded, vec![json!(toggle)]).await?;
        ensure!(now == "true", "the toggle did not open the view: aria-expanded = {now}");
        let shown = client
            .execute("return document.querySelector('[data-testid=\"net-timeline\"]').getClientRects().length > 0", vec![])
            .await?;
        ensure!(shown == true, "the timeline is not shown once the view is open");
        screenshot(page, "390-open").await?;
        Ok(())
    })
    .await
}

/// A connect to a port of the session where nothing listens.
const REFUSED: &str = "\
import socket

try:
    socket.create_connection(('localhost', 9))
except ConnectionRefusedError:
    print('refused')
";

#[tokio::test]
async fn a_hundred_thousand_sends_leave_the_page_answering_with_the_view_drawn() -> Result<()> {
    let page = Page::open_at("/#/playground", &[]).await?;
    page.check(async |page| {
        let client = &page.browser.client;
        viewport(page, 1280, 800).await?;
        // The view on screen, so that it draws all along.
        client
            .execute("document.querySelector('[data-testid=\"net-timeline\"]').scrollIntoView()", vec![])
            .await?;
        page.watch_main_thread(Some("net-draw")).await?;
        let out = page.run("loop.py", TIGHT_SEND_LOOP).await?;
        ensure!(out.exit_code == 0 && out.stdout == "sent\n", "{out}");
        let (late, draws) = page.watched().await?;
        let (late95, late_worst, n) = spread(&late, 95)?;
        let (draw95, draw_worst, draws) = spread(&draws, 95)?;
        eprintln!(
            "while 100,000 sends ran: a 20 ms timer late by {late95:.0} ms (p95), {late_worst:.0} ms at worst, \
             {n} samples; the view drew {draws} times, {draw95:.1} ms (p95), {draw_worst:.1} ms at worst"
        );
        ensure!(late95 < 200.0, "the page answered late: p95 {late95:.0} ms");
        ensure!(draw95 < 100.0, "the view's drawing is slow: p95 {draw95:.1} ms");

        // The diagram holds its last 300 and says how many came before.
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let look = client
                .execute(
                    "return [document.querySelectorAll('[data-testid=\"net-event\"]').length,
                             document.querySelector('[data-testid=\"net-dropped\"]').textContent,
                             [...document.querySelectorAll('[data-testid=\"net-event\"]')].at(-1)?.dataset.type]",
                    vec![],
                )
                .await?;
            let count: String = look[1]
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let hidden: u64 = count.parse().unwrap_or(0);
            if look[0] == 300 && look[2] == "close" && hidden > 90_000 {
                ensure!(
                    look[1].as_str().is_some_and(|t| t.starts_with("… ") && t.ends_with(" earlier events not shown")),
                    "the dropped line reads {}",
                    look[1]
                );
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "the diagram after the loop: {look}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}
