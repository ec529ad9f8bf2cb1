//! One `--allow` rule: its syntax, how it reads from the command line and shows back, and what it matches.
//!
//! A rule is a host part and a port part. The host part is one of three kinds, which the policy trusts
//! differently (see [`super`]): addresses (`10.1.0.0/16`, `[2001:db8::1]`), names (`example.com`,
//! `*.example.com`), or `public`, every address outside the special ranges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addr::{canonical, parse_ip_literal, SpecialRange};

/// The accepted forms, repeated in every parse error so the operator can fix the flag without the docs.
const FORMS: &str = "accepted forms: public:443, example.com:443, *.example.com:443, \
                     93.184.215.14:80, 10.1.0.0/16:80, [2001:db8::1]:80, [2001:db8::/32]:80; \
                     ports: 80, 8000-8100 or *";

/// Why an `--allow` rule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// There is no `:PORT` after the host.
    #[error("`{rule}` has no port: write HOST:PORT ({FORMS})")]
    MissingPort { rule: String },
    /// Nothing before the `:PORT`.
    #[error("`{rule}` has no host before the port ({FORMS})")]
    EmptyHost { rule: String },
    /// An IPv6 address without brackets, whose colons cannot be told apart from the port's.
    #[error(
        "`{rule}`: put an IPv6 address or network in brackets, as in [2001:db8::1]:80 ({FORMS})"
    )]
    UnbracketedIpv6 { rule: String },
    /// A `[` without its `]`, or something other than `:PORT` after the `]`.
    #[error("`{rule}`: a bracketed host is written [IPV6]:PORT or [IPV6/PREFIX]:PORT ({FORMS})")]
    BadBrackets { rule: String },
    /// The port part is not a number from 1 to 65535, a range of them, or `*`.
    #[error(
        "`{port}` is not a port: use a number from 1 to 65535, a range FIRST-LAST or * ({FORMS})"
    )]
    BadPort { port: String },
    /// Port 0, which a socket cannot connect to.
    #[error(
        "port 0 cannot be connected to: use a number from 1 to 65535, a range FIRST-LAST or *"
    )]
    PortZero,
    /// A range that ends before it starts.
    #[error("the port range {first}-{last} ends before it starts: write it as {last}-{first}")]
    BackwardsRange { first: u16, last: u16 },
    /// Inside brackets there must be an IPv6 address or network.
    #[error(
        "`{host}` is not an IPv6 address or network (zone ids such as %eth0 are not accepted) ({FORMS})"
    )]
    BadIpv6 { host: String },
    /// Brackets around an IPv4 address.
    #[error("`{host}`: brackets are for IPv6; write an IPv4 address without them ({FORMS})")]
    BracketedIpv4 { host: String },
    /// A `/` that does not make an IPv4 network (a dotted quad, then a prefix length from 0 to 32).
    #[error(
        "`{host}` is not an IPv4 network: write a dotted quad and a prefix length from 0 to 32, as in 10.1.0.0/16 ({FORMS})"
    )]
    BadIpv4Net { host: String },
    /// A network with bits set after its prefix. Refused rather than truncated, because the operator
    /// may have meant the single address, or a different prefix.
    #[error(
        "`{given}` has bits set after its prefix: write the network as {network}, or the single address without a prefix"
    )]
    HostBitsSet { given: String, network: String },
    /// A `*` anywhere but as the whole first label.
    #[error(
        "`{host}`: a wildcard may only be the whole first label, as in *.example.com, and matches sub-domains only ({FORMS})"
    )]
    BadWildcard { host: String },
    /// Not a valid host name; `why` says what is wrong with it.
    #[error("`{host}` is not a valid host name: {why} ({FORMS})")]
    BadName { host: String, why: &'static str },
}

/// One `--allow HOST:PORT` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub(super) host: RuleHost,
    pub(super) ports: PortRange,
}

/// What a rule allows, before the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RuleHost {
    /// Addresses, named by the operator; a single address is a /32 or /128. IPv4-mapped IPv6 rules are
    /// stored as IPv4, because destinations are compared after [`canonical`].
    Net(IpNet),
    /// Exactly this name: lowercase, without a trailing dot.
    Name(String),
    /// Names under this one (from `*.example.com`), not the name itself: lowercase, without a trailing dot.
    Suffix(String),
    /// `public`: every address outside the special ranges and the relay host's own addresses, and every
    /// name, as long as it resolves to such an address.
    Public,
}

