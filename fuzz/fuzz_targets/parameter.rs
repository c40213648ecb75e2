//! Fuzz target: `codec::fuzzing::parameter` parses, and on success re-emits and re-parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    codec::fuzzing::parameter(data);
});
