//! The pool element state machine: register, re-register every T4, change the policy value,
//! deregister, and register again at a new home registrar after a failover.
//!
//! One [`PoolElementFsm`] per PE. It sends through the [`Link`] its caller hands it and reports
//! what happened as a [`PeOutcome`]; which link is the home is the [`crate::Endpoint`]'s call.
//!
//! ```text
//!   Unregistered ─register(link)─▶ Registering ─Response(ok)──▶ Registered ─T4─┐
//!        ▲                             │  └─Response(R=1)─▶ Refused          ▲   │
//!        └──────── link lost ──────────┘                                      └───┘
//!   Registered ─deregister─▶ Deregistering ─Response─▶ Deregistered
//! ```

use codec::asap::{Deregistration, Message, Registration, RegistrationResponse};
use codec::param::{OperationalError, Policy, UserTransport};
use codec::{ErrorCause, PoolElement, PoolElementId, PoolHandle, RegistrarId};
use rand::Rng;
use transport::AssocId;

use crate::link::{Link, LinkError};
use crate::time::{Duration, Instant, TimerKind, TimerTable};

/// A PE's registration life unless configured: 90 s, what RSPLIB 3.4.4 sends.
pub const REGISTRATION_LIFE_DEFAULT: Duration = Duration::from_secs(90);

/// What a PE registers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeConfig {
    /// The pool to join.
    pub pool_handle: PoolHandle,
    /// A fixed PE identifier, or `None` for a random one (R2.2).
    pub id: Option<PoolElementId>,
    /// Registration life sent to the registrar (on the wire in milliseconds, as RSPLIB).
    pub registration_life: Duration,
    /// T4-reregistration; `None` for the RFC default (see [`Self::reregistration_interval`]).
    pub reregistration: Option<Duration>,
    /// Where PUs reach this PE.
    pub user_transport: UserTransport,
    /// The member selection policy and its value (load, weight, priority).
    pub policy: Policy,
}

impl PeConfig {
    /// A PE of `pool_handle` with a random id and the default registration life.
    pub fn new(pool_handle: PoolHandle, user_transport: UserTransport, policy: Policy) -> Self {
        Self {
            pool_handle,
            id: None,
            registration_life: REGISTRATION_LIFE_DEFAULT,
            reregistration: None,
            user_transport,
            policy,
        }
    }

    /// T4: the configured interval, else the RFC's default. With a life of 40 s or less, "20
    /// seconds less" would leave (almost) nothing, so we re-register at half the life instead.
    pub fn reregistration_interval(&self) -> Duration {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-7.1
        //# This timer is normally set
        //# to 10 minutes or 20 seconds less than the Lifetime parameter used
        //# in the registration request (whichever is less).
        let life = self.registration_life;
        self.reregistration.unwrap_or(if life > Duration::from_secs(40) {
            Duration::from_secs(600).min(life.saturating_sub(Duration::from_secs(20)))
        } else {
            Duration::from_micros(life.as_micros() / 2)
        })
    }
}

/// Where a PE stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeState {
    /// Deregistration was confirmed.
    Deregistered,
    /// A Deregistration was sent over this association.
    Deregistering {
        /// The association.
        assoc: AssocId,
    },
    /// Registration timed out too often (MAX-REG-ATTEMPT); the PE stopped trying.
    GaveUp,
    /// The registrar refused; the PE does not retry until its configuration changes (§3.1).
    Refused {
        /// Why, as the registrar said.
        cause: ErrorCause,
    },
    /// Registered over this association.
    Registered {
        /// The association.
        assoc: AssocId,
    },
    /// A Registration was sent over this association. `renewal`: the PE was registered
    /// before (a re-registration at T4 or for a new policy value).
    Registering {
        /// The association.
        assoc: AssocId,
        /// Whether this renews a registration.
        renewal: bool,
    },
    /// Waiting for a home registrar.
    Unregistered,
}

/// What a PE input led to, for the endpoint to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeOutcome {
    /// Deregistration confirmed.
    Deregistered,
    /// Registration timed out MAX-REG-ATTEMPT times; report to the user.
    GaveUp,
    /// Nothing the user must hear about.
    Quiet,
    /// Registered (first time, or at a new home); renewals are [`PeOutcome::Quiet`].
    Registered,
    /// Refused with this cause.
    Refused(ErrorCause),
    /// The request timed out: the home registrar is to be replaced (§3.1, §3.2).
    Rehunt,
}

/// The PE's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeTimer {
    /// T4-reregistration.
    Reregistration,
}

impl TimerKind for PeTimer {
    const ALL: &'static [Self] = &[Self::Reregistration];
    fn index(self) -> usize {
        self as usize
    }
}

/// One pool element's registration state machine.
#[derive(Debug)]
pub struct PoolElementFsm {
    config: PeConfig,
    id: PoolElementId,
    state: PeState,
    home_registrar: Option<RegistrarId>,
    timers: TimerTable<PeTimer, 1>,
    timeouts: u32,
    leaving: bool,
}

