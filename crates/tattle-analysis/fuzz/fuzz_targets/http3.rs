//! HTTP/3 framing and QPACK through `Http3Connection`: the input is a sequence of stream
//! deliveries, each a stream id byte, a flags byte (bit 0 fin; bit 7 a gap of the low 6 bits'
//! length before it) and a 2-byte big-endian length (see
//! `tattle_analysis::testgen::http3_fuzz_streams`). Beyond "never panics": the streams, bodies
//! and held sections stay within their caps, and every hit lies at a position that was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tattle_analysis::testgen::http3_fuzz_streams(data);
});
