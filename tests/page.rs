//! The page in a real Chromium against a real relay: it is cross-origin isolated (the headers the Python
//! worker's SharedArrayBuffer needs) and holds a session with the relay; it shows how far the runtime has
//! loaded, and says in words why it cannot work where it cannot.

use std::time::Duration;

use soket_e2e::{Browser, TestRelay};

#[tokio::test]
async fn the_page_is_isolated_and_connects_to_the_relay() -> anyhow::Result<()> {
    let relay = TestRelay::start(&[]).await?;
    let browser = Browser::start().await?;
    browser
        .check(async |browser| {
            browser.client.goto(&relay.url("/")).await?;
            browser
                .wait_text("relay-status", "connected", Duration::from_secs(10))
                .await?;
            let isolated = browser
                .client
                .execute("return self.crossOriginIsolated === true", vec![])
                .await?;
            anyhow::ensure!(
                isolated == serde_json::Value::Bool(true),
                "the page is not cross-origin isolated"
            );
            let shared = browser
                .client
                .execute("return typeof SharedArrayBuffer", vec![])
                .await?;
            anyhow::ensure!(
                shared == "function",
                "SharedArrayBuffer is not available: {shared}"
            );
            Ok(())
        })
        .await
}

#[tokio::test]
async fn a_relay_with_an_access_token_serves_the_page_opened_with_it() -> anyhow::Result<()> {
    let relay = TestRelay::start(&["--access-token", "kopi-42"]).await?;
    let browser = Browser::start().await?;
    browser
        .check(async |browser| {
            browser.client.goto(&relay.url("/")).await?;
            // Without the token the page loads but its session is refused: it stays disconnected.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let status = browser.text("relay-status").await?;
            anyhow::ensure!(status == "disconnected", "without the token: {status}");
            browser.client.goto(&relay.url("/?token=kopi-42")).await?;
            browser
                .wait_text("relay-status", "connected", Duration::from_secs(10))
                .await
        })
        .await
}

/// What the loading line shows now: the bar's value (None while indeterminate), its words, and whether it
/// is hidden.
async fn load_line(browser: &Browser) -> anyhow::Result<(Option<f64>, String, bool)> {
    let shown = browser
        .client
        .execute(
            "const bar = document.querySelector('[data-testid=load-progress]');
             const words = document.querySelector('[data-testid=load-status]');
             if (!bar) return null;
             return [bar.hasAttribute('value') ? bar.value : null, words.textContent, bar.parentElement.hidden];",
            vec![],
        )
        .await?;
    let Some([value, words, hidden]) = shown
        .as_array()
        .map(Vec::as_slice)
        .and_then(|a| <&[_; 3]>::try_from(a).ok())
    else {
        return Ok((None, String::new(), false));
    };
    Ok((
        value.as_f64(),
        words.as_str().unwrap_or_default().to_owned(),
        hidden.as_bool().unwrap_or_default(),
    ))
}

#[tokio::test]
async fn loading_shows_the_runtimes_bytes_then_ready() -> anyhow::Result<()> {
    let relay = TestRelay::start(&[]).await?;
    let browser = Browser::start().await?;
    browser
        .check(async |browser| {
            // About 6.4 MB of compressed runtime at 3 MB/s: a couple of seconds to watch.
            browser.throttle(3_000_000).await?;
            browser.client.goto(&relay.url("/")).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            loop {
                let line = load_line(browser).await?;
                let done = line.1 == "ready" && line.2;
                seen.push(line);
                if done {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "not ready after 60 s; the loading line showed {seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Part way through the download: a fraction of the bar, and the bytes of the decoded total.
            let partway = seen.iter().find(|(value, words, _)| {
                value.is_some_and(|v| v > 0.05 && v < 0.85)
                    && words.starts_with("downloading Python: ")
            });
            let Some((_, words, _)) = partway else {
                anyhow::bail!("no sample part way through the download: {seen:?}");
            };
            anyhow::ensure!(
                words.contains(" of 22.") && words.ends_with(" MB"),
                "{words}"
            );
            let values: Vec<f64> = seen.iter().filter_map(|s| s.0).collect();
            anyhow::ensure!(
                values.windows(2).all(|w| w[0] <= w[1]),
                "the bar went backwards: {values:?}"
            );
            anyhow::ensure!(
                seen.iter().any(|(_, words, _)| words.ends_with("Python…")),
                "no compile or start step was shown: {seen:?}"
            );
            browser
                .wait_text("relay-status", "connected", Duration::from_secs(10))
                .await
        })
        .await
}

#[tokio::test]
async fn a_page_that_is_not_isolated_says_why_and_what_to_do() -> anyhow::Result<()> {
    let browser = Browser::start().await?;
    browser
        .check(async |browser| {
            // The same page from a plain file server, which sends no isolation headers.
            let plain = serve_without_isolation().await?;
            browser.client.goto(&format!("http://{plain}/")).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let said = browser.text("load-error").await.unwrap_or_default();
                if !said.is_empty() {
                    anyhow::ensure!(
                        said.contains("not cross-origin isolated")
                            && said.contains("SharedArrayBuffer")
                            && said.contains("Open it from the Soket relay"),
                        "{said}"
                    );
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "no load-error after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let runtime = browser
                .client
                .execute(
                    "return document.getElementById('runtime-status').textContent",
                    vec![],
                )
                .await?;
            anyhow::ensure!(runtime == "failed", "runtime-status reads {runtime}");
            Ok(())
        })
        .await
}

/// A file server for `www/` that sends no isolation headers (HTTP/1.0, one request per connection),
/// on a port of its own; it lives as long as the test's runtime.
async fn serve_without_isolation() -> anyhow::Result<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let www = soket_e2e::root().join("www");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let www = www.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]);
                let path = request.split(' ').nth(1).unwrap_or("/");
                let path = path.split(['?', '#']).next().unwrap_or("/");
                let path = if path.ends_with('/') {
                    format!("{path}index.html")
                } else {
                    path.to_owned()
                };
                let file = www.join(path.trim_start_matches('/'));
                let (status, body) = match (path.contains(".."), tokio::fs::read(&file).await) {
                    (false, Ok(body)) => ("200 OK", body),
                    _ => ("404 Not Found", Vec::new()),
                };
                let kind = match file.extension().and_then(|e| e.to_str()) {
                    Some("html") => "text/html",
                    Some("js") => "text/javascript",
                    Some("css") => "text/css",
                    Some("wasm") => "application/wasm",
                    Some("json") => "application/json",
                    _ => "application/octet-stream",
                };
                let head = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    Ok(addr)
}
