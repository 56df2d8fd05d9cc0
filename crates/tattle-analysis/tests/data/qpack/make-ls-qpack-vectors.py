#!/usr/bin/env python3
"""Writes ls-qpack.txt: QPACK encoder streams and field sections produced by ls-qpack's encoder
(through pylsqpack, `pip install pylsqpack==1.0.0`), with the fields each section carries, for
`qpack::tests::agrees_with_ls_qpack`. Deterministic (fixed seed).

Each connection: `conn MAX_CAPACITY`, then in the order a decoder should see them `enc HEX`
(encoder stream bytes), and `sec STREAM HEX` followed by its fields, `f NAMEHEX VALUEHEX`. The
encoder's dynamic table is fed acknowledgements by ls-qpack's own decoder, so it inserts, evicts
and wraps its Required Insert Count as on a live connection. Sometimes a section is written
before the encoder bytes it needs (a blocked stream, which the decoder must hold).

Usage: python3 make-ls-qpack-vectors.py > ls-qpack.txt
"""
import random
import pylsqpack

rng = random.Random(9204)
NAMES = [b":method", b":path", b":authority", b":scheme", b"user-agent", b"cookie",
         b"x-device-id", b"accept-encoding", b"content-type", b"authorization", b"x-request-id",
         b"content-encoding"]
VALUES = [b"GET", b"POST", b"/", b"/v1/register?imei=356938035643809", b"api.example.com",
          b"https", b"okhttp/4.12.0", b"gzip", b"application/json", b"356938035643809"]

def value():
    r = rng.random()
    if r < 0.5:
        return rng.choice(VALUES)
    if r < 0.8:
        return b"v%d" % rng.randrange(40)
    return bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 40)))

out = []
for conn in range(8):
    cap = [220, 256, 1024, 4096, 4096, 16384][conn % 6]
    blocked = 0 if conn % 4 == 0 else 16
    enc = pylsqpack.Encoder()
    dec = pylsqpack.Decoder(cap, blocked)
    out.append("conn %d" % cap)
    sdtc = enc.apply_settings(cap, blocked)
    enc.feed_decoder(b"")
    out.append("enc " + sdtc.hex())
    dec.feed_encoder(sdtc)
    for i in range(60):
        sid = 4 * (conn * 1000 + i)
        headers = [(rng.choice(NAMES), value()) for _ in range(rng.randrange(1, 9))]
        e, s = enc.encode(sid, headers)
        late = blocked and e and rng.random() < 0.3
        if e and not late:
            out.append("enc " + e.hex())
        out.append("sec %d %s" % (sid, s.hex()))
        for n, v in headers:
            out.append("f %s %s" % (n.hex(), v.hex()))
        if late:
            out.append("enc " + e.hex())
        # ls-qpack's decoder acknowledges, as the server would.
        try:
            ack, got = dec.feed_header(sid, s)
        except pylsqpack.StreamBlocked:
            for unblocked in dec.feed_encoder(e):
                ack, got = dec.resume_header(unblocked)
        else:
            if e:
                dec.feed_encoder(e)
        assert got == headers, (got, headers)
        if ack:
            enc.feed_decoder(ack)
print("\n".join(out))
