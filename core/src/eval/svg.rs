//! A small SVG scatter-plot writer for the Pareto report: panels side by side, KL on a
//! logarithmic x axis (zero drawn half a decade left of the smallest non-zero value),
//! a linear y axis from zero, front points filled and joined by a line.

use std::fmt::Write;

/// One point of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub front: bool,
}

/// One scatter plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<Point>,
}

const W: f64 = 520.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The x axis: decades `lo..=hi`, with zero at `lo - 0.5`.
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(xs: impl Iterator<Item = f64>) -> Self {
        let nonzero: Vec<f64> = xs.filter(|x| x.is_finite() && *x > 0.0).collect();
        let min = nonzero.iter().copied().fold(f64::INFINITY, f64::min);
        let max = nonzero.iter().copied().fold(0.0, f64::max);
        if nonzero.is_empty() {
            return Self { lo: -4.0, hi: -3.0 };
        }
        let lo = min.log10().floor();
        Self { lo, hi: max.log10().ceil().max(lo + 1.0) }
    }

    /// Position in 0..=1 of `x`.
    fn frac(&self, x: f64) -> f64 {
        let d = if x > 0.0 { x.log10() } else { self.lo - 0.5 };
        (d - (self.lo - 0.5)) / (self.hi - self.lo + 0.5)
    }
}

fn nice_max(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    (max * 1.05 / step).ceil() * step
}

fn panel(out: &mut String, p: &Panel, ox: f64) {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let ax = LogAxis::new(p.points.iter().map(|q| q.x));
    let ymax = nice_max(p.points.iter().map(|q| q.y).filter(|y| y.is_finite()).fold(0.0, f64::max));
    let px = |x: f64| ox + LEFT + ax.frac(x) * pw;
    let py = |y: f64| TOP + ph - (y / ymax) * ph;
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="22" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"##,
        ox + LEFT + pw / 2.0,
        esc(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        ox + LEFT
    );
    // x ticks: zero, then each decade.
    let mut ticks = vec![(0.0, "0".to_string())];
    let mut d = ax.lo;
    while d <= ax.hi {
        ticks.push((10f64.powf(d), format!("1e{d}")));
        d += 1.0;
    }
    for (x, label) in ticks {
        let xp = px(x);
        let _ = writeln!(
            out,
            r##"<line x1="{xp:.1}" y1="{TOP}" x2="{xp:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xp:.1}" y="{:.1}" font-size="11" text-anchor="middle">{label}</text>"##,
            TOP + ph,
            TOP + ph + 15.0
        );
    }
    for i in 0..=5 {
        let y = ymax * i as f64 / 5.0;
        let yp = py(y);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{yp:.1}" x2="{:.1}" y2="{yp:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            ox + LEFT,
            ox + LEFT + pw,
            ox + LEFT - 5.0,
            yp + 4.0,
            trim_number(y)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
        ox + LEFT + pw / 2.0,
        H - 15.0,
        esc(&p.x_label)
    );
    let _ = writeln!(
        out,
        r##"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"##,
        ox + 18.0,
        TOP + ph / 2.0,
        esc(&p.y_label)
    );
    let mut front: Vec<&Point> =
        p.points.iter().filter(|q| q.front && q.x.is_finite() && q.y.is_finite()).collect();
    front.sort_by(|a, b| a.x.total_cmp(&b.x));
    if front.len() > 1 {
        let pts: Vec<String> =
            front.iter().map(|q| format!("{:.1},{:.1}", px(q.x), py(q.y))).collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5,3"/>"##,
            pts.join(" ")
        );
    }
    for q in p.points.iter().filter(|q| q.x.is_finite() && q.y.is_finite()) {
        let (fill, stroke) = if q.front { ("#c0392b", "#c0392b") } else { ("white", "#555") };
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="{fill}" stroke="{stroke}" stroke-width="1.5"><title>{}</title></circle><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"##,
            px(q.x),
            py(q.y),
            esc(&q.label),
            px(q.x) + 6.0,
            py(q.y) - 6.0,
            esc(&q.label)
        );
    }
}

fn trim_number(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.to_string() }
}

/// The panels side by side as one SVG document, with a caption line under them.
pub fn render(panels: &[Panel], caption: &str) -> String {
    let width = W * panels.len().max(1) as f64;
    let height = H + 30.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"##
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, i as f64 * W);
    }
    let _ = writeln!(
        out,
        r##"<text x="10" y="{:.1}" font-size="11" fill="#333">{}</text>"##,
        H + 15.0,
        esc(caption)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_points_and_front() {
        let pt = |label: &str, x, y, front| Point { label: label.into(), x, y, front };
        let p = Panel {
            title: "J vs KL".into(),
            x_label: "KL".into(),
            y_label: "J/token".into(),
            points: vec![
                pt("a<b", 0.0, 2.0, true),
                pt("c", 0.01, 1.0, true),
                pt("d", 0.1, 3.0, false),
            ],
        };
        let svg = render(&[p.clone(), p], "caption & more");
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b") && svg.contains("caption &amp; more"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
