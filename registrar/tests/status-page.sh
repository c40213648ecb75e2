#!/usr/bin/env bash
# The admin status page in headless Chromium against a registrar under loadgen load.
#
# Goal: the page at http://127.0.0.1:PORT/?token=... shows the pools, their PEs and a moving
# (non-zero) request rate, and shows no error; a screenshot that is blank fails. Method: a
# registrar (2 workers, admin API on a free loopback port, a token file), loadgen registering
# PEs in 3 pools and resolving at a steady open-loop rate; Chromium's --dump-dom (the DOM
# after the page's script ran for the virtual-time budget) and --screenshot, checked here.
#
# Installs Debian's `chromium` with apt-get if it is missing (needs root). Everything runs on
# 127.0.0.1 and is bounded in time; every process started here is stopped on exit.
# Usage: [STATUS_PAGE_SCREENSHOT=FILE] registrar/tests/status-page.sh
# Ends with "N passed, M failed"; exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/../.."

passed=0
failed=0
pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); echo "FAIL $1${3:+: $3}"
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "chromium missing: installing Debian's chromium package"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium) >"$work/apt.log" 2>&1; then
    tail -5 "$work/apt.log"
    check "install chromium" 1 "apt-get failed (see above)"
    finish
  fi
  browser=$(command -v chromium)
fi
check "chromium available ($browser)" 0

if ! cargo build -q -p registrar -p loadgen 2>"$work/build.log"; then
  tail -20 "$work/build.log"
  check "build registrar and loadgen" 1
  finish
fi
target=${CARGO_TARGET_DIR:-target}/debug

