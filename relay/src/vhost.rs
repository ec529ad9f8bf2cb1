//! A session's virtual host: its name, which destinations are "this host", and its own port space.
//!
//! Each session is one host. `localhost`, its host name, `127.0.0.1`, `::1` and `0.0.0.0` all name it, and
//! its ports are its own: two sessions can both bind 12345. A port the session binds is backed by a real
//! socket on a port from the relay's range (so `curl` can reach a learner's server), and the session's own
//! connections to its own servers dial that real port. The relay host's own loopback services are never
//! reachable this way: a port the session did not bind is closed.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use soket_protocol::Transport;
use tokio::net::{TcpSocket, UdpSocket};

use crate::{addr, lab};

/// Where a host string points, as seen from inside a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The session's own host; `addr` is the address as written (`0.0.0.0`, `::1`, `127.0.0.1`).
    OwnHost { addr: IpAddr },
    /// An address elsewhere: checked against the policy.
    Addr(IpAddr),
    /// A name elsewhere (lowercase, no trailing dot): resolved only if the policy names it.
    Name(String),
    /// The lab machine (by one of its names or its address): served by the relay, never by the policy.
    Lab,
}

/// The first virtual port handed out for `bind(port 0)` and unbound sends, as Linux's ephemeral range.
const EPHEMERAL_FIRST: u16 = 32768;

/// A bound virtual port and the real address behind it.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub real: SocketAddr,
}

pub struct VirtualHost {
    pub hostname: String,
    ports: HashMap<(Transport, u16), Binding>,
    /// Real address → virtual port of the session's UDP sockets, read by their receive tasks to show a
    /// datagram from the session's own socket with the port the session knows. A std mutex: held only to
    /// look up or change one entry.
    udp_names: Arc<Mutex<HashMap<SocketAddr, u16>>>,
    next_ephemeral: u16,
}

impl VirtualHost {
    pub fn new(hostname: String) -> VirtualHost {
        VirtualHost {
            hostname,
            ports: HashMap::new(),
            udp_names: Arc::default(),
            next_ephemeral: EPHEMERAL_FIRST,
        }
    }

