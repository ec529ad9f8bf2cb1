//! The egress allow list: which destinations the relay may dial on behalf of a session.
//!
//! The relay is deny-by-default. The operator names what learners may reach with `--allow HOST:PORT`
//! rules ([`Rule`]); anything else is refused with a [`Refusal`], whose message ends up in the learner's
//! Python `OSError`, so it says what was refused and why.
//!
//! The two kinds of rule are trusted differently:
//! - An address rule (`10.1.0.0/16:80`, `127.0.0.2:8000`) is the operator naming addresses on purpose, so it
//!   allows them even when they are loopback or private: that is how a test server on the relay's own host
//!   is reached.
//! - A name rule (`example.com:443`, `*.example.com:*`) trusts DNS to say where the name points, and DNS is
//!   not the operator's: whoever controls the zone can point it at 127.0.0.1 or 169.254.169.254 at any time
//!   (DNS rebinding). So a name rule only ever leads to ordinary global unicast addresses, as judged by
//!   [`special_range`].
//!
//! [`Policy::check`] is called with the address the relay is about to dial, after resolution: a check on
//! the name alone would be bypassed by whatever the name resolves to.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use soket_protocol::errno::{self, Failure};

use crate::addr::{canonical, parse_ip_literal, special_range, SpecialRange};

/// The accepted forms, repeated in every parse error so the operator can fix the flag without the docs.
const FORMS: &str = "accepted forms: example.com:443, *.example.com:443, 93.184.215.14:80, \
                     10.1.0.0/16:80, [2001:db8::1]:80, [2001:db8::/32]:80; \
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
    #[error("`{host}` is not an IPv6 address or network (zone ids such as %eth0 are not accepted) ({FORMS})")]
    BadIpv6 { host: String },
    /// Brackets around an IPv4 address.
    #[error("`{host}`: brackets are for IPv6; write an IPv4 address without them ({FORMS})")]
    BracketedIpv4 { host: String },
    /// A `/` that does not make an IPv4 network (a dotted quad, then a prefix length from 0 to 32).
    #[error("`{host}` is not an IPv4 network: write a dotted quad and a prefix length from 0 to 32, as in 10.1.0.0/16 ({FORMS})")]
    BadIpv4Net { host: String },
    /// A network with bits set after its prefix. Refused rather than truncated, because the operator
    /// may have meant the single address, or a different prefix.
    #[error("`{given}` has bits set after its prefix: write the network as {network}, or the single address without a prefix")]
    HostBitsSet { given: String, network: String },
    /// A `*` anywhere but as the whole first label.
    #[error("`{host}`: a wildcard may only be the whole first label, as in *.example.com, and matches sub-domains only ({FORMS})")]
    BadWildcard { host: String },
    /// Not a valid host name; `why` says what is wrong with it.
    #[error("`{host}` is not a valid host name: {why} ({FORMS})")]
    BadName { host: String, why: &'static str },
}

/// One `--allow HOST:PORT` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    host: RuleHost,
    ports: PortRange,
}

/// What a rule allows, before the port.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RuleHost {
    /// Addresses, named by the operator; a single address is a /32 or /128. IPv4-mapped IPv6 rules are
    /// stored as IPv4, because destinations are compared after [`canonical`].
    Net(IpNet),
    /// Exactly this name: lowercase, without a trailing dot.
    Name(String),
    /// Names under this one (from `*.example.com`), not the name itself: lowercase, without a trailing dot.
    Suffix(String),
}

