//! TLS record protection, client side only: the cipher suites decrypted, the key schedules that
//! turn a key log's secrets into record keys (TLS 1.3 HKDF-Expand-Label and key update, TLS 1.2
//! PRF and key block), and opening one protected record.
//!
//! Every primitive comes from RustCrypto (`aes-gcm` 0.10, `chacha20poly1305` 0.10, `hkdf`,
//! `hmac`, `sha1`, `sha2`, `cbc`): nothing here is a hand-written cipher. TLS 1.2 AES-CBC suites
//! are decrypted with their HMAC checked, MAC-then-encrypt or encrypt-then-MAC (RFC 7366).
//!
//! Owns: suites, keys, nonces, AADs, tags. Must not touch: record framing, flows, key logs as
//! text. Never logs key material.

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _, generic_array::GenericArray};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;

/// TLS 1.2 as it appears on the wire (`legacy_version`).
pub const TLS12: u16 = 0x0303;
/// TLS 1.3 (`supported_versions` in the ServerHello).
pub const TLS13: u16 = 0x0304;

/// The hash of a suite's key schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// The AEAD of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    /// TLS 1.2 AES-CBC with an HMAC over this hash.
    Aes128Cbc(Mac),
    Aes256Cbc(Mac),
}

/// The HMAC of a CBC suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mac {
    Sha1,
    Sha256,
    Sha384,
}

impl Mac {
    fn len(self) -> usize {
        match self {
            Mac::Sha1 => 20,
            Mac::Sha256 => 32,
            Mac::Sha384 => 48,
        }
    }

    fn compute(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: hmac::Mac + hmac::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let Ok(mut m) = <M as hmac::KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Mac::Sha1 => run::<hmac::Hmac<sha1::Sha1>>(key, parts),
            Mac::Sha256 => run::<hmac::Hmac<sha2::Sha256>>(key, parts),
            Mac::Sha384 => run::<hmac::Hmac<sha2::Sha384>>(key, parts),
        }
    }
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes128Cbc(_) => 16,
            Cipher::Aes256Gcm | Cipher::ChaCha20Poly1305 | Cipher::Aes256Cbc(_) => 32,
        }
    }
}

/// A cipher suite this module can decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub version: u16,
    pub cipher: Cipher,
    pub hash: Hash,
}

/// The suite `id` negotiated at `version`, if it is one decrypted here.
pub fn suite(version: u16, id: u16) -> Option<Suite> {
    use Cipher::*;
    use Hash::*;
    let (cipher, hash) = match (version, id) {
        (TLS13, 0x1301) => (Aes128Gcm, Sha256),
        (TLS13, 0x1302) => (Aes256Gcm, Sha384),
        (TLS13, 0x1303) => (ChaCha20Poly1305, Sha256),
        (TLS12, 0xc02b | 0xc02f | 0x009c | 0x009e) => (Aes128Gcm, Sha256),
        (TLS12, 0xc02c | 0xc030 | 0x009d | 0x009f) => (Aes256Gcm, Sha384),
        (TLS12, 0xcca8..=0xccaa) => (ChaCha20Poly1305, Sha256),
        (TLS12, 0xc013 | 0xc009 | 0x002f) => (Aes128Cbc(Mac::Sha1), Sha256),
        (TLS12, 0xc014 | 0xc00a | 0x0035) => (Aes256Cbc(Mac::Sha1), Sha256),
        (TLS12, 0xc027 | 0xc023 | 0x003c) => (Aes128Cbc(Mac::Sha256), Sha256),
        (TLS12, 0x003d) => (Aes256Cbc(Mac::Sha256), Sha256),
        (TLS12, 0xc028 | 0xc024) => (Aes256Cbc(Mac::Sha384), Sha384),
        _ => return None,
    };
    Some(Suite {
        id,
        version,
        cipher,
        hash,
    })
}

/// The IANA name of a cipher suite, for reports (the common ones; others are shown by number).
pub fn cipher_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        _ => return None,
    })
}

/// A key-schedule secret (TLS 1.3 traffic secret, ≤ 48 bytes), kept on the stack.
#[derive(Clone, Copy)]
pub struct TrafficSecret {
    len: u8,
    bytes: [u8; 48],
}

impl std::fmt::Debug for TrafficSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrafficSecret({} bytes)", self.len)
    }
}

