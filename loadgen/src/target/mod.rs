//! Targets loadgen can drive, and how to start the ones it owns.
//!
//! - [`udp`]: the client every UDP target shares, and the `udp-echo` server (the ceiling).
//! - [`model`]: a stand-in registrar over the same framing (pools in a hash map).
//! - [`registrar`]: where the real registrar, over ASAP/SCTP/UDP, plugs in.

pub mod model;
pub mod registrar;
pub mod udp;

use std::net::SocketAddr;

use crate::client::{Launcher, RunningTarget, Target};
use crate::scenario::{Scenario, TargetKind};

/// A target to drive for the length of a run: either one we started (stopped when this is
/// dropped) or one that was already listening at `target.address`.
pub enum Prepared {
    /// We started it.
    Owned(Box<dyn RunningTarget>),
    /// Someone else runs it.
    External(Box<dyn Target>, SocketAddr),
}

impl Prepared {
    /// The target to hand to the runner.
    pub fn target(&self) -> &dyn Target {
        match self {
            Prepared::Owned(running) => running.target(),
            Prepared::External(target, _) => target.as_ref(),
        }
    }

    /// Where the target listens.
    pub fn address(&self) -> SocketAddr {
        match self {
            Prepared::Owned(running) => running.address(),
            Prepared::External(_, address) => *address,
        }
    }
}

/// Starts the scenario's target, or connects to `target.address` when it is given.
pub fn prepare(scenario: &Scenario) -> anyhow::Result<Prepared> {
    if let Some(address) = &scenario.target.address {
        // Validation already checked that the address parses.
        let address: SocketAddr = address.parse()?;
        let target: Box<dyn Target> = match scenario.target.kind {
            TargetKind::Model => Box::new(udp::UdpTarget::new("model", address)),
            TargetKind::UdpEcho => Box::new(udp::UdpTarget::new("udp-echo", address)),
            TargetKind::Registrar => registrar::connect(address)?,
        };
        return Ok(Prepared::External(target, address));
    }
    Ok(Prepared::Owned(launcher(scenario.target.kind).launch(scenario)?))
}

/// The launcher for an embedded target of `kind`.
pub fn launcher(kind: TargetKind) -> Box<dyn Launcher> {
    match kind {
        TargetKind::Model => Box::new(model::ModelLauncher),
        TargetKind::Registrar => Box::new(registrar::RegistrarLauncher),
        TargetKind::UdpEcho => Box::new(udp::EchoLauncher),
    }
}
