//! Address literals and address classes: what a host string means as an IP address without asking DNS,
//! and which addresses are not ordinary global unicast.
//!
//! The policy is checked on the address the relay is about to dial, and three things make that check easy
//! to get wrong, so they are done once, here:
//!
//! - A host string can be an address in forms people do not expect. glibc's `getaddrinfo` reads `127.1`,
//!   `2130706433`, `0x7f.0.0.1` and `0177.0.0.1` as 127.0.0.1 without any DNS query, so code that only knows
//!   dotted quads would take them for names. [`parse_ip_literal`] reads exactly what glibc reads.
//! - One IPv4 address has an IPv6 spelling, `::ffff:127.0.0.1`, that the kernel dials as IPv4.
//!   [`canonical`] folds it back before any comparison, so a range check cannot be sidestepped by it.
//! - "Is this address private?" has many answers beyond 10/8 and 127/8. [`special_range`] knows the IANA
//!   special-purpose registries (RFC 6890 and successors) and names the range, so a refusal can tell the
//!   learner why.
//!
//! One more class is not in any registry: the relay host's own addresses ([`host_addresses`]). A learner
//! who reaches them reaches the host's own services (SSH, an admin page, other learners' listeners), so the
//! policy guards them as it guards the special ranges.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Reads `host` as an IP address the way glibc's `getaddrinfo` does when it needs no DNS, or returns
/// `None` if it is not an address (a name, or nothing valid).
///
/// IPv6 literals are accepted with or without brackets; zone ids (`fe80::1%eth0`) are refused because the
/// relay has no business choosing an interface for a peer. IPv4 is read like `inet_aton`: one to four parts
/// separated by dots, each decimal, octal (leading `0`) or hex (leading `0x`), where the last part fills
/// all the bytes the earlier ones did not (`127.1` is 127.0.0.1, `2130706433` is 127.0.0.1). A part too
/// large for its bytes, a trailing dot and any trailing character make it not an address.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[') {
        return parse_ipv6(inner.strip_suffix(']')?).map(IpAddr::V6);
    }
    if host.contains(':') {
        return parse_ipv6(host).map(IpAddr::V6);
    }
    parse_inet_aton(host).map(IpAddr::V4)
}

fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    // std refuses zone ids today; saying so here keeps that true if std ever learns them.
    if s.contains('%') {
        return None;
    }
    s.parse().ok()
}

/// glibc's `__inet_aton_exact`: the strict variant `getaddrinfo` uses, which (unlike plain `inet_aton`)
/// allows nothing after the address, not even white space.
fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    // The parts before the last one are single bytes; at most three of them.
    let mut leading = [0u8; 3];
    let mut count = 0;
    let mut rest = s;
    loop {
        let (value, after) = parse_aton_part(rest)?;
        if let Some(next) = after.strip_prefix('.') {
            if count == leading.len() {
                return None;
            }
            leading[count] = u8::try_from(value).ok()?;
            count += 1;
            rest = next;
            continue;
        }
        if !after.is_empty() {
            return None;
        }
        // The last part fills the bytes the leading parts left: 32 bits alone, 24 after one part, ...
        let fill = u32::MAX >> (8 * count);
        if value > fill {
            return None;
        }
        let word = leading[..count]
            .iter()
            .enumerate()
            .fold(value, |word, (i, &byte)| {
                word | u32::from(byte) << (24 - 8 * i)
            });
        return Some(Ipv4Addr::from(word));
    }
}

/// One `inet_aton` part, as glibc reads it with `strtoul(.., 0)`: it must start with a digit, `0x` with
/// at least one hex digit after it is hex, another leading `0` is octal. Returns the value and what
/// follows; a value over 32 bits is not an address at all.
fn parse_aton_part(s: &str) -> Option<(u32, &str)> {
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_digit() {
        return None;
    }
    let hex = bytes[0] == b'0'
        && matches!(bytes.get(1), Some(b'x' | b'X'))
        && bytes.get(2).is_some_and(u8::is_ascii_hexdigit);
    let (radix, start) = match (hex, bytes[0]) {
        (true, _) => (16, 2),
        // "0" alone is octal zero, which is fine; "08" stops at the 8 and fails as a trailing character.
        (false, b'0') => (8, 0),
        (false, _) => (10, 0),
    };
    let mut value: u32 = 0;
    let mut end = start;
    while let Some(digit) = bytes.get(end).and_then(|&b| char::from(b).to_digit(radix)) {
        value = value.checked_mul(radix)?.checked_add(digit)?;
        end += 1;
    }
    // Every byte consumed is ASCII, so `end` is on a character boundary.
    Some((value, &s[end..]))
}

