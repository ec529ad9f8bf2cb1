//! Who the relay's clients are, and how much of the relay each one holds: HTTP connections, sessions.
//!
//! A client is an address, as the relay sees it ([`client_ip`]): the connection's peer, or, when that peer
//! is a proxy the operator trusts, the address the proxy forwarded. An IPv6 client is its whole /64, the
//! least any host is given, so that one machine cannot walk its own prefix to get a fresh allowance.
//!
//! What a client holds is counted by [`Held`] guards, which only [`Clients::take`] makes and which give
//! their one back when dropped, so no path can forget.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// What is counted per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Connection,
    Session,
}

/// The relay's clients and what each holds now. A client that holds nothing has no entry.
#[derive(Default)]
pub struct Clients {
    held: Mutex<HashMap<(IpAddr, Kind), usize>>,
}

/// One unit of `kind` held by one client, until dropped.
pub struct Held {
    clients: Arc<Clients>,
    key: (IpAddr, Kind),
}

impl Clients {
    /// One more `kind` for the client at `ip`, unless it already holds `max`.
    pub fn take(self: &Arc<Self>, ip: IpAddr, kind: Kind, max: usize) -> Option<Held> {
        let key = (group(ip), kind);
        let mut held = self.lock();
        let count = held.entry(key).or_default();
        if *count >= max {
            if *count == 0 {
                held.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(Held {
            clients: self.clone(),
            key,
        })
    }

    /// How much of `kind` the client at `ip` holds now.
    pub fn holds(&self, ip: IpAddr, kind: Kind) -> usize {
        self.lock().get(&(group(ip), kind)).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(IpAddr, Kind), usize>> {
        // Held for a lookup and an addition; a panic elsewhere cannot leave the counts half changed.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.clients.lock();
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The address a client is counted under: an IPv4 address (mapped ones too) as itself, an IPv6 one as
/// its /64.
fn group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Whether `peer` is a proxy the operator trusts to name the client.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = peer.to_canonical();
    trusted.iter().any(|net| net.contains(&peer))
}

/// The client behind a request that came from `peer`: `peer` itself, unless `peer` is a trusted proxy, in
/// which case it is the nearest address in `Forwarded` (or else `X-Forwarded-For`) that is not one of the
/// trusted proxies. Each proxy appends the address it saw, so addresses to the left of the first
/// untrusted one may be anything the client wrote and are never believed.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let forwarded = if headers.contains_key("forwarded") {
        hops(headers, "forwarded", forwarded_for)
    } else {
        hops(headers, "x-forwarded-for", |hop| hop.trim().parse().ok())
    };
    let mut nearest = peer;
    for hop in forwarded.into_iter().rev() {
        let hop = hop.to_canonical();
        nearest = hop;
        if !is_trusted(hop, trusted) {
            break;
        }
    }
    nearest
}

/// Every hop of header `name`, in order, across its lines: each comma-separated element read by `hop`.
/// One element that does not read makes the whole list unusable (empty), as a header that does not parse
/// names nobody.
fn hops(headers: &HeaderMap, name: &str, hop: fn(&str) -> Option<IpAddr>) -> Vec<IpAddr> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(hop)
        .collect::<Option<_>>()
        .unwrap_or_default()
}

/// The address in one element of a `Forwarded` header (RFC 7239): `for=192.0.2.1`, `for="[2001:db8::1]:80"`,
/// among other pairs. An element without one, or with an obfuscated or `unknown` node, makes the whole
/// header unusable (None), and the proxy itself is then the client.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })?;
    let node = value.trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let host = match node.rsplit_once(':') {
        Some((host, _port)) if !host.contains(':') => host,
        _ => node,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5000)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_ip(peer("198.51.100.7"), &spoofed, &[]),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "never by default"
        );
        assert_eq!(
            client_ip(peer("198.51.100.7"), &spoofed, &nets(&["10.0.0.0/8"])),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "not from a peer outside the trusted ones"
        );
        let proxy = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(peer("10.1.2.3"), &spoofed, &proxy),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client_and_what_it_wrote_is_ignored() {
        let proxy = nets(&["10.0.0.0/8"]);
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            client_ip(peer("10.1.2.3"), &chain, &proxy),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let two_headers = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_ip(peer("10.1.2.3"), &two_headers, &proxy),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, not-an-address")]);
        assert_eq!(
            client_ip(peer("10.1.2.3"), &garbage, &proxy),
            "10.1.2.3".parse::<IpAddr>().unwrap(),
            "a header that does not parse names nobody"
        );
        let only_proxies = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(
            client_ip(peer("10.1.2.3"), &only_proxies, &proxy),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_is_read_in_every_form_and_wins_over_x_forwarded_for() {
        let proxy = nets(&["127.0.0.1/32"]);
        for (value, client) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("for=\"192.0.2.60:4711\"", "192.0.2.60"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("For=\"[2001:db8::1]\"", "2001:db8::1"),
            ("for=unknown", "127.0.0.1"),
            ("for=_hidden", "127.0.0.1"),
        ] {
            let map = headers(&[("forwarded", value), ("x-forwarded-for", "203.0.113.1")]);
            assert_eq!(
                client_ip(peer("127.0.0.1"), &map, &proxy),
                client.parse::<IpAddr>().unwrap(),
                "{value}"
            );
        }
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back_on_drop() {
        let clients = Arc::new(Clients::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = clients.take(ip, Kind::Session, 2).expect("one");
        let second = clients.take(ip, Kind::Session, 2).expect("two");
        assert!(clients.take(ip, Kind::Session, 2).is_none());
        assert!(
            clients.take(ip, Kind::Connection, 2).is_some(),
            "kinds are counted apart"
        );
        assert!(clients
            .take("192.0.2.2".parse().unwrap(), Kind::Session, 2)
            .is_some());
        drop(first);
        assert_eq!(clients.holds(ip, Kind::Session), 1);
        let third = clients.take(ip, Kind::Session, 2).expect("room again");
        drop((second, third));
        assert!(clients.lock().is_empty(), "nothing held, no entry");
        assert!(clients.take(ip, Kind::Session, 0).is_none());
        assert!(clients.lock().is_empty());
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_one_its_ipv4() {
        let clients = Arc::new(Clients::default());
        let _a = clients
            .take("2001:db8:1:2::1".parse().unwrap(), Kind::Session, 1)
            .expect("first");
        assert!(clients
            .take("2001:db8:1:2:ffff::9".parse().unwrap(), Kind::Session, 1)
            .is_none());
        assert!(clients
            .take("2001:db8:1:3::1".parse().unwrap(), Kind::Session, 1)
            .is_some());
        let _b = clients
            .take("::ffff:192.0.2.1".parse().unwrap(), Kind::Session, 1)
            .expect("mapped");
        assert!(clients
            .take("192.0.2.1".parse().unwrap(), Kind::Session, 1)
            .is_none());
    }
}
