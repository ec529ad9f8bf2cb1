//! `cargo xtask test`: every test there is, in order, stopping at the first failure.
//!
//! The steps: formatting, clippy (native), the native tests, the wasm32 target as its own step (clippy and
//! build), a bounded fuzz run of the protocol decoder, and the browser tests (`tests/`). The
//! output of every `cargo test` streams through while its `test result:` lines are tallied; the very last
//! line is always `tests: N passed, M failed`, which CI reads along with the exit code.

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Result;

use crate::fuzz;
use crate::tools::{self, cargo, WASM_TARGET};
use crate::wasm;

/// How long the fuzz step runs, shared by all targets.
const FUZZ_SECONDS: u64 = 60;

/// The package of the browser end-to-end tests, in `tests/`.
const E2E_PACKAGE: &str = "soket-e2e";
/// The wasm-only standard library crate, left out of the native steps.
const STDLIB_PACKAGE: &str = "soket-stdlib";

pub fn run() -> ExitCode {
    let mut tally = Tally::default();
    let result = steps(&mut tally);
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
    }
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    if result.is_ok() && tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn steps(tally: &mut Tally) -> Result<()> {
    let started = Instant::now();
    let clippy = tools::succeeds(cargo().args(["clippy", "--version"]));

    step_cmd(cargo().args(["fmt", "--all", "--", "--check"]))?;

    let mut lint = cargo();
    // soket-stdlib is wasm-only (its build script compiles Python with RustPython's compiler): its
    // clippy runs with the other wasm32 crates below, so the native steps do not build that compiler.
    lint.args([
        "clippy",
        "--workspace",
        "--exclude",
        STDLIB_PACKAGE,
        "--all-targets",
    ])
    .args(["--", "-D", "warnings"]);
    if clippy {
        step_cmd(&mut lint)?;
    } else {
        skip_clippy(&lint);
    }

    let mut native = cargo();
    // The browser tests run last, once Chromium is there.
    native
        .args(["test", "--workspace", "--exclude", STDLIB_PACKAGE])
        .args(["--exclude", E2E_PACKAGE]);
    step(&tools::describe(&native), || {
        tools::ensure_programs(tools::TEST_CLIENTS)?;
        tools::run_streaming(&mut native, |l| tally.line(l))
    })?;

    step(&format!("{WASM_TARGET}: clippy and build"), || {
        tools::ensure_wasm_target()?;
        let mut lint = cargo();
        lint.args(["clippy", "-p", "soket-frontend", "-p", "soket-protocol"])
            .args(["-p", STDLIB_PACKAGE])
            .args(["-p", "soket-netstack", "-p", "soket-networker"])
            .args(["--target", WASM_TARGET])
            .args(wasm::FRONTEND_CARGO_FLAGS)
            .args(["--", "-D", "warnings"]);
        if clippy {
            println!("==> {}", tools::describe(&lint));
            tools::run(&mut lint)?;
        } else {
            skip_clippy(&lint);
        }
        // The release build the browser tests load, with its glue in www/pkg/.
        wasm::build()
    })?;

    step(
        &format!("fuzz the protocol decoder ({FUZZ_SECONDS} s)"),
        || fuzz::run(fuzz::Budget::Total(FUZZ_SECONDS)),
    )?;

    let mut browser = cargo();
    browser.args(["test", "-p", E2E_PACKAGE]);
    step(&tools::describe(&browser), || {
        tools::ensure_chromium()?;
        // What the browser tests inject into the page (axe-core), pinned in tests/package-lock.json.
        crate::web::install(&tools::root().join("tests"))?;
        tools::run_streaming(&mut browser, |l| tally.line(l))
    })?;

    println!("all steps passed in {}", seconds(started));
    Ok(())
}

/// Runs one step under a banner and reports how long it took.
fn step(banner: &str, body: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("==> {banner}");
    let started = Instant::now();
    let result = body();
    match &result {
        Ok(()) => println!("    ok in {}", seconds(started)),
        Err(_) => println!("    FAILED after {}", seconds(started)),
    }
    result
}

/// A step that is one command, named by itself.
fn step_cmd(cmd: &mut Command) -> Result<()> {
    step(&tools::describe(cmd), || tools::run(cmd))
}

fn skip_clippy(cmd: &Command) {
    println!(
        "==> {}\n    skipped: clippy is not installed (rustup component add clippy)",
        tools::describe(cmd)
    );
}

fn seconds(since: Instant) -> String {
    format!("{:.1} s", since.elapsed().as_secs_f64())
}

/// Tests passed and failed, summed over every `test result:` line seen.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn line(&mut self, line: &str) {
        if let Some((passed, failed)) = parse_result(line) {
            self.passed += passed;
            self.failed += failed;
        }
    }
}

/// Reads libtest's summary line, `test result: ok. 6 passed; 0 failed; 0 ignored; ...`, as
/// `(passed, failed)`.
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, counts) = rest.split_once(". ")?;
    let (mut passed, mut failed) = (None, None);
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse() else { continue };
        match what {
            "passed" => passed = Some(n),
            "failed" => failed = Some(n),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_passing_summary() {
        let line = "test result: ok. 6 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; \
                    finished in 0.00s";
        assert_eq!(parse_result(line), Some((6, 0)));
    }

    #[test]
    fn reads_a_failing_summary() {
        let line =
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; \
                    finished in 1.25s";
        assert_eq!(parse_result(line), Some((3, 2)));
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse_result("test codec::round_trip ... ok"), None);
        assert_eq!(parse_result("running 6 tests"), None);
        assert_eq!(parse_result("test result: garbled"), None);
    }

    #[test]
    fn sums_over_runs() {
        let mut tally = Tally::default();
        tally.line("test result: ok. 6 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        tally
            .line("test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        tally.line("   Doc-tests soket_protocol");
        assert_eq!(
            tally,
            Tally {
                passed: 7,
                failed: 1
            }
        );
    }
}
