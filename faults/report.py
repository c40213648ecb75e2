#!/usr/bin/env python3
"""faults/report.py [DIR] - one Markdown table row per scenario run under DIR (default
target/faults): operations in its history, faults injected, the measured departure and PU
outage figures and each property's verdict, all read from the run's files (RELIABILITY.md
quotes its output; nothing is typed in by hand)."""
import collections, glob, json, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/faults"
print("| scenario | operations (reg / dereg / probe / PU resolve / PU request) | faults | "
      "takeovers (slowest: fault to won) | slowest departure | longest PU outage | slowest registration spread | verdict |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(glob.glob(os.path.join(root, "*/verdict.txt"))):
    run = os.path.dirname(d)
    kinds, faults = collections.Counter(), collections.Counter()
    entries = []
    for path in glob.glob(os.path.join(run, "*.jsonl")):
        for line in open(path):
            e = json.loads(line)
            entries.append(e)
            if e["kind"] == "fault":
                faults[e["fault"]] += 1
            elif e["outcome"] != "invoke":
                kinds[e["kind"]] += 1
    starts = faults.pop("start", 0)
    # Takeover time: from the disturbing fault (kill, stop, partition) of the target
    # incarnation's node, not yet undone, to the winner's "takeover won" log line. Takeovers
    # of a registrar with no such fault (false failures under loss) count, but have no time.
    entries.sort(key=lambda e: e["t_us"])
    current, fault_of, takeover_ms = {}, {}, []   # node -> its registrar id; id -> fault time
    for e in entries:
        kind, fault = e["kind"], e.get("fault")
        if kind == "fault" and fault == "start" and e.get("registrar"):
            current[e["process"]] = e["registrar"]
        elif kind == "fault" and fault in ("kill", "stop", "partition") and e["process"] in current:
            fault_of.setdefault(current[e["process"]], e["t_us"])
        elif kind == "fault" and fault in ("cont", "heal") and e["process"] in current:
            fault_of.pop(current[e["process"]], None)
        elif kind == "takeover" and e.get("target") in fault_of:
            takeover_ms.append((e["t_us"] - fault_of[e["target"]]) // 1000)
    takeover_text = str(kinds["takeover"])
    if takeover_ms:
        takeover_text += f" ({max(takeover_ms)} ms)"
    text = open(d).read()
    failed = re.findall(r"^FAIL (\S+):", text, re.M)
    departures = re.search(r"departure-bound: (\d+) departures", text)
    depart = re.search(r"slowest left every registrar (\d+) ms", text)
    if departures and departures.group(1) == "0":
        depart = None
    outage = re.search(r"longest outage (\d+) ms", text)
    spread = re.search(r"slowest reached every registrar in (\d+) ms", text)
    bound_d = re.search(r"departure-bound: .*\(bound (\d+) ms\)", text)
    bound_f = re.search(r"failover-bound: .*\(bound (\d+) ms", text)
    verdict = "pass" if not failed else "FAIL: " + ", ".join(failed)
    scenario = os.path.join("faults/scenarios", os.path.basename(run) + ".scn")
    if os.path.exists(scenario) and re.search(r"^expect fail", open(scenario).read(), re.M):
        verdict += " (expected to fail)"
    fault_text = ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none"
    fault_text += f" (+{starts} starts)"
    ops = " / ".join(str(kinds[k]) for k in ("register", "deregister", "probe", "resolve", "request"))
    print(f"| {os.path.basename(run)} | {ops} | {fault_text} | {takeover_text} | "
          f"{depart.group(1) + ' ms' if depart else 'none'} (≤ {bound_d.group(1) if bound_d else '-'} ms) | "
          f"{outage.group(1) if outage else '-'} ms (≤ {bound_f.group(1) if bound_f else '-'} ms) | "
          f"{spread.group(1) + ' ms' if spread else '-'} | {verdict} |")
