#!/usr/bin/env python3
"""faults/report.py [DIR] - one Markdown table row per scenario run under DIR (default
target/faults): operations in its history, faults injected, the measured departure and PU
outage figures and each property's verdict, all read from the run's files (RELIABILITY.md
quotes its output; nothing is typed in by hand)."""
import collections, glob, json, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/faults"
print("| scenario | operations (reg / dereg / probe / PU resolve / PU request) | faults | "
      "takeovers | slowest departure | longest PU outage | slowest registration spread | verdict |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(glob.glob(os.path.join(root, "*/verdict.txt"))):
    run = os.path.dirname(d)
    kinds, faults = collections.Counter(), collections.Counter()
    for path in glob.glob(os.path.join(run, "*.jsonl")):
        for line in open(path):
            e = json.loads(line)
            if e["kind"] == "fault":
                faults[e["fault"]] += 1
            elif e["outcome"] != "invoke":
                kinds[e["kind"]] += 1
    starts = faults.pop("start", 0)
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
    print(f"| {os.path.basename(run)} | {ops} | {fault_text} | {kinds['takeover']} | "
          f"{depart.group(1) + ' ms' if depart else 'none'} (≤ {bound_d.group(1) if bound_d else '-'} ms) | "
          f"{outage.group(1) if outage else '-'} ms (≤ {bound_f.group(1) if bound_f else '-'} ms) | "
          f"{spread.group(1) + ' ms' if spread else '-'} | {verdict} |")
