//! The page in a real Chromium against a real relay: it is cross-origin isolated (the headers the Python
//! worker's SharedArrayBuffer needs) and holds a session with the relay.

use std::time::Duration;

use soket_e2e::{Browser, TestRelay};

#[tokio::test]
async fn the_page_is_isolated_and_connects_to_the_relay() -> anyhow::Result<()> {
    let relay = TestRelay::start(&[]).await?;
    let browser = Browser::start().await?;
    let result = async {
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
    }
    .await;
    if result.is_err() {
        browser.dump().await;
    }
    browser.close().await;
    result
}
