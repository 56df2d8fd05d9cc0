//! A TLS 1.3 client whose records are sealed with secrets the generator chose (so its key log is
//! known), and a pcapng writer that can put that key log anywhere in the capture as a Decryption
//! Secrets Block: what the TLS fuzz target and the late-key and resynchronisation tests feed the
//! analysis.
//!
//! Written from RFC 8446 (§4.1.2–4.1.3 hellos, §5.2 record protection, §7 key schedule) and the
//! pcapng specification (SHB, IDB, EPB, DSB); the AEAD and HKDF are RustCrypto's. No handshake is
//! run: the server's side is only the ServerHello the analysis reads for version and suite.
//!
//! Must not touch: the analysis (it is what is tested), the file system.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{AeadInPlace as _, KeyInit as _, generic_array::GenericArray};
use std::io::{self, Write};

/// `TLS_AES_128_GCM_SHA256`, the suite every session here uses.
pub const SUITE: u16 = 0x1301;

/// HKDF-Expand-Label(secret, label, "", out.len()) over SHA-256 (RFC 8446 §7.1).
fn expand_label(secret: &[u8; 32], label: &str, out: &mut [u8]) {
    let mut info = Vec::with_capacity(10 + label.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    let prk = hkdf::Hkdf::<sha2::Sha256>::from_prk(secret).expect("a 32-byte PRK");
    prk.expand(&info, out).expect("short output");
}

/// The client's write keys at one stage.
struct Writer {
    aead: Aes128Gcm,
    iv: [u8; 12],
    seq: u64,
    secret: [u8; 32],
}

impl Writer {
    fn new(secret: [u8; 32]) -> Writer {
        let (mut key, mut iv) = ([0u8; 16], [0u8; 12]);
        expand_label(&secret, "key", &mut key);
        expand_label(&secret, "iv", &mut iv);
        Writer {
            aead: Aes128Gcm::new_from_slice(&key).expect("16-byte key"),
            iv,
            seq: 0,
            secret,
        }
    }

    /// One record: `content ‖ inner type ‖ padding` sealed at the next sequence number.
    fn seal(&mut self, inner_type: u8, content: &[u8], padding: usize) -> Vec<u8> {
        let mut body = Vec::with_capacity(content.len() + 1 + padding + 16);
        body.extend_from_slice(content);
        body.push(inner_type);
        body.resize(body.len() + padding, 0);
        let len = body.len() + 16;
        let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        let tag = self
            .aead
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &header, &mut body)
            .expect("record within the AEAD's limit");
        self.seq += 1;
        let mut record = header.to_vec();
        record.extend_from_slice(&body);
        record.extend_from_slice(&tag);
        record
    }
}

/// A TLS 1.3 client connection: its ClientHello and the server's ServerHello in clear, then its
/// protected records, with the key log that opens them.
pub struct Tls13Client {
    random: [u8; 32],
    handshake: Writer,
    app: Writer,
    app_0: [u8; 32],
    finished: bool,
}

impl Tls13Client {
    /// A connection whose client random and secrets derive from `seed`.
    pub fn new(seed: u64) -> Tls13Client {
        let mut rng = super::Rng::new(seed);
        let mut bytes = || {
            let mut b = [0u8; 32];
            for chunk in b.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
            b
        };
        let random = bytes();
        let handshake = bytes();
        let app_0 = bytes();
        Tls13Client {
            random,
            handshake: Writer::new(handshake),
            app: Writer::new(app_0),
            app_0,
            finished: false,
        }
    }

    /// The key log lines of this connection (NSS format).
    pub fn key_log(&self) -> String {
        let r = hex::encode(self.random);
        format!(
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\n",
            hex::encode(self.handshake.secret),
            hex::encode(self.app_0)
        )
    }

    /// The ClientHello record, naming `sni`.
    pub fn client_hello(&self, sni: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        let name = sni.as_bytes();
        let server_name = [
            &[0u8, 0][..],
            &((name.len() + 5) as u16).to_be_bytes(),
            &((name.len() + 3) as u16).to_be_bytes(),
            &[0],
            &(name.len() as u16).to_be_bytes(),
            name,
        ]
        .concat();
        ext.extend_from_slice(&server_name);
        // supported_versions: TLS 1.3.
        ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&self.random);
        body.push(0);
        body.extend_from_slice(&[0, 2]);
        body.extend_from_slice(&SUITE.to_be_bytes());
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        handshake_record(1, &body, [3, 1])
    }

    /// The server's ServerHello record (TLS 1.3, `SUITE`).
    pub fn server_hello(&self) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend((0..32u8).map(|i| i.wrapping_mul(37) ^ self.random[usize::from(i)]));
        body.push(0);
        body.extend_from_slice(&SUITE.to_be_bytes());
        body.push(0);
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        handshake_record(2, &body, [3, 3])
    }

    /// The client's Finished, under the handshake keys: application keys from here on.
    pub fn finished(&mut self) -> Vec<u8> {
        self.finished = true;
        let mut msg = vec![20, 0, 0, 32];
        msg.extend_from_slice(&[0x5a; 32]);
        self.handshake.seal(0x16, &msg, 0)
    }

    /// Application data in one record (after `finished`), with `padding` zero bytes.
    pub fn data(&mut self, content: &[u8], padding: usize) -> Vec<u8> {
        self.app.seal(0x17, content, padding)
    }

    /// A KeyUpdate under the current keys; the next records use the next generation.
    pub fn key_update(&mut self) -> Vec<u8> {
        let record = self.app.seal(0x16, &[24, 0, 0, 1, 0], 0);
        let mut next = [0u8; 32];
        expand_label(&self.app.secret, "traffic upd", &mut next);
        self.app = Writer::new(next);
        record
    }

    /// The sequence number of the next application record.
    pub fn next_seq(&self) -> u64 {
        self.app.seq
    }
}

fn handshake_record(ty: u8, body: &[u8], version: [u8; 2]) -> Vec<u8> {
    let mut msg = vec![ty];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    let mut record = vec![0x16, version[0], version[1]];
    record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    record.extend_from_slice(&msg);
    record
}

/// A little-endian pcapng stream of one Ethernet interface: Enhanced Packet Blocks and, wherever
/// asked, a Decryption Secrets Block of TLS key log text.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Packets written.
    pub frames: u64,
}

fn block(out: &mut impl Write, ty: u32, body: &[u8]) -> io::Result<()> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    out.write_all(&ty.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0; 3][..pad])?;
    out.write_all(&total.to_le_bytes())
}

impl<W: Write> PcapngWriter<W> {
    /// The section header and one Ethernet interface.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        block(&mut out, 0x0a0d_0d0a, &shb)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&crate::pcap::SNAPLEN.to_le_bytes());
        block(&mut out, 1, &idb)?;
        Ok(PcapngWriter { out, frames: 0 })
    }

    /// One packet captured whole at `ts_us` (microseconds, the default resolution).
    pub fn packet(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let mut epb = Vec::with_capacity(20 + frame.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        epb.resize(epb.len() + (4 - frame.len() % 4) % 4, 0);
        self.frames += 1;
        block(&mut self.out, 6, &epb)
    }

    /// A Decryption Secrets Block carrying TLS key log text.
    pub fn secrets(&mut self, key_log: &[u8]) -> io::Result<()> {
        let mut dsb = Vec::with_capacity(8 + key_log.len());
        dsb.extend_from_slice(&0x544c_534bu32.to_le_bytes());
        dsb.extend_from_slice(&(key_log.len() as u32).to_le_bytes());
        dsb.extend_from_slice(key_log);
        block(&mut self.out, 0x0000_000a, &dsb)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
