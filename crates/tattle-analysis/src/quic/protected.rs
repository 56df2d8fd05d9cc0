//! QUIC packet protection with a key log's secrets (RFC 9001 §5): the client's Handshake
//! (`CLIENT_HANDSHAKE_TRAFFIC_SECRET`), 0-RTT (`CLIENT_EARLY_TRAFFIC_SECRET`) and 1-RTT
//! (`CLIENT_TRAFFIC_SECRET_0`, then every key update) packets, opened in place.
//!
//! Keys: HKDF-Expand-Label(secret, "quic key" / "quic iv" / "quic hp"). Header protection is
//! AES-128-ECB, AES-256-ECB (`aes`) or ChaCha20 (`chacha20`, §5.4.4) of the 16-byte sample after
//! the packet number's first 4 bytes; the AEAD is AES-128-GCM, AES-256-GCM (`aes-gcm`) or
//! ChaCha20-Poly1305 (`chacha20poly1305`) with the IV XOR the packet number as nonce and the
//! unprotected header as AAD. The key log says nothing of the suite: a 48-byte secret is
//! AES-256-GCM/SHA-384, a 32-byte one AES-128-GCM or ChaCha20 — tried in that order on the first
//! packet, then fixed. Key update (§6): the KEY_PHASE bit flips and the next secret is
//! HKDF-Expand-Label(secret, "quic ku"); the header protection key stays. The current, previous
//! and next generations are kept, so reordered packets around an update still open. 0-RTT and
//! 1-RTT share the application packet number space (RFC 9000 §12.3).
//!
//! Owns: keys, header protection, nonces, packet numbers. Must not touch: frames, flows, key logs
//! as text. Never logs key material.

use aes::cipher::{BlockEncrypt as _, KeyInit as _, generic_array::GenericArray};
use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20::cipher::{KeyIvInit as _, StreamCipher as _, StreamCipherSeek as _};
use chacha20poly1305::ChaCha20Poly1305;

use super::{TAG_LEN, decode_pn};
use crate::keylog::Secrets;
use crate::tls::crypto::{Hash, expand_label};

/// The value `TlsSummary::version` takes for QUIC v1 (its version number; TLS 1.3 inside).
pub(crate) const QUIC_V1: u16 = 0x0001;

/// The packet number spaces a client's protected packets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    Handshake,
    /// 0-RTT (long header type 1).
    Early,
    /// Short header.
    OneRtt,
}

/// The TLS 1.3 suites QUIC uses (TLS_AES_128_CCM_SHA256 is not; RFC 9001 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20,
}

impl Suite {
    fn id(self) -> u16 {
        match self {
            Suite::Aes128Gcm => 0x1301,
            Suite::Aes256Gcm => 0x1302,
            Suite::ChaCha20 => 0x1303,
        }
    }

    fn hash(self) -> Hash {
        match self {
            Suite::Aes256Gcm => Hash::Sha384,
            _ => Hash::Sha256,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Suite::Aes128Gcm => 16,
            _ => 32,
        }
    }

    /// The suites a secret of `len` bytes may belong to, most likely first.
    fn candidates(len: usize) -> &'static [Suite] {
        match len {
            48 => &[Suite::Aes256Gcm],
            _ => &[Suite::Aes128Gcm, Suite::ChaCha20],
        }
    }
}

/// A header protection key (RFC 9001 §5.4).
pub(crate) enum Hp {
    Aes128(Box<aes::Aes128>),
    Aes256(Box<aes::Aes256>),
    ChaCha([u8; 32]),
}

impl std::fmt::Debug for Hp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hp(..)")
    }
}

impl Hp {
    fn new(suite: Suite, key: &[u8]) -> Option<Hp> {
        Some(match suite {
            Suite::Aes128Gcm => Hp::Aes128(Box::new(aes::Aes128::new_from_slice(key).ok()?)),
            Suite::Aes256Gcm => Hp::Aes256(Box::new(aes::Aes256::new_from_slice(key).ok()?)),
            Suite::ChaCha20 => Hp::ChaCha(key.try_into().ok()?),
        })
    }

