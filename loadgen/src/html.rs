//! A self-contained HTML report: summary table, errors by cause, throughput over time and
//! latency CDF as inline SVG drawn here (no scripts, no external files), and the scenario.

use std::fmt::Write as _;

use crate::report::{OpResult, RunResult};
use crate::runner::human;

/// Renders the whole report.
pub fn render(result: &RunResult) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("loadgen: {} against {}", result.scenario.name, result.target);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<p>{} workers (busy: {}), {:.2} s elapsed, host: {} CPUs, kernel {}; \
         {} unfinished at the end.</p>",
        result.scenario.run.workers,
        result
            .worker_busy
            .iter()
            .map(|b| format!("{:.0} %", b * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        result.elapsed_s,
        result.host.cpus,
        escape(&result.host.kernel),
        result.unfinished
    );
    summary_table(&mut out, result);
    errors_table(&mut out, result);
    out.push_str("<h2>Throughput over time</h2>\n");
    out.push_str(&throughput_svg(result));
    out.push_str("<h2>Latency CDF</h2>\n<p>Successful operations; x is logarithmic.</p>\n");
    out.push_str(&cdf_svg(&result.ops));
    let _ = write!(
        out,
        "<h2>Scenario</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&result.scenario.to_toml())
    );
    out
}

fn summary_table(out: &mut String, result: &RunResult) {
    out.push_str(
        "<h2>Summary</h2>\n<table><tr><th>op</th><th>ok</th><th>errors</th><th>ops/s</th>\
        <th>p50 µs</th><th>p90 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>max µs</th></tr>\n",
    );
    for o in &result.ops {
        let l = &o.latency_us;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td>\
            <td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            o.kind.name(),
            o.succeeded,
            o.failed,
            human(o.throughput_per_s),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max
        );
    }
    out.push_str("</table>\n");
}

fn errors_table(out: &mut String, result: &RunResult) {
    out.push_str("<h2>Errors by cause</h2>\n");
    if result.failed() == 0 {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table><tr><th>op</th><th>cause</th><th>count</th></tr>\n");
    for o in &result.ops {
        for (cause, count) in &o.errors_by_cause {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{count}</td></tr>",
                o.kind.name(),
                escape(cause)
            );
        }
    }
    out.push_str("</table>\n");
}

