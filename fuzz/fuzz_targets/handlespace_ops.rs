//! Fuzz target: `handlespace::fuzzing::ops` runs an operation sequence and checks invariants.
//!
//! Outside `cargo fuzz` (no `cfg(fuzzing)`) this builds as an empty program, like the others.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    handlespace::fuzzing::ops(data);
});

#[cfg(not(fuzzing))]
fn main() {}