    /// The first 5 bytes of the mask for `sample`.
    pub(crate) fn mask(&self, sample: &[u8; 16]) -> [u8; 5] {
        let mut out = [0u8; 5];
        match self {
            Hp::Aes128(c) => {
                let mut block = GenericArray::clone_from_slice(sample);
                c.encrypt_block(&mut block);
                out.copy_from_slice(&block[..5]);
            }
            Hp::Aes256(c) => {
                let mut block = GenericArray::clone_from_slice(sample);
                c.encrypt_block(&mut block);
                out.copy_from_slice(&block[..5]);
            }
            Hp::ChaCha(key) => {
                // §5.4.4: counter = sample[0..4] little-endian, nonce = sample[4..16]; the mask is
                // ChaCha20's keystream at that block (encrypting five zero bytes).
                let counter = u32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]);
                let mut c = chacha20::ChaCha20::new(
                    GenericArray::from_slice(key),
                    GenericArray::from_slice(&sample[4..]),
                );
                if c.try_seek(u64::from(counter) * 64).is_err()
                    || c.try_apply_keystream(&mut out).is_err()
                {
                    // Not reachable for a 32-bit counter; a mask of zeros just fails the AEAD.
                    out = [0; 5];
                }
            }
        }
        out
    }
}

/// An AEAD key (boxed: the AES key schedules are large).
enum Aead {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// The packet keys of one generation: AEAD and IV.
struct PacketKeys {
    aead: Aead,
    iv: [u8; 12],
}

impl std::fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketKeys(..)")
    }
}

impl PacketKeys {
    fn new(suite: Suite, secret: &[u8]) -> Option<PacketKeys> {
        let mut key = [0u8; 32];
        let key = &mut key[..suite.key_len()];
        let mut iv = [0u8; 12];
        expand_label(suite.hash(), secret, "quic key", key);
        expand_label(suite.hash(), secret, "quic iv", &mut iv);
        let aead = match suite {
            Suite::Aes128Gcm => Aead::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Suite::Aes256Gcm => Aead::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Suite::ChaCha20 => Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?)),
        };
        Some(PacketKeys { aead, iv })
    }

    /// Opens `body` (ciphertext ‖ tag) in place for packet number `pn`; on success `body` is
    /// the plaintext.
    fn open(&self, pn: u64, aad: &[u8], body: &mut Vec<u8>) -> bool {
        let Some(cut) = body.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let (text, tag) = body.split_at_mut(cut);
        let tag = GenericArray::from_slice(tag);
        let nonce = GenericArray::from_slice(&nonce);
        let ok = match &self.aead {
            Aead::Aes128(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::Aes256(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::ChaCha(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
        }
        .is_ok();
        body.truncate(cut);
        ok
    }
}

/// A traffic secret (≤ 48 bytes) on the stack.
#[derive(Clone, Copy)]
struct Secret {
    len: u8,
    bytes: [u8; 48],
}

impl Secret {
    fn new(b: &[u8]) -> Secret {
        let len = b.len().min(48);
        let mut s = Secret {
            len: len as u8,
            bytes: [0; 48],
        };
        s.bytes[..len].copy_from_slice(&b[..len]);
        s
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The next generation (RFC 9001 §6.1: "quic ku").
    fn updated(&self, hash: Hash) -> Secret {
        let mut next = [0u8; 48];
        expand_label(hash, self.bytes(), "quic ku", &mut next[..hash.len()]);
        Secret::new(&next[..hash.len()])
    }
}

/// The keys of one space: header protection, and packet keys by generation (only 1-RTT has more
/// than one: `prev`, `current`, `next` around key updates).
struct SpaceKeys {
    suite: Suite,
    hp: Hp,
    current: PacketKeys,
    /// The KEY_PHASE bit of `current`.
    phase: bool,
    secret: Secret,
    prev: Option<PacketKeys>,
    next: Option<(PacketKeys, Secret)>,
    /// Key updates followed.
    updates: u32,
}

impl std::fmt::Debug for SpaceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SpaceKeys(phase {}, updates {})",
            self.phase, self.updates
        )
    }
}

impl SpaceKeys {
    fn new(suite: Suite, secret: &[u8]) -> Option<SpaceKeys> {
        let mut hp = [0u8; 32];
        let hp = &mut hp[..suite.key_len()];
        expand_label(suite.hash(), secret, "quic hp", hp);
        Some(SpaceKeys {
            suite,
            hp: Hp::new(suite, hp)?,
            current: PacketKeys::new(suite, secret)?,
            phase: false,
            secret: Secret::new(secret),
            prev: None,
            next: None,
            updates: 0,
        })
    }
}

