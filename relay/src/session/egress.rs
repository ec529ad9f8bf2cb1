//! Egress: what a session may reach beyond its own host, and how names and addresses get there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use soket_protocol::errno::{self, describe};
use soket_protocol::{Down, StreamId};
use tokio::net::TcpStream;

use super::{End, Failure, Internal, Session};
use crate::lab::{self, LabState};
use crate::shared::Shared;
use crate::vhost::Destination;

impl Session {
    /// A name the allow list does not name is refused before anyone asks DNS about it.
    pub(super) fn check_name(&self, name: &str, port: u16) -> Result<(), Failure> {
        if self.shared.policy.allows_name(name) {
            return Ok(());
        }
        self.shared.metrics.refusals.fetch_add(1, Relaxed);
        let message =
            format!("soket relay policy refuses {name}:{port}: not on the relay's allow list");
        Err(Failure::with(errno::EACCES, message))
    }

    pub(super) fn check_policy(&self, name: Option<&str>, dest: SocketAddr) -> Result<(), Failure> {
        match self.shared.policy.check(name, dest) {
            Ok(_) => Ok(()),
            Err(refusal) => {
                self.shared.metrics.refusals.fetch_add(1, Relaxed);
                tracing::info!(session = self.id, %refusal, "refused");
                Err(refusal.into())
            }
        }
    }

    pub(super) async fn resolve(&mut self, stream: StreamId, host: String) -> Result<(), End> {
        let name = match self.host.destination(&host) {
            Destination::OwnHost { addr } => {
                let addr = if addr.is_unspecified() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    addr
                };
                return self
                    .answer(
                        stream,
                        Ok(Down::Resolved {
                            stream,
                            addrs: vec![addr],
                        }),
                    )
                    .await;
            }
            Destination::Addr(ip) => {
                return self
                    .answer(
                        stream,
                        Ok(Down::Resolved {
                            stream,
                            addrs: vec![ip],
                        }),
                    )
                    .await
            }
            Destination::Lab => {
                let addrs = vec![IpAddr::V4(lab::LAB_ADDR)];
                return self
                    .answer(stream, Ok(Down::Resolved { stream, addrs }))
                    .await;
            }
            Destination::Name(name) => name,
        };
        if !self.shared.policy.allows_name(&name) {
            let message = format!(
                "{} (soket: {name} is not on this relay's allow list)",
                describe(errno::EAI_NONAME)
            );
            return self
                .answer(stream, Err(Failure::with(errno::EAI_NONAME, message)))
                .await;
        }
        let Ok(permit) = self.resolutions.clone().try_acquire_owned() else {
            return self
                .answer(stream, Err(Failure::errno(errno::EAI_AGAIN)))
                .await;
        };
        let shared = self.shared.clone();
        let internal = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            let reply = match lookup(&shared, &name).await {
                Ok(addrs) => Down::Resolved { stream, addrs },
                Err(failure) => Down::failed(stream, failure),
            };
            let _ = internal.send(Internal::Reply(reply)).await;
        });
        Ok(())
    }
}

pub(super) enum Target {
    /// The real port behind one of the session's own listeners: dialled on the relay host directly, since
    /// it is not the outside world.
    Own(SocketAddr),
    Addr(SocketAddr),
    Name(String),
    /// A lab server's real loopback port, dialled for this session's lab state.
    Lab(SocketAddr, Arc<LabState>),
}

/// Resolves an allowed name and picks its first address the policy allows.
pub(super) async fn resolve_allowed(
    shared: &Shared,
    name: &str,
    port: u16,
) -> Result<SocketAddr, Failure> {
    let addrs = lookup(shared, name).await?;
    let mut refusal = None;
    for ip in addrs {
        let dest = SocketAddr::new(ip, port);
        match shared.policy.check(Some(name), dest) {
            Ok(_) => return Ok(dest),
            Err(r) => refusal = refusal.or(Some(r)),
        }
    }
    shared.metrics.refusals.fetch_add(1, Relaxed);
    Err(match refusal {
        Some(r) => r.into(),
        None => Failure::errno(errno::EAI_NONAME),
    })
}

pub(super) async fn lookup(shared: &Shared, name: &str) -> Result<Vec<IpAddr>, Failure> {
    match tokio::time::timeout(shared.config.connect_timeout, shared.network.resolve(name)).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => {
            let mut addrs: Vec<IpAddr> = addrs.into_iter().map(crate::addr::canonical).collect();
            addrs.truncate(soket_protocol::MAX_ADDRS);
            Ok(addrs)
        }
        Ok(_) => Err(Failure::errno(errno::EAI_NONAME)),
        Err(_) => Err(Failure::errno(errno::EAI_AGAIN)),
    }
}

pub(super) async fn dial(shared: &Shared, target: Target, port: u16) -> Result<TcpStream, Failure> {
    let connecting = match target {
        Target::Own(real) => Box::pin(TcpStream::connect(real)),
        Target::Addr(dest) => shared.network.connect(dest),
        Target::Lab(real, state) => Box::pin(async move { shared.lab.dial(state, real).await }),
        Target::Name(name) => shared
            .network
            .connect(resolve_allowed(shared, &name, port).await?),
    };
    match tokio::time::timeout(shared.config.connect_timeout, connecting).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Err(_) => Err(Failure::errno(errno::ETIMEDOUT)),
    }
}
