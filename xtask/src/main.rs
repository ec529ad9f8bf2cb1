//! `cargo xtask`: the builds, servers and test runs that cargo alone cannot do (the rust-analyzer pattern;
//! `.cargo/config.toml` makes `cargo xtask` run this binary).
//!
//! # Layout
//! - `main.rs` parses the command line once into a [`Command`] and dispatches on it.
//! - [`serve`]: build the frontend for wasm32 and the relay, then run the relay in the foreground.
//! - [`test`]: every test there is, in order, stopping at the first failure; ends with the tally line.
//! - [`fuzz`]: the cargo-fuzz targets of the protocol decoder, for a bounded time.
//! - [`bench`]: the relay against plain TCP and websocat on loopback, and the page in headless Chromium
//!   against Pyodide and native CPython; writes `BENCHMARKS.md`.
//! - [`tools`]: running commands and making sure the tools they need are installed.
//! - [`course`]: the lesson files, `www/lessons/*.toml`, checked and compiled → `www/course.json`.
//! - [`wasm`]: the whole page's build (`cargo xtask build`): the course, the bundle and the Python
//!   modules, then the wasm modules and their wasm-bindgen glue in `www/pkg/`, then their compressed copies.
//! - [`compress`]: `x.br` and `x.gz` beside what the page ships.
//! - [`web`]: the page's npm bundle (the code editor), `frontend/web/` → `www/editor.js`.
//! - [`pylib`]: the Python modules the page ships from PyPI (telnetlib, nntplib) → `www/pylib/`.
//!
//! Adding a subcommand: a variant of [`Command`], a line in [`USAGE`], an arm in [`Command::parse`] and
//! one in [`main`].

mod bench;
mod compress;
mod course;
mod fuzz;
mod pylib;
mod serve;
mod test;
mod tools;
mod wasm;
mod web;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  serve [--port N]     build the frontend (wasm32) and the relay, then serve the playground
                       on http://127.0.0.1:N/ (default 8080)
  build                build the page only: the lessons (www/course.json), the wasm (www/pkg/),
                       the editor bundle (www/editor.js) and the Python modules (www/pylib/)
  test                 run every test there is: fmt, clippy, native tests, the wasm32 build,
                       a bounded fuzz run and the browser tests; last line `tests: N passed, M failed`
  fuzz [--seconds N]   run each fuzz target of the protocol decoder for N seconds (default 30);
                       needs a nightly toolchain, installs cargo-fuzz if missing
  fuzz --runs N        run each target for N inputs, then merge what adds coverage into the
                       kept seeds (relay/protocol/fuzz/seeds/), to commit
  bench [--browser-only]
                       measure the relay against plain TCP and websocat, then the page in
                       headless Chromium against Pyodide (start, bytes shipped) and native
                       CPython (a Python program's sockets); loopback, a few minutes. Prints
                       the tables and writes BENCHMARKS.md. --browser-only: the browser part
                       alone (the page keeps its relay part)
  help                 print this message
";

/// A parsed command line.
#[derive(Debug)]
enum Command {
    Serve { port: u16 },
    Build,
    Test,
    Fuzz { budget: fuzz::Budget },
    Bench { browser_only: bool },
    Help,
}

impl Command {
    /// Parses the arguments after `cargo xtask`.
    fn parse(args: &[String]) -> Result<Command> {
        let Some((name, rest)) = args.split_first() else {
            return Ok(Command::Help);
        };
        let mut opts = Options::new(rest);
        let command = match name.as_str() {
            "serve" => Command::Serve {
                port: opts.value("--port")?.unwrap_or(8080),
            },
            "build" => Command::Build,
            "test" => Command::Test,
            "fuzz" => Command::Fuzz {
                budget: match opts.value("--runs")? {
                    Some(runs) => fuzz::Budget::Runs(runs),
                    None => fuzz::Budget::PerTarget(
                        opts.value("--seconds")?.unwrap_or(fuzz::DEFAULT_SECONDS),
                    ),
                },
            },
            "bench" => Command::Bench {
                browser_only: opts.flag("--browser-only"),
            },
            "help" | "--help" | "-h" => Command::Help,
            other => bail!("unknown command `{other}`\n\n{USAGE}"),
        };
        opts.finish()?;
        Ok(command)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(e) => return report(Err(e)),
    };
    match command {
        Command::Serve { port } => report(serve::run(port)),
        Command::Build => report(wasm::build()),
        // `test` reports on its own: its tally line must be the last line, after any error.
        Command::Test => test::run(),
        Command::Fuzz { budget } => report(fuzz::run(budget)),
        Command::Bench { browser_only } => report(bench::run(browser_only)),
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
    }
}

/// Prints an error, if any, and turns the result into the exit code.
fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The options after a subcommand: `--name value` or `--name=value`. Every argument must be consumed.
struct Options<'a> {
    args: Vec<Option<&'a str>>,
}

impl<'a> Options<'a> {
    fn new(args: &'a [String]) -> Self {
        if args.iter().any(|a| a == "--help" || a == "-h") {
            // `cargo xtask serve --help` prints the usage, like `help` does.
            print!("{USAGE}");
            std::process::exit(0);
        }
        Options {
            args: args.iter().map(|a| Some(a.as_str())).collect(),
        }
    }

    /// Takes the value of option `name`, parsed, if it was given.
    fn value<T>(&mut self, name: &str) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let mut raw = None;
        for i in 0..self.args.len() {
            let Some(arg) = self.args[i] else { continue };
            if arg == name {
                self.args[i] = None;
                let value = self.args.get_mut(i + 1).and_then(Option::take);
                raw = Some(value.with_context(|| format!("{name} needs a value"))?);
                break;
            }
            if let Some(value) = arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
                self.args[i] = None;
                raw = Some(value);
                break;
            }
        }
        raw.map(|v| v.parse().with_context(|| format!("{name} {v}")))
            .transpose()
    }

    /// Takes the flag `name` (an option without a value): whether it was given.
    fn flag(&mut self, name: &str) -> bool {
        let found = self.args.iter().position(|a| *a == Some(name));
        if let Some(i) = found {
            self.args[i] = None;
        }
        found.is_some()
    }

    /// Fails on any argument no option took.
    fn finish(self) -> Result<()> {
        let left: Vec<&str> = self.args.into_iter().flatten().collect();
        if !left.is_empty() {
            bail!("unexpected argument `{}`\n\n{USAGE}", left.join(" "));
        }
        Ok(())
    }
}
