//! `cargo xtask fuzz`: runs every cargo-fuzz target in `relay/protocol/fuzz` for a bounded time and fails if
//! one finds a crash.
//!
//! cargo-fuzz needs a nightly toolchain (sanitizers). The product builds on stable, so a machine without
//! nightly skips this step with a message instead of failing; cargo-fuzz itself is installed when missing.
//!
//! Inputs go up to the protocol's `MAX_FRAME` (libFuzzer's default `-max_len` of 4 KiB never reaches a
//! full `Data` frame). Each run starts from the corpus kept in the repository, `fuzz/seeds/<target>/`, and
//! writes what it finds to `fuzz/corpus/<target>/` (not kept); `cargo xtask fuzz --runs N`, the long run,
//! then merges into the seeds whatever adds coverage, to be committed.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use soket_protocol::MAX_FRAME;

use crate::tools::{self, cargo, nightly_cargo};

/// Seconds each target runs for when `--seconds` is not given.
pub const DEFAULT_SECONDS: u64 = 30;

/// How long to fuzz.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Each target runs this many seconds.
    PerTarget(u64),
    /// The targets share this many seconds, each getting at least [`MIN_SECONDS`].
    Total(u64),
    /// Each target runs this many inputs, and what adds coverage joins the kept seeds.
    Runs(u64),
}

/// The least a target runs under [`Budget::Total`]: less finds little beyond the build.
const MIN_SECONDS: u64 = 10;

/// libFuzzer's memory cap per process, in MiB.
const RSS_LIMIT_MB: u64 = 2048;

/// The crate whose fuzz targets run (its `fuzz/` directory holds them).
fn crate_dir() -> PathBuf {
    tools::root().join("relay/protocol")
}

/// `cargo +nightly fuzz <args> --fuzz-dir fuzz`, run from the protocol crate.
fn cargo_fuzz(subcommand: &str) -> Command {
    let mut cmd = nightly_cargo();
    cmd.args(["fuzz", subcommand, "--fuzz-dir", "fuzz"])
        .current_dir(crate_dir());
    cmd
}

pub fn run(budget: Budget) -> Result<()> {
    if !tools::succeeds(nightly_cargo().arg("--version")) {
        println!("skipping fuzz: no nightly toolchain (rustup toolchain install nightly)");
        return Ok(());
    }
    if !tools::succeeds(nightly_cargo().args(["fuzz", "--version"])) {
        let mut install = cargo();
        install.args(["install", "cargo-fuzz", "--locked"]);
        println!("==> {}", tools::describe(&install));
        tools::run(&mut install)?;
    }

    let list = cargo_fuzz("list")
        .output()
        .context("could not run `cargo +nightly fuzz list`")?;
    if !list.status.success() {
        bail!(
            "`cargo +nightly fuzz list` failed: {}",
            String::from_utf8_lossy(&list.stderr).trim()
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("no fuzz targets in {}", crate_dir().join("fuzz").display());
    }
    let limit = match budget {
        Budget::PerTarget(s) => format!("-max_total_time={s}"),
        Budget::Total(s) => format!(
            "-max_total_time={}",
            (s / targets.len() as u64).max(MIN_SECONDS)
        ),
        Budget::Runs(n) => format!("-runs={n}"),
    };

    for target in &targets {
        let seeds = PathBuf::from("fuzz/seeds").join(target);
        let corpus = PathBuf::from("fuzz/corpus").join(target);
        for dir in [&seeds, &corpus] {
            std::fs::create_dir_all(crate_dir().join(dir))
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
        let mut cmd = cargo_fuzz("run");
        // The first directory is where libFuzzer writes; the seeds are only read.
        cmd.arg(target).arg(&corpus).arg(&seeds).arg("--").args([
            limit.clone(),
            format!("-max_len={MAX_FRAME}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ]);
        println!("==> {}", tools::describe(&cmd));
        if tools::run(&mut cmd).is_err() {
            bail!(
                "fuzz target `{target}` failed: the input is in {} (reproduce in relay/protocol with \
                 `cargo +nightly fuzz run --fuzz-dir fuzz {target} <that file>`)",
                crate_dir()
                    .join("fuzz/artifacts")
                    .join(target)
                    .display()
            );
        }
        if let Budget::Runs(_) = budget {
            let mut merge = cargo_fuzz("run");
            merge.arg(target).arg(&seeds).arg(&corpus).arg("--").args([
                "-merge=1".to_string(),
                format!("-max_len={MAX_FRAME}"),
                format!("-rss_limit_mb={RSS_LIMIT_MB}"),
            ]);
            println!("==> {}", tools::describe(&merge));
            tools::run(&mut merge)?;
            println!(
                "{} now holds what this run found: commit it",
                seeds.display()
            );
        }
    }
    Ok(())
}
