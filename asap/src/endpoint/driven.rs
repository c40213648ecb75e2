//! Calls for a driver that decides itself when each message leaves: a load generator, which
//! must put exactly one message on the wire per operation it times, or a test.
//!
//! - [`Endpoint::register_now`] sends a PE's Registration at once: a renewal when it is
//!   registered (T4 is the driver's; give the PE a `reregistration` of [`Duration::MAX`] to
//!   keep the endpoint's own T4 out of it), a fresh registration with the same id when it left
//!   its pool, was refused or gave up.
//! - [`Endpoint::resolve_uncached`] sends one Handle Resolution per call, even when the cache
//!   is fresh or a resolution of the pool is already on its way, and reports each answer once,
//!   as [`Event::ResolvedUncached`] (how many PEs were listed) or [`Event::ResolutionFailed`],
//!   without caching it. The answer is read through codec's zero-copy view: a load generator
//!   times round trips and has no use for the PEs, and decoding them into owned
//!   [`codec::PoolElement`]s cost more than everything else loadgen does per resolution. It is
//!   not re-sent: a timeout or the end of its association fails it with [`Failure::TimedOut`];
//!   a timeout also replaces the home, as any request timeout does (§3.7.2). The link matches
//!   answers per pool first in first out, so an uncached and a cached resolution of one pool
//!   in flight at once may each be given the other's answer.
//!
//! A renewal's answer is not an event (as with T4): the driver reads
//! [`crate::pe::PoolElementFsm::state`], which leaves `Registering` when the answer came.
//!
//! Two zero-copy paths in front of the link's owned parse serve every endpoint, not only these
//! calls: a Registration or Deregistration Response with nothing but its pool handle and PE
//! identifier, answering a pending request, is decoded from codec's view and handled as the
//! owned parse would be; so is the answer to an uncached resolution. [`Endpoint::recycle`]
//! lets a driver hand sent buffers back, so requests are emitted without allocating.

use codec::asap::{
    DeregistrationResponse, DeregistrationResponseView, HandleResolution, HandleResolutionResponse,
    HandleResolutionResponseView, Message, RegistrationResponse, RegistrationResponseView,
};
use codec::message::Parameters;
use codec::param::ParameterType;
use codec::PoolElementId;
use codec::{ErrorCause, PoolHandle};
use transport::AssocId;

use super::{Endpoint, EndpointError, Event, Failure, PeHandle, Transmit};
use crate::link::{LinkEvent, Request};
use crate::pe::PeState;
use crate::time::Instant;

impl Endpoint {
    /// Sends `pe`'s Registration now: over the association it is registered on, else to the
    /// home. Its answer moves the PE out of `Registering` (a first registration also raises
    /// [`Event::Registered`], a refusal [`Event::RegistrationFailed`]).
    pub fn register_now(&mut self, now: Instant, pe: PeHandle) -> Result<(), EndpointError> {
        let fsm = self.pes.get_mut(pe.0 as usize).ok_or(EndpointError::UnknownPoolElement)?;
        let home = self.home.ok_or(EndpointError::NoHome)?;
        let assoc = match fsm.state() {
            PeState::Registered { assoc } => *assoc,
            _ => home,
        };
        fsm.rejoin();
        // The home always has a link (handle_up), and a registered PE's association too:
        // drop_link moves every PE off an association whose link it removes.
        let link = self.links.iter_mut().find(|l| l.assoc() == assoc).expect("a link");
        fsm.register(now, link, self.config.registration_timeout)
            .map_err(|_| EndpointError::Busy)?;
        assert!(matches!(fsm.state(), PeState::Registering { .. }));
        Ok(())
    }

