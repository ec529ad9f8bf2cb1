//! Egress: the one door from a session to the world beyond the relay host.
//!
//! [`Egress`] holds the operator's policy and the [`Network`], and is the only maker of [`Allowed`] (a
//! destination the policy allows) and [`AllowedName`] (a name some rule names). `Network::connect` and
//! `Network::send_to` take only an `Allowed` and `Network::resolve` only an `AllowedName`, so "never dial,
//! send to or look up what the policy refuses" holds by the types: code that skipped the check would not
//! compile. Every refusal is counted, logged and worded here, the same way from every operation.
//!
//! What stays on the relay host (a session's own ports, the lab's servers) is not the outside world and
//! does not come through here.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use soket_protocol::errno::{self, describe};
use soket_protocol::Failure;
use tokio::net::{TcpStream, UdpSocket};

use crate::metrics::Metrics;
use crate::net::{BoxFuture, Network};
use crate::policy::{PeerName, Policy};

/// A destination the policy allows; only [`Egress`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed(SocketAddr);

impl Allowed {
    pub fn addr(self) -> SocketAddr {
        self.0
    }
}

/// A name some allow rule names, so the relay may ask DNS about it; only [`Egress`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedName(String);

impl AllowedName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The policy, the network behind it, and the refusals counter.
pub struct Egress {
    policy: Policy,
    network: Arc<dyn Network>,
    metrics: Arc<Metrics>,
    /// How long a lookup may take.
    lookup_timeout: Duration,
}

impl Egress {
    pub fn new(
        policy: Policy,
        network: Arc<dyn Network>,
        metrics: Arc<Metrics>,
        lookup_timeout: Duration,
    ) -> Egress {
        Egress {
            policy,
            network,
            metrics,
            lookup_timeout,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `dest`, an address the page gave, if the policy allows it.
    pub fn route(&self, session: u64, dest: SocketAddr) -> Result<Allowed, Failure> {
        match self.policy.check(None, dest) {
            Ok(_) => Ok(Allowed(dest)),
            Err(refusal) => Err(self.refused(session, refusal.into())),
        }
    }

    /// A name the page wants to dial or send to on `port`. A name no rule names is refused as a
    /// destination (`EACCES`) before anyone asks DNS about it.
    pub fn name(&self, session: u64, name: &str, port: u16) -> Result<AllowedName, Failure> {
        self.lookup_name(name).ok_or_else(|| {
            let message = format!(
                "soket relay policy refuses {}:{port}: not on the relay's allow list",
                PeerName(name)
            );
            self.refused(session, Failure::with(errno::EACCES, message))
        })
    }

    /// A name the page wants to look up. One no rule names is not looked up, and its lookup answers as
    /// getaddrinfo does for a name that does not exist (`EAI_NONAME`, saying why): that is not a refused
    /// destination, so nothing is counted.
    pub fn lookup_name(&self, name: &str) -> Option<AllowedName> {
        self.policy
            .allows_name(name)
            .then(|| AllowedName(name.to_owned()))
    }

    /// Why [`Egress::lookup_name`] said no, as the lookup's answer.
    pub fn unknown_name(name: &str) -> Failure {
        let message = format!(
            "{} (soket: {} is not on this relay's allow list)",
            describe(errno::EAI_NONAME),
            PeerName(name)
        );
        Failure::with(errno::EAI_NONAME, message)
    }

    /// The addresses of `name`, canonical and at most `MAX_ADDRS` of them.
    pub async fn lookup(&self, name: &AllowedName) -> Result<Vec<IpAddr>, Failure> {
        match tokio::time::timeout(self.lookup_timeout, self.network.resolve(name)).await {
            Ok(Ok(addrs)) if !addrs.is_empty() => {
                let mut addrs: Vec<IpAddr> =
                    addrs.into_iter().map(crate::addr::canonical).collect();
                addrs.truncate(soket_protocol::MAX_ADDRS);
                Ok(addrs)
            }
            Ok(_) => Err(Failure::errno(errno::EAI_NONAME)),
            Err(_) => Err(Failure::errno(errno::EAI_AGAIN)),
        }
    }

    /// Looks `name` up and picks the first of its addresses the policy allows on `port`.
    pub async fn route_name(
        &self,
        session: u64,
        name: &AllowedName,
        port: u16,
    ) -> Result<Allowed, Failure> {
        let mut refusal = None;
        for ip in self.lookup(name).await? {
            let dest = SocketAddr::new(ip, port);
            match self.policy.check(Some(name.as_str()), dest) {
                Ok(_) => return Ok(Allowed(dest)),
                Err(r) => refusal = refusal.or(Some(r)),
            }
        }
        let failure = match refusal {
            Some(r) => r.into(),
            None => Failure::errno(errno::EAI_NONAME),
        };
        Err(self.refused(session, failure))
    }

    /// A TCP connection to an allowed destination.
    pub fn connect(&self, to: Allowed) -> BoxFuture<'_, std::io::Result<TcpStream>> {
        self.network.connect(to)
    }

    /// One datagram from the session's `socket` to an allowed destination.
    pub fn send_to(&self, socket: &UdpSocket, payload: &[u8], to: Allowed) -> std::io::Result<()> {
        self.network.send_to(socket, payload, to)
    }

    /// The one place a refusal is counted and logged. Its message names the page's destination only as
    /// [`PeerName`] (here or in the policy), so the log line stays one line.
    fn refused(&self, session: u64, failure: Failure) -> Failure {
        self.metrics.refusals.fetch_add(1, Relaxed);
        tracing::info!(session, refusal = %failure.message, "refused");
        failure
    }
}
