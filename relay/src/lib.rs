//! The Soket relay: one process that serves the page and tunnels its sockets.
//!
//! A browser page opens one WebSocket (`/ws`, subprotocol `soket.v1`) and becomes a *session*: a virtual
//! host with its own name and port space. Every socket the page's Python programs open travels as a stream
//! of the [`soket_protocol`] over that WebSocket, and the relay opens the real TCP or UDP socket for it —
//! after the egress policy agreed.
//!
//! # Layout
//! - [`config`]: the command-line flags, with defaults that need none for localhost use.
//! - [`addr`]: what a host string means as an address (every `inet_aton` form), and which addresses are
//!   special (loopback, private, link-local, ...).
//! - [`policy`]: the operator's allow list and the check made on every resolved address before a dial.
//! - [`egress`]: the one door to the outside world: the policy and the network, the only maker of an
//!   [`egress::Allowed`] destination, and the one place refusals are counted and logged.
//! - [`net`]: the real network (DNS, TCP dials, UDP sends) behind a trait, so tests can record instead of
//!   dialling or sending.
//! - [`vhost`]: the session's virtual host: which names and addresses are "this host", and its ports.
//! - [`session`]: one WebSocket, its streams and their real sockets, flow control and quotas.
//! - [`shared`]: what every session of a relay shares (config, egress, metrics, ports, lab).
//! - [`server`]: the HTTP side: static files with cross-origin isolation headers, the `/ws` upgrade with
//!   its admission checks, `/healthz`, `/metrics`, session limits and graceful shutdown.
//! - [`lab`]: the lab network, its own crate (`soket-lab`) re-exported here: servers for HTTP, FTP, SMTP,
//!   POP3, IMAP4, NNTP, Telnet, Gopher and the small services, reached inside a session as the host `lab`.
//! - [`accept`]: HTTP connections accepted within the global and per-client caps, served by hyper with
//!   the header and keep-alive timeouts.
//! - [`admission`]: who may talk to the relay: the `Host` every request names (DNS rebinding), the
//!   Origin and access token of a WebSocket.
//! - [`capacity`]: whether the limits add up on this host (ports, open files), checked at start-up.
//! - [`clients`]: who a client is (the peer, or the address a trusted proxy forwarded) and what each
//!   holds.
//! - [`metrics`]: counters and gauges, rendered for Prometheus.
//! - [`ratelimit`]: the per-session bytes-per-second budget.

pub mod accept;
pub mod addr;
pub mod admission;
pub mod capacity;
pub mod clients;
pub mod config;
pub mod egress;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod ratelimit;
pub mod server;
pub mod session;
pub mod shared;
pub mod vhost;

/// The lab network is its own crate; the relay reaches it as `crate::lab`.
pub use soket_lab as lab;

pub use config::Config;
pub use server::Relay;