    /// Sends one Handle Resolution of `pool_handle` to the home now, bypassing the cache and
    /// the one-resolution-per-pool rule of [`Endpoint::resolve`].
    pub fn resolve_uncached(
        &mut self,
        now: Instant,
        pool_handle: PoolHandle,
    ) -> Result<(), EndpointError> {
        let home = self.home.ok_or(EndpointError::NoHome)?;
        // handle_up gives the home a link before it becomes the home.
        let link = self.links.iter_mut().find(|l| l.assoc() == home).expect("home has a link");
        let request = Message::HandleResolution(HandleResolution {
            subscribe: false,
            pool_handle,
            items_wanted: self.config.items_wanted,
        });
        link.request(now, &request, self.config.request_timeout)
            .map_err(|_| EndpointError::Busy)?;
        self.uncached.push_back((home, pool_handle));
        // Each entry is a request pending on a link, and links bound those.
        assert!(self.uncached.len() <= super::LINKS_MAX * crate::link::PENDING_REQUESTS_MAX);
        Ok(())
    }

    /// Hands back a message [`Endpoint::poll_transmit`] gave out, once sent: its buffer is
    /// reused for a later request on the same association (no allocation per request).
    pub fn recycle(&mut self, transmit: Transmit) {
        if let Some(link) = self.links.iter_mut().find(|l| l.assoc() == transmit.assoc) {
            link.recycle(transmit.bytes);
        }
    }

    /// The zero-copy path: a Handle Resolution Response on `assoc` that answers an uncached
    /// resolution and carries no error is reported from the view, and the link is told its
    /// request was answered. Anything else (errors, malformed answers, other messages) goes
    /// the owned way through the link; returns whether it was handled here.
    pub(super) fn handle_uncached_answer(
        &mut self,
        now: Instant,
        assoc: AssocId,
        bytes: &[u8],
    ) -> bool {
        if self.uncached.is_empty() {
            return false;
        }
        let Ok(view) = HandleResolutionResponseView::new_checked(bytes) else { return false };
        let (mut pool_handle, mut pool_elements) = (None, 0u32);
        for parameter in view.parameters() {
            let Ok(parameter) = parameter else { return false };
            match parameter.parameter_type() {
                ParameterType::POOL_HANDLE if pool_handle.is_none() => {
                    let Ok(handle) = PoolHandle::new(parameter.value()) else { return false };
                    pool_handle = Some(handle);
                }
                ParameterType::POOL_ELEMENT => pool_elements = pool_elements.saturating_add(1),
                ParameterType::POOL_HANDLE | ParameterType::OPERATIONAL_ERROR => return false,
                _ => {}
            }
        }
        let Some(pool_handle) = pool_handle else { return false };
        let Some(link) = self.links.iter_mut().find(|l| l.assoc() == assoc) else { return false };
        let Some(at) = self.uncached.iter().position(|(a, p)| *a == assoc && *p == pool_handle)
        else {
            return false;
        };
        let answered = link.take_pending(&Request::Resolution { pool_handle });
        assert!(answered, "an uncached resolution is pending on its link until answered");
        link.heard(now);
        // Answers mostly come in order, and pop_front is cheaper than remove.
        let taken = if at == 0 { self.uncached.pop_front() } else { self.uncached.remove(at) };
        assert!(taken.is_some(), "position came from this deque");
        self.events.push_back(Event::ResolvedUncached { pool_handle, pool_elements });
        true
    }