impl TrafficSecret {
    pub fn new(bytes: &[u8]) -> TrafficSecret {
        let mut s = TrafficSecret {
            len: bytes.len().min(48) as u8,
            bytes: [0; 48],
        };
        s.bytes[..usize::from(s.len)].copy_from_slice(&bytes[..usize::from(s.len)]);
        s
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The next generation after a KeyUpdate (RFC 8446 §7.2: "traffic upd").
    pub fn updated(&self, hash: Hash) -> TrafficSecret {
        let mut next = [0u8; 48];
        expand_label(hash, self.bytes(), "traffic upd", &mut next[..hash.len()]);
        TrafficSecret::new(&next[..hash.len()])
    }
}

/// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 §7.1). A secret of the wrong length
/// for `hash` (a key log line for another suite) yields keys that simply fail to authenticate.
pub fn expand_label(hash: Hash, secret: &[u8], label: &str, out: &mut [u8]) {
    expand_label_with(hash, secret, label, &[], out);
}

/// HKDF-Expand-Label(secret, label, context, out.len()): `Derive-Secret` is this with a transcript
/// hash as the context (only the RFC 8448 vectors need that: key logs carry the derived secrets).
pub fn expand_label_with(hash: Hash, secret: &[u8], label: &str, context: &[u8], out: &mut [u8]) {
    let mut info = Vec::with_capacity(10 + label.len() + context.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label.as_bytes());
    info.push(context.len().min(255) as u8);
    info.extend_from_slice(&context[..context.len().min(255)]);
    // Output lengths asked here (≤ 48) are far below HKDF's limit; a too-short PRK gives zeros.
    match hash {
        Hash::Sha256 => {
            if let Ok(prk) = hkdf::Hkdf::<sha2::Sha256>::from_prk(secret) {
                let _ = prk.expand(&info, out);
            }
        }
        Hash::Sha384 => {
            if let Ok(prk) = hkdf::Hkdf::<sha2::Sha384>::from_prk(secret) {
                let _ = prk.expand(&info, out);
            }
        }
    }
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label ‖ seed) over HMAC-SHA256/384.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    fn p_hash<M: hmac::Mac + hmac::KeyInit + Clone>(
        secret: &[u8],
        label: &[u8],
        seed: &[u8],
        out: &mut [u8],
    ) {
        let Ok(base) = <M as hmac::KeyInit>::new_from_slice(secret) else {
            return;
        };
        // A(1) = HMAC(secret, label ‖ seed); A(i) = HMAC(secret, A(i-1)).
        let mut a = {
            let mut m = base.clone();
            m.update(label);
            m.update(seed);
            m.finalize().into_bytes().to_vec()
        };
        let mut filled = 0;
        while filled < out.len() {
            let mut m = base.clone();
            m.update(&a);
            m.update(label);
            m.update(seed);
            let block = m.finalize().into_bytes();
            let n = block.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&block[..n]);
            filled += n;
            let mut m = base.clone();
            m.update(&a);
            a = m.finalize().into_bytes().to_vec();
        }
    }
    match hash {
        Hash::Sha256 => p_hash::<hmac::Hmac<sha2::Sha256>>(secret, label, seed, out),
        Hash::Sha384 => p_hash::<hmac::Hmac<sha2::Sha384>>(secret, label, seed, out),
    }
}

/// An AEAD ready to open records (`RecordKeys` is boxed by its holder: the AES key schedules are
/// large, and a flow holds one).
#[allow(clippy::large_enum_variant)]
enum Aead {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
    ChaCha(ChaCha20Poly1305),
}

impl Aead {
    fn new(cipher: Cipher, key: &[u8]) -> Option<Aead> {
        Some(match cipher {
            Cipher::Aes128Gcm => Aead::Aes128(Aes128Gcm::new_from_slice(key).ok()?),
            Cipher::Aes256Gcm => Aead::Aes256(Aes256Gcm::new_from_slice(key).ok()?),
            Cipher::ChaCha20Poly1305 => Aead::ChaCha(ChaCha20Poly1305::new_from_slice(key).ok()?),
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => return None,
        })
    }

    /// Opens `body` (ciphertext ‖ 16-byte tag) in place; on success `body` is the plaintext.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], body: &mut Vec<u8>) -> bool {
        let Some(cut) = body.len().checked_sub(TAG) else {
            return false;
        };
        let (text, tag) = body.split_at_mut(cut);
        let tag = GenericArray::from_slice(tag);
        let nonce = GenericArray::from_slice(nonce);
        let ok = match self {
            Aead::Aes128(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::Aes256(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
            Aead::ChaCha(a) => a.decrypt_in_place_detached(nonce, aad, text, tag),
        }
        .is_ok();
        body.truncate(cut);
        ok
    }
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aead(..)")
    }
}

