//! How a session reaches a destination: its own listeners and the lab on the relay host, everything else
//! through the relay's [`Egress`]; and the `Resolve` operation, which answers with the same addresses.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use soket_protocol::errno;
use soket_protocol::{Down, Failure, StreamId};
use tokio::net::TcpStream;

use super::{End, Internal, Session};
use crate::egress::{Allowed, AllowedName, Egress};
use crate::lab::{self, LabState};
use crate::shared::Shared;
use crate::vhost::Destination;

impl Session {
    pub(super) async fn resolve(&mut self, stream: StreamId, host: String) -> Result<(), End> {
        let addr = match self.host.destination(&host) {
            Destination::OwnHost { addr } if addr.is_unspecified() => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            Destination::OwnHost { addr } => addr,
            Destination::Addr(ip) => ip,
            Destination::Lab => IpAddr::V4(lab::LAB_ADDR),
            Destination::Name(name) => {
                let Some(name) = self.shared.egress.lookup_name(&name) else {
                    return self.answer(stream, Err(Egress::unknown_name(&name))).await;
                };
                let shared = self.shared.clone();
                let started = self.spawn_resolution(async move {
                    Some(match shared.egress.lookup(&name).await {
                        Ok(addrs) => Down::Resolved { stream, addrs },
                        Err(failure) => Down::failed(stream, failure),
                    })
                });
                return match started {
                    true => Ok(()),
                    false => {
                        self.answer(stream, Err(Failure::errno(errno::EAI_AGAIN)))
                            .await
                    }
                };
            }
        };
        let addrs = vec![addr];
        self.answer(stream, Ok(Down::Resolved { stream, addrs }))
            .await
    }

    /// Runs `work` (a lookup and what follows it) beside the session as one of its `RESOLUTIONS`, and sends
    /// the page the frame it ends with, if any. False, and nothing runs, when that many are under way.
    pub(super) fn spawn_resolution(
        &mut self,
        work: impl Future<Output = Option<Down>> + Send + 'static,
    ) -> bool {
        let Ok(permit) = self.resolutions.clone().try_acquire_owned() else {
            return false;
        };
        let internal = self.internal_tx.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            if let Some(reply) = work.await {
                let _ = internal.send(Internal::Reply(reply)).await;
            }
        });
        true
    }
}

/// Where a TCP connect goes.
pub(super) enum Target {
    /// The real port behind one of the session's own listeners: dialled on the relay host directly, since
    /// it is not the outside world.
    Own(SocketAddr),
    Addr(Allowed),
    Name(AllowedName),
    /// A lab server's real loopback port, dialled for this session's lab state.
    Lab(SocketAddr, Arc<LabState>),
}

/// Dials `target` (a name on `port`) for `session`, within the relay's connect timeout.
pub(super) async fn dial(
    shared: &Shared,
    session: u64,
    target: Target,
    port: u16,
) -> Result<TcpStream, Failure> {
    let egress = &shared.egress;
    let connecting = match target {
        Target::Own(real) => Box::pin(TcpStream::connect(real)),
        Target::Addr(to) => egress.connect(to),
        Target::Lab(real, state) => Box::pin(async move { shared.lab.dial(state, real).await }),
        Target::Name(name) => egress.connect(egress.route_name(session, &name, port).await?),
    };
    match tokio::time::timeout(shared.config.connect_timeout, connecting).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(e)) => Err(Failure::io(&e)),
        Err(_) => Err(Failure::errno(errno::ETIMEDOUT)),
    }
}
