//! Per-worker recording of completions: an HDR histogram of latency per op kind, counts of
//! errors by cause, and a throughput timeline. Workers record without sharing anything; the
//! runner merges their recorders at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::op::{Completion, ErrorCause, OpKind, Outcome, OP_KINDS};

/// Everything one worker saw.
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    bucket_ns: u64,
    kinds: [KindRecorder; OP_KINDS],
}

/// Everything seen for one op kind.
#[derive(Clone, Debug)]
pub struct KindRecorder {
    /// Latency of successful operations, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Successful operations.
    pub succeeded: u64,
    /// Failed operations, all causes.
    pub failed: u64,
    /// Failed operations by cause. Causes are few, so this stays small.
    pub errors: BTreeMap<ErrorCause, u64>,
    /// Successes per timeline bucket.
    pub succeeded_per_bucket: Vec<u64>,
    /// Failures per timeline bucket.
    pub failed_per_bucket: Vec<u64>,
}

/// Latency percentiles in microseconds. Never only a mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Fastest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean, for completeness only.
    pub mean: f64,
}

/// One point of a latency CDF.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CdfPoint {
    /// Latency, microseconds.
    pub latency_us: f64,
    /// Fraction of operations at or below it, `0..=1`.
    pub fraction: f64,
}

impl Recorder {
    /// A recorder whose timeline starts at `start`, with `buckets` buckets of `bucket`.
    /// Allocates everything it will ever need now.
    pub fn new(start: Instant, bucket: Duration, buckets: usize) -> Recorder {
        let bucket_ns = u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX);
        assert!(bucket_ns > 0);
        assert!(buckets > 0);
        Recorder { start, bucket_ns, kinds: std::array::from_fn(|_| KindRecorder::new(buckets)) }
    }

    /// Records one completion.
    pub fn record(&mut self, completion: &Completion) {
        let since_start = completion.end.saturating_duration_since(self.start).as_nanos();
        let bucket = u64::try_from(since_start).unwrap_or(u64::MAX) / self.bucket_ns;
        let kind = &mut self.kinds[completion.op.kind.index()];
        // Completions after the last bucket (a slow drain) still count, in the last bucket.
        let bucket =
            usize::try_from(bucket).unwrap_or(usize::MAX).min(kind.succeeded_per_bucket.len() - 1);
        match completion.outcome {
            Outcome::Succeed => {
                kind.succeeded += 1;
                kind.succeeded_per_bucket[bucket] += 1;
                kind.latency_ns.saturating_record(completion.latency_ns().max(1));
            }
            Outcome::Fail(cause) => {
                kind.failed += 1;
                kind.failed_per_bucket[bucket] += 1;
                *kind.errors.entry(cause).or_insert(0) += 1;
            }
        }
    }

    /// Adds `other`'s counts to ours. Both must share start and bucket layout.
    pub fn merge(&mut self, other: &Recorder) {
        assert_eq!(self.start, other.start);
        assert_eq!(self.bucket_ns, other.bucket_ns);
        for (ours, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            // Both histograms have the same bounds, so adding cannot fail.
            ours.latency_ns.add(&theirs.latency_ns).expect("same histogram bounds");
            ours.succeeded += theirs.succeeded;
            ours.failed += theirs.failed;
            for (cause, count) in &theirs.errors {
                *ours.errors.entry(*cause).or_insert(0) += count;
            }
            add_into(&mut ours.succeeded_per_bucket, &theirs.succeeded_per_bucket);
            add_into(&mut ours.failed_per_bucket, &theirs.failed_per_bucket);
        }
    }

    /// What was recorded for `kind`.
    pub fn kind(&self, kind: OpKind) -> &KindRecorder {
        &self.kinds[kind.index()]
    }

    /// Width of one timeline bucket.
    pub fn bucket(&self) -> Duration {
        Duration::from_nanos(self.bucket_ns)
    }
}

impl KindRecorder {
    fn new(buckets: usize) -> KindRecorder {
        KindRecorder {
            // Bounds: 1 ns to 120 s at 3 significant digits; op_timeout_ms is capped at 60 s
            // so every real latency fits, and saturating_record clamps the rest.
            latency_ns: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
                .expect("constant histogram bounds are valid"),
            succeeded: 0,
            failed: 0,
            errors: BTreeMap::new(),
            succeeded_per_bucket: vec![0; buckets],
            failed_per_bucket: vec![0; buckets],
        }
    }

