//! Parse and emit of every ASAP and ENRP message type, plus the registrar's hot pair: a Handle
//! Resolution view parse and a Handle Resolution Response emit with three PEs (target: under
//! 150 ns together on the development machine).
//!
//! Quick run: `cargo bench -p codec -- --warm-up-time 0.5 --measurement-time 1`.

#![allow(missing_docs)]

use std::hint::black_box;

use codec::asap::{HandleResolutionResponseRef, HandleResolutionView};
use codec::testing::{sample_asap_messages, sample_enrp_messages, sample_pool_element};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn name<T: std::fmt::Debug>(m: &T) -> String {
    let debug = format!("{m:?}");
    debug.split('(').next().unwrap_or("?").to_string()
}

fn asap(c: &mut Criterion) {
    let mut group = c.benchmark_group("asap");
    for m in sample_asap_messages() {
        let bytes = m.emit_to_vec();
        let mut buf = vec![0; bytes.len()];
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("parse/{}", name(&m)), |b| {
            b.iter(|| codec::asap::Message::parse(black_box(&bytes)).unwrap())
        });
        group.bench_function(format!("emit/{}", name(&m)), |b| {
            b.iter(|| black_box(&m).emit(&mut buf))
        });
    }
    group.finish();
}

fn enrp(c: &mut Criterion) {
    let mut group = c.benchmark_group("enrp");
    for m in sample_enrp_messages() {
        let bytes = m.emit_to_vec();
        let mut buf = vec![0; bytes.len()];
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("parse/{}", name(&m)), |b| {
            b.iter(|| codec::enrp::Message::parse(black_box(&bytes)).unwrap())
        });
        group.bench_function(format!("emit/{}", name(&m)), |b| {
            b.iter(|| black_box(&m).emit(&mut buf))
        });
    }
    group.finish();
}

fn hot_path(c: &mut Criterion) {
    let request = sample_asap_messages()
        .into_iter()
        .find(|m| matches!(m, codec::asap::Message::HandleResolution(_)))
        .unwrap()
        .emit_to_vec();
    let pes = [sample_pool_element(1), sample_pool_element(2), sample_pool_element(3)];
    let mut out = [0u8; 2048];
    c.bench_function("hot/handle_resolution_parse+response_emit_3pe", |b| {
        b.iter(|| {
            let view = HandleResolutionView::new_checked(black_box(&request[..])).unwrap();
            let handle = view.pool_handle();
            let selected = [&pes[0], &pes[1], &pes[2]];
            let response = HandleResolutionResponseRef {
                accept_updates: false,
                pool_handle: &handle,
                overall_policy: None,
                pool_elements: &selected,
            };
            response.emit(black_box(&mut out))
        })
    });
}

criterion_group!(benches, asap, enrp, hot_path);
criterion_main!(benches);
