//! The published TLS 1.3 trace of RFC 8448 §3 ("Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256):
//! its client traffic secrets derived from the handshake secret with this module's
//! HKDF-Expand-Label, its record keys checked against the published ones, and its protected
//! client records (the Finished, then 50 bytes of application data) opened by the same stream and
//! flow code a capture goes through. No peer: the RFC is the independent implementation.

use sha2::{Digest as _, Sha256};

use super::crypto::{Hash, expand_label, expand_label_with};
use super::sessions::{Wire, analyse, capture};
use super::stream::{KeyView, TlsStream};
use super::{Progress, client_hello};
use crate::keylog::KeyLog;
use crate::{Decryption, Protocol};

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    ::hex::decode(text).expect("RFC 8448 hex")
}

/// A record of `ty` (version 0x0303 as the RFC's records carry) around `body`.
fn record(ty: u8, version: [u8; 2], body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, version[0], version[1]];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// `{server} extract secret "handshake"`.
const HANDSHAKE_SECRET: &str =
    "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b 01 04 6a a6 b9 9f 69 1e d2
    21 a9 f0 ca 04 3f be ac";
/// `{client} derive secret "tls13 c hs traffic"`.
const CLIENT_HS: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96
    00 74 6a 0e 27 a5 5a 21";
/// `{server} extract secret "master"`.
const MASTER: &str = "18 df 06 84 3d 13 a0 8b f2 a4 49 84 4c 5f 8a 47 80 01 bc 4d 4c 62 79 84
    d5 a4 1d a8 d0 40 29 19";
/// `{client} derive secret "tls13 c ap traffic"`.
const CLIENT_AP: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87
    f7 92 eb b7 c1 75 04 a5";
/// The client's handshake and application write keys and IVs.
const CLIENT_HS_KEY: &str = "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01";
const CLIENT_HS_IV: &str = "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f";
const CLIENT_AP_KEY: &str = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51";
const CLIENT_AP_IV: &str = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";

/// The ClientHello and ServerHello handshake messages.
const CLIENT_HELLO: &str = "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2
    1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b 00
    09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01
    01 01 02 01 03 01 04 00 23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e
    43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00 03 02 03 04 00 0d 00 20
    00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02
    00 2d 00 02 01 01 00 1c 00 02 40 01";
const SERVER_HELLO: &str = "02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c
    8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88 76
    11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02
    03 04";
/// The server's flight in clear (EncryptedExtensions … Finished): the transcript up to the
/// server's Finished is what the client application secret is derived over.
const SERVER_FLIGHT: &str =
    "08 00 00 24 00 22 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01
    01 02 01 03 01 04 00 1c 00 02 40 01 00 00 00 00 0b 00 01 b9 00 00 01 b5 00 01 b0 30 82 01 ac 30
    82 01 15 a0 03 02 01 02 02 01 02 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a
    06 03 55 04 03 13 03 72 73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33 35 39 5a 17 0d 32 36 30
    37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72 73 61 30 81 9f 30 0d 06
    09 2a 86 48 86 f7 0d 01 01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 bb 49 8f 82 79 30 3d 98
    08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26 d3 90 1a 24 61 ea fd 2d e4 9a 91 d0 15 ab bc 9a
    95 13 7a ce 6c 1a f1 9e aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc b0 52 4b 1b 01 8c 3e 0b
    63 26 4d 44 9a 6d 38 e2 2a 5f da 43 08 46 74 80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6 d1 d0
    3e 2b d1 93 ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 03 01 00 01 a3 1a 30 18
    30 09 06 03 55 1d 13 04 02 30 00 30 0b 06 03 55 1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86
    f7 0d 01 01 0b 05 00 03 81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a 72 67 17 06 18 a5 4c 5f
    8a 7b 33 7d 2d f7 a5 94 36 54 17 f2 ea e8 f8 a5 8c 8f 81 72 f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a
    03 01 51 56 72 60 96 fd 33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be c1 fc 63 a4 2a 99 be 5c 3e
    b7 10 7c 3c 54 e9 b9 eb 2b d5 20 3b 1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8
    f8 96 12 29 ac 91 87 b4 2b 4d e1 00 00 0f 00 00 84 08 04 00 80 5a 74 7c 5d 88 fa 9b d2 e5 5a b0
    85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a b3 ff 52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3 3a 5c 14
    1a 07 86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6 d3 0b be 8d 48 59 ee 51 1f 60 29
    57 b1 54 11 ac 02 76 71 45 9e 46 44 5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15
    2a 3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3 14 00 00 20 9b 9b 14 1d 90 63 37
    fb d2 cb dc e7 1d f4 de da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07 18";
/// The client's protected records: its Finished (handshake keys, sequence 0) and 50 bytes of
/// application data `00 01 … 31` (application keys, sequence 0).
const CLIENT_FINISHED_RECORD: &str = "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c
    56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68
    67 d7 26 c4 05 46";
const CLIENT_APP_RECORD: &str = "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef
    ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62
    92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// Derive-Secret(secret, label, messages) = HKDF-Expand-Label(secret, label, H(messages), 32).
fn derive_secret(secret: &[u8], label: &str, messages: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    expand_label_with(Hash::Sha256, secret, label, &sha256(messages), &mut out);
    out
}

