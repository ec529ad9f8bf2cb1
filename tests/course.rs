//! The course in a real Chromium, as a learner follows it: every exercise of every lesson checked
//! through the page's Check button, once with its reference solution (it must pass) and once with its
//! starter code (it must fail, with a sentence); the language switch rewrites every lesson's text; the
//! lesson list marks what was passed, and the learner's code survives a reload.
//!
//! The code goes into an exercise the way a learner's edits are kept (the page's saved code in
//! localStorage, then the lesson is opened), so the editors, the panels, Check and the check scripts are
//! all the page's own. The lessons come from `www/course.json`, which the build makes from
//! `www/lessons/`.
//!
//! Needs `www/pkg/` and `www/course.json`: `cargo xtask test` builds both before these run.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use fantoccini::Locator;
use serde_json::{json, Value};
use soket_e2e::{root, wait_for, Page};

/// How long one Check may take: servers start, clients run (up to an exercise's timeout), the script.
const CHECK_WITHIN: Duration = Duration::from_secs(120);

fn course() -> Result<Value> {
    let path = root().join("www/course.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: run `cargo xtask build` first", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The course's lessons; `SOKET_LESSONS=echo,http` keeps only those (to look at a few while writing
/// them).
fn lessons(course: &Value) -> Result<Vec<&Value>> {
    let all = course["lessons"]
        .as_array()
        .context("course.json has no lessons")?;
    let only = std::env::var("SOKET_LESSONS").unwrap_or_default();
    let wanted: Vec<&str> = only.split(',').filter(|s| !s.is_empty()).collect();
    Ok(all
        .iter()
        .filter(|l| wanted.is_empty() || wanted.contains(&l["id"].as_str().unwrap_or_default()))
        .collect())
}

/// Each program of an exercise with its reference solution, as [`open_exercise`] takes them.
fn solutions(programs: &[Value]) -> Vec<(&str, Option<&str>)> {
    programs
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["solution"].as_str(),
            )
        })
        .collect()
}

/// Sets the URL's hash, as following a link in the page does.
async fn go(page: &Page, hash: &str) -> Result<()> {
    page.browser
        .client
        .execute("window.location.hash = arguments[0];", vec![json!(hash)])
        .await?;
    Ok(())
}

/// Shows `#/lesson/<id>/<n>` with `code` saved for its programs (none: the starters), as a learner who
/// edited them and comes back.
async fn open_exercise(
    page: &Page,
    lesson: &str,
    n: usize,
    code: &[(&str, Option<&str>)],
) -> Result<()> {
    let client = &page.browser.client;
    // Away first, so the lesson's view is built anew from what is saved.
    go(page, "#/playground").await?;
    wait_for(
        client,
        "[data-testid=\"run-server.py\"]",
        Duration::from_secs(10),
    )
    .await?;
    for (program, text) in code {
        let key = format!("soket.code.{lesson}/{n}/{program}");
        client
            .execute(
                "const [key, text] = arguments;
                 if (text === null) localStorage.removeItem(key); else localStorage.setItem(key, text);",
                vec![json!(key), json!(text)],
            )
            .await?;
    }
    go(page, &format!("#/lesson/{lesson}/{n}")).await?;
    wait_for(
        client,
        &format!("article[data-lesson=\"{lesson}\"] [data-testid=\"check\"]:not([disabled])"),
        Duration::from_secs(20),
    )
    .await
}

