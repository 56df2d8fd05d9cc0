#!/bin/sh
# Regenerates ngtcp2-streams.txt: the client's QUIC STREAM frames of one HTTP/3 exchange between
# ngtcp2's examples (gtlsclient → gtlsserver, Debian's ngtcp2-client/ngtcp2-server), as tshark
# decrypts them with the client's key log: one line per frame, `FRAME STREAM_ID OFFSET FIN HEX`,
# in capture order. gtlsclient sends three POSTs (-n 3) with the body `imei=356938035643809`:
#   /index.html?imei=356938035643809, /b?x=2, /c?imei=356938035643809 on 127.0.0.1:24443.
# http3::tests::ngtcp2_requests checks what Http3Connection finds in them against that.
# Needs root (tcpdump on lo), openssl, gtlsserver/gtlsclient, tshark, python3.
# Usage: crates/tattle-analysis/tests/data/h3/make-ngtcp2-streams.sh  (from the repo root)
set -eu
out=$(pwd)/crates/tattle-analysis/tests/data/h3/ngtcp2-streams.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 2 \
  -keyout key.pem -out cert.pem 2>/dev/null
mkdir www && echo hi > www/index.html
printf 'imei=356938035643809' > body.txt
tcpdump -q -i lo -U -w q.pcap udp port 24443 2>/dev/null &
td=$!
sleep 1
gtlsserver -q -d www 127.0.0.1 24443 key.pem cert.pem >/dev/null 2>&1 &
srv=$!
sleep 0.5
SSLKEYLOGFILE=$PWD/q.keys timeout 10 gtlsclient -q --exit-on-all-streams-close -n 3 -m POST \
  -d body.txt 127.0.0.1 24443 'https://127.0.0.1:24443/index.html?imei=356938035643809' \
  'https://127.0.0.1:24443/b?x=2' 'https://127.0.0.1:24443/c?imei=356938035643809' \
  >/dev/null 2>&1 || true
sleep 0.5
kill $srv 2>/dev/null || true
kill -INT $td; wait $td || true
tshark -r q.pcap -o tls.keylog_file:q.keys -Y 'quic.stream_data && udp.dstport==24443' \
  -T json --no-duplicate-keys -J 'frame quic' 2>/dev/null > q.json
python3 - q.json > "$out" <<'PY'
import json, sys
def walk(o, out):
    if isinstance(o, dict):
        if 'quic.stream.stream_id' in o:
            out.append(o)
        for v in o.values():
            walk(v, out)
    elif isinstance(o, list):
        for v in o:
            walk(v, out)
for pkt in json.load(open(sys.argv[1])):
    layers = pkt['_source']['layers']
    frames = []
    walk(layers, frames)
    for f in frames:
        fin = f.get('quic.frame_type_tree', {}).get('quic.stream.fin', '0')
        data = f.get('quic.stream_data', '').replace(':', '')
        print(layers['frame']['frame.number'], f['quic.stream.stream_id'],
              f.get('quic.stream.offset', '0'), fin, data)
PY
wc -l "$out"
