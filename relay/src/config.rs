//! The relay's configuration: `clap` flags with defaults that need no flag for localhost use.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::policy::Rule;

/// Serves the Soket playground and tunnels its sockets.
#[derive(Clone, Debug, Parser)]
#[command(name = "soket-relay", version, about)]
pub struct Config {
    /// Address to serve HTTP and the WebSocket on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: IpAddr,

    /// Port to serve HTTP and the WebSocket on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Directory of the page's static files.
    #[arg(long, default_value = "www")]
    pub www: PathBuf,

    /// Extra Origin allowed to open the WebSocket (the page's own origin always is). Repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// Egress allowed beyond the session's own host: HOST:PORT, where HOST is a name, `*.suffix`, an
    /// address or a CIDR (IPv6 in brackets) and PORT a number, a range `A-B` or `*`. Repeatable.
    #[arg(long = "allow", value_name = "HOST:PORT")]
    pub allow: Vec<Rule>,

    /// Interface on which learners' servers really listen.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,

    /// Real ports handed to learners' servers, `FIRST-LAST`.
    #[arg(long, default_value = "40000-40999", value_parser = parse_port_range)]
    pub port_range: (u16, u16),

    /// Host name shown in a listener's public address (default: the --bind-ip address).
    #[arg(long)]
    pub public_host: Option<String>,

    /// Most sessions at once.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions: usize,

    /// Most sockets one session holds at once (connections, listeners, UDP sockets).
    #[arg(long, default_value_t = 32)]
    pub max_streams: usize,

    /// Most listening or bound ports one session holds at once.
    #[arg(long, default_value_t = 8)]
    pub max_listeners: usize,

    /// Bytes one session may have buffered in the relay, both directions together. Each stream's window is
    /// this divided by --max-streams (at most 256 KiB).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub session_buffer: usize,

    /// Bytes per second one session may move, both directions together (0: no limit).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub session_rate: u64,

    /// A session from which nothing arrives for this long is closed.
    #[arg(long, default_value = "120", value_parser = parse_seconds, value_name = "SECONDS")]
    pub idle_timeout: Duration,

    /// How long a TCP connect may take before it fails with ETIMEDOUT.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub connect_timeout: Duration,

    /// How long a lab server waits for a quiet client before it closes the connection.
    #[arg(long, default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    pub lab_idle_timeout: Duration,

    /// Let processes on the relay host use the lab servers directly, on the real loopback ports the relay
    /// logs at start, all sharing one state (for tests, and for teachers on the relay host).
    #[arg(long)]
    pub lab_local_clients: bool,

    /// How long shutdown waits for sessions to close before it stops anyway.
    #[arg(long, default_value = "5", value_parser = parse_seconds, value_name = "SECONDS")]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The defaults, as `soket-relay` with no flags.
    pub fn local() -> Config {
        Config::parse_from(["soket-relay"])
    }

    /// The public host name of listeners.
    pub fn public_host(&self) -> String {
        self.public_host
            .clone()
            .unwrap_or_else(|| self.bind_ip.to_string())
    }

    /// The credit each stream starts with, in each direction.
    pub fn window(&self) -> u32 {
        let per_stream = self.session_buffer / self.max_streams.max(1);
        per_stream.clamp(4096, soket_protocol::INITIAL_WINDOW as usize) as u32
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. 40000-40999")?;
    let first: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a port"))?;
    let last: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a port"))?;
    if first == 0 || first > last {
        return Err("the range must be FIRST-LAST with 0 < FIRST <= LAST".into());
    }
    Ok((first, last))
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs < 1e9) {
        return Err("expected a positive number of seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}
