//! The egress allow list: which destinations the relay may dial on behalf of a session.
//!
//! The relay is deny-by-default. The operator names what learners may reach with `--allow HOST:PORT`
//! rules ([`Rule`]); anything else is refused with a [`Refusal`], whose message ends up in the learner's
//! Python `OSError`, so it says what was refused and why.
//!
//! Some addresses are *guarded*: those in a [`special_range`] (loopback, private, link-local with the cloud
//! metadata service, NAT64, 6to4, ...) and the relay host's own addresses, through which a learner would
//! reach the host's own services. The kinds of rule are trusted differently with them:
//! - An address rule (`10.1.0.0/16:80`, `127.0.0.2:8000`) is the operator naming addresses on purpose, so it
//!   opens guarded addresses when it lies inside their range: `10.0.0.0/8`, `10.1.0.0/16` and
//!   `169.254.169.254` name a special range or part of it, and open what they name; that is how a test
//!   server on the relay's own host is reached. A rule broader than a special range (`0.0.0.0/0`, `::/0`,
//!   `10.0.0.0/7`) does not: written to mean "the internet", it must not open 169.254.169.254 by accident.
//! - A name rule (`example.com:443`, `*.example.com:*`) trusts DNS to say where the name points, and DNS is
//!   not the operator's: whoever controls the zone can point it at 127.0.0.1 or 169.254.169.254 at any time
//!   (DNS rebinding). So a name rule never leads to a guarded address.
//! - `public:PORTS` is every unguarded address and every name that resolves to one.
//!
//! [`Policy::describe`] says in words what the rules open, for the operator at start-up.
//!
//! [`Policy::check`] is called with the address the relay is about to dial, after resolution: a check on
//! the name alone would be bypassed by whatever the name resolves to.

mod rule;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use soket_protocol::errno::{self, Failure};

use crate::addr::{
    canonical, embeds_ipv4, host_addresses, special_range, special_ranges, SpecialRange,
};

use rule::{normalize_name, RuleHost};
pub use rule::{Rule, RuleError};

/// What [`SpecialRange::what`] says of the relay host's own addresses.
const HOST_ADDRESS: &str = "this relay host's own address";

/// The operator's allow list. Empty means nothing may be dialed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    /// The relay host's own addresses that are in no special range (those are guarded already),
    /// [`canonical`]: guarded like a special range of one address each.
    host: Vec<IpAddr>,
}