    /// The zero-copy path for the answers a PE waits for: a Registration or Deregistration
    /// Response that carries its pool handle and PE identifier and nothing else, and answers
    /// a request pending on `assoc`, is decoded from the view (no allocation) and handled as
    /// the link's owned parse would have been. Anything else (errors, other parameters,
    /// unsolicited answers) goes the owned way; returns whether it was handled here.
    pub(super) fn handle_outcome_answer(
        &mut self,
        now: Instant,
        assoc: AssocId,
        bytes: &[u8],
    ) -> bool {
        let (request, event) = if let Ok(view) = RegistrationResponseView::new_checked(bytes) {
            let Some((pool_handle, pe_id)) = handle_and_id(view.parameters()) else {
                return false;
            };
            if view.header().flags() & REJECT_FLAG != 0 {
                // A refusal carries its cause, which the PE acts on (Lack of Resources sends
                // it elsewhere): the full parse reads it.
                return false;
            }
            let response = RegistrationResponse { reject: false, pool_handle, pe_id, error: None };
            let request = Request::Registration { pool_handle, pe_id };
            (request, LinkEvent::Registered(response))
        } else if let Ok(view) = DeregistrationResponseView::new_checked(bytes) {
            let Some((pool_handle, pe_id)) = handle_and_id(view.parameters()) else {
                return false;
            };
            let response = DeregistrationResponse { pool_handle, pe_id, error: None };
            let request = Request::Deregistration { pool_handle, pe_id };
            (request, LinkEvent::Deregistered(response))
        } else {
            return false;
        };
        let Some(link) = self.links.iter_mut().find(|l| l.assoc() == assoc) else { return false };
        if !link.take_pending(&request) {
            return false;
        }
        // The owned path notes this in `Link::handle_data`; without it a probe's answer left
        // the home silent, and the home-silence probe re-registered at once, on every answer
        // (the fault lab's registration storm).
        link.heard(now);
        self.handle_link_event(now, assoc, event);
        true
    }

    /// Whether an answer (or timeout) of `pool_handle` on `assoc` belongs to an uncached
    /// resolution; if so, that resolution is done. The link matches answers first in first
    /// out per pool, so the oldest uncached one is the one answered.
    pub(super) fn take_uncached(&mut self, assoc: AssocId, pool_handle: &PoolHandle) -> bool {
        let Some(at) = self.uncached.iter().position(|(a, p)| *a == assoc && p == pool_handle)
        else {
            return false;
        };
        self.uncached.remove(at).is_some()
    }

    pub(super) fn report_uncached(&mut self, r: HandleResolutionResponse) {
        let pool_handle = r.pool_handle;
        let event = match &r.error {
            Some(error) => {
                let cause = error.causes.first().map_or(ErrorCause::UNSPECIFIED, |c| c.code);
                Event::ResolutionFailed { pool_handle, failure: Failure::Refused(cause) }
            }
            None => Event::ResolvedUncached {
                pool_handle,
                pool_elements: u32::try_from(r.pool_elements.len()).unwrap_or(u32::MAX),
            },
        };
        self.events.push_back(event);
    }

    pub(super) fn uncached_timed_out(
        &mut self,
        now: Instant,
        assoc: AssocId,
        pool_handle: PoolHandle,
    ) {
        self.events.push_back(Event::ResolutionFailed { pool_handle, failure: Failure::TimedOut });
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.2
        //# In parallel, the ASAP Endpoint should begin the
        //# ENRP server hunt procedures described in Section 3.6.
        self.fail_home(now, assoc);
    }

    /// The link of `assoc` is gone: its uncached resolutions will not be answered.
    pub(super) fn fail_uncached(&mut self, assoc: AssocId) {
        let events = &mut self.events;
        self.uncached.retain(|&(a, pool_handle)| {
            if a == assoc {
                let failure = Failure::TimedOut;
                events.push_back(Event::ResolutionFailed { pool_handle, failure });
            }
            a != assoc
        });
    }
}

/// The R flag of a Registration Response (RFC 5352 §2.2.3).
const REJECT_FLAG: u8 = 0x01;

/// The pool handle and PE identifier of a (De)Registration Response whose parameters are
/// exactly those two, once each; `None` for anything else.
fn handle_and_id(parameters: Parameters<'_>) -> Option<(PoolHandle, PoolElementId)> {
    let (mut pool_handle, mut pe_id) = (None, None);
    for parameter in parameters {
        let parameter = parameter.ok()?;
        match parameter.parameter_type() {
            ParameterType::POOL_HANDLE if pool_handle.is_none() => {
                pool_handle = Some(PoolHandle::new(parameter.value()).ok()?);
            }
            ParameterType::PE_IDENTIFIER if pe_id.is_none() => {
                let value: [u8; 4] = parameter.value().try_into().ok()?;
                pe_id = Some(PoolElementId(u32::from_be_bytes(value)));
            }
            _ => return None,
        }
    }
    Some((pool_handle?, pe_id?))
}

