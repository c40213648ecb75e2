//! Fuzz target: `codec::fuzzing::asap_message` parses, and on success re-emits and re-parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    codec::fuzzing::asap_message(data);
});
