//! QUIC Initial packets: the server name a client announces in the first flight of a QUIC connection.
//!
//! QUIC v1 (RFC 9000) encrypts even its first packets, but with keys anyone can derive from the
//! Destination Connection ID the client chose (RFC 9001 §5.2): HKDF-SHA256 with the version's salt,
//! then `client in`, `quic key`, `quic iv`, `quic hp`. This module owns that derivation, header
//! protection removal (AES-128-ECB mask), AES-128-GCM decryption, the frames an Initial may carry
//! (PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE), reassembly of the CRYPTO stream across packets,
//! and handing the ClientHello to `tls`. The packets after it are `protected`'s.
//!
//! Memory: the CRYPTO stream is held up to `MAX_CRYPTO` bytes; work stops after `MAX_INITIALS`
//! client Initial packets without a complete ClientHello.
//!
//! Must not touch: flows, matching, I/O, packets other than Initials.

use std::collections::BTreeMap;

use aes::cipher::{BlockEncrypt as _, KeyInit as _, generic_array::GenericArray};
use aes_gcm::aead::AeadInPlace as _;

#[cfg(any(test, feature = "testgen"))]
use super::put_varint;
use super::{MAX_CID, TAG_LEN, VERSION_1, decode_pn, varint};
use crate::tls::{self, ClientHello};

/// RFC 9001 §5.2 initial salt for QUIC version 1.
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// CRYPTO bytes held while waiting for the ClientHello to complete.
pub const MAX_CRYPTO: usize = 64 << 10;
/// Client Initial packets looked at before giving up on a ClientHello.
const MAX_INITIALS: u32 = 64;

/// The client's Initial packet protection keys (RFC 9001 §5).
#[derive(Clone, PartialEq, Eq)]
pub struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitialKeys(..)")
    }
}

/// TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &hkdf::Hkdf<sha2::Sha256>, label: &str, out: &mut [u8]) {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    // Lengths asked for here (≤ 32) are far below HKDF's 255 × 32 limit.
    let _ = prk.expand(&info, out);
}

/// The client Initial keys derived from the Destination Connection ID of the client's first Initial.
pub fn client_initial_keys(dcid: &[u8]) -> InitialKeys {
    let (_, initial) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&V1_SALT), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, "client in", &mut client);
    let client = hkdf::Hkdf::<sha2::Sha256>::from_prk(&client).expect("32-byte PRK is valid");
    let mut keys = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, "quic key", &mut keys.key);
    expand_label(&client, "quic iv", &mut keys.iv);
    expand_label(&client, "quic hp", &mut keys.hp);
    keys
}