const TAG: usize = 16;
/// TLS 1.2 AES-GCM's explicit nonce, carried before the ciphertext (RFC 5288 §3).
const EXPLICIT_NONCE: usize = 8;

/// The keys that open one direction's records at one stage: the AEAD, its IV, and the record
/// sequence number it expects next.
#[derive(Debug)]
pub struct RecordKeys {
    protection: Protection,
    iv: [u8; 12],
    suite: Suite,
    pub seq: u64,
}

/// How records are protected (`RecordKeys` is boxed by its holder).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Protection {
    Aead(Aead),
    /// TLS 1.2 AES-CBC: the client's key and MAC key, and whether the MAC covers the ciphertext
    /// (encrypt-then-MAC) or the plaintext.
    Cbc {
        key: [u8; 32],
        mac_key: [u8; 48],
        mac: Mac,
        etm: bool,
    },
}

impl RecordKeys {
    /// TLS 1.3 keys from a traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: Suite, secret: &TrafficSecret) -> Option<RecordKeys> {
        let mut key = [0u8; 32];
        let key = &mut key[..suite.cipher.key_len()];
        let mut iv = [0u8; 12];
        expand_label(suite.hash, secret.bytes(), "key", key);
        expand_label(suite.hash, secret.bytes(), "iv", &mut iv);
        Some(RecordKeys {
            protection: Protection::Aead(Aead::new(suite.cipher, key)?),
            iv,
            suite,
            seq: 0,
        })
    }

    /// The client's TLS 1.2 keys from the master secret (RFC 5246 §6.3: the key block is
    /// PRF(master, "key expansion", server_random ‖ client_random), cut into client and server MAC
    /// keys (CBC only), keys, then IVs (AEAD only: TLS 1.2 CBC carries an explicit IV)). `etm`:
    /// the ServerHello accepted encrypt-then-MAC.
    pub fn tls12(
        suite: Suite,
        master: &[u8; 48],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        etm: bool,
    ) -> Option<RecordKeys> {
        let key_len = suite.cipher.key_len();
        let (mac, mac_len, iv_len) = match suite.cipher {
            Cipher::ChaCha20Poly1305 => (None, 0, 12),
            Cipher::Aes128Cbc(m) | Cipher::Aes256Cbc(m) => (Some(m), m.len(), 0),
            _ => (None, 0, 4),
        };
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(server_random);
        seed[32..].copy_from_slice(client_random);
        let mut block = [0u8; 2 * (48 + 32 + 12)];
        let block = &mut block[..2 * (mac_len + key_len + iv_len)];
        prf(suite.hash, master, b"key expansion", &seed, block);
        let key = &block[2 * mac_len..2 * mac_len + key_len];
        let protection = match mac {
            Some(mac) => {
                let mut k = [0u8; 32];
                k[..key_len].copy_from_slice(key);
                let mut m = [0u8; 48];
                m[..mac_len].copy_from_slice(&block[..mac_len]);
                Protection::Cbc {
                    key: k,
                    mac_key: m,
                    mac,
                    etm,
                }
            }
            None => Protection::Aead(Aead::new(suite.cipher, key)?),
        };
        let mut iv = [0u8; 12];
        let ivs = 2 * (mac_len + key_len);
        iv[..iv_len].copy_from_slice(&block[ivs..ivs + iv_len]);
        Some(RecordKeys {
            protection,
            iv,
            suite,
            seq: 0,
        })
    }

    /// Opens one record whose 5-byte header is `header` and whose fragment is `body`, at the
    /// current sequence number. On success `body` holds the content and the content type is
    /// returned (TLS 1.3: the inner type, padding removed), and the sequence number advances.
    pub fn open(&mut self, header: &[u8; 5], body: &mut Vec<u8>) -> Option<u8> {
        let seq = self.seq.to_be_bytes();
        if self.suite.version == TLS13 {
            let mut nonce = self.iv;
            for (n, s) in nonce[4..].iter_mut().zip(seq) {
                *n ^= s;
            }
            let Protection::Aead(aead) = &self.protection else {
                return None;
            };
            if !aead.open(&nonce, header, body) {
                return None;
            }
            self.seq += 1;
            // RFC 8446 §5.4: content ‖ type ‖ zero padding.
            let end = body.iter().rposition(|&b| b != 0)?;
            let inner = body[end];
            body.truncate(end);
            return Some(inner);
        }
        let aead = match &self.protection {
            Protection::Aead(a) => a,
            Protection::Cbc {
                key,
                mac_key,
                mac,
                etm,
            } => {
                let len = self.suite.cipher.key_len();
                let ok = open_cbc(
                    &key[..len],
                    &mac_key[..mac.len()],
                    *mac,
                    *etm,
                    seq,
                    header,
                    body,
                );
                if ok {
                    self.seq += 1;
                }
                return ok.then_some(header[0]);
            }
        };
        let mut nonce = self.iv;
        let text = match self.suite.cipher {
            Cipher::ChaCha20Poly1305 => {
                // RFC 7905 §2: the 12-byte IV XOR the sequence number, no explicit part.
                for (n, s) in nonce[4..].iter_mut().zip(seq) {
                    *n ^= s;
                }
                body.len().checked_sub(TAG)?
            }
            _ => {
                let explicit = body.get(..EXPLICIT_NONCE)?;
                nonce[4..].copy_from_slice(explicit);
                body.drain(..EXPLICIT_NONCE);
                body.len().checked_sub(TAG)?
            }
        };
        // RFC 5246 §6.2.3.3: seq ‖ type ‖ version ‖ plaintext length.
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&seq);
        aad[8..11].copy_from_slice(&header[..3]);
        aad[11..].copy_from_slice(&(text as u16).to_be_bytes());
        if !aead.open(&nonce, &aad, body) {
            return None;
        }
        self.seq += 1;
        Some(header[0])
    }
}

