//! A small SVG line chart of received rate over time, one line per
//! interface or stream, with events (a link failing, a black hole switched
//! on) as labelled vertical lines. Hand-written SVG: plotters would pull a
//! font stack and a large dependency tree into a build on two shared cores
//! for one chart, and the SVG-only crates fit no better than these 150
//! lines.
use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 420.0;
const L: f64 = 70.0;
const R: f64 = 160.0;
const T: f64 = 30.0;
const B: f64 = 50.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// `series`: (label, packets per 1 ms bin). Bins are merged so at most
/// ~500 points are drawn; the y axis is packets per second. `markers`:
/// (label, ms since the first bin), drawn as dashed vertical lines.
pub fn rate_svg(title: &str, series: &[(String, Vec<u32>)], markers: &[(String, f64)]) -> String {
    let bins = series
        .iter()
        .map(|(_, b)| b.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let merge = bins.div_ceil(500).max(1);
    let points: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, b)| {
            b.chunks(merge)
                .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() * 1000.0 / merge as f64)
                .collect()
        })
        .collect();
    let ymax = points
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let xmax_ms = (bins as f64).max(1.0);
    let x = |ms: f64| L + ms / xmax_ms * (W - L - R);
    let y = |v: f64| H - B - v / ymax * (H - T - B);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>
<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">time (s)</text>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">received (pps)</text>
"#,
        W / 2.0,
        escape(title),
        H - B,
        W - R,
        H - B,
        H - B,
        (L + W - R) / 2.0,
        H - 12.0,
        H / 2.0,
        H / 2.0
    );
    for i in 0..=5 {
        let v = ymax / 5.0 * f64::from(i);
        let ms = xmax_ms / 5.0 * f64::from(i);
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            L - 4.0,
            y(v) + 4.0,
            si(v),
            y(v),
            W - R,
            y(v)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.2}</text>"#,
            x(ms),
            H - B + 16.0,
            ms / 1000.0
        );
    }
    for (i, (label, ms)) in markers.iter().enumerate() {
        if !(0.0..=xmax_ms).contains(ms) {
            continue;
        }
        let mx = x(*ms);
        // Labels step down so close events stay readable.
        let ly = T + 12.0 + 14.0 * (i % 6) as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{mx:.1}" y1="{T}" x2="{mx:.1}" y2="{}" stroke="#555" stroke-dasharray="4 3"/><text x="{:.1}" y="{ly:.1}" font-size="10" fill="#555">{}</text>"##,
            H - B,
            mx + 3.0,
            escape(label)
        );
    }
    for (i, ((label, _), pts)) in series.iter().zip(&points).enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let mut path = String::new();
        for (j, v) in pts.iter().enumerate() {
            let _ = write!(path, "{:.1},{:.1} ", x((j * merge) as f64), y(*v));
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.2" points="{path}"/>"#
        );
        let ly = T + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            W - R + 10.0,
            ly,
            W - R + 26.0,
            ly + 5.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn svg_has_one_line_per_series() {
        let s = super::rate_svg(
            "t<1>",
            &[("a".into(), vec![10; 3000]), ("b".into(), vec![5; 10])],
            &[("down".into(), 1500.0), ("outside".into(), 9000.0)],
        );
        assert!(s.starts_with("<svg"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("t&lt;1&gt;"));
        // One marker drawn, the one past the last bin left out.
        assert_eq!(s.matches("stroke-dasharray").count(), 1);
        assert!(s.contains(">down</text>"));
    }
}