free_port() { # free_port tcp|udp
  python3 -c "import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1]=='tcp' else socket.SOCK_DGRAM)
s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
udp_port=$(free_port udp)
admin_port=$(free_port tcp)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$token" >"$work/token"

"$target/registrar" --udp "127.0.0.1:$udp_port" --workers 2 --no-announce --no-enrp \
  --admin "127.0.0.1:$admin_port" --admin-token-file "$work/token" \
  --run-seconds 120 --log warn 2>"$work/registrar.log" &
pids+=($!)

api() { curl -fsS --max-time 3 -H "Authorization: Bearer $token" "http://127.0.0.1:$admin_port$1"; }
for _ in $(seq 50); do api /api/v1/stats >/dev/null 2>&1 && break; sleep 0.1; done
api /api/v1/stats >/dev/null 2>&1
check "registrar's admin API answers" $? "$(tail -3 "$work/registrar.log")"

"$target/loadgen" run --target registrar --address "127.0.0.1:$udp_port" --no-report \
  --duration-ms 60000 --warmup-ms 500 --pools 3 --handle-prefix StatusPool- --pe-count 12 \
  --ramp-ms 200 --reregister-ms 5000 --associations 2 --mode open --rate-per-s 300 \
  >"$work/loadgen.log" 2>&1 &
pids+=($!)

# PEs registered and resolutions counted before the browser looks.
pools=0; resolutions=0
for _ in $(seq 100); do
  pools=$(api /api/v1/pools 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool_count"])' 2>/dev/null || echo 0)
  resolutions=$(api /api/v1/stats 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["resolutions"])' 2>/dev/null || echo 0)
  [ "$pools" -ge 3 ] && [ "$resolutions" -gt 0 ] && break
  sleep 0.1
done
[ "$pools" -ge 3 ] && [ "$resolutions" -gt 0 ]
check "load is on (pools=$pools, resolutions=$resolutions)" $? "$(tail -3 "$work/loadgen.log")"

url="http://127.0.0.1:$admin_port/?token=$token"
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-component-update --disable-sync --no-first-run --window-size=1200,900
       --virtual-time-budget=5000)
timeout 60 "$browser" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --dump-dom "$url" >"$work/dom.html" 2>"$work/chromium-dom.log"
check "chromium dumps the DOM" $? "$(tail -3 "$work/chromium-dom.log")"
timeout 60 "$browser" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
  --screenshot="$work/status.png" "$url" >/dev/null 2>"$work/chromium-shot.log"
[ -s "$work/status.png" ]
check "chromium takes a screenshot" $? "$(tail -3 "$work/chromium-shot.log")"

# The DOM after the script ran: pools and PEs listed, a non-zero rate, no error shown.
python3 - "$work/dom.html" <<'EOF'
import html.parser, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
class Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.text = {}; self.tables = {}; self.table = None
        self.error_hidden = False
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table": self.table = attrs.get("id"); self.tables[self.table] = []
        if tag == "tr" and self.table: self.tables[self.table].append([])
        if attrs.get("id") == "error": self.error_hidden = "display: none" in (attrs.get("style") or "")
        self.stack.append(attrs.get("id"))
    def handle_endtag(self, tag):
        if tag == "table": self.table = None
        if self.stack: self.stack.pop()
    def handle_data(self, data):
        for i in self.stack:
            if i: self.text[i] = self.text.get(i, "") + data
        if self.table and self.tables[self.table] and self.lasttag in ("td", "th"):
            self.tables[self.table][-1].append(data.strip())
p = Cells(); p.feed(dom)
failures = []
def expect(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok: failures.append(name)
pools = [row[0] for row in p.tables.get("pools", [])[1:] if row]
expect("DOM lists the three pools", sorted(pools) == ["StatusPool-0", "StatusPool-1", "StatusPool-2"], str(pools))
pes = [row for row in p.tables.get("elements", [])[1:] if row and row[0].startswith("StatusPool-")]
expect("DOM lists the PEs", len(pes) == 12, str(len(pes)))
rate = p.text.get("rate", "").strip()
try: value = float(rate)
except ValueError: value = 0.0
expect("DOM shows a non-zero request rate", value > 0, repr(rate))
expect("DOM shows no error", p.error_hidden and not p.text.get("error", "").strip(), p.text.get("error", ""))
expect("DOM shows the registrar id", re.fullmatch(r"0x[0-9a-f]{8}", p.text.get("registrar", "").strip()) is not None, p.text.get("registrar", ""))
sys.exit(len(failures))
EOF
dom_failures=$?
passed=$((passed + 5 - dom_failures)); failed=$((failed + dom_failures))

# Not blank: enough pixels that are not the background, decoded with the standard library.
(python3 - "$work/status.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width = 8, b"", 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, color = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
channels = {2: 3, 6: 4}[color]
assert depth == 8
raw, stride = zlib.decompress(idat), width * channels
rows, prev, off = [], bytearray(stride), 0
for _ in range(height):
    f, line = raw[off], bytearray(raw[off + 1:off + 1 + stride]); off += 1 + stride
    for i in range(stride):
        a = line[i - channels] if i >= channels else 0
        b, c = prev[i], prev[i - channels] if i >= channels else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
background = tuple(rows[0][:3])
inked = sum(1 for line in rows[::4] for x in range(0, stride, channels * 4)
            if tuple(line[x:x + 3]) != background)
total = len(rows[::4]) * len(range(0, stride, channels * 4))
share = inked / total
print(f"{share:.1%}")
sys.exit(0 if share > 0.02 else 1)
EOF
) >"$work/inked.txt" 2>&1
check "screenshot is not blank ($(tail -1 "$work/inked.txt") of sampled pixels inked)" $?

# STATUS_PAGE_SCREENSHOT=FILE keeps the screenshot (to look at, or to attach to CI).
[ -n "${STATUS_PAGE_SCREENSHOT:-}" ] && cp "$work/status.png" "$STATUS_PAGE_SCREENSHOT"
if [ "$failed" -gt 0 ]; then
  echo "--- DOM (first 60 lines)"; head -60 "$work/dom.html"
  echo "--- registrar log"; tail -5 "$work/registrar.log"
fi
finish
