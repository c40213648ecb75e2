//! Live pool updates on the PU side (RFC 5352 §2.2.5 'S' bit, §2.2.6 'A' bit): the table of
//! pools the user follows, and where each subscription stands at the home registrar.
//!
//! The table is data; the [`crate::Endpoint`] decides when to send the subscribing Handle
//! Resolutions and what each answer means for the user. A subscription lives at one registrar
//! over one association: the registrars do not share it, so a new home (a hunt's winner, or a
//! takeover by keep-alive with the H flag) gets the request again, and so does the next home
//! after the association fails.
//!
//! A PU that only follows pools sends nothing, so it would never notice a home that went
//! silent (killed, say): RFC 5352 §3.6 hunts when a request times out, and SCTP's heartbeats
//! take minutes. So an accepted subscription is sent again every probe interval (the
//! registrar keeps one subscription per association and pool, so the repeat is harmless);
//! an unanswered probe times out like any request, and the hunt and re-subscription follow.
//!
//! ```text
//!   subscribe ─▶ Waiting ──(home up: HR with S sent)──▶ Requested{assoc}
//!   Requested ──(answer with A)──▶ Accepted{assoc} ──(push)──▶ Accepted{assoc}
//!   Accepted ──(probe_at: HR with S again)──▶ Requested{assoc}
//!   Requested ──(answer without A)──▶ Polling{assoc, next_at} ──(next_at: HR with S)──▶ Requested
//!   any on assoc ──(association lost, home moved away, request timed out)──▶ Waiting
//!   any ──(negative answer)──▶ removed (PoolGone, or SubscriptionFailed if never answered)
//! ```

use codec::PoolHandle;
use transport::AssocId;

use crate::time::{Duration, Instant};

/// Pools one endpoint follows. A watcher follows a few pools; 64 bounds the linear scans done
/// per answer and per timer run.
pub const SUBSCRIPTIONS_MAX: usize = 64;

/// How a subscribed pool's changes reach the PU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updates {
    /// The registrar answered without the A flag (RSPLIB never sets it): the endpoint asks
    /// again every stale-cache interval.
    Polled,
    /// The registrar accepted the subscription (A flag): it pushes every change.
    Pushed,
}

/// Where one subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// The registrar on `assoc` accepted (A flag) and pushes changes on it; at `probe_at` the
    /// subscription is sent again, to find out whether the registrar is still there.
    Accepted {
        /// The association the pushes arrive on.
        assoc: AssocId,
        /// When to send the subscription again.
        probe_at: Instant,
    },
    /// The registrar on `assoc` answered without the A flag; the next Handle Resolution (with
    /// the S flag again, in case a new home accepts it) leaves at `next_at`.
    Polling {
        /// The association the last answer came on.
        assoc: AssocId,
        /// When to ask again.
        next_at: Instant,
    },
    /// A Handle Resolution with the S flag left on `assoc`; its answer is awaited.
    Requested {
        /// The association it left on.
        assoc: AssocId,
    },
    /// Waits for a home registrar to send the subscribing Handle Resolution to.
    Waiting,
}

impl SubscriptionState {
    /// The association this state is bound to, if any.
    pub fn assoc(&self) -> Option<AssocId> {
        match *self {
            Self::Accepted { assoc, .. }
            | Self::Polling { assoc, .. }
            | Self::Requested { assoc } => Some(assoc),
            Self::Waiting => None,
        }
    }
}

/// What an answer on a subscription's association means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The pool's current list, delivered this way from now on.
    Changed(Updates),
    /// A negative answer: the subscription ended. `established` says whether it had been
    /// answered positively before (the pool is gone) or not (it never started).
    Ended {
        /// Whether the pool was followed before this answer.
        established: bool,
    },
    /// Not for a subscription on that association: ignore it (an old home still pushing, or
    /// a pool nobody follows).
    Ignored,
}

