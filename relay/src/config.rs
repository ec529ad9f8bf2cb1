//! The relay's configuration: `clap` flags with defaults that need no flag for localhost use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

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

    /// A host name the relay is reached by (its `Host` header), beside IP addresses, `localhost` and
    /// --public-host, which always are. Any other name is refused, so a DNS-rebinding site that points
    /// its own name at the relay gets nothing. Repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,

    /// Refuse WebSockets without an Origin header, i.e. every client that is not a browser page.
    #[arg(long)]
    pub require_origin: bool,

    /// A secret the WebSocket must carry as `/ws?token=...` (the page passes on its own `?token=`). Better
    /// given in the environment, where `ps` does not show it.
    #[arg(
        long,
        env = "SOKET_ACCESS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub access_token: Option<String>,

    /// A proxy in front of the relay whose `X-Forwarded-For` or `Forwarded` header names the client, as
    /// an address or CIDR. Without one, the client is the connection's peer, whatever the headers say.
    /// Repeatable.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,

    /// Serve `/metrics` on this address:port instead, for anyone who reaches it. Without it, the main
    /// listener answers `/metrics` to clients on the relay host (loopback) only.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// How long a client has to send a request's headers, from its connection or first byte on.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub header_timeout: Duration,

    /// An HTTP connection that moves no byte for this long between requests is closed (keep-alive).
    #[arg(long, default_value = "30", value_parser = parse_seconds, value_name = "SECONDS")]
    pub keepalive_timeout: Duration,

    /// Most HTTP connections at once (page loads and sessions' WebSockets together); beyond, new ones are
    /// closed at once.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,

    /// Most HTTP connections from one client address at once (an IPv6 client is its /64).
    #[arg(long, default_value_t = 512)]
    pub max_connections_per_ip: usize,

    /// Most sessions from one client address at once (a classroom behind one NAT is one address).
    #[arg(long, default_value_t = 64)]
    pub max_sessions_per_ip: usize,

    /// Egress allowed beyond the session's own host: HOST:PORT, where HOST is `public` (every address
    /// outside the special ranges and this host's own addresses, and every name resolving to one), a name,
    /// `*.suffix`, an address or a CIDR (IPv6 in brackets), and PORT a number, a range `A-B` or `*`.
    /// Special ranges (loopback, private, link-local incl. 169.254.169.254, NAT64, ...) and this host's own
    /// addresses open only to an address rule inside them (`10.0.0.0/8:*`, `169.254.169.254:80`), never to a
    /// broader one such as `0.0.0.0/0`; names never lead to them. Repeatable; start-up logs what each opens.
    #[arg(long = "allow", value_name = "HOST:PORT")]
    pub allow: Vec<Rule>,

    /// Interface on which learners' servers really listen.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,

    /// Real ports handed to learners' servers, `FIRST-LAST`. The default holds --max-sessions ×
    /// --max-listeners (8,000) with room to spare.
    #[arg(long, default_value = "40000-48999", value_parser = parse_port_range)]
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

    /// The configuration of `soket-relay` with these flags, for unit tests.
    #[cfg(test)]
    pub(crate) fn with_flags(flags: &[&str]) -> Config {
        Config::parse_from(std::iter::once(&"soket-relay").chain(flags))
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

/// An address or a CIDR: a bare address is its own /32 or /128.
fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is neither an address nor a CIDR"))
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
