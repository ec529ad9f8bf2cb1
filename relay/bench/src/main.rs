//! `soket-bench`: measures Soket on this machine, in one run, and writes the result as `BENCHMARKS.md`.
//! `cargo xtask bench` builds it, the relay and the page, installs what it compares against (websocat,
//! Pyodide, Chromium), and runs it.
//!
//! The relay part measures the relay against plain TCP and websocat, each for every path so that the ratios
//! compare figures taken minutes apart on the same machine: bulk throughput (upload and download), echo
//! round trips (p50, p99), and the relay's memory per idle session. The browser part measures Soket's page
//! in headless Chromium: its cold and warm start and the bytes it ships against Pyodide's, and a Python
//! program's round trips and throughput against the same program under native CPython. `--only` runs one
//! part and keeps the other's section of the page as it was. Targets are reported met or not met; the
//! bench fails only when something breaks.
//!
//! # Layout
//! - [`servers`]: the sink, source, echo and drain servers (threads, blocking sockets).
//! - [`children`]: the relay and websocat processes, killed when dropped.
//! - [`measure`]: one transfer, one series of round trips, one batch of sessions.
//! - [`held`]: the relay held under load: many sessions echoing for a while, alone and beside a slowloris.
//! - [`report`]: the page, its parts, and the relay part's tables and verdicts.
//! - [`browser`]: the browser part's loads and program runs; [`proxy`] counts the bytes a load ships.
//! - [`browser_report`]: the browser part's tables and verdicts.

mod browser;
mod browser_report;
mod children;
mod held;
mod measure;
mod proxy;
mod report;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use browser_report::{BrowserReport, BrowserSetting};
use measure::{bounded, Ends, Path};
use report::{Bulk, Machine, Memory, Part, Report, RoundTrip, Setting};

const USAGE: &str = "\
usage: soket-bench [options]   (normally run by `cargo xtask bench`)

  --relay PATH       the soket-relay binary (default: target/release/soket-relay)
  --websocat PATH    websocat (default: on PATH, else ~/.cargo/bin/websocat)
  --www DIR          the relay's --www (default: www)
  --out FILE         where to write the page (default: BENCHMARKS.md; `-` for none)
  --command TEXT     the command named on the page (default: cargo xtask bench)
  --mib N            MiB per bulk transfer (default: 256)
  --rounds N         measured rounds of bulk transfers (default: 3)
  --round-trips N    measured echo round trips per path (default: 5000)
  --sessions N       idle sessions for the memory figure (default: 5000)
  --held-sessions N  sessions echoing in the held-under-load runs (default: 1000)
  --held-seconds N   how long each held-under-load run echoes (default: 60)
  --relay-args TEXT  more flags for the relay that carries the bulk and echo traffic, split at
                     spaces (e.g. `--session-buffer 33554432`), to try a setting
  --only PART        `relay` or `browser`: measure that part only and keep the other part of the
                     page (--out) as it was
  --pyodide DIR      relay/bench/browser, with Pyodide installed and compressed in node_modules/
                     (default: relay/bench/browser; `cargo xtask bench` prepares it)
  --python PATH      the native CPython the page's program is compared with (default: python3)
  --loads N          cold loads (each followed by a warm one) of each page (default: 5)
";