/// The address the kernel will actually talk to: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) becomes
/// the IPv4 address, everything else is returned as it is.
///
/// IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses stay IPv6: a socket does not dial
/// them as IPv4, and [`special_range`] classifies them as ranges of their own.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A range of addresses that is not ordinary global unicast, and what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialRange {
    /// The whole range, as the registry lists it.
    pub net: IpNet,
    /// A few words a learner can act on, such as "loopback" or "private network".
    pub what: &'static str,
}

impl fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.net)
    }
}

/// The special range `ip` falls in, after [`canonical`], or `None` if it is ordinary global unicast.
///
/// IPv6 addresses outside 2000::/3 that have no purpose of their own are reported as "reserved by IETF":
/// nothing should be reachable there, so treating them as special costs nothing.
pub fn special_range(ip: IpAddr) -> Option<SpecialRange> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            V4_SPECIAL
                .iter()
                .find(|(net, _)| net.contains(&v4))
                .map(|&(net, what)| SpecialRange {
                    net: IpNet::V4(net),
                    what,
                })
        }
        IpAddr::V6(v6) => {
            V6_SPECIAL
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|&(net, what)| SpecialRange {
                    net: IpNet::V6(net),
                    what,
                })
        }
    }
}

/// Every special range, IPv4 then IPv6, in the order [`special_range`] tries them (a range before any
/// range containing it).
pub fn special_ranges() -> impl Iterator<Item = SpecialRange> {
    let v4 = V4_SPECIAL.iter().map(|&(net, what)| SpecialRange {
        net: IpNet::V4(net),
        what,
    });
    let v6 = V6_SPECIAL.iter().map(|&(net, what)| SpecialRange {
        net: IpNet::V6(net),
        what,
    });
    v4.chain(v6)
}

/// Whether every address of `net` carries an IPv4 address that a gateway or tunnel may reach: `net` lies
/// inside the NAT64, 6to4, Teredo or IPv4-compatible ranges.
pub fn embeds_ipv4(net: IpNet) -> bool {
    const EMBEDDING: [Ipv6Net; 5] = [
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
    ];
    match net {
        IpNet::V6(net) => EMBEDDING.iter().any(|range| range.contains(&net)),
        IpNet::V4(_) => false,
    }
}

