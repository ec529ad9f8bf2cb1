//! The page checked by axe-core (npm, pinned in `tests/package-lock.json`; `cargo xtask test` installs it)
//! in a real Chromium: a lesson and the playground, after the seed's pair ran, in the light and in the dark
//! theme, have no serious or critical accessibility violation.

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use soket_e2e::{root, Page, SEED_CLIENT, SEED_SERVER};

/// Runs axe on the page as it is now; returns its serious and critical violations, one line each.
async fn violations(page: &Page) -> Result<Vec<String>> {
    let path = root().join("tests/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is missing: run `npm ci` in tests/ (cargo xtask test does)",
            path.display()
        )
    })?;
    let client = &page.browser.client;
    client.execute(&axe, vec![]).await?;
    let run = "const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] })
          .then((r) => done(r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)))
          .catch((e) => done([`axe failed: ${e}`]));";
    let found = client.execute_async(run, vec![]).await?;
    Ok(found
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// Clicks the theme switch; returns the theme the page then has.
async fn switch_theme(page: &Page) -> Result<String> {
    let client = &page.browser.client;
    client
        .find(fantoccini::Locator::Css("[data-testid=\"theme-toggle\"]"))
        .await?
        .click()
        .await?;
    let theme = client
        .execute("return document.documentElement.dataset.theme", vec![])
        .await?;
    Ok(theme.as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_lesson_and_the_playground_have_no_serious_accessibility_violation() -> Result<()> {
    let page = Page::open_at("/#/lesson/simple-server-client", &[]).await?;
    page.check(async |page| {
        let mut found = Vec::new();
        let first = page
            .browser
            .client
            .execute("return document.documentElement.dataset.theme", vec![])
            .await?;
        ensure!(
            first == "light",
            "headless Chromium's system theme is light: {first}"
        );
        found.push(("lesson, light", violations(page).await?));
        ensure!(
            switch_theme(page).await? == "dark",
            "the switch did not make it dark"
        );
        found.push(("lesson, dark", violations(page).await?));

        let client = &page.browser.client;
        client.goto(&page.relay.url("/#/playground")).await?;
        soket_e2e::wait_for(
            client,
            "[data-testid=\"runtime-ready\"]",
            std::time::Duration::from_secs(60),
        )
        .await?;
        let kept = client
            .execute("return document.documentElement.dataset.theme", vec![])
            .await?;
        ensure!(kept == "dark", "the choice was not kept: {kept}");
        let server = page.start("server.py", SEED_SERVER).await?;
        page.wait_listener(&server, 12345).await?;
        let out = page.run("client.py", SEED_CLIENT).await?;
        ensure!(out.stdout == "Thank you for connecting\n", "{out}");
        found.push(("playground, dark", violations(page).await?));
        ensure!(
            switch_theme(page).await? == "light",
            "the switch did not make it light"
        );
        found.push(("playground, light", violations(page).await?));
        page.stop(&server).await?;
        let failed: Vec<_> = found.iter().filter(|(_, v)| !v.is_empty()).collect();
        ensure!(failed.is_empty(), "{failed:#?}");
        Ok(())
    })
    .await
}