/// Ports `first..=last`; never 0, never backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    const ALL: PortRange = PortRange {
        first: 1,
        last: u16::MAX,
    };

    pub(super) fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// "every port", "port 80" or "ports 8000-8100", for sentences.
    pub(super) fn phrase(self) -> String {
        match self {
            PortRange::ALL => "every port".into(),
            PortRange { first, last } if first == last => format!("port {first}"),
            PortRange { first, last } => format!("ports {first}-{last}"),
        }
    }
}

impl Rule {
    /// Whether this rule allows `ip` (already [`canonical`]), whose guard is `guard`: the special range it
    /// is in, or the relay host's own address it is, or `None` for an ordinary global address.
    ///
    /// A guarded address is allowed only by an address rule that lies inside its guard, i.e. that names
    /// the special range or part of it: `10.0.0.0/8` and `10.1.2.3` open 10.1.2.3, `0.0.0.0/0` and
    /// `10.0.0.0/7` do not. Name and `public` rules never allow it.
    pub(super) fn matches_ip(&self, ip: IpAddr, guard: Option<&SpecialRange>) -> bool {
        match &self.host {
            RuleHost::Net(net) => {
                net.contains(&ip) && guard.is_none_or(|guard| guard.net.contains(net))
            }
            RuleHost::Public => guard.is_none(),
            RuleHost::Name(_) | RuleHost::Suffix(_) => false,
        }
    }

