//! Tag steering (`EndpointConfig::tag_steering`): a group of endpoints behind one address, with
//! packets routed to a member by `verification tag % cores` as the kernel's reuseport program
//! does, and INITs (tag 0) all reaching one member, as a 4-tuple hash does for one peer port.

use core::net::SocketAddr;

use sctp::{AssociationHandle, Endpoint, EndpointConfig, Event, Instant, TagSteering};

const CORES: u32 = 3;
const SERVER_PORT: u16 = 3863;
const SECRET: [u8; 32] = [7; 32];

fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 9899))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 9899))
}

fn member(core: u32) -> Endpoint {
    let cfg = EndpointConfig {
        tag_steering: Some(TagSteering { cores: CORES, core }),
        ..EndpointConfig::default()
    };
    let mut e = Endpoint::new(cfg, SECRET);
    e.listen(SERVER_PORT);
    e
}

fn tag_of(packet: &[u8]) -> u32 {
    u32::from_be_bytes(packet[4..8].try_into().unwrap())
}

/// The group as the kernel routes it: tag 0 to `init_core`, anything else to `tag % CORES`.
struct Group {
    client: Endpoint,
    members: Vec<Endpoint>,
    init_core: usize,
    now: Instant,
    /// Which member received each packet with a non-zero tag, by tag.
    routed: Vec<(u32, usize)>,
}

impl Group {
    fn new(init_core: usize) -> Self {
        Self {
            client: Endpoint::new(EndpointConfig::default(), [9; 32]),
            members: (0..CORES).map(member).collect(),
            init_core,
            now: Instant(1_000_000),
            routed: Vec::new(),
        }
    }

    /// Moves packets both ways until none is left.
    fn settle(&mut self) {
        let mut buf = vec![0u8; 65_536];
        for _ in 0..1_000 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                let packet = &buf[..t.len];
                let core = match tag_of(packet) {
                    0 => self.init_core,
                    tag => {
                        let core = (tag % CORES) as usize;
                        self.routed.push((tag, core));
                        core
                    }
                };
                self.members[core].handle_packet(self.now, client_addr(), server_addr(), packet);
                moved = true;
            }
            for m in &mut self.members {
                while let Some(t) = m.poll_transmit(self.now, &mut buf) {
                    let packet = buf[..t.len].to_vec();
                    self.client.handle_packet(self.now, server_addr(), client_addr(), &packet);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("packets still moving after 1 000 rounds");
    }
}

fn connected(e: &mut Endpoint) -> Vec<AssociationHandle> {
    std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::Connected(h) => Some(h),
            _ => None,
        })
        .collect()
}

// Goal: associations that all come from one peer address and UDP port (one 4-tuple, so every
// INIT reaches the same core) are spread round robin over the cores, each opened and served
// by the core its tag names, although another core issued its cookie. Method: 9 associations,
// INITs always to core 1; count Connected per core, then a message each way on every one.
#[test]
fn associations_from_one_port_spread_over_every_core() {
    let mut g = Group::new(1);
    let remote = server_addr();
    let handles: Vec<_> = (0..9u16)
        .map(|i| g.client.connect(g.now, remote, 40_000 + i, SERVER_PORT).unwrap())
        .collect();
    g.settle();
    assert_eq!(connected(&mut g.client).len(), 9, "every association is up at the client");
    let per_core: Vec<Vec<AssociationHandle>> = g.members.iter_mut().map(connected).collect();
    assert_eq!(per_core.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3]);
    assert!(g.routed.iter().all(|&(tag, core)| tag % CORES == core as u32));

    for (i, h) in handles.iter().enumerate() {
        g.client.send(g.now, *h, 0, 11, false, &[i as u8; 20]).unwrap();
    }
    g.settle();
    let mut got = 0;
    for (core, handles) in per_core.iter().enumerate() {
        for h in handles {
            let mut echo = None;
            assert!(g.members[core].read_message(*h, |m, _| echo = Some(m.to_vec())));
            g.members[core].send(g.now, *h, 0, 11, false, &echo.unwrap()).unwrap();
            got += 1;
        }
    }
    assert_eq!(got, 9);
    g.settle();
    for (i, h) in handles.iter().enumerate() {
        let mut answer = None;
        assert!(g.client.read_message(*h, |m, _| answer = Some(m.to_vec())), "association {i}");
        assert_eq!(answer.unwrap(), vec![i as u8; 20]);
    }
}

// Goal: an association a member opens itself carries a tag of its own core, so the peer's
// packets come back to it. Method: member 2 connects to a listening client; every packet the
// client sends on it is routed by tag to member 2.
#[test]
fn connect_takes_a_tag_of_the_own_core() {
    let mut g = Group::new(0);
    g.client.listen(5_000);
    let h = g.members[2].connect(g.now, client_addr(), 6_000, 5_000).unwrap();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..10 {
        while let Some(t) = g.members[2].poll_transmit(g.now, &mut buf) {
            let packet = buf[..t.len].to_vec();
            g.client.handle_packet(g.now, server_addr(), client_addr(), &packet);
        }
        while let Some(t) = g.client.poll_transmit(g.now, &mut buf) {
            let packet = &buf[..t.len];
            assert_eq!(tag_of(packet) % CORES, 2, "routed back to the connecting core");
            g.members[2].handle_packet(g.now, client_addr(), server_addr(), packet);
        }
    }
    assert_eq!(connected(&mut g.members[2]), vec![h]);
}