/// Opens a TLS 1.2 AES-CBC record in place (RFC 5246 §6.2.3.2; RFC 7366 §3 for encrypt-then-MAC):
/// `body` becomes the content when padding and MAC check out.
fn open_cbc(
    key: &[u8],
    mac_key: &[u8],
    mac: Mac,
    etm: bool,
    seq: [u8; 8],
    header: &[u8; 5],
    body: &mut Vec<u8>,
) -> bool {
    use cbc::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::NoPadding};
    const BLOCK: usize = 16;
    let m = mac.len();
    let head = |len: usize| {
        let mut h = [0u8; 13];
        h[..8].copy_from_slice(&seq);
        h[8..11].copy_from_slice(&header[..3]);
        h[11..].copy_from_slice(&(len as u16).to_be_bytes());
        h
    };
    if etm {
        // MAC(seq ‖ type ‖ version ‖ length ‖ IV ‖ ciphertext), checked before decrypting.
        let Some(cut) = body.len().checked_sub(m) else {
            return false;
        };
        let expected = mac.compute(mac_key, &[&head(cut), &body[..cut]]);
        if expected.as_slice() != &body[cut..] {
            return false;
        }
        body.truncate(cut);
    }
    if body.len() < 2 * BLOCK || !body.len().is_multiple_of(BLOCK) {
        return false;
    }
    let (iv, text) = body.split_at_mut(BLOCK);
    let plain_len = {
        let dec = match key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .ok()
                .and_then(|d| {
                    d.decrypt_padded_mut::<NoPadding>(text)
                        .ok()
                        .map(<[u8]>::len)
                }),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .ok()
                .and_then(|d| {
                    d.decrypt_padded_mut::<NoPadding>(text)
                        .ok()
                        .map(<[u8]>::len)
                }),
        };
        let Some(n) = dec else { return false };
        n
    };
    body.drain(..BLOCK);
    body.truncate(plain_len);
    // Padding: pad_len + 1 bytes, each equal to pad_len.
    let Some(&pad) = body.last() else {
        return false;
    };
    let pad = usize::from(pad) + 1;
    if pad > body.len()
        || body[body.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) + 1 != pad)
    {
        return false;
    }
    body.truncate(body.len() - pad);
    if !etm {
        // MAC-then-encrypt: MAC(seq ‖ type ‖ version ‖ length ‖ content) after the content.
        let Some(cut) = body.len().checked_sub(m) else {
            return false;
        };
        let expected = mac.compute(mac_key, &[&head(cut), &body[..cut]]);
        if expected.as_slice() != &body[cut..] {
            return false;
        }
        body.truncate(cut);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_and_names() {
        assert_eq!(suite(TLS13, 0x1302).unwrap().hash, Hash::Sha384);
        assert_eq!(suite(TLS12, 0xc030).unwrap().hash, Hash::Sha384);
        assert_eq!(
            suite(TLS12, 0xcca8).unwrap().cipher,
            Cipher::ChaCha20Poly1305
        );
        assert!(suite(TLS12, 0x1301).is_none() && suite(TLS12, 0xc012).is_none());
        assert_eq!(
            suite(TLS12, 0xc028).unwrap().cipher,
            Cipher::Aes256Cbc(Mac::Sha384)
        );
        assert_eq!(
            cipher_name(0xc02f),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
    }
}