    /// `name` must already have passed [`normalize_name`]; comparisons ignore ASCII case.
    pub(super) fn matches_name(&self, name: &str) -> bool {
        match &self.host {
            RuleHost::Net(_) => false,
            RuleHost::Public => true,
            RuleHost::Name(rule) => name.eq_ignore_ascii_case(rule),
            RuleHost::Suffix(suffix) => {
                // At least one label, then a dot, then the suffix: the bare domain does not match.
                let Some(dot) = name.len().checked_sub(suffix.len() + 1) else {
                    return false;
                };
                dot > 0
                    && name.as_bytes()[dot] == b'.'
                    && name[dot + 1..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(rule: &str) -> Result<Rule, RuleError> {
        let (host, port) = split_host_port(rule)?;
        if host.is_empty() {
            return Err(RuleError::EmptyHost { rule: rule.into() });
        }
        let ports = parse_ports(port)?;
        let host = parse_host(host)?;
        Ok(Rule { host, ports })
    }
}

/// The host part of a `public:PORTS` rule.
const PUBLIC: &str = "public";

/// Splits at the port's colon: the one after `]` for IPv6, the only one otherwise.
fn split_host_port(rule: &str) -> Result<(&str, &str), RuleError> {
    let (host, port) = if rule.starts_with('[') {
        let bad = || RuleError::BadBrackets { rule: rule.into() };
        let close = rule.find(']').ok_or_else(bad)?;
        let (host, after) = rule.split_at(close + 1);
        if after.is_empty() {
            return Err(RuleError::MissingPort { rule: rule.into() });
        }
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = rule
            .rsplit_once(':')
            .ok_or_else(|| RuleError::MissingPort { rule: rule.into() })?;
        if host.contains(':') {
            return Err(RuleError::UnbracketedIpv6 { rule: rule.into() });
        }
        (host, port)
    };
    if port.is_empty() {
        return Err(RuleError::MissingPort { rule: rule.into() });
    }
    Ok((host, port))
}

fn parse_ports(ports: &str) -> Result<PortRange, RuleError> {
    if ports == "*" {
        return Ok(PortRange::ALL);
    }
    let (first, last) = match ports.split_once('-') {
        Some((first, last)) => (parse_port(first, ports)?, parse_port(last, ports)?),
        None => {
            let port = parse_port(ports, ports)?;
            (port, port)
        }
    };
    if first > last {
        return Err(RuleError::BackwardsRange { first, last });
    }
    Ok(PortRange { first, last })
}

fn parse_port(port: &str, whole: &str) -> Result<u16, RuleError> {
    // u16::from_str would also take "+80".
    let bad = || RuleError::BadPort { port: whole.into() };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>().map_err(|_| bad())? {
        0 => Err(RuleError::PortZero),
        port => Ok(port),
    }
}

fn parse_host(host: &str) -> Result<RuleHost, RuleError> {
    // A host named `public` is still reachable by a rule: `public.:80`.
    if host.eq_ignore_ascii_case(PUBLIC) {
        return Ok(RuleHost::Public);
    }
    if let Some(inner) = host.strip_prefix('[') {
        // split_host_port only hands over a bracketed host that ends at its `]`.
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        return parse_bracketed(host, inner).map(|net| RuleHost::Net(unmap(net)));
    }
    if host.contains('/') {
        let net: Ipv4Net = host
            .parse()
            .map_err(|_| RuleError::BadIpv4Net { host: host.into() })?;
        return exact_network(host, IpNet::V4(net)).map(RuleHost::Net);
    }
    // Anything the resolver would read as an address is an address rule, never a name rule.
    if let Some(ip) = parse_ip_literal(host) {
        return Ok(RuleHost::Net(IpNet::from(ip)));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(RuleError::BadWildcard { host: host.into() });
        }
        return rule_name(host, suffix).map(RuleHost::Suffix);
    }
    if host.contains('*') {
        return Err(RuleError::BadWildcard { host: host.into() });
    }
    rule_name(host, host).map(RuleHost::Name)
}

fn parse_bracketed(host: &str, inner: &str) -> Result<IpNet, RuleError> {
    let bad = || RuleError::BadIpv6 { host: host.into() };
    if inner.contains('%') {
        return Err(bad());
    }
    if inner.contains('/') {
        let net: Ipv6Net = inner.parse().map_err(|_| bad())?;
        return exact_network(host, IpNet::V6(net));
    }
    match inner.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => Ok(IpNet::from(IpAddr::V6(ip))),
        Ok(IpAddr::V4(_)) => Err(RuleError::BracketedIpv4 { host: host.into() }),
        Err(_) => Err(bad()),
    }
}

/// Refuses a network with host bits set (see [`RuleError::HostBitsSet`]).
fn exact_network(given: &str, net: IpNet) -> Result<IpNet, RuleError> {
    if net.trunc() == net {
        Ok(net)
    } else {
        Err(RuleError::HostBitsSet {
            given: given.into(),
            network: show_net(net.trunc()),
        })
    }
}

/// An IPv6 rule that lies wholly inside ::ffff:0:0/96 becomes the IPv4 rule it means: destinations are
/// compared after [`canonical`], so the IPv6 spelling would otherwise never match anything.
fn unmap(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match canonical(IpAddr::V6(v6.addr())) {
            IpAddr::V4(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            IpAddr::V6(_) => net,
        },
        _ => net,
    }
}

/// The stored form of a name rule: lowercase, trailing dot gone, and valid.
fn rule_name(host: &str, name: &str) -> Result<String, RuleError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    check_name(name).map_err(|why| RuleError::BadName {
        host: host.into(),
        why,
    })?;
    Ok(name.to_ascii_lowercase())
}

/// Whether `name` (without a trailing dot) is a host name the resolver would look up as such. Peers'
/// names go through this too, so a name with a NUL, a space or an empty label can never match a rule and
/// then mean something else to the resolver.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if !name.is_ascii() {
        return Err("it is not ASCII; write an internationalized name in its xn-- form");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading dot or two dots in a row)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("it has a character other than letters, digits, '-', '_' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    // `name` is not empty, so there is a last label.
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "its last label is all digits, so it is not a name; write an address as a dotted quad",
        );
    }
    Ok(())
}

/// A peer's name as rules compare it: one trailing dot dropped, and `None` if it is not a valid name.
pub(super) fn normalize_name(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    check_name(name).ok().map(|()| name)
}

fn show_net(net: IpNet) -> String {
    match net {
        IpNet::V4(v4) => v4.to_string(),
        IpNet::V6(v6) => format!("[{v6}]"),
    }
}

