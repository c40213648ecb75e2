#!/usr/bin/env python3
"""faults/drops.py DIR - explains no-lost-registration failures of a run under DIR: every drop of a
PE from a registrar's probe while the PE had no fault of its own in the 8 s before and the
registrar no partition or stop in the 16 s before, and whether a registrar logged a keep-alive
timeout for that PE in the 4 s before it (a PE its home took for dead, as opposed to one the
registrars lost between them)."""
import json, glob, re, datetime, sys, os
d = sys.argv[1] if len(sys.argv) > 1 else "target/faults/soak"
es = [json.loads(l) for f in glob.glob(os.path.join(d, '*.jsonl')) for l in open(f)]
t0 = min(e['t_us'] for e in es)
kat = []
for f in glob.glob(os.path.join(d, 'r*.0x*.log')):
    for line in open(f, errors='replace'):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r'keep-alive timeout pool=\S+ pe=(\d+)', line)
        if m:
            t = datetime.datetime.fromisoformat(line.split()[0].replace('Z', '+00:00')).timestamp() * 1e6
            kat.append((t, int(m.group(1))))
pe_of = {}
pe_fault = {}
for e in es:
    if e['kind'] == 'fault' and e['process'].startswith('pe'):
        pe_fault.setdefault(e['process'], []).append(e['t_us'])
names = {0x101: 'pe1', 0x102: 'pe2', 0x103: 'pe3', 0x104: 'pe4'}
dist = {}
for e in es:
    if e['kind'] == 'fault' and e['process'].startswith('r') and e['fault'] in ('partition','stop'):
        dist.setdefault(e['process'], []).append(e['t_us'])
probes = sorted([e for e in es if e['kind'] == 'probe' and e['outcome'] == 'ok'], key=lambda e: e['t_us'])
last = {}
drops = []
for e in probes:
    r = e['registrar']; s = set(e.get('pes', []))
    if r in last:
        for pe in last[r] - s:
            own = any(0 <= e['t_us'] - t < 8e6 for t in pe_fault.get(names[pe], []))
            regd = any(0 <= e['t_us'] - t < 16e6 for t in dist.get(r, []))
            if not own and not regd:
                ka = any(0 <= e['t_us'] - t < 4e6 and p == pe for t, p in kat)
                drops.append((round((e['t_us'] - t0) / 1e6, 1), r, hex(pe), ka))
    last[r] = s
print(len(kat), "keep-alive timeouts logged;", len(drops), "drops of live PEs at undisturbed registrars;",
      sum(1 for d in drops if d[3]), "right after a keep-alive timeout of that PE")
print([d for d in drops if not d[3]][:20])
