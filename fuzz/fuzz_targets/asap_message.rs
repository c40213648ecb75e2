//! Fuzz target: `codec::fuzzing::asap_message` parses, and on success re-emits and re-parses.
//!
//! Outside `cargo fuzz` (no `cfg(fuzzing)`), e.g. in `cargo build --workspace`, this builds as
//! an empty program so that workspace-wide commands keep working.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    codec::fuzzing::asap_message(data);
});

#[cfg(not(fuzzing))]
fn main() {}