impl fmt::Display for Rule {
    /// The canonical form, which reads back as the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            RuleHost::Net(IpNet::V4(net)) if net.prefix_len() == 32 => write!(f, "{}", net.addr())?,
            RuleHost::Net(IpNet::V6(net)) if net.prefix_len() == 128 => {
                write!(f, "[{}]", net.addr())?
            }
            RuleHost::Net(net) => f.write_str(&show_net(*net))?,
            // The trailing dot keeps a host named `public` from reading back as the `public` rule.
            RuleHost::Name(name) if name == PUBLIC => write!(f, "{name}.")?,
            RuleHost::Name(name) => f.write_str(name)?,
            RuleHost::Suffix(suffix) => write!(f, "*.{suffix}")?,
            RuleHost::Public => f.write_str(PUBLIC)?,
        }
        let PortRange { first, last } = self.ports;
        if self.ports == PortRange::ALL {
            f.write_str(":*")
        } else if first == last {
            write!(f, ":{first}")
        } else {
            write!(f, ":{first}-{last}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        s.parse()
            .unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    #[test]
    fn rules_round_trip_through_display() {
        for (given, shown) in [
            ("example.com:443", "example.com:443"),
            ("Example.COM.:443", "example.com:443"),
            ("*.example.com:*", "*.example.com:*"),
            ("_acme.example.com:53", "_acme.example.com:53"),
            ("93.184.215.14:80", "93.184.215.14:80"),
            ("10.1.0.0/16:80", "10.1.0.0/16:80"),
            ("0.0.0.0/0:*", "0.0.0.0/0:*"),
            ("127.1:8000", "127.0.0.1:8000"),
            ("0x7f000002:8000", "127.0.0.2:8000"),
            ("[2001:db8::1]:80", "[2001:db8::1]:80"),
            ("[2001:DB8:0::1]:80", "[2001:db8::1]:80"),
            ("[2001:db8::/32]:8000-8100", "[2001:db8::/32]:8000-8100"),
            ("[::ffff:10.0.0.1]:80", "10.0.0.1:80"),
            ("[::ffff:10.0.0.0/104]:80", "10.0.0.0/8:80"),
            ("[::/0]:80", "[::/0]:80"),
            ("example.com:1-65535", "example.com:*"),
            ("example.com:080", "example.com:80"),
            ("example.com:80-80", "example.com:80"),
            ("example.com:65535", "example.com:65535"),
            ("public:443", "public:443"),
            ("PUBLIC:1-65535", "public:*"),
            ("public:8000-8100", "public:8000-8100"),
            ("public.:80", "public.:80"),
            ("Public.:80", "public.:80"),
            ("*.public:80", "*.public:80"),
        ] {
            let parsed = rule(given);
            assert_eq!(parsed.to_string(), shown, "{given}");
            assert_eq!(rule(shown), parsed, "{shown}");
        }
    }

    #[test]
    fn bad_rules_are_errors() {
        type Expected = fn(&RuleError) -> bool;
        let cases: &[(&str, Expected)] = &[
            ("example.com", |e| {
                matches!(e, RuleError::MissingPort { .. })
            }),
            ("example.com:", |e| {
                matches!(e, RuleError::MissingPort { .. })
            }),
            ("[::1]", |e| matches!(e, RuleError::MissingPort { .. })),
            ("", |e| matches!(e, RuleError::MissingPort { .. })),
            (":80", |e| matches!(e, RuleError::EmptyHost { .. })),
            ("::1:80", |e| matches!(e, RuleError::UnbracketedIpv6 { .. })),
            ("2001:db8::/32:80", |e| {
                matches!(e, RuleError::UnbracketedIpv6 { .. })
            }),
            ("[::1:80", |e| matches!(e, RuleError::BadBrackets { .. })),
            ("[::1]80", |e| matches!(e, RuleError::BadBrackets { .. })),
            ("example.com:http", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:+80", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:65536", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:80-", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:-80", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:1-2-3", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com: 80", |e| {
                matches!(e, RuleError::BadPort { .. })
            }),
            ("example.com:0", |e| matches!(e, RuleError::PortZero)),
            ("example.com:0-80", |e| matches!(e, RuleError::PortZero)),
            ("example.com:8100-8000", |e| {
                matches!(
                    e,
                    RuleError::BackwardsRange {
                        first: 8100,
                        last: 8000
                    }
                )
            }),
            ("[fe80::1%eth0]:80", |e| {
                matches!(e, RuleError::BadIpv6 { .. })
            }),
            ("[example.com]:80", |e| {
                matches!(e, RuleError::BadIpv6 { .. })
            }),
            ("[2001:db8::/129]:80", |e| {
                matches!(e, RuleError::BadIpv6 { .. })
            }),
            ("[127.0.0.1]:80", |e| {
                matches!(e, RuleError::BracketedIpv4 { .. })
            }),
            ("10.0.0.0/33:80", |e| {
                matches!(e, RuleError::BadIpv4Net { .. })
            }),
            ("10.1/16:80", |e| matches!(e, RuleError::BadIpv4Net { .. })),
            ("example.com/24:80", |e| {
                matches!(e, RuleError::BadIpv4Net { .. })
            }),
            (
                "10.1.2.3/16:80",
                |e| matches!(e, RuleError::HostBitsSet { network, .. } if network == "10.1.0.0/16"),
            ),
            (
                "[2001:db8::1/32]:80",
                |e| matches!(e, RuleError::HostBitsSet { network, .. } if network == "[2001:db8::/32]"),
            ),
            ("*:80", |e| matches!(e, RuleError::BadWildcard { .. })),
            ("www.*.com:80", |e| {
                matches!(e, RuleError::BadWildcard { .. })
            }),
            ("*example.com:80", |e| {
                matches!(e, RuleError::BadWildcard { .. })
            }),
            ("*.*.example.com:80", |e| {
                matches!(e, RuleError::BadWildcard { .. })
            }),
            ("*.:80", |e| matches!(e, RuleError::BadName { .. })),
            ("exa mple.com:80", |e| {
                matches!(e, RuleError::BadName { .. })
            }),
            ("example..com:80", |e| {
                matches!(e, RuleError::BadName { .. })
            }),
            (".example.com:80", |e| {
                matches!(e, RuleError::BadName { .. })
            }),
            ("-example.com:80", |e| {
                matches!(e, RuleError::BadName { .. })
            }),
            ("bücher.example:80", |e| {
                matches!(e, RuleError::BadName { .. })
            }),
            ("1.2.3.256:80", |e| matches!(e, RuleError::BadName { .. })),
            ("127.0.0.1.:80", |e| matches!(e, RuleError::BadName { .. })),
            ("1.2.3.4.5:80", |e| matches!(e, RuleError::BadName { .. })),
        ];
        for (given, expected) in cases {
            match given.parse::<Rule>() {
                Ok(parsed) => panic!("{given:?} parsed as {parsed}"),
                Err(e) => {
                    assert!(expected(&e), "{given:?} gave {e:?}");
                    assert!(!e.to_string().contains('\n'), "{e}");
                }
            }
        }
        let long_label = format!("{}.com:80", "a".repeat(64));
        assert!(matches!(
            long_label.parse::<Rule>(),
            Err(RuleError::BadName { .. })
        ));
        let long_name = format!("{}com:80", "a.".repeat(126));
        assert!(matches!(
            long_name.parse::<Rule>(),
            Err(RuleError::BadName { .. })
        ));
    }

    #[test]
    fn public_is_its_own_kind_of_rule() {
        assert_eq!(rule("public:80").host, RuleHost::Public);
        assert_eq!(rule("Public:*").host, RuleHost::Public);
        assert_eq!(rule("public.:80").host, RuleHost::Name("public".into()));
        assert_eq!(
            rule("public.example:80").host,
            RuleHost::Name("public.example".into())
        );
        for bad in [
            "public",
            "public:",
            "public:0",
            "public:http",
            "[public]:80",
            "public/8:80",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn port_phrases() {
        assert_eq!(rule("public:*").ports.phrase(), "every port");
        assert_eq!(rule("public:80").ports.phrase(), "port 80");
        assert_eq!(rule("public:80-90").ports.phrase(), "ports 80-90");
    }

    #[test]
    fn errors_show_the_accepted_forms() {
        let e = "example.com".parse::<Rule>().unwrap_err();
        assert!(e.to_string().contains("[2001:db8::/32]:80"), "{e}");
        assert!(e.to_string().contains("8000-8100"), "{e}");
        assert!(e.to_string().contains("public:443"), "{e}");
    }
}
