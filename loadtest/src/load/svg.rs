//! The picture of a run (`--svg`): a self-contained SVG drawn here, two
//! panels sharing the time axis — per-second throughput (sent and accepted
//! messages/s) above, p50/p99/p99.9 request latency (ms) below.
//!
//! [`document`] draws any stack of [`Panel`]s over one time axis; `soak`
//! uses it for its memory and disk picture.

use std::fmt::Write as _;

use super::Point;

const WIDTH: f64 = 900.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 60.0;

/// One line of a panel: a value per time point (non-finite values, e.g. a
/// missed sample, are left out of the line).
pub struct Line<'a> {
    /// Legend.
    pub name: &'a str,
    /// Stroke colour.
    pub color: &'a str,
    /// One value per point of the shared time axis.
    pub values: Vec<f64>,
}

/// A panel: lines against the shared time axis, with the unit of its y axis.
pub struct Panel<'a> {
    /// The y axis' label.
    pub unit: &'a str,
    /// Its lines.
    pub lines: Vec<Line<'a>>,
    /// Times marked across it.
    pub markers: Vec<Marker<'a>>,
}

/// A vertical dashed line across a panel at time `t`, labelled.
pub struct Marker<'a> {
    /// Where, on the time axis.
    pub t: f64,
    /// Its label.
    pub label: &'a str,
}

/// Renders `series` under `title`.
pub fn render(title: &str, series: &[Point]) -> String {
    let t: Vec<f64> = series.iter().map(|p| p.t).collect();
    let throughput = vec![
        Line {
            name: "sent/s",
            color: "#888888",
            values: series.iter().map(|p| p.tally.sent as f64).collect(),
        },
        Line {
            name: "accepted/s",
            color: "#1f77b4",
            values: series.iter().map(|p| p.tally.accepted as f64).collect(),
        },
    ];
    let latency = [0.5, 0.99, 0.999]
        .into_iter()
        .zip([("p50", "#2ca02c"), ("p99", "#ff7f0e"), ("p99.9", "#d62728")])
        .map(|(q, (name, color))| Line {
            name,
            color,
            values: series.iter().map(|p| p.tally.quantile_ms(q)).collect(),
        })
        .collect::<Vec<_>>();
    let panels = [
        Panel {
            unit: "messages/s",
            lines: throughput,
            markers: Vec::new(),
        },
        Panel {
            unit: "latency ms",
            lines: latency,
            markers: Vec::new(),
        },
    ];
    document(title, &t, &panels)
}

/// A self-contained SVG document: `panels` stacked under `title`, sharing
/// the time axis `t` (seconds).
pub fn document(title: &str, t: &[f64], panels: &[Panel<'_>]) -> String {
    let n = panels.len().max(1) as f64;
    let height = TOP + n * PANEL + (n - 1.0) * GAP + 40.0;
    let mut svg = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"22\" font-size=\"15\">{}</text>\n",
        escape(title)
    );
    for (i, p) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        panel(&mut svg, top, t, p);
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds</text>\n</svg>",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 8.0
    );
    svg
}

fn panel(svg: &mut String, top: f64, t: &[f64], p: &Panel<'_>) {
    let Panel {
        unit,
        lines,
        markers,
    } = p;
    let w = WIDTH - LEFT - RIGHT;
    let t_max = t.iter().copied().fold(1.0, f64::max);
    let y_max = nice_max(
        lines
            .iter()
            .flat_map(|l| l.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let x = |v: f64| LEFT + v / t_max * w;
    let y = |v: f64| top + PANEL - v / y_max * PANEL;
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{w}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#333\"/>\n<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}</text>",
        top + PANEL / 2.0,
        top + PANEL / 2.0,
        escape(unit)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + w,
            LEFT - 6.0,
            y(v) + 4.0,
            label(v),
            y0 = y(v),
        );
        let tv = t_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(tv),
            top + PANEL + 16.0,
            label(tv)
        );
    }
    for m in markers.iter().filter(|m| (0.0..=t_max).contains(&m.t)) {
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#666\">{}</text>",
            top + PANEL,
            x(m.t) + 3.0,
            top + 14.0,
            escape(m.label),
            x0 = x(m.t),
        );
    }
    let mut legend_x = LEFT + 10.0;
    for line in lines {
        let points: Vec<String> = t
            .iter()
            .zip(&line.values)
            .filter(|(_, v)| v.is_finite())
            .map(|(tv, v)| format!("{:.1},{:.1}", x(*tv), y(*v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n<text x=\"{legend_x}\" y=\"{}\" fill=\"{}\">{}</text>",
            line.color,
            points.join(" "),
            top - 6.0,
            line.color,
            escape(line.name)
        );
        legend_x += (7 * line.name.chars().count()).max(60) as f64 + 30.0;
    }
}

/// A round axis maximum at or above `v` (1, 2 or 5 × 10^k).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let exp = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * exp)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * exp)
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tally::Tally;
    use std::time::Duration;

    #[test]
    fn renders_a_closed_document_with_every_line() {
        let series: Vec<Point> = (1..=3)
            .map(|s| {
                let mut tally = Tally::new();
                tally.sent = 100 * s;
                tally.accepted = 90 * s;
                tally.record_latency(Duration::from_millis(s));
                Point { t: s as f64, tally }
            })
            .collect();
        let svg = render("run <x>", &series);
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(svg.contains("run &lt;x&gt;"));
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(340.0), 500.0);
        assert_eq!(nice_max(1000.0), 1000.0);
    }
}
