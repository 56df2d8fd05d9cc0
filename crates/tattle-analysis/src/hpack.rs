//! HPACK (RFC 7541): the header blocks of one HTTP/2 connection's client→server direction, decoded
//! into (name, value) fields.
//!
//! Owns prefix integers (§5.1), string literals (§5.2; Huffman through the `httlib-huffman` crate,
//! whose decoder checks the padding and is a plain table walk with no state between calls), the
//! static table (Appendix A), the dynamic table with its byte accounting (§4.1: name + value + 32
//! per entry, oldest evicted first) and dynamic table size updates (§6.3).
//!
//! Why our own decoder rather than the `hpack`/`loona-hpack`/`fluke-hpack` crates: a passive
//! observer has no SETTINGS exchange to rely on (the server's SETTINGS are in the direction we do not
//! read), must cap the table itself whatever a peer announces, must survive hostile input without a
//! panic, and wants borrowed output without a `Vec` per field. `loona-hpack` is kept as a
//! dev-dependency, as the oracle of a differential test.
//!
//! Memory: the dynamic table holds at most `MAX_TABLE` bytes by the RFC's accounting (a size update
//! above it is a desync), a decoded Huffman string at most 8/5 of its encoded length. Anything the
//! decoder cannot follow — an index out of range, a truncated or overlong integer, bad Huffman, a
//! size update out of place or over the cap — is an `HpackError`: the caller stops decoding that
//! connection (its table is no longer known) and searches its header blocks raw.
//!
//! Must not touch: frames, streams, the matcher.

use std::collections::VecDeque;

use httlib_huffman::DecoderSpeed;
use thiserror::Error;

/// The dynamic table size a connection starts with (SETTINGS_HEADER_TABLE_SIZE's default, RFC 9113
/// §6.5.2).
pub const DEFAULT_TABLE: usize = 4096;
/// The largest dynamic table we follow: browsers and OkHttp stay at the 4096 default, nghttp2 and
/// Chrome allow up to 64 KiB.
pub const MAX_TABLE: usize = 64 << 10;
/// Per-entry overhead in the table's accounting (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded; the connection's table is unknown from then on.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a field.
    #[error("header block truncated")]
    Truncated,
    /// An integer longer than any index or length could be.
    #[error("integer overflow")]
    Overflow,
    /// Index 0, or past the static and dynamic tables.
    #[error("index {0} out of range")]
    BadIndex(usize),
    /// A Huffman string that does not decode (a bad code, EOS, bad padding).
    #[error("bad huffman string")]
    Huffman,
    /// A dynamic table size update over `MAX_TABLE`, or after the first field of a block.
    #[error("bad dynamic table size update to {0}")]
    SizeUpdate(usize),
}

/// RFC 7541 Appendix A; index 1 is element 0.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// A dynamic table entry: (name, value).
type Entry = (Box<[u8]>, Box<[u8]>);

/// One decoder per connection direction.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first, as indices count (§2.3.3).
    table: VecDeque<Entry>,
    /// Bytes in `table` by the RFC's accounting.
    size: usize,
    /// The table's current maximum, set by size updates.
    max: usize,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// Where a string of a field came from: the block itself, a scratch buffer (Huffman), a table.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    NameBuf,
    ValueBuf,
    Static(usize),
    Dynamic(usize),
}