/// The header protection mask: AES-128-ECB of the 16-byte sample under the `hp` key.
pub fn header_mask(hp: &[u8; 16], sample: &[u8; 16]) -> [u8; 16] {
    let cipher = aes::Aes128::new(GenericArray::from_slice(hp));
    let mut block = GenericArray::clone_from_slice(sample);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// Does this datagram start with a QUIC v1 Initial packet (long header, fixed bit, type 0)?
pub fn looks_like_initial(d: &[u8]) -> bool {
    d.len() >= 7
        && d[0] & 0xc0 == 0xc0
        && (d[0] >> 4) & 3 == 0
        && u32::from_be_bytes([d[1], d[2], d[3], d[4]]) == VERSION_1
        && usize::from(d[5]) <= MAX_CID
}

/// The client's Initial packets of one QUIC connection, up to its ClientHello.
#[derive(Debug, Default)]
pub struct Initials {
    /// Keys from the first Initial's DCID (a Retry makes the client pick another: re-derived then).
    keys: Option<(Vec<u8>, InitialKeys)>,
    largest_pn: Option<u64>,
    crypto: BTreeMap<u64, Vec<u8>>,
    crypto_bytes: usize,
    initials: u32,
    /// Set once the ClientHello was read or given up on: the rest is opaque.
    pub done: bool,
    /// Client bytes not inspected (protected packets other than Initials, undecryptable Initials).
    pub opaque: u64,
}

impl Initials {
    /// One client→server datagram. Returns the ClientHello when this datagram completed it.
    #[cfg(test)]
    pub fn datagram(&mut self, d: &[u8]) -> Option<ClientHello> {
        if self.done {
            self.opaque += d.len() as u64;
            return None;
        }
        let mut pos = 0usize;
        let mut hello = None;
        while pos < d.len() && hello.is_none() && !self.done {
            match self.packet(&d[pos..]) {
                Some((used, found)) => {
                    pos += used;
                    hello = found;
                }
                None => break,
            }
        }
        if hello.is_some() {
            self.done = true;
        }
        // Whatever was not an Initial we could read (short headers, Handshake/0-RTT, padding).
        self.opaque += (d.len() - pos.min(d.len())) as u64;
        hello
    }

    /// One long-header packet at the start of `b`: (bytes it took, ClientHello if completed).
    /// `None` when `b` does not start with a long-header v1 packet that fits.
    pub(super) fn packet(&mut self, b: &[u8]) -> Option<(usize, Option<ClientHello>)> {
        let first = *b.first()?;
        if first & 0x80 == 0 || b.len() < 7 {
            return None;
        }
        if u32::from_be_bytes([b[1], b[2], b[3], b[4]]) != VERSION_1 {
            return None;
        }
        let ptype = (first >> 4) & 3;
        let mut pos = 5;
        let dcid_len = usize::from(b[pos]);
        if dcid_len > MAX_CID {
            return None;
        }
        let dcid = b.get(pos + 1..pos + 1 + dcid_len)?;
        pos += 1 + dcid_len;
        let scid_len = usize::from(*b.get(pos)?);
        if scid_len > MAX_CID {
            return None;
        }
        pos += 1 + scid_len;
        match ptype {
            0 => {
                let token = usize::try_from(varint(b, &mut pos)?).ok()?;
                pos = pos.checked_add(token)?;
            }
            3 => return None, // Retry: no length field, never from a client.
            _ => {}
        }
        let length = usize::try_from(varint(b, &mut pos)?).ok()?;
        let end = pos.checked_add(length)?;
        if end > b.len() {
            return None;
        }
        if ptype != 0 {
            self.opaque += end as u64;
            return Some((end, None));
        }
        self.initials += 1;
        if self.initials > MAX_INITIALS {
            self.done = true;
            self.opaque += end as u64;
            return Some((end, None));
        }
        let keys = match &self.keys {
            Some((cid, k)) if cid == dcid => k.clone(),
            Some((_, k)) => {
                // Either a later Initial to the server's CID (same keys) or after a Retry (new
                // keys from this DCID): try the first, fall back to the second.
                let old = k.clone();
                match self.open(&b[..end], pos, &old) {
                    Some(plain) => return Some((end, self.frames(&plain))),
                    None => client_initial_keys(dcid),
                }
            }
            None => {
                let k = client_initial_keys(dcid);
                self.keys = Some((dcid.to_vec(), k.clone()));
                k
            }
        };
        match self.open(&b[..end], pos, &keys) {
            Some(plain) => {
                if self.keys.as_ref().is_some_and(|(c, _)| c != dcid) {
                    self.keys = Some((dcid.to_vec(), keys));
                }
                Some((end, self.frames(&plain)))
            }
            None => {
                self.opaque += end as u64;
                Some((end, None))
            }
        }
    }

    /// Removes header protection and decrypts one Initial packet (`pkt` ends at the packet's end,
    /// the packet number starts at `pn_off`). Returns the plaintext frames.
    fn open(&mut self, pkt: &[u8], pn_off: usize, keys: &InitialKeys) -> Option<Vec<u8>> {
        let sample: [u8; 16] = pkt.get(pn_off + 4..pn_off + 20)?.try_into().ok()?;
        let mask = header_mask(&keys.hp, &sample);
        let first = pkt[0] ^ (mask[0] & 0x0f);
        let pn_len = usize::from(first & 3) + 1;
        let payload_start = pn_off + pn_len;
        if pkt.len() < payload_start + TAG_LEN {
            return None;
        }
        let mut header = pkt[..payload_start].to_vec();
        header[0] = first;
        let mut truncated = 0u64;
        for i in 0..pn_len {
            header[pn_off + i] ^= mask[1 + i];
            truncated = (truncated << 8) | u64::from(header[pn_off + i]);
        }
        let pn = decode_pn(self.largest_pn, truncated, pn_len);
        let mut nonce = keys.iv;
        for (i, byte) in pn.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= byte;
        }
        let cipher = aes_gcm::Aes128Gcm::new(GenericArray::from_slice(&keys.key));
        let mut body = pkt[payload_start..].to_vec();
        let tag_at = body.len() - TAG_LEN;
        let tag = GenericArray::clone_from_slice(&body[tag_at..]);
        body.truncate(tag_at);
        cipher
            .decrypt_in_place_detached(GenericArray::from_slice(&nonce), &header, &mut body, &tag)
            .ok()?;
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
        Some(body)
    }

    /// Walks the frames of a decrypted Initial, storing CRYPTO data; returns the ClientHello once the
    /// CRYPTO stream holds a complete one.
    fn frames(&mut self, p: &[u8]) -> Option<ClientHello> {
        let mut pos = 0usize;
        while pos < p.len() {
            let ty = varint(p, &mut pos)?;
            match ty {
                0x00 | 0x01 => {}
                0x02 | 0x03 => {
                    varint(p, &mut pos)?; // largest acknowledged
                    varint(p, &mut pos)?; // delay
                    let ranges = varint(p, &mut pos)?;
                    varint(p, &mut pos)?; // first range
                    for _ in 0..ranges.min(p.len() as u64) {
                        varint(p, &mut pos)?;
                        varint(p, &mut pos)?;
                    }
                    if ty == 0x03 {
                        for _ in 0..3 {
                            varint(p, &mut pos)?;
                        }
                    }
                }
                0x06 => {
                    let off = varint(p, &mut pos)?;
                    let len = usize::try_from(varint(p, &mut pos)?).ok()?;
                    let data = p.get(pos..pos.checked_add(len)?)?;
                    pos += len;
                    self.store(off, data);
                }
                0x1c | 0x1d => {
                    varint(p, &mut pos)?;
                    if ty == 0x1c {
                        varint(p, &mut pos)?;
                    }
                    let len = usize::try_from(varint(p, &mut pos)?).ok()?;
                    pos = pos.checked_add(len)?;
                }
                // Not allowed in an Initial: the rest cannot be framed.
                _ => break,
            }
        }
        self.hello()
    }

    fn store(&mut self, off: u64, data: &[u8]) {
        let Ok(off) = usize::try_from(off) else {
            return;
        };
        if data.is_empty() || off >= MAX_CRYPTO {
            return;
        }
        let data = &data[..data.len().min(MAX_CRYPTO - off)];
        if self.crypto_bytes + data.len() > 2 * MAX_CRYPTO {
            // Retransmitted CRYPTO frames beyond any sensible hello: stop holding more.
            self.done = true;
            return;
        }
        let off = off as u64;
        match self.crypto.get(&off) {
            Some(old) if old.len() >= data.len() => {}
            _ => {
                self.crypto_bytes += data.len();
                if let Some(old) = self.crypto.insert(off, data.to_vec()) {
                    self.crypto_bytes -= old.len();
                }
            }
        }
    }

    /// The contiguous CRYPTO prefix, parsed once it holds a whole handshake message.
    fn hello(&mut self) -> Option<ClientHello> {
        let mut stream: Vec<u8> = Vec::new();
        for (&off, data) in &self.crypto {
            let off = off as usize;
            if off > stream.len() {
                break;
            }
            let skip = stream.len() - off;
            if skip < data.len() {
                stream.extend_from_slice(&data[skip..]);
            }
        }
        if stream.len() < 4 {
            return None;
        }
        let need = 4 + u32::from_be_bytes([0, stream[1], stream[2], stream[3]]) as usize;
        if stream[0] != 1 || need > MAX_CRYPTO {
            self.done = true;
            return None;
        }
        if stream.len() < need {
            return None;
        }
        self.crypto.clear();
        self.crypto_bytes = 0;
        let hello = tls::hello_from_handshake(&stream[..need]);
        if hello.is_none() {
            self.done = true;
        }
        hello
    }
}