    /// Latency percentiles of successful operations, in microseconds; all zero if none.
    pub fn percentiles(&self) -> Percentiles {
        let h = &self.latency_ns;
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Percentiles {
            min: us(h.min()),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1_000.0,
        }
    }

    /// The latency CDF at up to `points_max` points, log-spaced in latency so that both the
    /// body and the tail are visible.
    pub fn cdf(&self, points_max: usize) -> Vec<CdfPoint> {
        let h = &self.latency_ns;
        if h.is_empty() || points_max < 2 {
            return Vec::new();
        }
        let (low, high) = ((h.min().max(1)) as f64, (h.max().max(1)) as f64);
        let mut points = Vec::with_capacity(points_max);
        let total = h.len() as f64;
        for i in 0..points_max {
            let t = i as f64 / (points_max - 1) as f64;
            let ns = (low.ln() + (high.ln() - low.ln()) * t).exp();
            let at_or_below = h.count_between(0, ns as u64) as f64;
            points.push(CdfPoint {
                latency_us: ns / 1_000.0,
                fraction: (at_or_below / total).min(1.0),
            });
        }
        assert!(points.windows(2).all(|w| w[0].fraction <= w[1].fraction));
        points
    }
}

fn add_into(ours: &mut [u64], theirs: &[u64]) {
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter_mut().zip(theirs) {
        *a += b;
    }
}

/// Upper bound of the latency histograms: twice the longest allowed op timeout.
pub const LATENCY_NS_MAX: u64 = 120_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{AssociationId, Op};

    fn completion(start: Instant, latency_us: u64, outcome: Outcome) -> Completion {
        let op = Op {
            kind: OpKind::Resolve,
            association: AssociationId(0),
            pool: 0,
            element: 0,
            issued_at: start,
        };
        Completion { op, end: start + Duration::from_micros(latency_us), outcome }
    }

    #[test]
    fn percentiles_of_known_data() {
        // Goal: percentiles match the data within the histogram's 3-digit precision. Method:
        // record 1..=10_000 µs once each; the q-quantile is then q × 10_000 µs.
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_millis(100), 200);
        for us in 1..=10_000 {
            r.record(&completion(start, us, Outcome::Succeed));
        }
        let p = r.kind(OpKind::Resolve).percentiles();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(p.min, 1.0), "{p:?}");
        assert!(close(p.p50, 5_000.0), "{p:?}");
        assert!(close(p.p90, 9_000.0), "{p:?}");
        assert!(close(p.p99, 9_900.0), "{p:?}");
        assert!(close(p.p999, 9_990.0), "{p:?}");
        assert!(close(p.max, 10_000.0), "{p:?}");
        assert!(close(p.mean, 5_000.5), "{p:?}");
        let cdf = r.kind(OpKind::Resolve).cdf(50);
        assert_eq!(cdf.len(), 50);
        assert!((cdf[49].fraction - 1.0).abs() < 1e-9);
        assert!(cdf[0].fraction < 0.01);
    }

    #[test]
    fn errors_timeline_and_merge() {
        // Goal: errors are counted by cause and kept out of the latency histogram, buckets
        // follow completion time, and merging adds. Method: two recorders, merged.
        let start = Instant::now();
        let mut a = Recorder::new(start, Duration::from_millis(100), 3);
        let mut b = Recorder::new(start, Duration::from_millis(100), 3);
        a.record(&completion(start, 50_000, Outcome::Succeed)); // bucket 0
        a.record(&completion(start, 150_000, Outcome::Fail(ErrorCause::Timeout))); // bucket 1
        b.record(&completion(start, 150_000, Outcome::Fail(ErrorCause::Asap(9)))); // bucket 1
        b.record(&completion(start, 9_000_000, Outcome::Succeed)); // past the end: last bucket
        a.merge(&b);
        let k = a.kind(OpKind::Resolve);
        assert_eq!((k.succeeded, k.failed), (2, 2));
        assert_eq!(k.latency_ns.len(), 2);
        assert_eq!(k.errors[&ErrorCause::Timeout], 1);
        assert_eq!(k.errors[&ErrorCause::Asap(9)], 1);
        assert_eq!(k.succeeded_per_bucket, vec![1, 0, 1]);
        assert_eq!(k.failed_per_bucket, vec![0, 2, 0]);
        assert_eq!(a.kind(OpKind::Register).succeeded, 0);
    }
}