impl PoolElementFsm {
    /// A PE that is not registered yet; its id is `config.id` or drawn from `rng`.
    pub fn new(config: PeConfig, rng: &mut impl Rng) -> Self {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# R2.2)  Fill in the PE identifier using a good-quality randomly
        //# generated number
        let id = config.id.unwrap_or_else(|| PoolElementId(rng.random()));
        Self {
            config,
            id,
            state: PeState::Unregistered,
            home_registrar: None,
            timers: TimerTable::new(),
            timeouts: 0,
            leaving: false,
        }
    }

    /// The PE identifier, the same for every (re-)registration.
    pub fn id(&self) -> PoolElementId {
        self.id
    }

    /// The configuration.
    pub fn config(&self) -> &PeConfig {
        &self.config
    }

    /// Where the PE stands.
    pub fn state(&self) -> &PeState {
        &self.state
    }

    /// The home registrar's id, once a keep-alive told it.
    pub fn home_registrar(&self) -> Option<RegistrarId> {
        self.home_registrar
    }

    /// The association the PE is registered (or registering, deregistering) over.
    pub fn assoc(&self) -> Option<AssocId> {
        match self.state {
            PeState::Registered { assoc }
            | PeState::Registering { assoc, .. }
            | PeState::Deregistering { assoc } => Some(assoc),
            _ => None,
        }
    }

    /// Whether the PE waits for a home registrar to (re-)register or deregister at.
    pub fn wants_link(&self) -> bool {
        self.state == PeState::Unregistered
    }

    /// Whether the user asked this PE to leave its pool.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// The Registration this PE sends.
    pub fn registration(&self) -> Message {
        let life_ms = u32::try_from(self.config.registration_life.as_millis()).unwrap_or(u32::MAX);
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# R2)  The PE's ASAP Endpoint MUST formulate an ASAP_REGISTRATION
        //# message, as defined in Section 2.2.1.
        // The ASAP transport and home registrar are the registrar's to fill in.
        let pool_element = PoolElement {
            id: self.id,
            home_registrar: RegistrarId(0),
            registration_life_ms: life_ms,
            user_transport: self.config.user_transport.clone(),
            policy: self.config.policy.clone(),
            asap_transport: None,
        };
        Message::Registration(Registration { pool_handle: self.config.pool_handle, pool_element })
    }

    /// Sends a Registration over `link` (R3) and waits `timeout` (T2, R4).
    pub fn register(
        &mut self,
        now: Instant,
        link: &mut Link,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        let renewal = matches!(
            self.state,
            PeState::Registered { .. } | PeState::Registering { renewal: true, .. }
        );
        link.request(now, &self.registration(), timeout)?;
        // Answer keep-alives from the first moment: a registrar may probe before it answers.
        link.answer_for(self.config.pool_handle, self.id);
        self.timers.stop(PeTimer::Reregistration);
        self.state = PeState::Registering { assoc: link.assoc(), renewal };
        Ok(())
    }

    /// Sends a Deregistration over `link` (D1-D4) and waits `timeout` (T3). With no link,
    /// the PE waits for a home registrar and deregisters there.
    pub fn deregister(&mut self, now: Instant, link: Option<&mut Link>, timeout: Duration) {
        self.timers.stop(PeTimer::Reregistration);
        let Some(link) = link else {
            self.state = PeState::Unregistered;
            return;
        };
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
        //# D1)  Fill in the Pool Handle parameter of the ASAP_DEREGISTRATION
        //# message (Section 2.2.2) using the same Pool Handle parameter sent
        //# during registration.
        //# D2)  Fill in the PE Identifier parameter of the ASAP_DEREGISTRATION
        //# message.  The identifier MUST be the same as used during
        //# registration.
        let message = Message::Deregistration(Deregistration {
            pool_handle: self.config.pool_handle,
            pe_id: self.id,
        });
        match link.request(now, &message, timeout) {
            Ok(()) => self.state = PeState::Deregistering { assoc: link.assoc() },
            Err(_) => self.state = PeState::Unregistered,
        }
        self.leaving = true;
    }

    /// The registrar answered our Registration.
    pub fn handle_registration_response(
        &mut self,
        now: Instant,
        response: &RegistrationResponse,
    ) -> PeOutcome {
        let PeState::Registering { assoc, renewal } = self.state else {
            return PeOutcome::Quiet;
        };
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# At the reception of the registration response, the PE MUST stop the
        //# T2-registration timer.
        // T2 is the link's request deadline; the link removed it when it matched the answer.
        if response.reject {
            //# If the registration response indicates a failure, the PE must
            //# either re-attempt registration after correcting the error or return a
            //# failure indication to the PE's upper layer.
            let cause = first_cause(response.error.as_ref());
            self.state = PeState::Refused { cause };
            return PeOutcome::Refused(cause);
        }
        self.timeouts = 0;
        //# After successful registration, the PE MUST start a T4-reregistration
        //# timer.
        let at = now + self.config.reregistration_interval();
        self.timers.set(PeTimer::Reregistration, at);
        self.state = PeState::Registered { assoc };
        if renewal {
            PeOutcome::Quiet
        } else {
            PeOutcome::Registered
        }
    }

