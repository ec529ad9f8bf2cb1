//! The page's network events and socket table (`window.soket.events()`, `sockets()`), as the network
//! view reads them, from programs run in a real Chromium against a real relay: the seed's pair shows in
//! causal order with its 24 bytes, a held connection as an ESTABLISHED pair whose ends match, and a
//! program that makes calls in a tight loop leaves the page responsive with the timeline at its bound.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use soket_e2e::{spread, Page, SEED_CLIENT, SEED_SERVER, TIGHT_SEND_LOOP};

/// The page's events, as `window.soket.events()` gives them.
async fn events(page: &Page) -> Result<Vec<Value>> {
    let events = page
        .browser
        .client
        .execute("return window.soket.events()", vec![])
        .await?;
    Ok(events.as_array().cloned().unwrap_or_default())
}

/// The first event of `program` of this `kind` that `also` accepts.
fn find<'a>(
    events: &'a [Value],
    program: &str,
    kind: &str,
    also: impl Fn(&Value) -> bool,
) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["program"] == program && e["type"] == kind && also(e))
}

#[tokio::test]
async fn the_seed_pair_shows_in_causal_order_with_its_24_bytes() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", SEED_SERVER).await?;
        page.wait_listener(&server, 12345).await?;
        // The table reaches the page at most 100 ms after the call.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listening = loop {
            let sockets = page
                .browser
                .client
                .execute("return window.soket.sockets()", vec![])
                .await?;
            let row = sockets.as_array().and_then(|rows| {
                rows.iter()
                    .find(|row| row["program"] == "server.py" && row["state"] == "LISTEN")
                    .cloned()
            });
            if let Some(row) = row {
                break row;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "no LISTEN row for server.py in {sockets:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ensure!(
            listening["local"]
                .as_str()
                .is_some_and(|l| l.ends_with(":12345"))
                && listening["public"]
                    .as_str()
                    .is_some_and(|p| p.contains(':')),
            "{listening:#}"
        );

        let client = page.run("client.py", SEED_CLIENT).await?;
        ensure!(client.stdout == "Thank you for connecting\n", "{client}");
        // Events reach the page at most 100 ms after the calls.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let events = loop {
            let events = events(page).await?;
            if find(&events, "client.py", "close", |_| true).is_some() {
                break events;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "no close of client.py in {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let seq = |e: &Value| e["seq"].as_u64().unwrap_or(u64::MAX);
        let listen = find(&events, "server.py", "listen", |_| true).context("listen")?;
        let connect = find(&events, "client.py", "connect", |_| true).context("connect")?;
        let connected = find(&events, "client.py", "connected", |_| true).context("connected")?;
        let accept = find(&events, "server.py", "accept", |_| true).context("accept")?;
        let thanks = |e: &Value| e["bytes"] == 24 && e["preview"] == "b'Thank you for connecting'";
        let send =
            find(&events, "server.py", "send", thanks).context("the server's send of 24 bytes")?;
        let recv =
            find(&events, "client.py", "recv", thanks).context("the client's recv of 24 bytes")?;
        ensure!(
            seq(listen) < seq(connect) && seq(connect) < seq(accept) && seq(send) < seq(recv),
            "not in causal order: {events:#?}"
        );
        ensure!(
            connected["peer"]
                .as_str()
                .is_some_and(|p| p.ends_with(":12345"))
                && accept["peer"] == connected["local"]
                && accept["local"] == connected["peer"],
            "the two ends do not match: {connected:#} {accept:#}"
        );
        ensure!(
            events
                .windows(2)
                .all(|w| seq(&w[0]) < seq(&w[1]) && w[0]["t"].as_f64() <= w[1]["t"].as_f64()),
            "events out of order"
        );
        page.stop(&server).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_program_in_a_tight_loop_leaves_the_page_responsive_and_the_timeline_bounded(
) -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        page.watch_main_thread(None).await?;
        let out = page.run("loop.py", TIGHT_SEND_LOOP).await?;
        ensure!(out.exit_code == 0 && out.stdout == "sent\n", "{out}");
        let (late, _) = page.watched().await?;
        let (p95, worst, n) = spread(&late, 95)?;
        eprintln!(
            "main thread lateness while 100,000 sends ran: p95 {p95:.0} ms, worst {worst:.0} ms, {n} samples"
        );
        ensure!(p95 < 200.0, "the page answered late: p95 {p95:.0} ms (worst {worst:.0} ms)");

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = events(page).await?;
            let closed = find(&events, "loop.py", "close", |_| true).is_some();
            if closed {
                ensure!(events.len() == 2000, "the timeline holds {} events", events.len());
                ensure!(
                    events[0]["seq"].as_u64() > Some(50_000),
                    "the oldest kept is #{}: were the first 98,000 not dropped?",
                    events[0]["seq"]
                );
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "no close of loop.py");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await
}

/// A server that holds its connection open (it waits for a byte), and a client that waits for its input:
/// both ends stay ESTABLISHED while the table is read.
const HOLDING_SERVER: &str = "\
import socket

s = socket.socket()
s.bind((socket.gethostname(), 12345))
s.listen(5)
c, addr = s.accept()
c.send(b'Thank you for connecting')
c.recv(1)
";

const WAITING_CLIENT: &str = "\
import socket

s = socket.socket()
s.connect((socket.gethostname(), 12345))
print(s.recv(1024).decode(), flush=True)
input()
";

#[tokio::test]
async fn a_held_connection_shows_as_an_established_pair_with_matching_ends() -> Result<()> {
    let page = Page::open().await?;
    page.check(async |page| {
        let server = page.start("server.py", HOLDING_SERVER).await?;
        page.wait_listener(&server, 12345).await?;
        let client = page.start("client.py", WAITING_CLIENT).await?;
        page.wait_output(&client, "Thank you for connecting")
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (ours, theirs) = loop {
            let sockets = page
                .browser
                .client
                .execute("return window.soket.sockets()", vec![])
                .await?;
            let rows = sockets.as_array().cloned().unwrap_or_default();
            let established = |program: &str| {
                rows.iter()
                    .find(|r| r["program"] == program && r["state"] == "ESTABLISHED")
                    .cloned()
            };
            if let (Some(c), Some(s)) = (established("client.py"), established("server.py")) {
                break (c, s);
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "no ESTABLISHED pair in {sockets:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ensure!(
            ours["local"] == theirs["peer"]
                && ours["peer"] == theirs["local"]
                && theirs["local"]
                    .as_str()
                    .is_some_and(|l| l.ends_with(":12345")),
            "the ends do not match: {ours:#} {theirs:#}"
        );
        ensure!(
            theirs["sent"] == 24 && ours["received"] == 24 && ours["transport"] == "tcp",
            "bytes: {ours:#} {theirs:#}"
        );
        page.stop(&client).await?;
        page.stop(&server).await?;
        Ok(())
    })
    .await
}
