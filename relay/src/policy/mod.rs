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

mod rule;

use std::fmt;
use std::net::SocketAddr;

use soket_protocol::errno::{self, Failure};

use crate::addr::{canonical, special_range, SpecialRange};

use rule::normalize_name;
pub use rule::{Rule, RuleError};

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
    use crate::addr::parse_ip_literal;

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