impl Decoder {
    /// A decoder with the default 4096-byte table.
    pub fn new() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: DEFAULT_TABLE,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// Bytes held: the dynamic table's entries and the scratch buffers.
    pub fn buffered(&self) -> usize {
        self.size + self.name_buf.capacity() + self.value_buf.capacity()
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments joined), giving each
    /// field to `field(name, value)` in order. On an error the fields before it have been given and
    /// the table is in an unknown state: stop using this decoder.
    pub fn decode_block(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut fields_seen = false;
        while pos < block.len() {
            let first = block[pos];
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = integer(block, &mut pos, 7)?;
                let (name, value) = self.entry(index)?;
                let (name, value) = (self.get(block, name), self.get(block, value));
                field(name, value);
                fields_seen = true;
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3): only before the block's first field (§4.2).
                let size = integer(block, &mut pos, 5)?;
                if fields_seen || size > MAX_TABLE {
                    return Err(HpackError::SizeUpdate(size));
                }
                self.max = size;
                self.evict(0);
            } else {
                // Literal (§6.2): with incremental indexing (01), without (0000), never (0001).
                let (prefix, index) = if first & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name_index = integer(block, &mut pos, prefix)?;
                let name = if name_index == 0 {
                    self.string(block, &mut pos, true)?
                } else {
                    self.entry(name_index)?.0
                };
                let value = self.string(block, &mut pos, false)?;
                field(self.get(block, name), self.get(block, value));
                fields_seen = true;
                if index {
                    let entry = (
                        Box::<[u8]>::from(self.get(block, name)),
                        Box::<[u8]>::from(self.get(block, value)),
                    );
                    self.insert(entry);
                }
            }
        }
        Ok(())
    }

    /// The (name, value) of an index into the static then dynamic table (§2.3.3).
    fn entry(&self, index: usize) -> Result<(Str, Str), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex(0)),
            1..=61 => Ok((Str::Static(index - 1), Str::Static(index - 1 + 61))),
            _ if index - 62 < self.table.len() => {
                let i = index - 62;
                Ok((Str::Dynamic(i), Str::Dynamic(i + self.table.len())))
            }
            _ => Err(HpackError::BadIndex(index)),
        }
    }

    /// The bytes a `Str` names. Static and dynamic values are encoded as index + table length.
    fn get<'a>(&'a self, block: &'a [u8], s: Str) -> &'a [u8] {
        match s {
            Str::Block(start, end) => &block[start..end],
            Str::NameBuf => &self.name_buf,
            Str::ValueBuf => &self.value_buf,
            Str::Static(i) if i < 61 => STATIC[i].0.as_bytes(),
            Str::Static(i) => STATIC[i - 61].1.as_bytes(),
            Str::Dynamic(i) if i < self.table.len() => &self.table[i].0,
            Str::Dynamic(i) => &self.table[i - self.table.len()].1,
        }
    }

    /// A string literal (§5.2) at `pos`: raw bytes stay in the block, Huffman is decoded into the
    /// name or value scratch buffer.
    fn string(&mut self, block: &[u8], pos: &mut usize, name: bool) -> Result<Str, HpackError> {
        let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = integer(block, pos, 7)?;
        let end = pos.checked_add(len).ok_or(HpackError::Overflow)?;
        let raw = block.get(*pos..end).ok_or(HpackError::Truncated)?;
        *pos = end;
        if !huffman {
            return Ok(Str::Block(end - len, end));
        }
        let buf = if name {
            &mut self.name_buf
        } else {
            &mut self.value_buf
        };
        huffman_into(raw, buf)?;
        Ok(if name { Str::NameBuf } else { Str::ValueBuf })
    }

    fn insert(&mut self, (name, value): Entry) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        // An entry larger than the table empties it and is not added (§4.4).
        self.evict(size.min(self.max + 1));
        if size <= self.max {
            self.table.push_front((name, value));
            self.size += size;
        }
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            let Some((n, v)) = self.table.pop_back() else {
                break;
            };
            self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
        }
    }
}