/// Builds a protected client Initial packet carrying `crypto` (TLS handshake bytes) at CRYPTO offset
/// `crypto_off`, padded so the datagram is `min_size` bytes. Used by tests and by anything that must
/// emit a real QUIC first flight (the virtual handset's profiles).
#[cfg(any(test, feature = "testgen"))]
pub fn seal_client_initial(
    dcid: &[u8],
    scid: &[u8],
    pn: u32,
    crypto_off: u64,
    crypto: &[u8],
    min_size: usize,
) -> Vec<u8> {
    let keys = client_initial_keys(dcid);
    let mut frames = vec![0x06];
    put_varint(&mut frames, crypto_off);
    put_varint(&mut frames, crypto.len() as u64);
    frames.extend_from_slice(crypto);
    let mut header = vec![0xc3]; // long header, Initial, 4-byte packet number
    header.extend_from_slice(&VERSION_1.to_be_bytes());
    header.push(dcid.len() as u8);
    header.extend_from_slice(dcid);
    header.push(scid.len() as u8);
    header.extend_from_slice(scid);
    header.push(0); // no token
    // Length always as a 2-byte varint so padding can be computed first.
    let fixed = header.len() + 2 + 4 + TAG_LEN;
    if fixed + frames.len() < min_size {
        frames.resize(min_size - fixed, 0);
    }
    let length = 4 + frames.len() + TAG_LEN;
    header.extend_from_slice(&(0x4000u16 | length as u16).to_be_bytes());
    let pn_off = header.len();
    header.extend_from_slice(&pn.to_be_bytes());
    let mut nonce = keys.iv;
    for (i, byte) in u64::from(pn).to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= byte;
    }
    let cipher = aes_gcm::Aes128Gcm::new(GenericArray::from_slice(&keys.key));
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &header, &mut frames)
        .expect("Initial payloads are far below the GCM limit");
    let mut pkt = header;
    pkt.extend_from_slice(&frames);
    pkt.extend_from_slice(&tag);
    let sample: [u8; 16] = pkt[pn_off + 4..pn_off + 20]
        .try_into()
        .expect("payload holds at least a tag");
    let mask = header_mask(&keys.hp, &sample);
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_off + i] ^= mask[1 + i];
    }
    pkt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 9001 Appendix A.1 (keys) and A.2 (header protection of the client Initial).
    #[test]
    fn rfc9001_appendix_a_vectors() {
        let k = client_initial_keys(&h("8394c8f03e515708"));
        assert_eq!(k.key.to_vec(), h("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), h("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), h("9f50449e04a0e810283a1e9933adedd2"));
        let sample: [u8; 16] = h("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
        let mask = header_mask(&k.hp, &sample);
        assert_eq!(mask[..5].to_vec(), h("437b9aec36"));
    }

    fn hello_msg(sni: &str) -> Vec<u8> {
        // The record-layer helper's handshake message, without the 5-byte record header.
        tls::tests::hello_records(sni, &["h3"], 1 << 20)[5..].to_vec()
    }

    #[test]
    fn own_initial_round_trips_and_split_crypto_reassembles() {
        let msg = hello_msg("quic.example");
        let dcid = h("0011223344556677");
        let one = seal_client_initial(&dcid, b"", 0, 0, &msg, 1200);
        assert_eq!(one.len(), 1200);
        assert!(looks_like_initial(&one));
        let mut q = Initials::default();
        let hello = q.datagram(&one).expect("hello");
        assert_eq!(hello.sni.as_deref(), Some("quic.example"));
        assert_eq!(hello.alpn, vec!["h3"]);
        assert!(q.done);
        // Split over two packets, the second sent first, then coalesced in one datagram.
        let a = seal_client_initial(&dcid, b"s", 0, 0, &msg[..20], 0);
        let b = seal_client_initial(&dcid, b"s", 1, 20, &msg[20..], 0);
        let mut q = Initials::default();
        assert!(q.datagram(&b).is_none());
        assert_eq!(
            q.datagram(&a).and_then(|x| x.sni).as_deref(),
            Some("quic.example")
        );
        let mut both = a.clone();
        both.extend_from_slice(&b);
        let mut q = Initials::default();
        assert!(q.datagram(&both).is_some());
    }

    /// rustls' own QUIC Initial keys (an independent implementation) encrypt; we decrypt.
    #[test]
    fn decrypts_what_rustls_quic_keys_protect() {
        let pkt = super::super::tests::rustls_sealed_initial(
            &h("8394c8f03e515708"),
            7,
            &hello_msg("rustls.example"),
        );
        let mut q = Initials::default();
        let hello = q.datagram(&pkt).expect("hello");
        assert_eq!(hello.sni.as_deref(), Some("rustls.example"));
    }

    #[test]
    fn hostile_initials_never_panic() {
        let good = seal_client_initial(b"abcdefgh", b"", 0, 0, &hello_msg("x.example"), 1200);
        for cut in 0..good.len() {
            let mut q = Initials::default();
            let _ = q.datagram(&good[..cut]);
        }
        for at in 0..64 {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            let mut q = Initials::default();
            let _ = q.datagram(&bad);
        }
        // Huge varints, a CID length over 20, a length field beyond the datagram.
        for d in [
            &[0xc0, 0, 0, 0, 1, 21, 0][..],
            &[
                0xc0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
            &[0xc0, 0, 0, 0, 1, 0, 0, 0, 0x7f, 0xff][..],
        ] {
            let mut q = Initials::default();
            assert!(q.datagram(d).is_none());
            assert_eq!(q.opaque, d.len() as u64);
        }
        assert_eq!(decode_pn(Some(0xa82f30ea), 0x9b32, 2), 0xa82f9b32);
    }
}