/// A packet with its header protection removed.
struct Unmasked {
    /// The unprotected header (the AAD).
    header: Vec<u8>,
    pn: u64,
    key_phase: bool,
}

/// Removes header protection from `pkt` (packet number at `pn_off`) with `hp`.
fn unmask(pkt: &[u8], pn_off: usize, hp: &Hp, largest: Option<u64>) -> Option<Unmasked> {
    let sample: [u8; 16] = pkt.get(pn_off + 4..pn_off + 20)?.try_into().ok()?;
    let mask = hp.mask(&sample);
    let long = pkt[0] & 0x80 != 0;
    let first = pkt[0] ^ (mask[0] & if long { 0x0f } else { 0x1f });
    let pn_len = usize::from(first & 3) + 1;
    let payload = pn_off + pn_len;
    if pkt.len() < payload + TAG_LEN {
        return None;
    }
    let mut header = pkt[..payload].to_vec();
    header[0] = first;
    let mut truncated = 0u64;
    for i in 0..pn_len {
        header[pn_off + i] ^= mask[1 + i];
        truncated = (truncated << 8) | u64::from(header[pn_off + i]);
    }
    Some(Unmasked {
        header,
        pn: decode_pn(largest, truncated, pn_len),
        key_phase: !long && first & 0x04 != 0,
    })
}

/// What opening a packet gave.
pub(crate) enum Opened<'a> {
    /// The plaintext frames.
    Frames(&'a [u8]),
    /// The key log lacks this space's secret.
    NoSecret,
    /// No candidate key opened it.
    Failed,
}

/// The client's protected packets of one connection.
#[derive(Debug, Default)]
pub(crate) struct Protected {
    suite: Option<Suite>,
    handshake: Option<Box<SpaceKeys>>,
    early: Option<Box<SpaceKeys>>,
    one_rtt: Option<Box<SpaceKeys>>,
    largest_handshake: Option<u64>,
    largest_app: Option<u64>,
    /// The packet being opened.
    body: Vec<u8>,
}

impl Protected {
    /// The suite's IANA id, once a packet opened.
    pub fn suite_id(&self) -> Option<u16> {
        self.suite.map(Suite::id)
    }

    /// Key updates followed so far.
    #[cfg(test)]
    pub fn updates(&self) -> u32 {
        self.one_rtt.as_ref().map_or(0, |k| k.updates)
    }

    /// Opens one packet of `space`.
    pub fn open(
        &mut self,
        pkt: &[u8],
        pn_off: usize,
        space: Space,
        secrets: &Secrets,
    ) -> Opened<'_> {
        let secret = match space {
            Space::Handshake => secrets.client_handshake,
            Space::Early => secrets.client_early,
            Space::OneRtt => secrets.client_traffic_0,
        };
        let Some(secret) = secret else {
            return Opened::NoSecret;
        };
        let largest = match space {
            Space::Handshake => self.largest_handshake,
            _ => self.largest_app,
        };
        let have = match space {
            Space::Handshake => self.handshake.is_some(),
            Space::Early => self.early.is_some(),
            Space::OneRtt => self.one_rtt.is_some(),
        };
        let pn = if have {
            let slot = match space {
                Space::Handshake => &mut self.handshake,
                Space::Early => &mut self.early,
                Space::OneRtt => &mut self.one_rtt,
            };
            let Some(keys) = slot.as_deref_mut() else {
                return Opened::Failed;
            };
            match open_with(keys, pkt, pn_off, largest, &mut self.body) {
                Some(pn) => pn,
                None => return Opened::Failed,
            }
        } else {
            // First packet of the space: the suite from the secret's length, then by trial.
            let suites: &[Suite] = match self.suite {
                Some(s) => match s {
                    Suite::Aes128Gcm => &[Suite::Aes128Gcm],
                    Suite::Aes256Gcm => &[Suite::Aes256Gcm],
                    Suite::ChaCha20 => &[Suite::ChaCha20],
                },
                None => Suite::candidates(secret.bytes().len()),
            };
            let mut found = None;
            for &suite in suites {
                let Some(mut keys) = SpaceKeys::new(suite, secret.bytes()) else {
                    continue;
                };
                if let Some(pn) = open_with(&mut keys, pkt, pn_off, largest, &mut self.body) {
                    found = Some((suite, keys, pn));
                    break;
                }
            }
            let Some((suite, keys, pn)) = found else {
                return Opened::Failed;
            };
            self.suite = Some(suite);
            let keys = Some(Box::new(keys));
            match space {
                Space::Handshake => self.handshake = keys,
                Space::Early => self.early = keys,
                Space::OneRtt => self.one_rtt = keys,
            }
            pn
        };
        let largest = match space {
            Space::Handshake => &mut self.largest_handshake,
            _ => &mut self.largest_app,
        };
        *largest = Some(largest.map_or(pn, |l| l.max(pn)));
        Opened::Frames(&self.body)
    }
}