/// A Handle Resolution Response as the table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// It carries no error.
    pub positive: bool,
    /// Its A flag.
    pub accepted: bool,
}

/// The intervals of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Between two polls where the registrar does not push (the stale-cache value).
    pub poll: Duration,
    /// Between two probes of a registrar that pushes.
    pub probe: Duration,
}

/// Why a subscription was refused locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionError {
    /// [`SUBSCRIPTIONS_MAX`] pools are followed already.
    Full,
}

/// The pools the user follows.
#[derive(Debug, Default)]
pub struct Subscriptions {
    entries: Vec<Subscription>,
}

#[derive(Debug)]
struct Subscription {
    pool_handle: PoolHandle,
    state: SubscriptionState,
    /// Answered positively at least once.
    established: bool,
}

impl Subscriptions {
    /// No subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows `pool_handle` from now on; returns whether it is new (a pool followed already
    /// stays as it is).
    pub fn add(&mut self, pool_handle: PoolHandle) -> Result<bool, SubscriptionError> {
        if self.entries.iter().any(|s| s.pool_handle == pool_handle) {
            return Ok(false);
        }
        if self.entries.len() >= SUBSCRIPTIONS_MAX {
            return Err(SubscriptionError::Full);
        }
        let state = SubscriptionState::Waiting;
        self.entries.push(Subscription { pool_handle, state, established: false });
        assert!(self.entries.len() <= SUBSCRIPTIONS_MAX);
        Ok(true)
    }

    /// Stops following `pool_handle` (locally: ASAP has no message to cancel a subscription,
    /// so the registrar pushes until the association ends, and those pushes are ignored).
    pub fn remove(&mut self, pool_handle: &PoolHandle) -> bool {
        let before = self.entries.len();
        self.entries.retain(|s| s.pool_handle != *pool_handle);
        self.entries.len() != before
    }

    /// The state of `pool_handle`'s subscription, if it is followed.
    pub fn state(&self, pool_handle: &PoolHandle) -> Option<SubscriptionState> {
        self.find(pool_handle).map(|s| s.state)
    }