/// The addresses of this host's network interfaces, up or down, as `getifaddrs` lists them: loopback,
/// private and link-local ones included, each once, [`canonical`].
///
/// A snapshot: an address added later (a new DHCP lease, an IPv6 temporary address) is not in it, and an
/// address the host is reached by through NAT (a cloud instance's public IP) is on no interface at all.
pub fn host_addresses() -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list it allocated into `list`, which we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a non-null node of the list getifaddrs made, not yet freed.
        let ifa = unsafe { &*entry };
        if let Some(ip) = unsafe { sockaddr_ip(ifa.ifa_addr) } {
            let ip = canonical(ip);
            if !found.contains(&ip) {
                found.push(ip);
            }
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and nothing borrowed from it outlives this call.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// The IP address in `addr`, or `None` for a null pointer or another family (such as AF_PACKET).
///
/// # Safety
/// `addr` is null or points to a valid `sockaddr` of the size its family implies, as getifaddrs gives.
unsafe fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller promises a valid sockaddr, whose family says which struct it is.
    match i32::from(unsafe { (*addr).sa_family }) {
        libc::AF_INET => {
            let sin = unsafe { &*addr.cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = unsafe { &*addr.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(s: [u16; 8], prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        prefix,
    )
}

/// IPv4 special-purpose ranges. The first match wins, so a range sits before any range containing it.
const V4_SPECIAL: &[(Ipv4Net, &str)] = &[
    // Linux dials 0.0.0.0 as the local host, which is why "this network" is not harmless.
    (v4(0, 0, 0, 0, 32), "unspecified"),
    (v4(0, 0, 0, 0, 8), "this network"),
    (v4(10, 0, 0, 0, 8), "private network"),
    (v4(100, 64, 0, 0, 10), "carrier-grade NAT"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (
        v4(169, 254, 0, 0, 16),
        "link-local (cloud metadata lives here)",
    ),
    (v4(172, 16, 0, 0, 12), "private network"),
    // A few addresses in here (192.0.0.9, .10) are global anycast; no learner needs them.
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast (deprecated)"),
    (v4(192, 168, 0, 0, 16), "private network"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IPv6 special-purpose ranges, then the IETF-reserved blocks of the address space. The first match wins,
/// so a range sits before any range containing it.
const V6_SPECIAL: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    // Never reached through `special_range`, which canonicalizes first; listed so the table is complete.
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), "IPv4-mapped"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    // A NAT64 gateway turns 64:ff9b::a00:1 into 10.0.0.1, so these reach whatever IPv4 they embed.
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "NAT64"),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "NAT64 (local use)",
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
    ),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing (SRv6)",
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    // The IANA IPv6 address space registry: only 2000::/3 is allocated for global unicast.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 8), "reserved by IETF"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 8), "reserved by IETF"),
    (v6([0x200, 0, 0, 0, 0, 0, 0, 0], 7), "reserved by IETF"),
    (v6([0x400, 0, 0, 0, 0, 0, 0, 0], 6), "reserved by IETF"),
    (v6([0x800, 0, 0, 0, 0, 0, 0, 0], 5), "reserved by IETF"),
    (v6([0x1000, 0, 0, 0, 0, 0, 0, 0], 4), "reserved by IETF"),
    (v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 3), "reserved by IETF"),
    (v6([0x6000, 0, 0, 0, 0, 0, 0, 0], 3), "reserved by IETF"),
    (v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 3), "reserved by IETF"),
    (v6([0xa000, 0, 0, 0, 0, 0, 0, 0], 3), "reserved by IETF"),
    (v6([0xc000, 0, 0, 0, 0, 0, 0, 0], 3), "reserved by IETF"),
    (v6([0xe000, 0, 0, 0, 0, 0, 0, 0], 4), "reserved by IETF"),
    (v6([0xf000, 0, 0, 0, 0, 0, 0, 0], 5), "reserved by IETF"),
    (v6([0xf800, 0, 0, 0, 0, 0, 0, 0], 6), "reserved by IETF"),
    (v6([0xfe00, 0, 0, 0, 0, 0, 0, 0], 9), "reserved by IETF"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lit(s: &str) -> Option<IpAddr> {
        parse_ip_literal(s)
    }

    #[test]
    fn ipv4_dotted_quad() {
        assert_eq!(lit("127.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0.0.0.0"), Some(ip("0.0.0.0")));
        assert_eq!(lit("255.255.255.255"), Some(ip("255.255.255.255")));
        assert_eq!(lit("93.184.215.14"), Some(ip("93.184.215.14")));
    }

    #[test]
    fn ipv4_short_forms_fill_the_last_part() {
        assert_eq!(lit("127.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("127.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("10.65536"), Some(ip("10.1.0.0")));
        assert_eq!(lit("10.16777215"), Some(ip("10.255.255.255")));
        assert_eq!(lit("10.1.65535"), Some(ip("10.1.255.255")));
        assert_eq!(lit("2130706433"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0"), Some(ip("0.0.0.0")));
        assert_eq!(lit("4294967295"), Some(ip("255.255.255.255")));
    }

    #[test]
    fn ipv4_hex_and_octal_parts() {
        assert_eq!(lit("0x7f000001"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0X7F000001"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0x7f.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0x7f.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0177.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0177.01"), Some(ip("127.0.0.1")));
        assert_eq!(lit("00000000177.0.0.01"), Some(ip("127.0.0.1")));
        assert_eq!(lit("017700000001"), Some(ip("127.0.0.1")));
        assert_eq!(lit("0xA9.0xFE.0xa9.0xfe"), Some(ip("169.254.169.254")));
        assert_eq!(lit("0251.0376.0251.0376"), Some(ip("169.254.169.254")));
        assert_eq!(lit("0xffffffff"), Some(ip("255.255.255.255")));
        assert_eq!(lit("0x00000000000000000001"), Some(ip("0.0.0.1")));
    }

    #[test]
    fn ipv4_parts_over_their_width_are_not_addresses() {
        for s in [
            "256.0.0.1",
            "127.0.0.256",
            "127.0.65536",
            "127.16777216",
            "4294967296",
            "0x100000000",
            "0400.0.0.1",
            "0x100.0.0.1",
            "1.2.3.0x100",
            "99999999999999999999999999",
            "0x7f.0x1000000",
        ] {
            assert_eq!(lit(s), None, "{s}");
        }
    }

    #[test]
    fn ipv4_malformed_is_not_an_address() {
        for s in [
            "",
            ".",
            "127.0.0.1.",
            "127.1.",
            "1.",
            ".127.0.0.1",
            "127..1",
            "1.2.3.4.5",
            "08",
            "0.0.0.08",
            "09.1",
            "0x",
            "0x.1",
            "0xg",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.4\n",
            "+1.2.3.4",
            "-1",
            "1.2.3.-4",
            "1e3",
            "127.0.0.1x",
            "localhost",
            "example.com",
            "1.2.3.4.example.com",
            "١٢٣",
        ] {
            assert_eq!(lit(s), None, "{s:?}");
        }
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        assert_eq!(lit("::1"), Some(ip("::1")));
        assert_eq!(lit("[::1]"), Some(ip("::1")));
        assert_eq!(lit("fe80::1"), Some(ip("fe80::1")));
        assert_eq!(lit("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(lit("::ffff:127.0.0.1"), Some(ip("::ffff:7f00:1")));
        assert_eq!(lit("[::ffff:7f00:1]"), Some(ip("::ffff:127.0.0.1")));
        assert_eq!(lit("::"), Some(ip("::")));
    }

    #[test]
    fn ipv6_malformed_or_zoned_is_not_an_address() {
        for s in [
            "fe80::1%eth0",
            "[fe80::1%eth0]",
            "fe80::1%1",
            "[::1",
            "::1]",
            "[[::1]]",
            "[]",
            "[127.0.0.1]",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "::g",
            "[::1]:80",
            "::ffff:127.1",
        ] {
            assert_eq!(lit(s), None, "{s:?}");
        }
    }

    #[test]
    fn canonical_folds_only_mapped_addresses() {
        assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::ffff:7f00:1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::ffff:8.8.8.8")), ip("8.8.8.8"));
        assert_eq!(canonical(ip("::127.0.0.1")), ip("::127.0.0.1"));
        assert_eq!(canonical(ip("64:ff9b::7f00:1")), ip("64:ff9b::7f00:1"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        assert_eq!(canonical(ip("10.0.0.1")), ip("10.0.0.1"));
    }

    fn what(s: &str) -> Option<&'static str> {
        special_range(ip(s)).map(|r| r.what)
    }

    #[test]
    fn special_ipv4() {
        let cases = [
            ("0.0.0.0", "unspecified", "0.0.0.0/32"),
            ("0.1.2.3", "this network", "0.0.0.0/8"),
            ("10.0.0.1", "private network", "10.0.0.0/8"),
            ("100.64.0.1", "carrier-grade NAT", "100.64.0.0/10"),
            ("100.127.255.255", "carrier-grade NAT", "100.64.0.0/10"),
            ("127.0.0.1", "loopback", "127.0.0.0/8"),
            ("127.0.0.2", "loopback", "127.0.0.0/8"),
            (
                "169.254.169.254",
                "link-local (cloud metadata lives here)",
                "169.254.0.0/16",
            ),
            ("172.16.0.1", "private network", "172.16.0.0/12"),
            ("172.31.255.255", "private network", "172.16.0.0/12"),
            ("192.0.0.8", "IETF protocol assignments", "192.0.0.0/24"),
            ("192.0.2.1", "documentation", "192.0.2.0/24"),
            (
                "192.88.99.1",
                "6to4 relay anycast (deprecated)",
                "192.88.99.0/24",
            ),
            ("192.168.1.1", "private network", "192.168.0.0/16"),
            ("198.19.0.1", "benchmarking", "198.18.0.0/15"),
            ("198.51.100.7", "documentation", "198.51.100.0/24"),
            ("203.0.113.9", "documentation", "203.0.113.0/24"),
            ("224.0.0.1", "multicast", "224.0.0.0/4"),
            ("239.255.255.250", "multicast", "224.0.0.0/4"),
            ("240.0.0.1", "reserved", "240.0.0.0/4"),
            ("255.255.255.254", "reserved", "240.0.0.0/4"),
            ("255.255.255.255", "broadcast", "255.255.255.255/32"),
        ];
        for (addr, what, net) in cases {
            let range = special_range(ip(addr)).unwrap_or_else(|| panic!("{addr} is special"));
            assert_eq!(range.what, what, "{addr}");
            assert_eq!(range.net, net.parse::<IpNet>().unwrap(), "{addr}");
        }
    }

    #[test]
    fn special_ipv6() {
        let cases = [
            ("::", "unspecified", "::/128"),
            ("::1", "loopback", "::1/128"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)", "::/96"),
            ("::2", "IPv4-compatible (deprecated)", "::/96"),
            ("64:ff9b::8.8.8.8", "NAT64", "64:ff9b::/96"),
            ("64:ff9b::10.0.0.1", "NAT64", "64:ff9b::/96"),
            ("64:ff9b:1::1", "NAT64 (local use)", "64:ff9b:1::/48"),
            ("100::1", "discard-only", "100::/64"),
            ("2001::1", "Teredo", "2001::/32"),
            ("2001:2::1", "benchmarking", "2001:2::/48"),
            ("2001:10::1", "IETF protocol assignments", "2001::/23"),
            ("2001:db8::1", "documentation", "2001:db8::/32"),
            ("2002:7f00:1::1", "6to4", "2002::/16"),
            ("3fff::1", "documentation", "3fff::/20"),
            ("fc00::1", "unique local", "fc00::/7"),
            ("fd00::1", "unique local", "fc00::/7"),
            ("fd00:ec2::254", "unique local", "fc00::/7"),
            ("fe80::1", "link-local", "fe80::/10"),
            ("febf::1", "link-local", "fe80::/10"),
            ("fec0::1", "site-local (deprecated)", "fec0::/10"),
            ("ff02::1", "multicast", "ff00::/8"),
            ("ff05::1:3", "multicast", "ff00::/8"),
            ("1::1", "reserved by IETF", "::/8"),
            ("4000::1", "reserved by IETF", "4000::/3"),
            ("fe00::1", "reserved by IETF", "fe00::/9"),
        ];
        for (addr, what, net) in cases {
            let range = special_range(ip(addr)).unwrap_or_else(|| panic!("{addr} is special"));
            assert_eq!(range.what, what, "{addr}");
            assert_eq!(range.net, net.parse::<IpNet>().unwrap(), "{addr}");
        }
    }

    #[test]
    fn mapped_addresses_are_classified_as_their_ipv4() {
        assert_eq!(what("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(what("::ffff:7f00:1"), Some("loopback"));
        assert_eq!(what("::ffff:10.0.0.1"), Some("private network"));
        assert_eq!(
            what("::ffff:169.254.169.254"),
            Some("link-local (cloud metadata lives here)")
        );
        assert_eq!(
            special_range(ip("::ffff:127.0.0.1")).unwrap().net,
            "127.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(what("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn global_unicast_is_not_special() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:200::1",
            "2a00:1450:4001::200e",
            "3ffe::1",
        ] {
            assert_eq!(what(s), None, "{s}");
        }
    }

    #[test]
    fn display_names_the_range() {
        let range = special_range(ip("10.1.2.3")).unwrap();
        assert_eq!(range.to_string(), "private network (10.0.0.0/8)");
    }

    /// `new_assert` does not check host bits, and an entry placed after a range containing it would never
    /// be reported; both are mistakes a table edit can make silently.
    #[test]
    fn tables_are_well_formed() {
        for (i, (net, what)) in V4_SPECIAL.iter().enumerate() {
            assert_eq!(*net, net.trunc(), "{what} {net} has host bits set");
            for (earlier, _) in &V4_SPECIAL[..i] {
                assert!(!earlier.contains(net), "{net} is shadowed by {earlier}");
            }
        }
        for (i, (net, what)) in V6_SPECIAL.iter().enumerate() {
            assert_eq!(*net, net.trunc(), "{what} {net} has host bits set");
            for (earlier, _) in &V6_SPECIAL[..i] {
                assert!(!earlier.contains(net), "{net} is shadowed by {earlier}");
            }
        }
    }

    #[test]
    fn host_addresses_include_loopback() {
        let addrs = host_addresses().expect("getifaddrs");
        assert!(addrs.contains(&ip("127.0.0.1")), "{addrs:?}");
        let mut unique = addrs.clone();
        unique.dedup();
        assert_eq!(unique.len(), addrs.len(), "{addrs:?}");
    }

    #[test]
    fn special_ranges_are_the_tables() {
        let all: Vec<SpecialRange> = special_ranges().collect();
        assert_eq!(all.len(), V4_SPECIAL.len() + V6_SPECIAL.len());
        for range in all.iter().filter(|r| r.what != "IPv4-mapped") {
            // The first range containing a range's own address is itself or a range inside it.
            let found = special_range(range.net.network()).expect("special");
            assert!(range.net.contains(&found.net), "{range} vs {found}");
        }
    }

    /// Everything outside 2000::/3 is special, so nothing unallocated slips through as "global".
    #[test]
    fn only_2000_slash_3_can_be_global_ipv6() {
        for top in 0u16..=0xffff {
            let addr = Ipv6Addr::new(top, 0x1234, 0, 0, 0, 0, 0, 0x5678);
            if !(0x2000..0x4000).contains(&top) {
                assert!(special_range(IpAddr::V6(addr)).is_some(), "{addr}");
            }
        }
    }
}
