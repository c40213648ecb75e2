//! The full mesh of cross-core queues: one bounded SPSC queue per ordered pair of cores.
//!
//! Built once at startup, then split so that each core owns its row of producers and its
//! column of consumers (glommio: channels/channel_mesh.rs). A core never sends to itself: local
//! work is handled in place.

use super::spsc::{self, Consumer, Producer};

/// One core's ends of the mesh.
pub struct MeshPort<T> {
    core: usize,
    /// `senders[c]` sends to core `c`; `None` at our own index.
    senders: Vec<Option<Producer<T>>>,
    /// `receivers[c]` receives from core `c`; `None` at our own index.
    receivers: Vec<Option<Consumer<T>>>,
}

/// Builds the mesh for `cores` cores, each queue `depth` deep, and returns one port per core.
pub fn mesh<T: Send>(cores: usize, depth: usize) -> Vec<MeshPort<T>> {
    assert!(cores > 0);
    let mut senders: Vec<Vec<Option<Producer<T>>>> =
        (0..cores).map(|_| (0..cores).map(|_| None).collect()).collect();
    let mut receivers: Vec<Vec<Option<Consumer<T>>>> =
        (0..cores).map(|_| (0..cores).map(|_| None).collect()).collect();
    for source in 0..cores {
        for target in 0..cores {
            if source == target {
                continue;
            }
            let (tx, rx) = spsc::channel(depth);
            senders[source][target] = Some(tx);
            receivers[target][source] = Some(rx);
        }
    }
    senders
        .into_iter()
        .zip(receivers)
        .enumerate()
        .map(|(core, (senders, receivers))| MeshPort { core, senders, receivers })
        .collect()
}

impl<T: Send> MeshPort<T> {
    /// This port's core index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Number of cores in the mesh.
    pub fn cores(&self) -> usize {
        self.senders.len()
    }

    /// Sends `value` to core `target`; hands it back when that queue is full.
    pub fn send(&mut self, target: usize, value: T) -> Result<(), T> {
        assert_ne!(target, self.core, "local work is never queued to ourselves");
        match self.senders.get_mut(target) {
            Some(Some(tx)) => tx.push(value),
            _ => panic!("core {target} is outside the mesh of {}", self.senders.len()),
        }
    }

    /// Makes everything sent so far visible to the target cores (once per turn, before their
    /// doorbells are rung).
    pub fn publish(&mut self) {
        self.senders.iter_mut().flatten().for_each(Producer::publish);
    }

    /// Whether any peer has queued (and published) something for us.
    pub fn has_pending(&self) -> bool {
        self.receivers.iter().flatten().any(|rx| !rx.is_empty())
    }

    /// Drains up to `budget` messages from all peers, round-robin so that no peer starves.
    /// Returns how many were handled.
    pub fn drain(&mut self, budget: usize, mut f: impl FnMut(usize, T)) -> usize {
        let mut handled = 0;
        let mut progress = true;
        while handled < budget && progress {
            progress = false;
            for (source, rx) in self.receivers.iter_mut().enumerate() {
                let Some(rx) = rx else { continue };
                if handled == budget {
                    break;
                }
                if let Some(value) = rx.pop() {
                    f(source, value);
                    handled += 1;
                    progress = true;
                }
            }
        }
        self.receivers.iter_mut().flatten().for_each(Consumer::release);
        handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every ordered pair of cores has its own queue and messages carry their source.
    // Method: in a 3-core mesh, every core sends its index to every other core; each core must
    // receive exactly the other two indices, tagged with the right source.
    #[test]
    fn every_pair_connected() {
        let mut ports = mesh::<usize>(3, 4);
        for port in ports.iter_mut() {
            for target in 0..3 {
                if target != port.core() {
                    port.send(target, port.core()).unwrap();
                }
            }
            port.publish();
        }
        for port in ports.iter_mut() {
            let mut got = Vec::new();
            port.drain(16, |source, value| {
                assert_eq!(source, value);
                got.push(value);
            });
            got.sort();
            let expected: Vec<usize> = (0..3).filter(|c| *c != port.core()).collect();
            assert_eq!(got, expected);
        }
    }

    // Goal: drain honours its budget. Method: queue 5 messages, drain with budget 2, then rest.
    #[test]
    fn drain_budget() {
        let mut ports = mesh::<u8>(2, 8);
        for i in 0..5 {
            ports[0].send(1, i).unwrap();
        }
        assert_eq!(ports[1].drain(100, |_, _| {}), 0, "nothing before publish");
        ports[0].publish();
        assert_eq!(ports[1].drain(2, |_, _| {}), 2);
        assert_eq!(ports[1].drain(100, |_, _| {}), 3);
    }
}