    /// Whether no pool is followed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pools whose subscribing Handle Resolution is to be sent at `now`: waiting ones, polled
    /// ones whose interval has passed, and accepted ones due for a probe.
    pub fn due(&self, now: Instant) -> impl Iterator<Item = PoolHandle> + '_ {
        self.entries
            .iter()
            .filter(move |s| match s.state {
                SubscriptionState::Waiting => true,
                SubscriptionState::Polling { next_at: at, .. }
                | SubscriptionState::Accepted { probe_at: at, .. } => at <= now,
                SubscriptionState::Requested { .. } => false,
            })
            .map(|s| s.pool_handle)
    }

    /// The subscribing Handle Resolution of `pool_handle` left on `assoc`.
    pub fn handle_sent(&mut self, pool_handle: &PoolHandle, assoc: AssocId) {
        if let Some(s) = self.find_mut(pool_handle) {
            s.state = SubscriptionState::Requested { assoc };
        }
    }

    /// A Handle Resolution Response for `pool_handle` arrived on `assoc` at `now`:
    /// `positive` when it carries no error, `accepted` its A flag. An answer on another
    /// association than the subscription's is ignored: that registrar's subscription is not
    /// ours any more.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        assoc: AssocId,
        pool_handle: &PoolHandle,
        answer: Answer,
        timing: Timing,
    ) -> Answered {
        let Answer { positive, accepted } = answer;
        let Some(at) = self.entries.iter().position(|s| s.pool_handle == *pool_handle) else {
            return Answered::Ignored;
        };
        let s = &mut self.entries[at];
        if s.state.assoc() != Some(assoc) {
            return Answered::Ignored;
        }
        if !positive {
            //= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
            //# If a negative
            //# response is returned, no further updates to the Pool (when it is
            //# created) will occur.
            let established = s.established;
            self.entries.swap_remove(at);
            return Answered::Ended { established };
        }
        s.established = true;
        //= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.6
        //# If
        //# this bit is set to '0', either the ENRP server does NOT support
        //# automatic updates, it has resource issues and cannot supply this
        //# feature, or the user did not request it.
        let updates = match s.state {
            // A push, or the answer to a poll sent while the subscription stood accepted.
            SubscriptionState::Accepted { .. } => Updates::Pushed,
            _ if accepted => Updates::Pushed,
            _ => Updates::Polled,
        };
        s.state = match updates {
            Updates::Pushed => match s.state {
                // A push does not move the probe: the probe checks the registrar answers us.
                SubscriptionState::Accepted { probe_at, .. } => {
                    SubscriptionState::Accepted { assoc, probe_at }
                }
                _ => SubscriptionState::Accepted { assoc, probe_at: now + timing.probe },
            },
            Updates::Polled => SubscriptionState::Polling { assoc, next_at: now + timing.poll },
        };
        Answered::Changed(updates)
    }

    /// The subscribing Handle Resolution of `pool_handle` on `assoc` got no answer in time:
    /// it is sent again at the next home.
    pub fn handle_request_timeout(&mut self, pool_handle: &PoolHandle, assoc: AssocId) {
        if let Some(s) = self.find_mut(pool_handle) {
            if s.state == (SubscriptionState::Requested { assoc }) {
                s.state = SubscriptionState::Waiting;
            }
        }
    }

    /// `assoc` ended: its subscriptions ended with it, and wait for the next home.
    pub fn handle_link_lost(&mut self, assoc: AssocId) {
        for s in self.entries.iter_mut().filter(|s| s.state.assoc() == Some(assoc)) {
            s.state = SubscriptionState::Waiting;
        }
    }

    /// The home registrar is now the one on `home`: every subscription held elsewhere is sent
    /// again there.
    pub fn handle_home_changed(&mut self, home: AssocId) {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
        //# Thus, upon change of Home ENRP
        //# server, the PU will need to re-send an ASAP_HANDLE_RESOLUTION message
        //# with the 'S' bit set to '1'.
        for s in &mut self.entries {
            if s.state.assoc().is_some_and(|a| a != home) {
                s.state = SubscriptionState::Waiting;
            }
        }
    }

    /// The next poll of a subscription the registrar did not accept, or probe of one it did.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|s| match s.state {
                SubscriptionState::Polling { next_at: at, .. }
                | SubscriptionState::Accepted { probe_at: at, .. } => Some(at),
                SubscriptionState::Requested { .. } | SubscriptionState::Waiting => None,
            })
            .min()
    }

    fn find(&self, pool_handle: &PoolHandle) -> Option<&Subscription> {
        self.entries.iter().find(|s| s.pool_handle == *pool_handle)
    }

    fn find_mut(&mut self, pool_handle: &PoolHandle) -> Option<&mut Subscription> {
        self.entries.iter_mut().find(|s| s.pool_handle == *pool_handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pool;

    const TIMING: Timing =
        Timing { poll: Duration::from_micros(1_000), probe: Duration::from_micros(5_000) };
    const ACCEPTED: Answer = Answer { positive: true, accepted: true };
    const POLLED: Answer = Answer { positive: true, accepted: false };

    // Goal: the table is bounded and a pool is followed once. Method: fill it, add one more,
    // add a duplicate.
    #[test]
    fn bounded_and_deduplicated() {
        let mut s = Subscriptions::new();
        for i in 0..SUBSCRIPTIONS_MAX {
            assert_eq!(s.add(pool(&format!("p{i}"))), Ok(true));
        }
        assert_eq!(s.add(pool("p0")), Ok(false));
        assert_eq!(s.add(pool("one-too-many")), Err(SubscriptionError::Full));
        assert!(s.remove(&pool("p0")));
        assert_eq!(s.add(pool("one-too-many")), Ok(true));
    }

    // Goal: a polled subscription is due at exactly its interval, not a microsecond before.
    // Method: answer without A at t = 10 µs; boundary pair at 1 009 µs and 1 010 µs.
    #[test]
    fn polled_subscription_is_due_at_the_interval() {
        let mut s = Subscriptions::new();
        let p = pool("p");
        s.add(p).unwrap();
        assert_eq!(s.due(Instant::ZERO).collect::<Vec<_>>(), [p]);
        s.handle_sent(&p, AssocId(1));
        assert_eq!(s.due(Instant::ZERO).count(), 0);
        let answer = s.handle_answer(Instant::from_micros(10), AssocId(1), &p, POLLED, TIMING);
        assert_eq!(answer, Answered::Changed(Updates::Polled));
        assert_eq!(s.poll_timeout(), Some(Instant::from_micros(1_010)));
        assert_eq!(s.due(Instant::from_micros(1_009)).count(), 0);
        assert_eq!(s.due(Instant::from_micros(1_010)).collect::<Vec<_>>(), [p]);
    }

    // Goal: answers on another association than the subscription's are ignored, and a home
    // change or a lost link sends the subscription again. Method: accept on 1, push on 2,
    // move home to 2, lose it.
    #[test]
    fn bound_to_one_association() {
        let mut s = Subscriptions::new();
        let p = pool("p");
        s.add(p).unwrap();
        s.handle_sent(&p, AssocId(1));
        let now = Instant::ZERO;
        assert_eq!(
            s.handle_answer(now, AssocId(1), &p, ACCEPTED, TIMING),
            Answered::Changed(Updates::Pushed)
        );
        assert_eq!(s.handle_answer(now, AssocId(2), &p, ACCEPTED, TIMING), Answered::Ignored);
        s.handle_home_changed(AssocId(1));
        let probe_at = Instant::from_micros(5_000);
        assert_eq!(s.state(&p), Some(SubscriptionState::Accepted { assoc: AssocId(1), probe_at }));
        s.handle_home_changed(AssocId(2));
        assert_eq!(s.state(&p), Some(SubscriptionState::Waiting));
        s.handle_sent(&p, AssocId(2));
        s.handle_link_lost(AssocId(2));
        assert_eq!(s.state(&p), Some(SubscriptionState::Waiting));
        s.handle_sent(&p, AssocId(3));
        s.handle_request_timeout(&p, AssocId(3));
        assert_eq!(s.state(&p), Some(SubscriptionState::Waiting));
    }

    // Goal: an accepted subscription is probed at exactly its interval, pushes do not move the
    // probe, and the probe's answer starts the next interval. Method: accept at 0 µs (probe
    // 5 000 µs), push at 4 000 µs; boundary pair at 4 999 / 5 000 µs; answer at 5 100 µs.
    #[test]
    fn accepted_subscription_is_probed_at_the_interval() {
        let mut s = Subscriptions::new();
        let p = pool("p");
        s.add(p).unwrap();
        s.handle_sent(&p, AssocId(1));
        s.handle_answer(Instant::ZERO, AssocId(1), &p, ACCEPTED, TIMING);
        s.handle_answer(Instant::from_micros(4_000), AssocId(1), &p, ACCEPTED, TIMING);
        assert_eq!(s.poll_timeout(), Some(Instant::from_micros(5_000)));
        assert_eq!(s.due(Instant::from_micros(4_999)).count(), 0);
        assert_eq!(s.due(Instant::from_micros(5_000)).collect::<Vec<_>>(), [p]);
        s.handle_sent(&p, AssocId(1));
        assert_eq!(s.poll_timeout(), None, "the probe waits for its answer");
        s.handle_answer(Instant::from_micros(5_100), AssocId(1), &p, ACCEPTED, TIMING);
        assert_eq!(s.poll_timeout(), Some(Instant::from_micros(10_100)));
    }
}