/// Opens `pkt` with `keys` into `body`, following a key update when the KEY_PHASE bit says so.
/// Returns the packet number.
fn open_with(
    keys: &mut SpaceKeys,
    pkt: &[u8],
    pn_off: usize,
    largest: Option<u64>,
    body: &mut Vec<u8>,
) -> Option<u64> {
    let u = unmask(pkt, pn_off, &keys.hp, largest)?;
    let payload = &pkt[u.header.len()..];
    let mut try_open = |k: &PacketKeys| {
        body.clear();
        body.extend_from_slice(payload);
        k.open(u.pn, &u.header, body)
    };
    if u.key_phase == keys.phase {
        return try_open(&keys.current).then_some(u.pn);
    }
    // The other phase: the next generation (an update), else the previous one (a packet sent
    // before the update, arriving after it).
    if keys.next.is_none() {
        let next = keys.secret.updated(keys.suite.hash());
        keys.next = PacketKeys::new(keys.suite, next.bytes()).map(|k| (k, next));
    }
    if let Some((next, _)) = &keys.next
        && try_open(next)
    {
        let (next, secret) = keys.next.take()?;
        keys.prev = Some(std::mem::replace(&mut keys.current, next));
        keys.secret = secret;
        keys.phase = u.key_phase;
        keys.updates += 1;
        return Some(u.pn);
    }
    if let Some(prev) = &keys.prev
        && try_open(prev)
    {
        return Some(u.pn);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 9001 Appendix A.5: the ChaCha20-Poly1305 short header packet, header protection and
    /// payload, from the published secret.
    #[test]
    fn rfc9001_a5_chacha20_short_header() {
        let secret = h("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
        let keys = SpaceKeys::new(Suite::ChaCha20, &secret).unwrap();
        let Hp::ChaCha(hp) = &keys.hp else {
            panic!("chacha hp")
        };
        assert_eq!(
            hp.to_vec(),
            h("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")
        );
        assert_eq!(keys.current.iv.to_vec(), h("e0459b3474bdd0e44a41c144"));
        let ku = keys.secret.updated(Hash::Sha256);
        assert_eq!(
            ku.bytes().to_vec(),
            h("1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9")
        );
        let sample: [u8; 16] = h("5e5cd55c41f69080575d7999c25a5bfb").try_into().unwrap();
        assert_eq!(keys.hp.mask(&sample).to_vec(), h("aefefe7d03"));
        let pkt = h("4cfe4189655e5cd55c41f69080575d7999c25a5bfb");
        let mut body = Vec::new();
        let mut keys = keys;
        // Packet number 654360564 is expected next after 654360563.
        let pn = open_with(&mut keys, &pkt, 1, Some(654_360_563), &mut body).unwrap();
        assert_eq!(pn, 654_360_564);
        assert_eq!(body, vec![0x01], "a PING frame");
    }

    /// RFC 9001 Appendix A.2: AES-128 header protection of the client Initial (through the same
    /// `Hp` the 1-RTT packets use).
    #[test]
    fn rfc9001_a2_aes_header_protection() {
        let hp = Hp::new(Suite::Aes128Gcm, &h("9f50449e04a0e810283a1e9933adedd2")).unwrap();
        let sample: [u8; 16] = h("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
        assert_eq!(hp.mask(&sample).to_vec(), h("437b9aec36"));
    }
}
