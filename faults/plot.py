#!/usr/bin/env python3
"""faults/plot.py CSV SVG - the soak's resource curves (faults/soak.sh writes CSV: t_s, node,
pid, rss_kb, fds, cpu_ticks) as one SVG with three panels: resident memory (MB), open file
descriptors, and CPU time (s), one line per process (a restarted node is a new process and a
new line). Standard library only, so it runs wherever the soak does."""
import csv, html, os, sys

if len(sys.argv) != 3:
    sys.exit("usage: faults/plot.py RESOURCES.csv OUT.svg")
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit(f"{sys.argv[1]}: no samples")
tick = os.sysconf("SC_CLK_TCK")
series = {}
for r in rows:
    key = (r["node"], r["pid"])
    series.setdefault(key, []).append(
        (int(r["t_s"]), int(r["rss_kb"]) / 1024, int(r["fds"]), int(r["cpu_ticks"]) / tick))
# Registrars first (the soak's subject), then the clients; in order of first sample.
order = sorted(series, key=lambda k: (not k[0].startswith("r"), series[k][0][0], k[0]))
colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
node_colour = {}
for node, _ in order:
    node_colour.setdefault(node, colours[len(node_colour) % len(colours)])

W, PH, LEFT, RIGHT, TOP, GAP = 960, 220, 70, 130, 40, 50
H = TOP + 3 * PH + 2 * GAP + 40
t_max = max(int(r["t_s"]) for r in rows) or 1
panels = [("resident memory (MB)", 1), ("open file descriptors", 2), ("CPU time (s)", 3)]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{LEFT}" y="20" font-size="14">{html.escape(sys.argv[1])}: '
       f'{len(rows)} samples, {len(series)} processes, {t_max} s</text>']
for p, (title, col) in enumerate(panels):
    y0 = TOP + p * (PH + GAP)
    y_max = max(v[col] for s in series.values() for v in s) * 1.1 or 1
    x = lambda t: LEFT + (W - LEFT - RIGHT) * t / t_max
    y = lambda v: y0 + PH - PH * v / y_max
    out.append(f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{PH}" '
               f'fill="none" stroke="#999"/>')
    out.append(f'<text x="{LEFT}" y="{y0 - 6}">{title}</text>')
    for k in range(5):
        v = y_max * k / 4
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                   f'{v:.0f}</text>' if y_max >= 8 else
                   f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#eee"/>')
    for k in range(7):
        t = t_max * k / 6
        out.append(f'<text x="{x(t):.1f}" y="{y0 + PH + 14}" text-anchor="middle">{t:.0f} s</text>')
    for key in order:
        pts = " ".join(f"{x(v[0]):.1f},{y(v[col]):.1f}" for v in series[key])
        out.append(f'<polyline fill="none" stroke="{node_colour[key[0]]}" stroke-width="1.5" '
                   f'points="{pts}"><title>{html.escape(key[0])} pid {key[1]}</title></polyline>')
for i, (node, c) in enumerate(node_colour.items()):
    out.append(f'<rect x="{W - RIGHT + 15}" y="{TOP + 16 * i}" width="12" height="10" fill="{c}"/>')
    out.append(f'<text x="{W - RIGHT + 32}" y="{TOP + 16 * i + 10}">{html.escape(node)}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print(f"{sys.argv[2]}: {len(series)} curves from {len(rows)} samples")
