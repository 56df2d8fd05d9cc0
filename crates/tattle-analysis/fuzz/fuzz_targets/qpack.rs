//! The QPACK decoder alone: the input is a sequence of records, each a kind byte (even: encoder
//! stream bytes, odd: a field section) and a 2-byte big-endian length, given to one decoder (see
//! `tattle_analysis::testgen::qpack_fuzz_records`). Beyond "never panics": the dynamic table (and
//! the evicted entries it keeps) stays within its capacity and its byte accounting, and no field
//! is longer than its section could encode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tattle_analysis::testgen::qpack_fuzz_records(data);
});