/// The client's secrets, derived from the published handshake secret the way RFC 8446 §7.1 does.
fn client_secrets() -> (Vec<u8>, Vec<u8>) {
    let (ch, sh, flight) = (hex(CLIENT_HELLO), hex(SERVER_HELLO), hex(SERVER_FLIGHT));
    let hs = hex(HANDSHAKE_SECRET);
    let client_hs = derive_secret(&hs, "c hs traffic", &[&ch, &sh]);
    let derived = derive_secret(&hs, "derived", &[]);
    let (master, _) = hkdf::Hkdf::<Sha256>::extract(Some(&derived), &[0u8; 32]);
    assert_eq!(master.to_vec(), hex(MASTER), "master secret");
    let client_ap = derive_secret(&master, "c ap traffic", &[&ch, &sh, &flight]);
    (client_hs, client_ap)
}

fn random() -> [u8; 32] {
    hex(CLIENT_HELLO)[6..38].try_into().unwrap()
}

fn key_log(client_hs: &[u8], client_ap: &[u8]) -> String {
    let r = ::hex::encode(random());
    format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\n",
        ::hex::encode(client_hs),
        ::hex::encode(client_ap)
    )
}

#[test]
fn secrets_and_keys_are_the_published_ones() {
    let (client_hs, client_ap) = client_secrets();
    assert_eq!(client_hs, hex(CLIENT_HS));
    assert_eq!(client_ap, hex(CLIENT_AP));
    for (secret, key, iv) in [
        (&client_hs, CLIENT_HS_KEY, CLIENT_HS_IV),
        (&client_ap, CLIENT_AP_KEY, CLIENT_AP_IV),
    ] {
        let (mut k, mut i) = ([0u8; 16], [0u8; 12]);
        expand_label(Hash::Sha256, secret, "key", &mut k);
        expand_label(Hash::Sha256, secret, "iv", &mut i);
        assert_eq!((k.to_vec(), i.to_vec()), (hex(key), hex(iv)));
    }
}

/// The RFC's records through `TlsStream`: the Finished opens under the handshake keys (nothing
/// handed on), the application record under the application keys, its plaintext `00 … 31`.
#[test]
fn the_client_records_open_in_the_stream() {
    let (client_hs, client_ap) = client_secrets();
    let mut log = KeyLog::new();
    let stats = log.add_text(key_log(&client_hs, &client_ap).as_bytes());
    assert_eq!(stats.secrets, 2);
    let keys = KeyView {
        base: std::sync::Arc::new(log),
        ..KeyView::default()
    };
    let hello_record = record(0x16, [3, 1], &hex(CLIENT_HELLO));
    let Progress::Hello(hello, used) = client_hello(&hello_record) else {
        panic!("the RFC's ClientHello");
    };
    assert_eq!(
        (hello.sni.as_deref(), used),
        (Some("server"), hello_record.len())
    );
    let mut stream = TlsStream::new(&hello, used as u64, &keys);
    let mut plain = Vec::new();
    let mut emit = |at: u64, bytes: &[u8]| plain.push((at, bytes.to_vec()));
    let records = [hex(CLIENT_FINISHED_RECORD), hex(CLIENT_APP_RECORD)].concat();
    // The client's records come before the ServerHello is read: they wait for it.
    stream.feed(used as u64, &records, &mut emit);
    let server = record(0x16, [3, 3], &hex(SERVER_HELLO));
    stream.feed_server(&keys, 0, &server, &mut emit);
    let want: Vec<u8> = (0u8..=0x31).collect();
    assert_eq!(plain, vec![(0, want)]);
    let s = stream.summary(true);
    assert_eq!(s.decryption, Decryption::Decrypted);
    assert_eq!((s.version, s.cipher), (Some(0x0304), Some(0x1301)));
    assert_eq!(s.decrypted_bytes, records.len() as u64);
}

/// The same trace as a TCP capture, cut into segments of every size from 1 to 80 bytes and whole:
/// the flow is decrypted, every client byte after the ClientHello authenticated. A secret with
/// one bit flipped is `keys_do_not_match` at the Finished's frame.
#[test]
fn the_trace_as_a_capture_decrypts_at_every_segment_size() {
    let (client_hs, client_ap) = client_secrets();
    let server_flight_record = hex(
        "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3",
    );
    let wire: Wire = vec![
        (true, record(0x16, [3, 1], &hex(CLIENT_HELLO))),
        (false, record(0x16, [3, 3], &hex(SERVER_HELLO))),
        // The start of the server's protected flight (the client side never needs the rest).
        (false, server_flight_record),
        (true, hex(CLIENT_FINISHED_RECORD)),
        (true, hex(CLIENT_APP_RECORD)),
    ];
    let keys = key_log(&client_hs, &client_ap);
    for mss in (1..=80).chain([1400]) {
        let a = analyse(&capture(&wire, mss), &keys);
        assert_eq!(a.flows.len(), 1, "mss {mss}");
        let f = &a.flows[0];
        assert_eq!(f.protocol, Protocol::Tls);
        assert_eq!(f.host, "server");
        let t = f.tls.expect("tls facts");
        assert_eq!(t.decryption, Decryption::Decrypted, "mss {mss}");
        assert_eq!(t.decrypted_bytes, 58 + 72, "mss {mss}");
        assert_eq!(t.app, Some("other"));
    }
    let mut wrong = client_hs.clone();
    wrong[0] ^= 1;
    let a = analyse(&capture(&wire, 1400), &key_log(&wrong, &client_ap));
    let t = a.flows[0].tls.unwrap();
    // Frames: 3 handshake, ClientHello 4, ServerHello 5, server flight 6, Finished 7.
    assert_eq!(t.decryption, Decryption::KeysDoNotMatch { frame: 7 });
}
