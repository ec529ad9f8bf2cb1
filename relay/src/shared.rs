//! What every session of one relay shares: its configuration, the egress (policy and network), the metrics,
//! the real port range and the lab.
//!
//! Its own module so that the server (which makes it) and the sessions (which read it) both depend on it
//! and not on each other.

use std::sync::Arc;

use crate::clients::Clients;
use crate::egress::Egress;
use crate::lab::Lab;
use crate::metrics::Metrics;
use crate::net::Network;
use crate::policy::Policy;
use crate::vhost::RealPorts;
use crate::Config;

/// What every session of a relay shares. Read-only but for the metrics and the port cursor.
pub struct Shared {
    pub config: Config,
    pub egress: Egress,
    pub metrics: Arc<Metrics>,
    pub real_ports: RealPorts,
    pub lab: Arc<Lab>,
    /// What each client address holds (connections, sessions), against the per-client caps.
    pub clients: Arc<Clients>,
}

impl Shared {
    /// What the sessions of a relay with `config` share, reaching the outside world through `network`.
    pub fn new(config: Config, network: Arc<dyn Network>) -> Shared {
        let metrics = Arc::new(Metrics::default());
        let policy = Policy::new(config.allow.clone());
        Shared {
            egress: Egress::new(policy, network, metrics.clone(), config.connect_timeout),
            real_ports: RealPorts::new(config.bind_ip, config.port_range),
            // Lab UDP answers the address the sessions' sockets send from, whatever --bind-ip is.
            lab: Arc::new(
                Lab::new(config.lab_idle_timeout, config.lab_local_clients)
                    .sending_from(config.bind_ip),
            ),
            clients: Arc::default(),
            metrics,
            config,
        }
    }
}