impl Policy {
    /// The policy of `rules` on this host: its interfaces' addresses are looked up now (see
    /// [`host_addresses`] for what that misses) and guarded. If they cannot be read, the special ranges
    /// are still guarded, and a warning says so.
    pub fn new(rules: Vec<Rule>) -> Policy {
        let host = host_addresses().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list this host's addresses; broad --allow rules may reach them");
            Vec::new()
        });
        Policy::with_host_addresses(rules, host)
    }

    /// The policy of `rules` on a host whose own addresses are `host` (any order, any form).
    pub fn with_host_addresses(rules: Vec<Rule>, host: Vec<IpAddr>) -> Policy {
        let mut own: Vec<IpAddr> = Vec::new();
        for ip in host.into_iter().map(canonical) {
            if special_range(ip).is_none() && !own.contains(&ip) {
                own.push(ip);
            }
        }
        Policy { rules, host: own }
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
    /// `dest` is compared after [`canonical`]. An unguarded address is allowed by an address rule that
    /// contains it, a `public` rule, or a name rule for `name`. A guarded one (see the module's docs) only by
    /// an address rule inside its guard. Everything else is refused.
    #[allow(
        clippy::result_large_err,
        reason = "a refusal ends the dial it answers, so its size is paid once, off the data path"
    )]
    pub fn check(&self, name: Option<&str>, dest: SocketAddr) -> Result<&Rule, Refusal> {
        let ip = canonical(dest.ip());
        let port = dest.port();
        let guard = self.guard(ip);
        let name_key = name.and_then(normalize_name);
        let refuse = |reason| Refusal {
            dest: SocketAddr::new(ip, port),
            name: name.map(str::to_owned),
            reason,
        };

        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.ports.contains(port) && r.matches_ip(ip, guard.as_ref()))
        {
            return Ok(rule);
        }
        if let Some(key) = name_key {
            if let Some(rule) = self
                .rules
                .iter()
                .find(|r| r.ports.contains(port) && r.matches_name(key))
            {
                return match guard {
                    None => Ok(rule),
                    Some(range) => Err(refuse(RefusalReason::NameResolvesToSpecial {
                        rule: rule.clone(),
                        range,
                    })),
                };
            }
        }
        if let Some(rule) = self.rules.iter().find(|r| {
            r.matches_ip(ip, guard.as_ref()) || name_key.is_some_and(|key| r.matches_name(key))
        }) {
            return Err(refuse(RefusalReason::PortNotAllowed { rule: rule.clone() }));
        }
        Err(refuse(match guard {
            Some(range) => RefusalReason::Special(range),
            None => RefusalReason::NotAllowed,
        }))
    }

    /// What guards `ip` (canonical): its special range, or the host's own address it is, as a range of one.
    fn guard(&self, ip: IpAddr) -> Option<SpecialRange> {
        special_range(ip).or_else(|| {
            self.host.contains(&ip).then(|| SpecialRange {
                net: IpNet::from(ip),
                what: HOST_ADDRESS,
            })
        })
    }

    /// The guards that count for an address rule for `net`: the narrowest one `net` lies inside (the
    /// rule opens it on purpose), the special ranges strictly inside `net` and the own addresses in it
    /// (the rule leaves them closed).
    fn guards_of(&self, net: IpNet) -> (Option<SpecialRange>, Vec<SpecialRange>, Vec<IpAddr>) {
        let own = self.host.iter().map(|&ip| SpecialRange {
            net: IpNet::from(ip),
            what: HOST_ADDRESS,
        });
        // special_ranges() lists a range before any range containing it, so the first is the narrowest.
        let inside = special_ranges()
            .chain(own)
            .find(|range| range.net.contains(&net));
        let closed = special_ranges()
            .filter(|range| net.contains(&range.net) && range.net != net)
            .collect();
        let own = self
            .host
            .iter()
            .copied()
            .filter(|&ip| net.contains(&ip) && IpNet::from(ip) != net)
            .collect();
        (inside, closed, own)
    }

    /// What the rules open, one line per rule, for the operator to read at start-up, and then the host's
    /// own addresses found. The lines that open a guarded range, or everything public on some ports, are
    /// warnings.
    pub fn describe(&self) -> Vec<Opening> {
        let mut lines: Vec<Opening> = self.rules.iter().map(|r| self.describe_rule(r)).collect();
        if self.rules.is_empty() {
            lines.push(Opening::note(
                "no --allow rule: sessions reach only their own host".into(),
            ));
        }
        if !self.host.is_empty() {
            let shown: Vec<String> = self.host.iter().map(IpAddr::to_string).collect();
            lines.push(Opening::note(format!(
                "this relay host's own addresses, closed to every rule that does not name them: {}",
                shown.join(", ")
            )));
        }
        lines
    }

    fn describe_rule(&self, rule: &Rule) -> Opening {
        let ports = rule.ports.phrase();
        let net = match &rule.host {
            RuleHost::Public => {
                return Opening::warning(format!(
                    "--allow {rule} opens every public address, IPv4 and IPv6, and every name that \
                     resolves to one, on {ports}; special ranges and this relay host's own addresses \
                     stay closed"
                ))
            }
            RuleHost::Name(name) => {
                return Opening::note(format!(
                    "--allow {rule} opens {name} on {ports}, wherever it resolves outside the special \
                     ranges and this relay host's own addresses"
                ))
            }
            RuleHost::Suffix(suffix) => {
                return Opening::note(format!(
                    "--allow {rule} opens every name under {suffix} (not {suffix} itself) on {ports}, \
                     wherever they resolve outside the special ranges and this relay host's own addresses"
                ))
            }
            RuleHost::Net(net) => *net,
        };
        let shown = match net {
            IpNet::V4(v4) if v4.prefix_len() == 0 => "every public IPv4 address".to_string(),
            IpNet::V6(v6) if v6.prefix_len() == 0 => "every public IPv6 address".to_string(),
            IpNet::V4(v4) if v4.prefix_len() == 32 => v4.addr().to_string(),
            IpNet::V6(v6) if v6.prefix_len() == 128 => v6.addr().to_string(),
            net => net.to_string(),
        };
        let (inside, closed, own) = self.guards_of(net);
        let mut line = format!("--allow {rule} opens {shown} on {ports}");
        if let Some(range) = inside {
            if range.what == HOST_ADDRESS {
                line.push_str(&format!(", {HOST_ADDRESS}: named on purpose, so open"));
            } else {
                line.push_str(&format!(", in {range}: named on purpose, so open"));
            }
            if embeds_ipv4(net) {
                line.push_str(
                    " (these addresses carry an IPv4 address, and a gateway may reach it, \
                     private or link-local ones included)",
                );
            }
        }
        let mut shut = Vec::new();
        match closed.len() {
            0 => {}
            1..=3 => shut.extend(closed.iter().map(SpecialRange::to_string)),
            n => {
                let mut kinds: Vec<&str> = Vec::new();
                for range in &closed {
                    if !kinds.contains(&range.what) {
                        kinds.push(range.what);
                    }
                }
                shut.push(format!("{n} special ranges ({})", kinds.join(", ")));
            }
        }
        if !own.is_empty() {
            let shown: Vec<String> = own.iter().map(IpAddr::to_string).collect();
            let plural = if own.len() == 1 { "" } else { "es" };
            shut.push(format!("{HOST_ADDRESS}{plural} {}", shown.join(", ")));
        }
        if !shut.is_empty() {
            line.push_str("; closed unless a rule names them: ");
            line.push_str(&shut.join(" and "));
        }
        if inside.is_some() || !closed.is_empty() || !own.is_empty() {
            Opening::warning(line)
        } else {
            Opening::note(line)
        }
    }
}

