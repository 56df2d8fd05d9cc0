//! The HPACK decoder alone: the input is one connection's header blocks, each behind a 2-byte
//! big-endian length (see `tattle_analysis::testgen::hpack_fuzz_blocks`). Beyond "never panics":
//! the dynamic table stays within its maximum and its byte accounting, and no field is longer than
//! its block could encode. The `payload` target reaches the same decoder through HTTP/2 frames
//! (h2c on port 8080); this one spends every mutation on HPACK itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tattle_analysis::testgen::hpack_fuzz_blocks(data);
});
