#!/bin/sh
# Builds the seed corpus of the `analyze` fuzz target: real loopback captures (Ethernet on `lo`,
# Linux SLL2 on `any`, and a pcapng conversion), plus the repository's analysis fixtures. Each seed
# is one control byte (the chunking, see fuzz_targets/analyze.rs) followed by the capture.
# Needs root (tcpdump), python3, curl, editcap. Usage: crates/tattle-analysis/fuzz/make-seeds.sh  (from the repo root)
set -eu
out=crates/tattle-analysis/fuzz/seeds/analyze
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT

# A one-shot HTTP sink (also accepts the TLS ClientHello and closes).
python3 - <<'PY' &
import socket, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(8)
    while True:
        c, _ = s.accept(); c.settimeout(1)
        try:
            c.recv(65536); c.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        except Exception: pass
        c.close()
for p in (18080, 18443): threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait(20)
PY
srv=$!
sleep 1

traffic() {
  # DNS query for a name carrying the IMEI (no resolver listens: the question is what matters).
  python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);q=b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"+b"".join(bytes([len(l)])+l for l in b"356938035643809.t.example".split(b"."))+b"\x00\x00\x01\x00\x01";s.sendto(q,("127.0.0.1",18053))'
  curl -s -o /dev/null -H 'Host: api.vendor.example' "http://127.0.0.1:18080/reg?imei=356938035643809" || true
  curl -s -o /dev/null -H 'Host: api.vendor.example' -H 'Content-Encoding: gzip' --data-binary @"$tmp/body.gz" http://127.0.0.1:18080/up || true
  curl -s -o /dev/null -d 'msisdn=%2B6598765432&n=Wei+Ling+Tan' http://127.0.0.1:18080/form || true
  curl -s -k -o /dev/null --max-time 2 --resolve secure.example:18443:127.0.0.1 https://secure.example:18443/ || true
}
printf 'imei=356938035643809&h=ddd' | gzip -c > "$tmp/body.gz"

for iface in lo any; do
  tcpdump -q -i "$iface" -B 65536 -U -w "$tmp/$iface.pcap" 'host 127.0.0.1 and (port 18080 or port 18443 or port 18053)' 2>/dev/null &
  td=$!
  sleep 1
  traffic
  sleep 1
  kill -INT $td; wait $td || true
done
editcap -F pcapng "$tmp/lo.pcap" "$tmp/lo.pcapng"

n=0
for f in "$tmp/lo.pcap" "$tmp/any.pcap" "$tmp/lo.pcapng" crates/tattle-analysis/tests/data/*.pcap; do
  for control in 000 001 002 003 007; do
    { printf "\\$control"; cat "$f"; } > "$out/$(basename "$f")-$control"
    n=$((n + 1))
  done
done
echo "$n seeds in $out"