/// One line of [`Policy::describe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    /// Whether the operator should look twice: the rule opens a special range or this host's own
    /// address, or every public address of a family on some ports.
    pub warning: bool,
    /// One line of plain words, without a trailing period.
    pub text: String,
}

impl Opening {
    fn note(text: String) -> Opening {
        Opening {
            warning: false,
            text,
        }
    }

    fn warning(text: String) -> Opening {
        Opening {
            warning: true,
            text,
        }
    }
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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
    /// No rule names this host, and it is guarded: in a special range, or one of the relay host's own
    /// addresses (then the range is that address alone). A rule broader than the range does not name it.
    Special(SpecialRange),
    /// A rule names this host, but not on this port.
    PortNotAllowed { rule: Rule },
    /// A name or `public` rule allows the name, but it resolved to a guarded address, where a name may
    /// never lead.
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

/// Text from a peer (a name, a `Host` or `Origin` header), shown so that it stays one short line in
/// messages and logs whatever it holds: control and unprintable characters escaped as Rust writes them
/// (`\n`, `\u{1b}`, `\u{202e}`), at most a DNS name's 253 characters.
pub(crate) struct PeerName<'a>(pub(crate) &'a str);

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
    use crate::addr::parse_ip_literal;

    #[test]
    fn a_shown_name_is_one_printable_line() {
        let shown = PeerName("evil\nname\r\x1b[2J\0\u{202e}").to_string();
        assert_eq!(shown, r"evil\nname\r\u{1b}[2J\0\u{202e}");
        assert_eq!(PeerName("example.com").to_string(), "example.com");
        let long = "a".repeat(300);
        assert_eq!(
            PeerName(&long).to_string(),
            format!("{}...", "a".repeat(253))
        );
    }

    fn rule(s: &str) -> Rule {
        s.parse()
            .unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    /// The policy of `rules` on a host with no address of its own beyond the special ranges.
    fn policy(rules: &[&str]) -> Policy {
        policy_on(rules, &[])
    }

    /// The policy of `rules` on a host whose own addresses are `host`.
    fn policy_on(rules: &[&str], host: &[&str]) -> Policy {
        let host = host.iter().map(|ip| ip.parse().unwrap()).collect();
        Policy::with_host_addresses(rules.iter().map(|s| rule(s)).collect(), host)
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

    /// Addresses no broad rule may open: every disguise of a special address a broad rule would cover.
    const GUARDED: &[&str] = &[
        "169.254.169.254",
        "10.0.0.1",
        "127.0.0.2",
        "100.64.0.1",
        "192.0.2.1",
        "0.1.2.3",
        "240.0.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::a00:1",
        "64:ff9b:1::a9fe:a9fe",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::",
        "2001:0:a9fe:a9fe::",
        "::a9fe:a9fe",
        "2001:db8::1",
        "5f00::1",
    ];

    #[test]
    fn broad_rules_do_not_open_special_ranges() {
        let broad = policy(&["0.0.0.0/0:*", "[::/0]:*", "0.0.0.0/1:*", "[2000::/3]:*"]);
        for ip in NOT_GLOBAL.iter().chain(GUARDED) {
            let to = dest(ip, 80);
            let refusal = broad.check(None, to).unwrap_err();
            assert_eq!(
                refusal.reason,
                RefusalReason::Special(special_range(to.ip()).unwrap()),
                "{ip}: {refusal}"
            );
        }
        let (v4, v6) = (&broad.rules()[0], &broad.rules()[1]);
        for (ip, rule) in [
            ("93.184.216.34", v4),
            ("1.1.1.1", v4),
            ("::ffff:8.8.8.8", v4),
            ("2606:4700:4700::1111", v6),
        ] {
            assert_eq!(broad.check(None, dest(ip, 443)), Ok(rule), "{ip}");
        }
        // Broader than one special range but not the whole space: still closed inside it.
        let seven = policy(&["10.0.0.0/7:80", "[fc00::/6]:80"]);
        assert!(seven.check(None, sa("11.0.0.1:80")).is_ok());
        assert!(seven.check(None, sa("10.0.0.1:80")).is_err());
        assert!(seven.check(None, sa("[fd00::1]:80")).is_err());
        assert!(seven.check(None, sa("[fe80::1]:80")).is_err());
    }

    #[test]
    fn a_rule_inside_a_special_range_opens_what_it_names() {
        let p = policy(&[
            "10.1.0.0/16:*",
            "169.254.169.254:80",
            "[fe80::/10]:22",
            "[64:ff9b::/96]:443",
            "127.0.0.0/8:8000",
            "[::/8]:9",
        ]);
        for (to, allowed) in [
            ("10.1.2.3:80", true),
            ("10.2.0.1:80", false),
            ("169.254.169.254:80", true),
            ("169.254.169.253:80", false),
            ("169.254.169.254:443", false),
            ("[fe80::1]:22", true),
            ("[fe80::1]:80", false),
            ("[64:ff9b::a9fe:a9fe]:443", true),
            ("[64:ff9b:1::1]:443", false),
            ("127.0.0.2:8000", true),
            ("[::ffff:127.0.0.2]:8000", true),
            // ::/8 is reserved, and the loopback and unspecified addresses in it are ranges of their own.
            ("[1::1]:9", true),
            ("[::1]:9", false),
            ("[::a9fe:a9fe]:9", false),
        ] {
            assert_eq!(p.check(None, sa(to)).is_ok(), allowed, "{to}");
        }
    }

    #[test]
    fn the_hosts_own_addresses_are_guarded_like_special_ranges() {
        let rules = [
            "0.0.0.0/0:*",
            "[::/0]:*",
            "93.184.216.0/24:*",
            "public:*",
            "own.example:*",
        ];
        let host = [
            "93.184.216.10",
            "::ffff:93.184.216.11",
            "2a00:1450::5",
            "10.0.0.5",
        ];
        let p = policy_on(&rules, &host);
        for ip in [
            "93.184.216.10",
            "93.184.216.11",
            "::ffff:93.184.216.10",
            "2a00:1450::5",
        ] {
            let refusal = p.check(None, dest(ip, 22)).unwrap_err();
            let RefusalReason::Special(range) = refusal.reason else {
                panic!("{ip}: {refusal}");
            };
            assert_eq!(range.what, HOST_ADDRESS, "{ip}");
            assert_eq!(range.net, IpNet::from(canonical(dest(ip, 22).ip())), "{ip}");
            // A name leads there no more than an address rule does.
            let refusal = p.check(Some("own.example"), dest(ip, 22)).unwrap_err();
            assert!(
                matches!(refusal.reason, RefusalReason::NameResolvesToSpecial { .. }),
                "{ip}: {refusal}"
            );
        }
        assert_eq!(
            p.check(None, sa("93.184.216.10:22")).unwrap_err().to_string(),
            "soket relay policy refuses 93.184.216.10:22: this relay host's own address (93.184.216.10/32), and no --allow rule names it"
        );
        // Its neighbours are not the host.
        assert!(p.check(None, sa("93.184.216.12:22")).is_ok());
        assert!(p
            .check(Some("own.example"), sa("[2a00:1450::6]:22"))
            .is_ok());
        // A private own address is guarded as private, and opened by a rule for its range.
        assert!(p.check(None, sa("10.0.0.5:22")).is_err());
        let private = policy_on(&["10.0.0.0/8:*"], &host);
        assert!(private.check(None, sa("10.0.0.5:22")).is_ok());
        // Naming the address opens it.
        let named = policy_on(&["93.184.216.10:22", "[2a00:1450::5]:22"], &host);
        assert!(named.check(None, sa("93.184.216.10:22")).is_ok());
        assert!(named.check(None, sa("[2a00:1450::5]:22")).is_ok());
        assert!(named.check(None, sa("93.184.216.10:23")).is_err());
    }

    #[test]
    fn only_unspecial_host_addresses_are_kept() {
        let p = policy_on(
            &[],
            &[
                "127.0.0.1",
                "::1",
                "10.0.0.5",
                "fe80::1",
                "93.184.216.10",
                "::ffff:93.184.216.10",
            ],
        );
        assert_eq!(p.host, vec!["93.184.216.10".parse::<IpAddr>().unwrap()]);
        // This host's real addresses, whatever they are: never a special one.
        let real = Policy::new(Vec::new());
        assert!(
            real.host.iter().all(|&ip| special_range(ip).is_none()),
            "{:?}",
            real.host
        );
    }

    #[test]
    fn public_rule_opens_unguarded_addresses_and_names() {
        let p = policy_on(&["public:80"], &["93.184.216.10"]);
        let public = &p.rules()[0];
        assert_eq!(p.check(None, sa("93.184.216.34:80")), Ok(public));
        assert_eq!(p.check(None, sa("[2606:4700:4700::1111]:80")), Ok(public));
        assert_eq!(
            p.check(Some("example.com"), sa("93.184.216.34:80")),
            Ok(public)
        );
        assert!(p.allows_name("anything.example"));
        assert!(!p.allows_name("not a name"));
        let refusal = p.check(None, sa("93.184.216.34:81")).unwrap_err();
        assert_eq!(
            refusal.reason,
            RefusalReason::PortNotAllowed {
                rule: public.clone()
            }
        );
        for ip in NOT_GLOBAL.iter().chain(GUARDED).chain(&["93.184.216.10"]) {
            assert!(p.check(None, dest(ip, 80)).is_err(), "{ip}");
            let refusal = p.check(Some("rebind.example"), dest(ip, 80)).unwrap_err();
            assert!(
                matches!(refusal.reason, RefusalReason::NameResolvesToSpecial { .. }),
                "{ip}: {refusal}"
            );
        }
        assert_eq!(
            p.check(Some("rebind.example"), sa("169.254.169.254:80")).unwrap_err().to_string(),
            "soket relay policy refuses rebind.example (169.254.169.254):80: the name is allowed by --allow public:80 but it resolves to link-local (cloud metadata lives here) (169.254.0.0/16)"
        );
    }

    fn described(p: &Policy) -> Vec<(bool, String)> {
        p.describe()
            .into_iter()
            .map(|o| (o.warning, o.text))
            .collect()
    }

    #[test]
    fn describe_says_what_each_rule_opens() {
        let p = policy_on(
            &[
                "0.0.0.0/0:*",
                "10.0.0.0/7:80",
                "10.1.0.0/16:80",
                "169.254.169.254:80",
                "93.184.216.0/24:80",
                "93.184.216.10:22",
                "198.41.0.0/24:53",
                "public:80-90",
                "example.com:443",
                "*.example.com:*",
                "[64:ff9b::/96]:*",
            ],
            &["93.184.216.10"],
        );
        let lines = described(&p);
        let expected = [
            (true, "--allow 0.0.0.0/0:* opens every public IPv4 address on every port; closed unless a rule names them: 17 special ranges (unspecified, this network, private network, carrier-grade NAT, loopback, link-local (cloud metadata lives here), IETF protocol assignments, documentation, 6to4 relay anycast (deprecated), benchmarking, multicast, broadcast, reserved) and this relay host's own address 93.184.216.10"),
            (true, "--allow 10.0.0.0/7:80 opens 10.0.0.0/7 on port 80; closed unless a rule names them: private network (10.0.0.0/8)"),
            (true, "--allow 10.1.0.0/16:80 opens 10.1.0.0/16 on port 80, in private network (10.0.0.0/8): named on purpose, so open"),
            (true, "--allow 169.254.169.254:80 opens 169.254.169.254 on port 80, in link-local (cloud metadata lives here) (169.254.0.0/16): named on purpose, so open"),
            (true, "--allow 93.184.216.0/24:80 opens 93.184.216.0/24 on port 80; closed unless a rule names them: this relay host's own address 93.184.216.10"),
            (true, "--allow 93.184.216.10:22 opens 93.184.216.10 on port 22, this relay host's own address: named on purpose, so open"),
            (false, "--allow 198.41.0.0/24:53 opens 198.41.0.0/24 on port 53"),
            (true, "--allow public:80-90 opens every public address, IPv4 and IPv6, and every name that resolves to one, on ports 80-90; special ranges and this relay host's own addresses stay closed"),
            (false, "--allow example.com:443 opens example.com on port 443, wherever it resolves outside the special ranges and this relay host's own addresses"),
            (false, "--allow *.example.com:* opens every name under example.com (not example.com itself) on every port, wherever they resolve outside the special ranges and this relay host's own addresses"),
            (true, "--allow [64:ff9b::/96]:* opens 64:ff9b::/96 on every port, in NAT64 (64:ff9b::/96): named on purpose, so open (these addresses carry an IPv4 address, and a gateway may reach it, private or link-local ones included)"),
            (false, "this relay host's own addresses, closed to every rule that does not name them: 93.184.216.10"),
        ];
        for (line, want) in lines.iter().zip(expected.iter()) {
            assert_eq!((line.0, line.1.as_str()), *want);
        }
        assert_eq!(lines.len(), expected.len());
        for (_, line) in &lines {
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn describe_an_empty_policy() {
        assert_eq!(
            described(&policy(&[])),
            vec![(
                false,
                "no --allow rule: sessions reach only their own host".to_string()
            )]
        );
        let v6 = described(&policy(&["[::/0]:443"]));
        assert!(v6[0].0);
        assert!(
            v6[0].1.starts_with("--allow [::/0]:443 opens every public IPv6 address on port 443; closed unless a rule names them: 33 special ranges (unspecified, loopback,"),
            "{}",
            v6[0].1
        );
    }
}