#[cfg(test)]
mod tests {
    use codec::asap::Message;
    use codec::param::Policy;
    use codec::{ErrorCause, PoolElementId};
    use transport::AssocId;

    use crate::pe::PeState;
    use crate::testing::{
        pool, registration_response, resolution, resolution_response, user_transport,
    };
    use crate::time::{Duration, Instant};
    use crate::{Endpoint, EndpointConfig, Event, Failure, PeConfig, PeHandle};

    fn up_endpoint() -> Endpoint {
        let mut config = EndpointConfig::default();
        config.hunt.registrars = vec![crate::testing::PEER];
        config.hunt.parallel_max = 1;
        config.request_timeout = Duration::from_micros(1_000);
        let mut ep = Endpoint::new(config, 1);
        ep.start(Instant::ZERO);
        let remote = ep.poll_connect().expect("the endpoint hunts");
        ep.handle_connect_started(remote, AssocId(1));
        ep.handle_up(Instant::ZERO, AssocId(1), remote);
        std::iter::from_fn(|| ep.poll_event()).for_each(drop);
        ep
    }

    fn sent(ep: &mut Endpoint) -> Vec<Message> {
        std::iter::from_fn(|| ep.poll_transmit())
            .map(|t| Message::parse(&t.bytes).expect("we send valid ASAP"))
            .collect()
    }

    fn events(ep: &mut Endpoint) -> Vec<Event> {
        std::iter::from_fn(|| ep.poll_event()).collect()
    }