/// Ports `first..=last`; never 0, never backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    const ALL: PortRange = PortRange {
        first: 1,
        last: u16::MAX,
    };

    fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl Rule {
    fn matches_ip(&self, ip: IpAddr) -> bool {
        matches!(&self.host, RuleHost::Net(net) if net.contains(&ip))
    }

    /// `name` must already have passed [`normalize_name`]; comparisons ignore ASCII case.
    fn matches_name(&self, name: &str) -> bool {
        match &self.host {
            RuleHost::Net(_) => false,
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
fn normalize_name(name: &str) -> Option<&str> {
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
            RuleHost::Name(name) => f.write_str(name)?,
            RuleHost::Suffix(suffix) => write!(f, "*.{suffix}")?,
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

/// The operator's allow list. Empty means nothing may be dialed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub fn new(rules: Vec<Rule>) -> Policy {
        Policy { rules }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether some name rule matches `name` on any port. The relay asks this before it resolves a name,
    /// so a learner cannot make it query DNS for names no rule could allow.
    pub fn allows_name(&self, name: &str) -> bool {
        normalize_name(name).is_some_and(|name| self.rules.iter().any(|r| r.matches_name(name)))
    }

    /// Decides whether the relay may dial `dest`, which `name` (if the peer gave one) resolved to. Call it
    /// for every address about to be dialed, after resolution. Returns the rule that allows it.
    ///
    /// `dest` is compared after [`canonical`]. An address rule allows any address it contains, special or
    /// not. A name rule allows only addresses outside every [`special_range`]. Everything else is refused.
    #[allow(
        clippy::result_large_err,
        reason = "a refusal ends the dial it answers, so its size is paid once, off the data path"
    )]
    pub fn check(&self, name: Option<&str>, dest: SocketAddr) -> Result<&Rule, Refusal> {
        let ip = canonical(dest.ip());
        let port = dest.port();
        let name_key = name.and_then(normalize_name);
        let refuse = |reason| Refusal {
            dest: SocketAddr::new(ip, port),
            name: name.map(str::to_owned),
            reason,
        };

        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.ports.contains(port) && r.matches_ip(ip))
        {
            return Ok(rule);
        }
        if let Some(key) = name_key {
            if let Some(rule) = self
                .rules
                .iter()
                .find(|r| r.ports.contains(port) && r.matches_name(key))
            {
                return match special_range(ip) {
                    None => Ok(rule),
                    Some(range) => Err(refuse(RefusalReason::NameResolvesToSpecial {
                        rule: rule.clone(),
                        range,
                    })),
                };
            }
        }
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.matches_ip(ip) || name_key.is_some_and(|key| r.matches_name(key)))
        {
            return Err(refuse(RefusalReason::PortNotAllowed { rule: rule.clone() }));
        }
        Err(refuse(match special_range(ip) {
            Some(range) => RefusalReason::Special(range),
            None => RefusalReason::NotAllowed,
        }))
    }
}

/// A destination the policy will not let the relay dial. Its `Display` is the one-line message the
/// learner sees in Python's `OSError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The destination as compared, i.e. after [`canonical`].
    pub dest: SocketAddr,
    /// The name the peer asked for, as it gave it, if it gave one.
    pub name: Option<String>,
    pub reason: RefusalReason,
}

/// Why a destination was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// No rule names this host, and it is ordinary global unicast.
    NotAllowed,
    /// No rule names this host, and it is in a special range.
    Special(SpecialRange),
    /// A rule names this host, but not on this port.
    PortNotAllowed { rule: Rule },
    /// A name rule allows the name, but it resolved to an address a name may never lead to.
    NameResolvesToSpecial { rule: Rule, range: SpecialRange },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("soket relay policy refuses ")?;
        match &self.name {
            Some(name) => write!(
                f,
                "{} ({}):{}",
                PeerName(name),
                self.dest.ip(),
                self.dest.port()
            )?,
            None => write!(f, "{}", self.dest)?,
        }
        match &self.reason {
            RefusalReason::NotAllowed => f.write_str(": not on the relay's allow list"),
            RefusalReason::Special(range) => {
                write!(f, ": {range}, and no --allow rule names it")
            }
            RefusalReason::PortNotAllowed { rule } => write!(
                f,
                ": port {} is not on the relay's allow list (--allow {rule} names this host on other ports)",
                self.dest.port()
            ),
            RefusalReason::NameResolvesToSpecial { rule, range } => write!(
                f,
                ": the name is allowed by --allow {rule} but it resolves to {range}"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A refusal is what the learner's `connect` or `sendto` raises: `PermissionError` with this message.
impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::with(errno::EACCES, refusal.to_string())
    }
}

/// A name from a peer, shown so that it stays one short line in messages and logs whatever it holds.
struct PeerName<'a>(&'a str);

