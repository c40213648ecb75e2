//! Fuzz target: `codec::fuzzing::enrp_message` parses, and on success re-emits and re-parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    codec::fuzzing::enrp_message(data);
});