    /// The registrar answered our Deregistration. The PE is out of the pool either way: a
    /// registrar that has no record of it "SHOULD consider the de-registration granted".
    pub fn handle_deregistration_response(&mut self) -> PeOutcome {
        if !matches!(self.state, PeState::Deregistering { .. }) {
            return PeOutcome::Quiet;
        }
        self.state = PeState::Deregistered;
        PeOutcome::Deregistered
    }

    /// Our Registration or Deregistration got no answer in time.
    pub fn handle_request_timeout(&mut self, attempts_max: u32) -> PeOutcome {
        if self.leaving {
            //= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
            //# If the T3-Deregistration timer expires before receiving either an
            //# ASAP_REGISTRATION_RESPONSE message, or a SEND.FAILURE notification
            //# from the PE's SCTP endpoint, the PE's ASAP Endpoint shall start the
            //# ENRP Server Hunt procedure
            self.state = PeState::Unregistered;
            return PeOutcome::Rehunt;
        }
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# If repeated registration timeouts or failures occurs
        //# and the local count exceeds the Threshold 'MAX-REG-ATTEMPT', the
        //# implementation SHOULD report the error to its upper layer and stop
        //# attempting registration.
        self.timeouts = self.timeouts.saturating_add(1);
        if self.timeouts >= attempts_max {
            self.state = PeState::GaveUp;
            return PeOutcome::GaveUp;
        }
        //# If the T2-registration timer expires before receiving an
        //# ASAP_REGISTRATION_RESPONSE message, or a SEND.FAILURE notification is
        //# received from the SCTP layer, the PE shall start the Server Hunt
        //# procedure (see Section 3.6)
        self.state = PeState::Unregistered;
        PeOutcome::Rehunt
    }

    /// The association `assoc` went away: a PE on it waits for a new home registrar. Its
    /// registration stays valid at the registrars until its life ends, so a renewal it is.
    pub fn handle_link_lost(&mut self, assoc: AssocId) {
        if self.assoc() == Some(assoc) {
            self.timers.stop(PeTimer::Reregistration);
            self.state = PeState::Unregistered;
        }
    }

    /// A keep-alive from `server_id` over `assoc`; `home` is its H flag. Returns whether that
    /// registrar became this PE's home.
    pub fn handle_keep_alive(
        &mut self,
        assoc: AssocId,
        server_id: RegistrarId,
        home: bool,
    ) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.4
        //# KA2.4)  If the H flag in the received ASAP_ENDPOINT_KEEP_ALIVE
        //# message is set, and the Server Identifier in the message is NOT
        //# the identity of your Home ENRP server (or it is not set, e.g.,
        //# you have a no Home ENRP server) adopt the sender of the
        //# ASAP_ENDPOINT_KEEP_ALIVE message as the new Home ENRP server.
        let changed = home && self.home_registrar != Some(server_id);
        if changed || self.assoc() == Some(assoc) {
            self.home_registrar = Some(server_id);
        }
        if changed {
            if let PeState::Registered { assoc: old } = &mut self.state {
                *old = assoc;
            }
        }
        changed
    }

    /// Takes a new policy (value). A registered PE re-registers with it over `link` ("a
    /// registered PE MAY wish to re-register to ... update its member selection Policy Value");
    /// a refused one tries again, since its configuration changed.
    pub fn set_policy(
        &mut self,
        now: Instant,
        policy: Policy,
        link: Option<&mut Link>,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        self.config.policy = policy;
        match (&self.state, link) {
            (PeState::Refused { .. } | PeState::GaveUp, _) if !self.leaving => {
                self.timeouts = 0;
                self.state = PeState::Unregistered;
                Ok(())
            }
            (PeState::Registered { .. }, Some(link)) => self.register(now, link, timeout),
            _ => Ok(()),
        }
    }

    /// Makes a PE that left its pool, was refused or gave up wait for a home again, with the
    /// same configuration and id (for a driver that decides itself when a PE rejoins, such as
    /// a load generator). A PE that is registered, or has a request out, is left as it is.
    pub fn rejoin(&mut self) {
        match self.state {
            PeState::Deregistered | PeState::GaveUp | PeState::Refused { .. } => {
                self.state = PeState::Unregistered;
            }
            PeState::Unregistered => {}
            PeState::Deregistering { .. }
            | PeState::Registered { .. }
            | PeState::Registering { .. } => return,
        }
        self.leaving = false;
        self.timeouts = 0;
        assert!(self.wants_link());
    }

    /// The T4 deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// T4 fired at `now`: re-register over `link` ("a re-registration SHOULD be made").
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        link: Option<&mut Link>,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        if self.timers.take_expired(now) != Some(PeTimer::Reregistration) {
            return Ok(());
        }
        match link {
            Some(link) => self.register(now, link, timeout),
            None => {
                self.state = PeState::Unregistered;
                Ok(())
            }
        }
    }
}

/// The first cause of a refusal; a refusal without one is Unspecified Error (§3.12.1).
fn first_cause(error: Option<&OperationalError>) -> ErrorCause {
    error.and_then(|e| e.causes.first()).map_or(ErrorCause::UNSPECIFIED, |c| c.code)
}