/// What the command line asked for.
struct Args {
    relay: PathBuf,
    websocat: Option<PathBuf>,
    www: PathBuf,
    out: Option<PathBuf>,
    command: String,
    mib: u64,
    rounds: usize,
    round_trips: usize,
    sessions: usize,
    held_sessions: usize,
    held_seconds: u64,
    relay_args: Vec<String>,
    only: Option<Part>,
    pyodide: PathBuf,
    python: PathBuf,
    loads: usize,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            relay: PathBuf::from("target/release/soket-relay"),
            websocat: None,
            www: PathBuf::from("www"),
            out: Some(PathBuf::from("BENCHMARKS.md")),
            command: "cargo xtask bench".into(),
            mib: 256,
            rounds: 3,
            round_trips: 5000,
            sessions: 5000,
            held_sessions: 1000,
            held_seconds: 60,
            relay_args: Vec::new(),
            only: None,
            pyodide: PathBuf::from("relay/bench/browser"),
            python: PathBuf::from("python3"),
            loads: 5,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                print!("{USAGE}");
                std::process::exit(0);
            }
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let number = || -> Result<u64> {
                value
                    .parse()
                    .with_context(|| format!("{flag} {value}: not a number"))
            };
            match flag.as_str() {
                "--relay" => args.relay = value.into(),
                "--websocat" => args.websocat = Some(value.into()),
                "--www" => args.www = value.into(),
                "--out" => args.out = (value != "-").then(|| value.into()),
                "--command" => args.command = value,
                "--mib" => args.mib = number()?.max(1),
                "--rounds" => args.rounds = number()?.max(1) as usize,
                "--round-trips" => args.round_trips = number()?.max(1) as usize,
                "--sessions" => args.sessions = number()?.max(1) as usize,
                "--held-sessions" => args.held_sessions = number()?.max(1) as usize,
                "--held-seconds" => args.held_seconds = number()?.max(1),
                "--relay-args" => {
                    args.relay_args = value.split_whitespace().map(String::from).collect()
                }
                "--only" => {
                    args.only = Some(match value.as_str() {
                        "relay" => Part::Relay,
                        "browser" => Part::Browser,
                        _ => bail!("--only {value}: `relay` or `browser`\n\n{USAGE}"),
                    })
                }
                "--pyodide" => args.pyodide = value.into(),
                "--python" => args.python = value.into(),
                "--loads" => args.loads = number()?.max(1) as usize,
                _ => bail!("unknown option {flag}\n\n{USAGE}"),
            }
        }
        Ok(args)
    }
}

/// Size of the echoed message.
const RTT_SIZE: usize = 32;
/// Unmeasured round trips before each series.
const RTT_WARMUP: usize = 500;
/// Handshakes under way at once while opening idle sessions.
const PARALLEL_HANDSHAKES: usize = 32;