/// Operations per second in each bucket, one line per op kind.
fn throughput_svg(result: &RunResult) -> String {
    let bucket_s = result.bucket_ms as f64 / 1e3;
    let used = result
        .ops
        .iter()
        .filter_map(|o| o.succeeded_per_bucket.iter().rposition(|&n| n > 0))
        .max()
        .map_or(1, |last| last + 1);
    let y_max = result
        .ops
        .iter()
        .flat_map(|o| o.succeeded_per_bucket.iter().take(used))
        .map(|&n| n as f64 / bucket_s)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let x_max = used as f64 * bucket_s;
    let mut plot = Plot::new(x_max, y_max);
    let mut svg = plot.frame(
        "time (s)",
        &format!("ops/s per {} ms", result.bucket_ms),
        TICKS,
        |x| format!("{x:.1}"),
        human,
    );
    for (i, o) in result.ops.iter().enumerate() {
        let points: Vec<(f64, f64)> = o
            .succeeded_per_bucket
            .iter()
            .take(used)
            .enumerate()
            .map(|(b, &n)| ((b as f64 + 0.5) * bucket_s, n as f64 / bucket_s))
            .collect();
        plot.line(&mut svg, &points, COLORS[i % COLORS.len()], o.kind.name(), i);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Fraction of operations at or below each latency, log-scaled latency.
fn cdf_svg(ops: &[OpResult]) -> String {
    let all = ops.iter().flat_map(|o| o.cdf.iter());
    let (low, high) =
        all.fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.latency_us), hi.max(p.latency_us)));
    if high <= 0.0 {
        return "<p>No successful operations.</p>\n".to_owned();
    }
    let (lo_log, hi_log) = (
        low.max(0.001).log10().floor(),
        high.log10().ceil().max(low.max(0.001).log10().floor() + 1.0),
    );
    let mut plot = Plot::new(hi_log - lo_log, 1.0);
    let decades = (hi_log - lo_log).round().clamp(1.0, 12.0) as u32;
    let mut svg = plot.frame(
        "latency (µs, log)",
        "fraction ≤ x",
        decades,
        |x| {
            let us = 10f64.powf((x + lo_log).round());
            if us < 1.0 {
                format!("{us}")
            } else {
                human(us)
            }
        },
        |y| format!("{y:.2}"),
    );
    for q in [0.5, 0.9, 0.99] {
        let y = plot.y(q);
        let (x1, x2) = (MARGIN_LEFT, MARGIN_LEFT + PLOT_W);
        let _ = writeln!(
            svg,
            "<line x1=\"{x1}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#bbb\" \
             stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\">p{}</text>",
            x2 + 4.0,
            y + 4.0,
            q * 100.0
        );
    }
    for (i, o) in ops.iter().enumerate() {
        let points: Vec<(f64, f64)> =
            o.cdf.iter().map(|p| (p.latency_us.max(0.001).log10() - lo_log, p.fraction)).collect();
        plot.line(&mut svg, &points, COLORS[i % COLORS.len()], o.kind.name(), i);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Linear axes from zero to (x_max, y_max) inside a fixed-size SVG.
struct Plot {
    x_max: f64,
    y_max: f64,
}

impl Plot {
    fn new(x_max: f64, y_max: f64) -> Plot {
        assert!(x_max > 0.0 && y_max > 0.0);
        Plot { x_max, y_max }
    }

    fn x(&self, x: f64) -> f64 {
        MARGIN_LEFT + (x / self.x_max).clamp(0.0, 1.0) * PLOT_W
    }

    fn y(&self, y: f64) -> f64 {
        MARGIN_TOP + (1.0 - (y / self.y_max).clamp(0.0, 1.0)) * PLOT_H
    }

    /// Opens the `<svg>`, draws axes, ticks and labels. The caller closes it.
    fn frame(
        &mut self,
        x_label: &str,
        y_label: &str,
        x_ticks: u32,
        x_tick: impl Fn(f64) -> String,
        y_tick: impl Fn(f64) -> String,
    ) -> String {
        assert!(x_ticks > 0);
        let (w, h) = (MARGIN_LEFT + PLOT_W + 60.0, MARGIN_TOP + PLOT_H + 50.0);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
             <rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{PLOT_W}\" \
             height=\"{PLOT_H}\" fill=\"white\" stroke=\"#444\"/>\n"
        );
        for i in 0..=x_ticks {
            let t = f64::from(i) / f64::from(x_ticks);
            let x = self.x(t * self.x_max);
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MARGIN_TOP}\" y2=\"{}\" stroke=\"#eee\"/>\
                <text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                MARGIN_TOP + PLOT_H,
                MARGIN_TOP + PLOT_H + 16.0,
                escape(&x_tick(t * self.x_max))
            );
        }
        for i in 0..=TICKS {
            let t = f64::from(i) / f64::from(TICKS);
            let y = self.y(t * self.y_max);
            let _ = writeln!(
                svg,
                "<line x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                MARGIN_LEFT + PLOT_W,
                MARGIN_LEFT - 6.0,
                y + 4.0,
                escape(&y_tick(t * self.y_max))
            );
        }
        let middle = MARGIN_TOP + PLOT_H / 2.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text x=\"14\" y=\"{middle}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 14 {middle})\">{}</text>",
            MARGIN_LEFT + PLOT_W / 2.0,
            MARGIN_TOP + PLOT_H + 40.0,
            escape(x_label),
            escape(y_label)
        );
        svg
    }

    /// A polyline and its legend entry (the `index`-th).
    fn line(&self, svg: &mut String, points: &[(f64, f64)], color: &str, name: &str, index: usize) {
        let mut path = String::with_capacity(points.len() * 16);
        for &(x, y) in points {
            let _ = write!(path, "{:.1},{:.1} ", self.x(x), self.y(y));
        }
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>",
            path.trim_end()
        );
        let y = MARGIN_TOP + 14.0 + 16.0 * index as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
            <text x=\"{}\" y=\"{y:.1}\" font-size=\"11\">{}</text>",
            MARGIN_LEFT + 8.0,
            y - 9.0,
            MARGIN_LEFT + 22.0,
            escape(name)
        );
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const MARGIN_LEFT: f64 = 70.0;
const MARGIN_TOP: f64 = 10.0;
const PLOT_W: f64 = 720.0;
const PLOT_H: f64 = 300.0;
const TICKS: u32 = 5;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
svg{font-family:sans-serif}pre{background:#f6f6f6;padding:8px}";