/// The `hpack` fuzz target's body (exposed through `testgen`): `data` is a connection's header
/// blocks, each behind a 2-byte big-endian length, decoded by one decoder until the first error.
/// Panics if a bound does not hold: the table over its maximum, a field longer than its block
/// could encode. Returns the fields decoded.
#[cfg(any(test, feature = "testgen"))]
pub fn fuzz_blocks(mut data: &[u8]) -> usize {
    let mut d = Decoder::new();
    let mut fields = 0;
    while let [a, b, rest @ ..] = data {
        let len = (usize::from(*a) << 8 | usize::from(*b)).min(rest.len());
        let (block, next) = rest.split_at(len);
        data = next;
        // A Huffman string decodes to at most 8/5 of its bytes (codes are ≥ 5 bits); a table entry
        // is at most the table.
        let longest = (block.len() * 8 / 5 + 1).max(MAX_TABLE);
        let r = d.decode_block(block, |n, v| {
            assert!(
                n.len() <= longest && v.len() <= longest,
                "field longer than possible"
            );
            fields += 1;
        });
        assert!(
            d.size <= d.max && d.max <= MAX_TABLE,
            "table over its maximum"
        );
        assert_eq!(
            d.size,
            d.table
                .iter()
                .map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD)
                .sum::<usize>()
        );
        if r.is_err() {
            break;
        }
    }
    fields
}

/// Decodes a Huffman string (§5.2, Appendix B) into `out`, replacing what it held. Shared with
/// QPACK, which uses the same code.
pub(crate) fn huffman_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    out.clear();
    httlib_huffman::decode(raw, out, DecoderSpeed::FourBits).map_err(|_| HpackError::Huffman)
}