    // Goal: every uncached resolution puts its own Handle Resolution on the wire and gets its
    // own answer, even for one pool twice and with a fresh cache; answers are not cached.
    // Method: resolve "a" twice and "b" once, answer out of order, one answer with an error.
    #[test]
    fn uncached_resolutions_send_one_message_each() {
        let mut ep = up_endpoint();
        let now = Instant::from_micros(10);
        for name in ["a", "a", "b"] {
            ep.resolve_uncached(now, pool(name)).unwrap();
        }
        assert_eq!(sent(&mut ep), [resolution("a"), resolution("a"), resolution("b")]);
        let refused = Message::HandleResolutionResponse(codec::asap::HandleResolutionResponse {
            accept_updates: false,
            pool_handle: pool("a"),
            overall_policy: None,
            pool_elements: Vec::new(),
            error: Some(codec::param::OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE)),
        });
        let answers = [resolution_response("b", &[7]), resolution_response("a", &[1, 2]), refused];
        for m in &answers {
            ep.handle_data(now, AssocId(1), &m.emit_to_vec());
        }
        let got = events(&mut ep);
        assert_eq!(got.len(), 3, "{got:?}");
        let resolved = |name, pool_elements| Event::ResolvedUncached {
            pool_handle: pool(name),
            pool_elements,
        };
        assert_eq!(got[0], resolved("b", 1));
        assert_eq!(got[1], resolved("a", 2));
        let failure = Failure::Refused(ErrorCause::UNKNOWN_POOL_HANDLE);
        assert_eq!(got[2], Event::ResolutionFailed { pool_handle: pool("a"), failure });
        assert!(ep.cache().lookup(now, &pool("a")).is_none(), "not cached");
        assert!(ep.cache().lookup(now, &pool("b")).is_none(), "not cached");
        // An answer nobody asked for is not reported twice.
        ep.handle_data(now, AssocId(1), &resolution_response("b", &[7]).emit_to_vec());
        assert_eq!(events(&mut ep), []);
    }

    // Goal: the zero-copy path takes only answers to uncached resolutions: a cached
    // resolution of another pool in flight at the same time is decoded, reported with its PEs
    // and cached as before. Method: one of each, answered in turn.
    #[test]
    fn cached_resolutions_beside_uncached_ones_are_unchanged() {
        let mut ep = up_endpoint();
        let now = Instant::from_micros(10);
        ep.resolve_uncached(now, pool("a")).unwrap();
        assert_eq!(ep.resolve(now, pool("c")), Ok(crate::Resolution::Pending));
        assert_eq!(sent(&mut ep), [resolution("a"), resolution("c")]);
        let c = resolution_response("c", &[3, 4]);
        ep.handle_data(now, AssocId(1), &c.emit_to_vec());
        ep.handle_data(now, AssocId(1), &resolution_response("a", &[5]).emit_to_vec());
        let Message::HandleResolutionResponse(c) = c else { unreachable!("built as one") };
        let got = events(&mut ep);
        let elements = c.pool_elements;
        assert_eq!(got[0], Event::Resolved { pool_handle: pool("c"), elements: elements.clone() });
        assert_eq!(got[1], Event::ResolvedUncached { pool_handle: pool("a"), pool_elements: 1 });
        assert_eq!(ep.cache().lookup(now, &pool("c")), Some(elements));
        assert_eq!(ep.poll_timeout(), None, "nothing left pending");
    }

    // Goal: the zero-copy path for (de)registration answers ends in what the owned path
    // ends in. Method: two endpoints register and deregister the same PE; one is answered
    // with the plain responses (the view path), the other with the same responses carrying a
    // warning (an Operational Error without the R flag: the owned path); compare events and
    // states after each step, and that nothing is left pending.
    #[test]
    fn outcome_answers_from_the_view_match_the_owned_parse() {
        let warning = Some(codec::param::OperationalError::single(ErrorCause::UNSPECIFIED));
        let mut runs = Vec::new();
        for error in [None, warning] {
            let mut ep = up_endpoint();
            let mut config = PeConfig::new(pool("p"), user_transport(), Policy::RoundRobin);
            config.id = Some(PoolElementId(4));
            let now = Instant::from_micros(7);
            let pe = ep.register(now, config).unwrap();
            sent(&mut ep);
            let ok = Message::RegistrationResponse(codec::asap::RegistrationResponse {
                reject: false,
                pool_handle: pool("p"),
                pe_id: PoolElementId(4),
                error: error.clone(),
            });
            ep.handle_data(now, AssocId(1), &ok.emit_to_vec());
            let registered = (events(&mut ep), ep.pool_element(pe).unwrap().state().clone());
            ep.deregister(now, pe).unwrap();
            sent(&mut ep);
            let gone = Message::DeregistrationResponse(codec::asap::DeregistrationResponse {
                pool_handle: pool("p"),
                pe_id: PoolElementId(4),
                error,
            });
            ep.handle_data(now, AssocId(1), &gone.emit_to_vec());
            let left = (events(&mut ep), ep.pool_element(pe).unwrap().state().clone());
            assert_eq!(ep.poll_timeout(), None, "nothing pending");
            runs.push((registered, left));
        }
        assert_eq!(runs[0], runs[1]);
        let registered = PeState::Registered { assoc: AssocId(1) };
        assert_eq!(runs[0].0 .1, registered);
        assert_eq!(runs[0].1 .1, PeState::Deregistered);
    }

    // Goal: a recycled buffer carries the next request with exactly its bytes, whatever it
    // held before. Method: send a long Registration, recycle it, then resolve; compare the
    // bytes with codec's encoding and the buffer's address with the recycled one's.
    #[test]
    fn recycled_buffers_carry_the_next_request() {
        let mut ep = up_endpoint();
        let mut config = PeConfig::new(pool("p"), user_transport(), Policy::RoundRobin);
        config.id = Some(PoolElementId(3));
        ep.register(Instant::ZERO, config).unwrap();
        let first = ep.poll_transmit().unwrap();
        let address = first.bytes.as_ptr();
        ep.recycle(first);
        ep.resolve_uncached(Instant::ZERO, pool("a")).unwrap();
        let next = ep.poll_transmit().unwrap();
        assert_eq!(next.bytes, resolution("a").emit_to_vec());
        assert_eq!(next.bytes.as_ptr(), address, "the recycled buffer");
    }

    // Goal: an uncached resolution fails once, and is not re-sent, at its deadline; the home
    // is replaced (§3.7.2). Method: a boundary pair around the 1 ms request timeout.
    #[test]
    fn uncached_resolution_times_out_once() {
        let mut ep = up_endpoint();
        ep.resolve_uncached(Instant::ZERO, pool("a")).unwrap();
        sent(&mut ep);
        ep.handle_timeout(Instant::from_micros(999));
        assert_eq!(events(&mut ep), []);
        ep.handle_timeout(Instant::from_micros(1_000));
        let got = events(&mut ep);
        let failed = Event::ResolutionFailed { pool_handle: pool("a"), failure: Failure::TimedOut };
        assert_eq!(got[0], failed);
        assert_eq!(got[1], Event::RegistrarLost { assoc: AssocId(1) });
        assert_eq!(got.len(), 2, "reported once: {got:?}");
        assert_eq!(ep.poll_abort(), Some(AssocId(1)));
        assert_eq!(sent(&mut ep), [], "not re-sent");
        assert_eq!(
            ep.resolve_uncached(Instant::ZERO, pool("a")),
            Err(super::EndpointError::NoHome)
        );
    }

    // Goal: register_now renews a registered PE at once (T4 is the driver's), and brings a
    // deregistered PE back with the same id. Method: register, renew, deregister, rejoin;
    // read the Registrations sent and the PE state after each answer.
    #[test]
    fn register_now_renews_and_rejoins() {
        let mut ep = up_endpoint();
        let mut config = PeConfig::new(pool("p"), user_transport(), Policy::RoundRobin);
        config.id = Some(PoolElementId(9));
        config.reregistration = Some(Duration::MAX);
        let now = Instant::from_micros(5);
        let pe = ep.register(now, config).unwrap();
        let registration = ep.pool_element(pe).unwrap().registration();
        assert_eq!(sent(&mut ep), std::slice::from_ref(&registration));
        let ok = registration_response("p", 9, None).emit_to_vec();
        ep.handle_data(now, AssocId(1), &ok);
        assert_eq!(events(&mut ep), [Event::Registered { pe, id: PoolElementId(9) }]);
        let pe_timer = ep.pool_element(pe).unwrap().poll_timeout();
        assert_eq!(pe_timer, Some(Instant::from_micros(u64::MAX)), "no T4 of our own");
        // The answer, read on the zero-copy path, counts as hearing the home: its silence
        // deadline starts there (registration_storm_after_a_takeover).
        let silence = now + crate::endpoint::HOME_SILENCE_DEFAULT;
        assert_eq!(ep.poll_timeout(), Some(silence));

        ep.register_now(now, pe).unwrap();
        assert_eq!(sent(&mut ep), std::slice::from_ref(&registration));
        let renewing = PeState::Registering { assoc: AssocId(1), renewal: true };
        assert_eq!(*ep.pool_element(pe).unwrap().state(), renewing);
        ep.handle_data(now, AssocId(1), &ok);
        assert_eq!(events(&mut ep), [], "a renewal is quiet");
        let registered = PeState::Registered { assoc: AssocId(1) };
        assert_eq!(*ep.pool_element(pe).unwrap().state(), registered);

        ep.deregister(now, pe).unwrap();
        sent(&mut ep);
        let gone = codec::asap::DeregistrationResponse {
            pool_handle: pool("p"),
            pe_id: PoolElementId(9),
            error: None,
        };
        ep.handle_data(now, AssocId(1), &Message::DeregistrationResponse(gone).emit_to_vec());
        assert_eq!(events(&mut ep), [Event::Deregistered { pe }]);
        ep.register_now(now, pe).unwrap();
        assert_eq!(sent(&mut ep), [registration]);
        ep.handle_data(now, AssocId(1), &ok);
        assert_eq!(events(&mut ep), [Event::Registered { pe, id: PoolElementId(9) }]);
        assert_eq!(
            ep.register_now(now, PeHandle(5)),
            Err(super::EndpointError::UnknownPoolElement)
        );
    }
}
