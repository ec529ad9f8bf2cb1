//! The end-to-end harness: a real relay serving `www/` on a port 0 listener, Debian's chromedriver and
//! headless Chromium, and a WebDriver session between them (fantoccini).
//!
//! Chromium starts with the flags this machine needs (no sandbox as root, no background networking on a
//! closed network) and a fresh profile every time. When a check fails, [`Browser::dump`] prints what the
//! page knew: its console, its text and a screenshot path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use fantoccini::{Client, ClientBuilder, Locator};
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
    _stop: oneshot::Sender<()>,
}

impl TestRelay {
    pub async fn start(flags: &[&str]) -> Result<TestRelay> {
        let www = root().join("www");
        let mut args = vec![
            "soket-relay".to_string(),
            "--www".into(),
            www.display().to_string(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let config = Config::try_parse_from(&args)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(Relay::new(config).serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(TestRelay { addr, _stop: stop })
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
    pub async fn start() -> Result<Browser> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(tool).exists() {
                bail!("{tool} is missing: install Debian's chromium and chromium-driver (cargo xtask test does)");
            }
        }
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let profile = std::env::temp_dir().join(format!("soket-e2e-{}-{port}", std::process::id()));
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
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen.
        let mut last = None;
        for _ in 0..50 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        driver,
                        profile,
                    })
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no WebDriver session with chromedriver: {last:?}")
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

    /// Prints what the page knew: console, body text, and a screenshot.
    pub async fn dump(&self) {
        if let Ok(log) = self.client.issue_cmd(BrowserLog).await {
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

/// chromedriver's own command for the browser's console log (not in the W3C protocol).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_string()),
        )
    }
}