fn main() -> ExitCode {
    let result = Args::parse().and_then(|args| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(run(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soket-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    // A part not measured now keeps its text from the page as it was.
    let before = args
        .out
        .as_ref()
        .and_then(|out| std::fs::read_to_string(out).ok())
        .unwrap_or_default();
    let kept = |part| report::part_of(&before, part).unwrap_or_else(|| report::unmeasured(part));
    let relay = match args.only {
        Some(Part::Browser) => kept(Part::Relay),
        _ => relay_part(&args).await?.markdown(),
    };
    let browser = match args.only {
        Some(Part::Relay) => kept(Part::Browser),
        _ => browser_part(&args).await?.markdown(),
    };
    let page = report::page(&relay, &browser);
    print!("{page}");
    if let Some(out) = &args.out {
        std::fs::write(out, &page).with_context(|| format!("write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// The browser part: Soket's page against Pyodide and native CPython.
async fn browser_part(args: &Args) -> Result<BrowserReport> {
    let options = browser::Options {
        relay: args.relay.clone(),
        www: args.www.clone(),
        pyodide: args.pyodide.clone(),
        python: args.python.clone(),
        loads: args.loads,
    };
    let figures = browser::run(&options).await?;
    let package = args.pyodide.join("node_modules/pyodide/package.json");
    let pyodide = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into());
    let setting = BrowserSetting {
        machine: machine(),
        command: args.command.clone(),
        // "Chromium 156.0.8078.79 built on Debian GNU/Linux 12 (bookworm)": the name and version.
        chromium: output(soket_e2e::CHROMIUM.as_ref(), "--version")
            .map(|v| v.split(" built on").next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "Chromium".into()),
        pyodide,
        python: output(&args.python, "--version").unwrap_or_else(|| "python3".into()),
        loads: args.loads,
    };
    Ok(BrowserReport { setting, figures })
}

/// The relay part: the relay against plain TCP and websocat, then its memory per idle session.
async fn relay_part(args: &Args) -> Result<Report> {
    let websocat = match &args.websocat {
        Some(path) => path.clone(),
        None => children::find_websocat()
            .context("websocat is not installed (`cargo install websocat --locked`)")?,
    };
    // Every idle session costs the relay one descriptor and the bench one; children inherit the limit.
    // The held runs: a session is three here (WebSocket, and both ends of the echo), the slowloris one.
    raise_fd_limit(
        (args.sessions as u64).max(3 * args.held_sessions as u64 + held::SLOWLORIS as u64) + 1024,
    )?;

    let total = args.mib * 1024 * 1024;
    let mut sink = servers::sink("127.0.0.2", total)?;
    let source = servers::source("127.0.0.2", total)?;
    let echo = servers::echo("127.0.0.2")?;

    let flags: Vec<String> = [sink.addr, source, echo]
        .iter()
        .flat_map(|a| ["--allow".to_string(), a.to_string()])
        .chain(["--session-rate".into(), "0".into()])
        .chain(args.relay_args.iter().cloned())
        .collect();
    let mut relay = children::relay(&args.relay, &args.www, &flags)?;
    let relay_url = relay.url();
    let mut ws_sink = children::websocat(&websocat, sink.addr)?;
    let mut ws_source = children::websocat(&websocat, source)?;
    let mut ws_echo = children::websocat(&websocat, echo)?;
    eprintln!(
        "relay on {}, websocat on ports {}, {}, {}",
        relay.addr, ws_sink.port, ws_source.port, ws_echo.port
    );

    let paths = [Path::Plain, Path::Relay, Path::Websocat];
    let mut bulk: [Bulk; 3] = Default::default();
    for round in 0..=args.rounds {
        let label = if round == 0 {
            "warm-up".to_string()
        } else {
            format!("round {round}/{}", args.rounds)
        };
        for (i, &path) in paths.iter().enumerate() {
            let up_ends = Ends {
                relay_url: &relay_url,
                target: sink.addr,
                websocat_url: &ws_sink.url(),
            };
            let what = format!("{path:?} upload, {label}");
            let time = bounded(&what, measure::upload(path, &up_ends, &mut sink, total)).await?;
            let up = measure::mib_per_s(total, time);
            let down_ends = Ends {
                relay_url: &relay_url,
                target: source,
                websocat_url: &ws_source.url(),
            };
            let what = format!("{path:?} download, {label}");
            let time = bounded(&what, measure::download(path, &down_ends, total)).await?;
            let down = measure::mib_per_s(total, time);
            eprintln!("{label}: {path:?}: upload {up:.0} MiB/s, download {down:.0} MiB/s");
            if round > 0 {
                bulk[i].up.push(up);
                bulk[i].down.push(down);
            }
        }
    }

    let mut rtt = Vec::new();
    for &path in &paths {
        let ends = Ends {
            relay_url: &relay_url,
            target: echo,
            websocat_url: &ws_echo.url(),
        };
        let what = format!("{path:?} round trips");
        let times = bounded(
            &what,
            measure::round_trips(path, &ends, RTT_SIZE, RTT_WARMUP, args.round_trips),
        )
        .await?;
        let r = RoundTrip {
            count: times.len(),
            p50: measure::quantile(&times, 0.50),
            p99: measure::quantile(&times, 0.99),
        };
        eprintln!(
            "{path:?}: {} round trips, p50 {:.1} µs, p99 {:.1} µs",
            r.count,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6
        );
        rtt.push(r);
    }
    // A program that died mid-run would have made some figure meaningless.
    for child in [&mut ws_sink.child, &mut ws_source.child, &mut ws_echo.child] {
        child.check_alive()?;
    }
    relay.child.check_alive()?;
    drop((ws_sink, ws_source, ws_echo, relay));

    let memory = bounded("idle sessions", idle_memory(args)).await?;
    eprintln!(
        "memory: {} KiB before, {} KiB with {} sessions: {:.1} KiB per session",
        memory.before_kib,
        memory.after_kib,
        memory.sessions,
        memory.per_session_kib()
    );

    let mut held = Vec::new();
    for slowloris in [0, held::SLOWLORIS] {
        let what = format!("held under load (slowloris {slowloris})");
        let row = tokio::time::timeout(
            Duration::from_secs(args.held_seconds) + measure::LIMIT,
            held::run(
                &args.relay,
                &args.www,
                args.held_sessions,
                args.held_seconds,
                slowloris,
            ),
        )
        .await
        .with_context(|| format!("{what}: no result in time"))?
        .context(what)?;
        eprintln!(
            "held: {} sessions, slowloris {}: {} echoes, p99 {:?}, fds peak {}, RSS peak {} KiB, {} errors",
            row.sessions, slowloris, row.echoes, row.p99, row.fds_peak, row.rss_peak_kib, row.errors
        );
        held.push(row);
    }

    Ok(Report {
        setting: setting(args, &websocat),
        bulk,
        rtt: rtt.try_into().ok().expect("one series per path"),
        memory,
        held,
    })
}

/// The relay's resident memory before and after `args.sessions` idle sessions, in a relay of its own.
async fn idle_memory(args: &Args) -> Result<Memory> {
    let max_sessions = args.sessions + 1000;
    let max = max_sessions.to_string();
    let connections = (max_sessions + 1000).to_string();
    // Every session comes from this one address: the per-client caps are lifted to the relay's, and each
    // session may listen on one port only, so that one client still cannot hold the whole range.
    let flags = [
        "--max-sessions",
        &max,
        "--max-sessions-per-ip",
        &max,
        "--max-connections",
        &connections,
        "--max-connections-per-ip",
        &connections,
        "--max-listeners",
        "1",
        "--idle-timeout",
        "600",
    ]
    .map(String::from);
    let mut relay = children::relay(&args.relay, &args.www, &flags)?;
    let url = relay.url();
    // One session first, so that what every session shares (runtime, buffers pools) is in "before".
    drop(measure::idle_sessions(&url, 1, 1).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kib = relay.child.rss_kib()?;
    let sessions = measure::idle_sessions(&url, args.sessions, PARALLEL_HANDSHAKES).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.child.check_alive()?;
    let after_kib = relay.child.rss_kib()?;
    drop(sessions);
    Ok(Memory {
        max_sessions,
        parallel: PARALLEL_HANDSHAKES,
        sessions: args.sessions,
        before_kib,
        after_kib,
    })
}

/// Raises this process's soft limit on open files to at least `want` (within the hard limit).
fn raise_fd_limit(want: u64) -> Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if limit.rlim_cur >= want as libc::rlim_t {
            return Ok(());
        }
        if limit.rlim_max < want as libc::rlim_t {
            bail!(
                "the hard limit on open files is {}; the bench needs {want} (raise `ulimit -Hn` or pass \
                 fewer --sessions)",
                limit.rlim_max
            );
        }
        limit.rlim_cur = want as libc::rlim_t;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The relay part's settings, named above its tables.
fn setting(args: &Args, websocat: &std::path::Path) -> Setting {
    let websocat = output(websocat, "--version").unwrap_or_else(|| "websocat".into());
    Setting {
        machine: machine(),
        websocat,
        command: args.command.clone(),
        relay_flags: ["--session-rate", "0"]
            .iter()
            .map(|s| s.to_string())
            .chain(args.relay_args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        bulk_mib: args.mib,
        rounds: args.rounds,
        rtt_size: RTT_SIZE,
        rtt_warmup: RTT_WARMUP,
        rtt_count: args.round_trips,
    }
}

/// The first line `program arg` prints on stdout, if it runs and prints one.
fn output(program: &std::path::Path, arg: &str) -> Option<String> {
    std::process::Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .filter(|s| !s.is_empty())
}

/// Today and the machine, named above each part's tables.
fn machine() -> Machine {
    let cores = output("nproc".as_ref(), "--all")
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    Machine {
        date: today(),
        cores,
        cpu,
        kernel,
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock (Howard Hinnant's `civil_from_days`).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Deterministic bytes that are not all alike (xorshift), for payloads.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