/// A prefix integer (§5.1) at `pos` with an `n`-bit prefix; `pos` moves past it.
pub(crate) fn integer(block: &[u8], pos: &mut usize, n: u8) -> Result<usize, HpackError> {
    let mask = (1u16 << n) as usize - 1;
    let first = *block.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mut value = first as usize & mask;
    if value < mask {
        return Ok(value);
    }
    // Continuation bytes: 7 bits each. Four are enough for any index, length or table size we
    // accept (2^28); more is an overlong encoding or an attack.
    for shift in (0..28).step_by(7) {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(HpackError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(s).expect("hex")
    }

    fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        let mut out = Vec::new();
        d.decode_block(block, |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })?;
        Ok(out)
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        d.table
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn integers_of_appendix_c1() {
        // C.1.1: 10 in a 5-bit prefix; C.1.2: 1337; C.1.3: 42 at an octet boundary.
        let mut pos = 0;
        assert_eq!(integer(&[0x0a], &mut pos, 5), Ok(10));
        pos = 0;
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Ok(1337));
        assert_eq!(pos, 3);
        pos = 0;
        assert_eq!(integer(&[0x2a], &mut pos, 8), Ok(42));
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0x9a], &mut pos, 5),
            Err(HpackError::Truncated)
        );
        pos = 0;
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos, 5),
            Err(HpackError::Overflow)
        );
    }

    #[test]
    fn single_fields_of_appendix_c2() {
        // C.2.1: literal with indexing.
        let mut d = Decoder::new();
        let block = unhex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(
            decode(&mut d, &block),
            Ok(pairs(&[("custom-key", "custom-header")]))
        );
        assert_eq!(table(&d), pairs(&[("custom-key", "custom-header")]));
        assert_eq!(d.size, 55);
        // C.2.2: without indexing; C.2.3: never indexed; C.2.4: indexed.
        let mut d = Decoder::new();
        let block = unhex("040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(
            decode(&mut d, &block),
            Ok(pairs(&[(":path", "/sample/path")]))
        );
        assert!(d.table.is_empty());
        let block = unhex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(decode(&mut d, &block), Ok(pairs(&[("password", "secret")])));
        assert!(d.table.is_empty());
        assert_eq!(decode(&mut d, &[0x82]), Ok(pairs(&[(":method", "GET")])));
    }

    /// C.3 (plain literals) and C.4 (Huffman): the same three requests on one connection.
    #[test]
    fn requests_of_appendix_c3_and_c4() {
        let expected = [
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ]),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ]),
        ];
        let plain = [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ];
        let huffman = [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ];
        for blocks in [plain, huffman] {
            let mut d = Decoder::new();
            for (block, want) in blocks.iter().zip(&expected) {
                assert_eq!(decode(&mut d, &unhex(block)).as_ref(), Ok(want));
            }
            assert_eq!(
                table(&d),
                pairs(&[
                    ("custom-key", "custom-value"),
                    ("cache-control", "no-cache"),
                    (":authority", "www.example.com"),
                ])
            );
            assert_eq!(d.size, 164);
        }
    }

    /// C.5 (plain) and C.6 (Huffman): responses with a 256-byte table, so entries are evicted.
    #[test]
    fn responses_with_eviction_of_appendix_c5_and_c6() {
        let plain = [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ];
        let huffman = [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ];
        let date = "Mon, 21 Oct 2013 20:13:22 GMT";
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        for blocks in [plain, huffman] {
            let mut d = Decoder::new();
            d.max = 256;
            let first = decode(&mut d, &unhex(blocks[0])).expect("first");
            assert_eq!(first[0], (":status".into(), "302".into()));
            assert_eq!(d.size, 222);
            let second = decode(&mut d, &unhex(blocks[1])).expect("second");
            assert_eq!(second[0], (":status".into(), "307".into()));
            assert_eq!(second[3].1, "https://www.example.com");
            let third = decode(&mut d, &unhex(blocks[2])).expect("third");
            assert_eq!(
                third,
                pairs(&[
                    (":status", "200"),
                    ("cache-control", "private"),
                    ("date", date),
                    ("location", "https://www.example.com"),
                    ("content-encoding", "gzip"),
                    ("set-cookie", cookie),
                ])
            );
            assert_eq!(
                table(&d),
                pairs(&[
                    ("set-cookie", cookie),
                    ("content-encoding", "gzip"),
                    ("date", date),
                ])
            );
            assert_eq!(d.size, 215);
        }
    }

    #[test]
    fn size_updates_evict_and_are_capped() {
        let mut d = Decoder::new();
        decode(
            &mut d,
            &unhex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        )
        .expect("ok");
        assert_eq!(d.table.len(), 1);
        // Size update to 0 then back to 4096 (0x3f e1 1f): the table is emptied.
        assert_eq!(decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f]), Ok(vec![]));
        assert!(d.table.is_empty());
        assert_eq!(d.max, 4096);
        // Index 62 now points nowhere.
        assert_eq!(decode(&mut d, &[0xbe]), Err(HpackError::BadIndex(62)));
        // Over our cap: 1 MiB.
        let mut big = vec![0x3f];
        big.extend([0xe1, 0xff, 0x3f]);
        assert!(matches!(
            decode(&mut Decoder::new(), &big),
            Err(HpackError::SizeUpdate(_))
        ));
        // After a field.
        assert_eq!(
            decode(&mut Decoder::new(), &[0x82, 0x20]),
            Err(HpackError::SizeUpdate(0))
        );
    }

    #[test]
    fn hostile_blocks_are_errors_not_panics() {
        for block in [
            &[0x80][..],               // index 0
            &[0xff, 0xff],             // truncated integer
            &[0x40, 0x05, b'a'],       // literal longer than the block
            &[0x40, 0x81, 0xff, 0x00], // Huffman EOS
            &[0x40],                   // nothing after the type
            &[0x0f, 0xff, 0xff, 0xff], // name index truncated
        ] {
            assert!(decode(&mut Decoder::new(), block).is_err(), "{block:02x?}");
        }
    }

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    /// A small deterministic generator (no `rand` in the tree for this).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn put_integer(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
        let mask = (1usize << n) - 1;
        if v < mask {
            out.push(first | v as u8);
            return;
        }
        out.push(first | mask as u8);
        v -= mask;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_string(out: &mut Vec<u8>, rng: &mut Rng, s: &[u8]) {
        if rng.below(2) == 0 {
            let mut h = Vec::new();
            httlib_huffman::encode(s, &mut h).expect("huffman");
            put_integer(out, 0x80, 7, h.len());
            out.extend_from_slice(&h);
        } else {
            put_integer(out, 0, 7, s.len());
            out.extend_from_slice(s);
        }
    }

    /// A random but well-formed block: every representation, names and values that are reused
    /// (so the dynamic table is exercised and evicted), a size update now and then.
    fn random_block(rng: &mut Rng, table_len: &mut usize) -> Vec<u8> {
        const NAMES: [&[u8]; 6] = [
            b"x-device",
            b"cookie",
            b":path",
            b"user-agent",
            b"x-a",
            b"content-encoding",
        ];
        let mut out = Vec::new();
        if rng.below(8) == 0 {
            put_integer(&mut out, 0x20, 5, rng.below(600));
            *table_len = 0;
        }
        for _ in 0..1 + rng.below(8) {
            let value: Vec<u8> = (0..rng.below(120)).map(|_| rng.below(256) as u8).collect();
            match rng.below(5) {
                0 => put_integer(&mut out, 0x80, 7, 1 + rng.below(61 + *table_len)),
                kind => {
                    let (first, n) = [(0x40, 6), (0x00, 4), (0x10, 4), (0x40, 6)][kind - 1];
                    if rng.below(2) == 0 {
                        put_integer(&mut out, first, n, 1 + rng.below(61 + *table_len));
                    } else {
                        put_integer(&mut out, first, n, 0);
                        let name = NAMES[rng.below(NAMES.len())];
                        put_string(&mut out, rng, name);
                    }
                    put_string(&mut out, rng, &value);
                    if first == 0x40 {
                        *table_len += 1;
                    }
                }
            }
        }
        out
    }

    /// Our decoder against loona-hpack on the same connections: well-formed blocks decode to the
    /// same fields; damaged ones never panic, and whatever both accept they decode alike.
    #[test]
    fn agrees_with_loona_hpack() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut compared, mut damaged_compared) = (0, 0);
        for conn in 0..150 {
            let mut ours = Decoder::new();
            let mut theirs = loona_hpack::Decoder::new();
            theirs.set_max_allowed_table_size(MAX_TABLE);
            // `table_len` over-counts after evictions, so some indices are out of range on
            // purpose: both must then fail.
            let mut table_len = 0;
            let damage = conn % 3 == 0;
            for _ in 0..12 {
                let mut block = random_block(&mut rng, &mut table_len);
                if damage {
                    let i = rng.below(block.len());
                    block[i] ^= 1 << rng.below(8);
                    block.truncate(block.len() - rng.below(2));
                }
                let a = decode_bytes(&mut ours, &block);
                let b = theirs.decode(&block);
                match (&a, &b) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "block {block:02x?}");
                        if damage {
                            damaged_compared += 1
                        } else {
                            compared += 1
                        }
                    }
                    (Err(_), Err(_)) => break,
                    _ if damage => break,
                    _ => panic!("ours {a:?} theirs {b:?} on {block:02x?}"),
                }
            }
        }
        eprintln!("compared {compared}, damaged {damaged_compared}");
        // Enough blocks actually compared for the test to mean something.
        assert!(
            compared > 600 && damaged_compared > 20,
            "{compared} {damaged_compared}"
        );
    }

    /// The fuzz seeds are the header blocks of real connections (nghttp2's encoder, Huffman and
    /// dynamic table), and decode in full.
    #[test]
    fn fuzz_seeds_decode() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/hpack");
        let mut seeds = 0;
        for entry in std::fs::read_dir(dir).expect("seeds") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            assert!(fuzz_blocks(&data) >= 8);
            seeds += 1;
        }
        assert!(seeds >= 4);
    }

    fn decode_bytes(d: &mut Decoder, block: &[u8]) -> Result<Fields, HpackError> {
        let mut out = Vec::new();
        d.decode_block(block, |n, v| out.push((n.to_vec(), v.to_vec())))?;
        Ok(out)
    }
}