    /// What `host` names from inside this session.
    pub fn destination(&self, host: &str) -> Destination {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if host.is_empty()
            || host == "localhost"
            || host.ends_with(".localhost")
            || host == self.hostname
        {
            return Destination::OwnHost {
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
        }
        if lab::is_lab_name(&host) {
            return Destination::Lab;
        }
        match addr::parse_ip_literal(&host).map(addr::canonical) {
            Some(ip) if is_own_address(ip) => Destination::OwnHost { addr: ip },
            Some(ip) if ip == IpAddr::V4(lab::LAB_ADDR) => Destination::Lab,
            Some(ip) => Destination::Addr(ip),
            None => Destination::Name(host),
        }
    }

    /// The address a socket bound to `host` reports in `getsockname()`, or `None` if `host` is not this
    /// host (EADDRNOTAVAIL).
    pub fn bind_address(&self, host: &str) -> Option<IpAddr> {
        if host.is_empty() {
            return Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        }
        match self.destination(host) {
            Destination::OwnHost { addr } => Some(addr),
            _ => None,
        }
    }

    pub fn binding(&self, transport: Transport, port: u16) -> Option<Binding> {
        self.ports.get(&(transport, port)).copied()
    }

    /// Number of ports this session holds.
    pub fn ports_held(&self) -> usize {
        self.ports.len()
    }

    /// A free virtual port for `bind(port 0)`.
    pub fn ephemeral_port(&mut self, transport: Transport) -> Option<u16> {
        for _ in EPHEMERAL_FIRST..=u16::MAX {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.ports.contains_key(&(transport, port)) {
                return Some(port);
            }
        }
        None
    }

    pub fn claim(&mut self, transport: Transport, port: u16, binding: Binding) {
        self.ports.insert((transport, port), binding);
        if transport == Transport::Udp {
            self.udp_names().insert(binding.real, port);
        }
    }

    pub fn release(&mut self, transport: Transport, port: u16) {
        if let Some(binding) = self.ports.remove(&(transport, port)) {
            if transport == Transport::Udp {
                self.udp_names().remove(&binding.real);
            }
        }
    }

    /// The shared map from a UDP socket's real address to its virtual port.
    pub fn udp_name_table(&self) -> Arc<Mutex<HashMap<SocketAddr, u16>>> {
        self.udp_names.clone()
    }

    fn udp_names(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, u16>> {
        self.udp_names.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a search of a range of `span` ports starts, and its stride: prime to `span`, so that `span` steps
/// visit every port once.
fn random_order(span: u32, random: u64) -> (u32, u32) {
    let start = (random % u64::from(span)) as u32;
    if span < 2 {
        return (start, 1);
    }
    let mut stride = 1 + ((random >> 32) % u64::from(span - 1)) as u32;
    while gcd(stride, span) != 1 {
        stride = stride % (span - 1) + 1;
    }
    (start, stride)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The addresses that mean "this host" inside a session. Other loopback addresses (127.0.0.2, ...) are the
/// relay host's and go through the policy like any other.
fn is_own_address(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4 == Ipv4Addr::LOCALHOST || v4.is_unspecified())
        || matches!(ip, IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST || v6.is_unspecified())
}

/// Hands out real ports from the configured range, shared by every session of the relay.
///
/// Each search tries every port of the range once, in a random order of its own (a random start and a
/// random stride prime to the range's size), so the port a learner gets says nothing about the next
/// learner's: a stranger who knows one public address cannot walk to its neighbours. The ports handed out
/// last are tried only after all the others, oldest first, so a port just released is not handed out
/// again at once (a client of its old owner, still connecting, would reach the new one).
pub struct RealPorts {
    ip: IpAddr,
    first: u16,
    last: u16,
    /// The ports handed out last, oldest first, at most `RECENT_PORTS` (and half the range). A std
    /// mutex: held to copy or change a few dozen numbers.
    recent: Mutex<VecDeque<u16>>,
    /// Searches so far, hashed into each search's order so that two at the same instant differ.
    searches: AtomicU64,
}

/// How many of the ports handed out last a search tries only after all the others.
const RECENT_PORTS: usize = 64;

impl RealPorts {
    pub fn new(ip: IpAddr, (first, last): (u16, u16)) -> RealPorts {
        RealPorts {
            ip,
            first,
            last,
            recent: Mutex::default(),
            searches: AtomicU64::new(0),
        }
    }

    fn span(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every port of the range once: the others in a random order, then the recent ones, oldest first.
    fn candidates(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let span = self.span();
        let (start, stride) = random_order(span, self.random());
        let recent: Vec<u16> = self.recent().iter().copied().collect();
        let first = self.first;
        let others = (0..span)
            .map(move |i| {
                first
                    + ((u64::from(start) + u64::from(i) * u64::from(stride)) % u64::from(span))
                        as u16
            })
            .filter({
                let recent = recent.clone();
                move |port| !recent.contains(port)
            });
        others
            .chain(recent)
            .map(move |port| SocketAddr::new(self.ip, port))
    }

    /// Notes a port handed out, so that the next searches try it last.
    fn handed_out(&self, port: u16) {
        let keep = RECENT_PORTS.min(self.span() as usize / 2);
        let mut recent = self.recent();
        recent.retain(|p| *p != port);
        recent.push_back(port);
        while recent.len() > keep {
            recent.pop_front();
        }
    }

    /// A number nobody outside can guess: std's `RandomState` keys SipHash with random keys (drawn once
    /// per thread, then stepped), over a counter and the time.
    fn random(&self) -> u64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(self.searches.fetch_add(1, Relaxed));
        Instant::now().hash(&mut hasher);
        hasher.finish()
    }

    /// A TCP socket bound to a free port of the range.
    pub fn bind_tcp(&self) -> io::Result<TcpSocket> {
        for addr in self.candidates() {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            // A learner who restarts a server expects the port back at once, as with SO_REUSEADDR.
            socket.set_reuseaddr(true)?;
            match socket.bind(addr) {
                Ok(()) => {
                    self.handed_out(addr.port());
                    return Ok(socket);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free port in the relay's range",
        ))
    }

    /// A UDP socket bound to a free port of the range.
    pub fn bind_udp(&self) -> io::Result<UdpSocket> {
        for addr in self.candidates() {
            match std::net::UdpSocket::bind(addr) {
                Ok(socket) => {
                    self.handed_out(addr.port());
                    socket.set_nonblocking(true)?;
                    return UdpSocket::from_std(socket);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free port in the relay's range",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_host_names_and_addresses() {
        let host = VirtualHost::new("learner-1".into());
        for name in [
            "",
            "localhost",
            "LOCALHOST.",
            "learner-1",
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "2130706433",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                matches!(host.destination(name), Destination::OwnHost { .. }),
                "{name}"
            );
        }
        assert_eq!(
            host.destination("127.0.0.2"),
            Destination::Addr("127.0.0.2".parse().unwrap())
        );
        assert_eq!(
            host.destination("Example.COM."),
            Destination::Name("example.com".into())
        );
    }

    fn ports(first: u16, last: u16) -> RealPorts {
        RealPorts::new(IpAddr::V4(Ipv4Addr::LOCALHOST), (first, last))
    }

    fn search(ports: &RealPorts) -> Vec<u16> {
        ports.candidates().map(|addr| addr.port()).collect()
    }

    #[test]
    fn a_search_tries_every_port_of_the_range_once() {
        for (first, last) in [
            (40000, 40999),
            (5000, 5000),
            (5000, 5001),
            (1, 12),
            (65000, 65535),
        ] {
            let ports = ports(first, last);
            for _ in 0..20 {
                let mut tried = search(&ports);
                tried.sort_unstable();
                assert_eq!(tried, (first..=last).collect::<Vec<_>>(), "{first}-{last}");
            }
        }
    }

    #[test]
    fn searches_start_at_random_places_and_walk_at_random_strides() {
        let ports = ports(40000, 40999);
        let starts: Vec<u16> = (0..20).map(|_| search(&ports)[0]).collect();
        let neighbours = starts
            .windows(2)
            .filter(|w| w[1].abs_diff(w[0]) == 1)
            .count();
        assert!(neighbours <= 3, "{starts:?}");
        let strides: std::collections::HashSet<u16> = (0..20)
            .map(|_| {
                let s = search(&ports);
                (s[1] + 1000 - s[0]) % 1000
            })
            .collect();
        assert!(
            strides.len() > 1,
            "one stride for every search: {strides:?}"
        );
    }

    #[test]
    fn the_ports_handed_out_last_are_tried_last_the_newest_at_the_very_end() {
        let ports = ports(40000, 40009);
        for port in [40003, 40007, 40001] {
            ports.handed_out(port);
        }
        for _ in 0..20 {
            let tried = search(&ports);
            assert_eq!(tried.len(), 10);
            assert_eq!(&tried[7..], &[40003, 40007, 40001]);
        }
        // At most half a small range is kept back, so a search still has a choice.
        for port in 40000..=40009 {
            ports.handed_out(port);
        }
        assert_eq!(&search(&ports)[5..], &[40005, 40006, 40007, 40008, 40009]);
    }

    #[test]
    fn ephemeral_ports_skip_taken_ones() {
        let mut host = VirtualHost::new("h".into());
        let binding = Binding {
            real: "127.0.0.1:40000".parse().unwrap(),
        };
        host.claim(Transport::Tcp, EPHEMERAL_FIRST, binding);
        assert_eq!(
            host.ephemeral_port(Transport::Tcp),
            Some(EPHEMERAL_FIRST + 1)
        );
        assert_eq!(
            host.ephemeral_port(Transport::Udp),
            Some(EPHEMERAL_FIRST + 2)
        );
    }
}