/// Presses Check and waits for its verdict: the text of `check-result` once it reads `passed …` or
/// `failed …`.
async fn check(page: &Page) -> Result<String> {
    let client = &page.browser.client;
    client
        .find(Locator::Css("[data-testid=\"check\"]"))
        .await?
        .click()
        .await?;
    let deadline = tokio::time::Instant::now() + CHECK_WITHIN;
    loop {
        let verdict = page.browser.text("check-result").await.unwrap_or_default();
        if verdict.starts_with("passed") || verdict.starts_with("failed") {
            return Ok(verdict);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no verdict after {CHECK_WITHIN:?} (check-result reads {verdict:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_exercise_passes_with_its_solution_and_fails_with_its_starter() -> Result<()> {
    let course = course()?;
    let page = Page::open_at("/#/playground", &[]).await?;
    page.check(async |page| {
        let mut wrong = Vec::new();
        let mut checked = 0;
        for lesson in lessons(&course)? {
            let id = lesson["id"].as_str().context("lesson id")?;
            let exercises = lesson["exercises"].as_array().context("exercises")?;
            for (i, exercise) in exercises.iter().enumerate() {
                let n = i + 1;
                let programs = exercise["programs"].as_array().context("programs")?;
                let names: Vec<&str> = programs.iter().filter_map(|p| p["name"].as_str()).collect();
                let solution = solutions(programs);
                open_exercise(page, id, n, &solution).await?;
                let verdict = check(page).await?;
                eprintln!("{id}/{n} solution: {verdict}");
                if !verdict.starts_with("passed") {
                    wrong.push(format!("{id}/{n}: the solution {verdict}"));
                }
                let starters: Vec<(&str, Option<&str>)> =
                    names.iter().map(|&name| (name, None)).collect();
                open_exercise(page, id, n, &starters).await?;
                let verdict = check(page).await?;
                eprintln!("{id}/{n} starter: {verdict}");
                // A failed verdict must say what is wrong: more than the word itself.
                if !verdict.starts_with("failed") || verdict.len() < "failed — ".len() + 10 {
                    wrong.push(format!("{id}/{n}: the starter {verdict}"));
                }
                checked += 1;
            }
        }
        if std::env::var_os("SOKET_LESSONS").is_none() {
            ensure!(checked >= 18, "only {checked} exercises in the course");
        }
        ensure!(
            wrong.is_empty(),
            "{} of {checked} exercises are wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_language_switch_rewrites_every_lesson_and_is_remembered() -> Result<()> {
    let course = course()?;
    let page = Page::open_at("/", &[]).await?;
    page.check(async |page| {
        let client = &page.browser.client;
        for lang in ["id", "en", "id"] {
            client.find(Locator::Css(&format!("[data-testid=\"lang-{lang}\"]"))).await?.click().await?;
            for lesson in lessons(&course)? {
                let id = lesson["id"].as_str().context("lesson id")?;
                go(page, &format!("#/lesson/{id}")).await?;
                wait_for(client, &format!("article[data-lesson=\"{id}\"]"), Duration::from_secs(10)).await?;
                let title = page.browser.text("lesson-title").await?;
                let want = lesson["title"][lang].as_str().unwrap_or_default();
                ensure!(title == want, "{id} in {lang}: the title reads {title:?}, not {want:?}");
                let shown = client
                    .execute("return document.querySelector('[data-testid=\"lesson-text\"]').innerHTML", vec![])
                    .await?;
                ensure!(shown == lesson["html"][lang], "{id} in {lang}: the lesson's text is not its {lang} text");
                let task = client
                    .execute("return document.querySelector('[data-testid=\"exercise-task\"]').innerHTML", vec![])
                    .await?;
                ensure!(
                    task == lesson["exercises"][0]["task"][lang],
                    "{id} in {lang}: the exercise's task is not its {lang} text"
                );
            }
        }
        // The choice outlives a reload.
        client.refresh().await?;
        wait_for(client, "[data-testid=\"lang-id\"][aria-pressed=\"true\"]", Duration::from_secs(20)).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_passed_exercise_is_marked_and_edited_code_survives_a_reload_until_reset() -> Result<()> {
    let course = course()?;
    let first = &lessons(&course)?[0];
    let id = first["id"].as_str().context("lesson id")?.to_owned();
    let exercise = &first["exercises"][0];
    let programs = exercise["programs"].as_array().context("programs")?;
    let page = Page::open_at("/", &[]).await?;
    page.check(async |page| {
        let client = &page.browser.client;
        let solution = solutions(programs);
        open_exercise(page, &id, 1, &solution).await?;
        let verdict = check(page).await?;
        ensure!(
            verdict.starts_with("passed"),
            "the first lesson's solution: {verdict}"
        );
        wait_for(
            client,
            &format!("li.done [data-testid=\"lesson-link-{id}\"]"),
            Duration::from_secs(5),
        )
        .await?;

        // What is in the editor after a reload is the learner's code, not the starter.
        client.refresh().await?;
        wait_for(
            client,
            "[data-testid=\"runtime-ready\"]",
            Duration::from_secs(60),
        )
        .await?;
        go(page, &format!("#/lesson/{id}")).await?;
        let name = solution[0].0;
        wait_for(
            client,
            &format!("[data-testid=\"editor-{name}\"] .cm-content"),
            Duration::from_secs(10),
        )
        .await?;
        let shown = page.editor_text(name).await?;
        ensure!(
            Some(shown.as_str()) == solution[0].1,
            "after a reload the editor holds {shown:?}"
        );
        ensure!(
            client
                .find(Locator::Css(&format!(
                    "li.done [data-testid=\"lesson-link-{id}\"]"
                )))
                .await
                .is_ok(),
            "the lesson lost its mark after a reload"
        );

        // Reset to starter (confirmed) brings the starter back.
        client
            .execute("window.confirm = () => true;", vec![])
            .await?;
        client
            .find(Locator::Css("[data-testid=\"reset\"]"))
            .await?
            .click()
            .await?;
        let shown = page.editor_text(name).await?;
        let starter = programs[0]["starter"].as_str().unwrap_or_default();
        ensure!(shown == starter, "after Reset the editor holds {shown:?}");
        Ok(())
    })
    .await
}