impl fmt::Display for PeerName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 253;
        for c in self.0.chars().take(SHOWN) {
            write!(f, "{}", c.escape_debug())?;
        }
        if self.0.chars().nth(SHOWN).is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        s.parse()
            .unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    fn policy(rules: &[&str]) -> Policy {
        Policy::new(rules.iter().map(|s| rule(s)).collect())
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// `ip` may be any form `parse_ip_literal` reads, including `::ffff:127.0.0.1`.
    fn dest(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(parse_ip_literal(ip).unwrap(), port)
    }

    const NOT_GLOBAL: &[&str] = &[
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "127.0.0.1",
        "127.0.0.2",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "::",
        "64:ff9b::7f00:1",
        "::127.0.0.1",
    ];

    #[test]
    fn empty_policy_refuses_everything() {
        let empty = Policy::new(Vec::new());
        for ip in NOT_GLOBAL {
            let refusal = empty.check(None, dest(ip, 80)).unwrap_err();
            assert!(
                matches!(refusal.reason, RefusalReason::Special(_)),
                "{ip}: {refusal}"
            );
            assert!(empty.check(Some("example.com"), dest(ip, 80)).is_err());
        }
        let refusal = empty.check(None, sa("93.184.215.14:22")).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::NotAllowed);
        assert!(!empty.allows_name("example.com"));
    }

    #[test]
    fn name_rules_never_lead_to_special_addresses() {
        let names = policy(&["internal.example.com:*", "*.corp.example:80"]);
        for ip in NOT_GLOBAL {
            for name in [
                "internal.example.com",
                "INTERNAL.Example.com.",
                "db.corp.example",
            ] {
                let refusal = names.check(Some(name), dest(ip, 80)).unwrap_err();
                let RefusalReason::NameResolvesToSpecial { range, .. } = &refusal.reason else {
                    panic!("{name} -> {ip}: {refusal}");
                };
                assert_eq!(special_range(dest(ip, 80).ip()), Some(*range));
            }
            // Without the name, nothing allows the address.
            assert!(names.check(None, dest(ip, 80)).is_err());
        }
    }

    #[test]
    fn refusal_dest_is_canonical() {
        let refusal = Policy::default()
            .check(None, dest("::ffff:127.0.0.1", 80))
            .unwrap_err();
        assert_eq!(refusal.dest, sa("127.0.0.1:80"));
        assert_eq!(
            refusal.to_string(),
            "soket relay policy refuses 127.0.0.1:80: loopback (127.0.0.0/8), and no --allow rule names it"
        );
    }

    #[test]
    fn public_address_by_exact_cidr_and_port_range_rules() {
        let target = sa("93.184.215.14:80");
        assert!(Policy::default().check(None, target).is_err());
        for r in [
            "93.184.215.14:80",
            "93.184.215.0/24:80",
            "0.0.0.0/0:80",
            "93.184.215.14:1-1024",
            "93.184.215.14:*",
            "[::ffff:93.184.215.14]:80",
        ] {
            let p = policy(&[r]);
            assert_eq!(p.check(None, target), Ok(&p.rules()[0]), "{r}");
            // A name does not get in the way of an address rule.
            assert!(p.check(Some("example.com"), target).is_ok(), "{r}");
            // Mapped spelling of the same destination.
            assert!(
                p.check(None, dest("::ffff:93.184.215.14", 80)).is_ok(),
                "{r}"
            );
        }
        let ranged = policy(&["93.184.215.14:8000-8100"]);
        assert!(ranged.check(None, sa("93.184.215.14:8000")).is_ok());
        assert!(ranged.check(None, sa("93.184.215.14:8100")).is_ok());
        for port in [80, 7999, 8101] {
            let refusal = ranged.check(None, dest("93.184.215.14", port)).unwrap_err();
            assert!(matches!(
                refusal.reason,
                RefusalReason::PortNotAllowed { .. }
            ));
        }
        assert!(ranged.check(None, sa("93.184.215.15:8000")).is_err());
    }

    #[test]
    fn ipv6_address_rules() {
        let p = policy(&["[2001:db8::1]:80", "[2606:4700::/32]:443"]);
        assert!(p.check(None, sa("[2001:db8::1]:80")).is_ok());
        assert!(p.check(None, sa("[2001:db8::2]:80")).is_err());
        assert!(p.check(None, sa("[2606:4700:4700::1111]:443")).is_ok());
        assert!(p.check(None, sa("[2606:4700:4700::1111]:80")).is_err());
    }

    #[test]
    fn address_rules_may_name_special_addresses() {
        let p = policy(&["127.0.0.2:8000", "[::1]:8000", "10.0.0.0/8:*"]);
        assert!(p.check(None, sa("127.0.0.2:8000")).is_ok());
        assert!(p.check(None, dest("::ffff:127.0.0.2", 8000)).is_ok());
        assert!(p.check(Some("localhost"), sa("127.0.0.2:8000")).is_ok());
        assert!(p.check(None, sa("[::1]:8000")).is_ok());
        assert!(p.check(None, sa("10.9.8.7:22")).is_ok());
        // Only what the rules name.
        assert!(p.check(None, sa("127.0.0.1:8000")).is_err());
        assert!(p.check(None, sa("127.0.0.2:8001")).is_err());
        assert!(p.check(None, sa("169.254.169.254:80")).is_err());
    }

    #[test]
    fn name_rule_allows_public_not_private() {
        let p = policy(&["example.com:443"]);
        assert!(p
            .check(Some("example.com"), sa("93.184.215.14:443"))
            .is_ok());
        assert!(p
            .check(Some("Example.COM."), sa("93.184.215.14:443"))
            .is_ok());
        assert!(p
            .check(
                Some("example.com"),
                sa("[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443")
            )
            .is_ok());
        assert!(p.check(Some("example.com"), sa("10.0.0.1:443")).is_err());
        // The right address but no name, another name, another port.
        assert!(p.check(None, sa("93.184.215.14:443")).is_err());
        assert!(p
            .check(Some("example.org"), sa("93.184.215.14:443"))
            .is_err());
        assert!(p
            .check(Some("www.example.com"), sa("93.184.215.14:443"))
            .is_err());
        let refusal = p
            .check(Some("example.com"), sa("93.184.215.14:80"))
            .unwrap_err();
        assert!(matches!(
            refusal.reason,
            RefusalReason::PortNotAllowed { .. }
        ));
    }

    #[test]
    fn suffix_rules_match_sub_domains_only() {
        let p = policy(&["*.example.com:*"]);
        let public = sa("93.184.215.14:80");
        for name in ["www.example.com", "a.b.example.com", "WWW.EXAMPLE.COM."] {
            assert!(p.check(Some(name), public).is_ok(), "{name}");
            assert!(p.allows_name(name), "{name}");
        }
        for name in [
            "example.com",
            "example.com.",
            ".example.com",
            "wwwexample.com",
            "example.com.evil.net",
            "www.example.co",
            "evil.com\0.example.com",
            "a..example.com",
            "a b.example.com",
            "",
        ] {
            assert!(p.check(Some(name), public).is_err(), "{name:?}");
            assert!(!p.allows_name(name), "{name:?}");
        }
    }

    #[test]
    fn allows_name_ignores_ports_and_address_rules() {
        let p = policy(&["example.com:443", "10.0.0.0/8:*", "93.184.215.14:80"]);
        assert!(p.allows_name("example.com"));
        assert!(p.allows_name("EXAMPLE.com."));
        assert!(!p.allows_name("www.example.com"));
        assert!(!p.allows_name("10.0.0.1"));
        assert!(!p.allows_name("93.184.215.14"));
        assert!(!p.allows_name("example.com.."));
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
    fn errors_show_the_accepted_forms() {
        let e = "example.com".parse::<Rule>().unwrap_err();
        assert!(e.to_string().contains("[2001:db8::/32]:80"), "{e}");
        assert!(e.to_string().contains("8000-8100"), "{e}");
    }

    #[test]
    fn refusal_messages() {
        let p = policy(&["example.com:80", "93.184.215.14:80"]);
        let msg = |name: Option<&str>, to: &str| p.check(name, sa(to)).unwrap_err().to_string();
        assert_eq!(
            msg(None, "10.0.0.1:80"),
            "soket relay policy refuses 10.0.0.1:80: private network (10.0.0.0/8), and no --allow rule names it"
        );
        assert_eq!(
            msg(Some("example.com"), "127.0.0.1:80"),
            "soket relay policy refuses example.com (127.0.0.1):80: the name is allowed by --allow example.com:80 but it resolves to loopback (127.0.0.0/8)"
        );
        assert_eq!(
            msg(None, "93.184.215.15:22"),
            "soket relay policy refuses 93.184.215.15:22: not on the relay's allow list"
        );
        assert_eq!(
            msg(None, "93.184.215.14:22"),
            "soket relay policy refuses 93.184.215.14:22: port 22 is not on the relay's allow list (--allow 93.184.215.14:80 names this host on other ports)"
        );
        assert_eq!(
            msg(None, "[::1]:80"),
            "soket relay policy refuses [::1]:80: loopback (::1/128), and no --allow rule names it"
        );
        assert_eq!(
            msg(Some("example.com"), "[fd00::1]:80"),
            "soket relay policy refuses example.com (fd00::1):80: the name is allowed by --allow example.com:80 but it resolves to unique local (fc00::/7)"
        );
    }

    #[test]
    fn refusal_shows_hostile_names_on_one_short_line() {
        let p = Policy::default();
        let nasty = "evil\n.com\u{7}";
        let shown = p
            .check(Some(nasty), sa("93.184.215.14:80"))
            .unwrap_err()
            .to_string();
        assert!(!shown.contains('\n') && !shown.contains('\u{7}'), "{shown}");
        assert!(shown.contains(r"evil\n.com"), "{shown}");
        let huge = "a".repeat(100_000);
        let shown = p
            .check(Some(&huge), sa("93.184.215.14:80"))
            .unwrap_err()
            .to_string();
        assert!(shown.len() < 400, "{}", shown.len());
        assert!(shown.contains("..."));
    }
}
