//! Charts as inline SVG, drawn here: a line chart over seconds and a grouped bar chart. Plain
//! shapes and text only (no scripts, no fonts, no references), so the file renders anywhere.

use std::fmt::Write as _;

use super::{escape, thousands_f1};
use trawl_flow::time;

const W: f64 = 960.0;
const H: f64 = 280.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;
/// Points drawn per series at most: longer series are cut into buckets, each drawn at its
/// maximum (a chart of bandwidth should not hide its peaks).
const MAX_POINTS: usize = 1800;

const COLOURS: [&str; 8] = [
    "#1f6fb4", "#e4572e", "#2a9d5b", "#8f5bb6", "#c7941c", "#17a2b8", "#d6336c", "#5c6670",
];

pub(crate) struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// A round number at or above `max` for the top of the y axis.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

fn open(out: &mut String, title: &str, series: &[Series]) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">\
         <title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"18\" class=\"title\">{t}</text>",
        t = escape(title)
    );
    // Legend, right-aligned on the title's line.
    let mut x = W - RIGHT;
    for (i, s) in series.iter().enumerate().rev() {
        let width = 18.0 + 7.0 * s.name.chars().count() as f64;
        x -= width + 10.0;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"9\" width=\"12\" height=\"12\" fill=\"{c}\"/>\
             <text x=\"{tx:.1}\" y=\"19\" class=\"legend\">{n}</text>",
            c = COLOURS[i % COLOURS.len()],
            tx = x + 16.0,
            n = escape(&s.name)
        );
    }
}

/// The y axis with five grid lines up to `top`, labelled in `unit`.
fn y_axis(out: &mut String, top: f64, unit: &str) {
    let plot_h = H - TOP - BOTTOM;
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let y = TOP + plot_h * (1.0 - k as f64 / 4.0);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" class=\"axis\" text-anchor=\"end\">{v}</text>",
            x2 = W - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0,
            v = if v.fract() == 0.0 {
                super::thousands(v as u64)
            } else {
                thousands_f1(v)
            }
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{y:.1}\" class=\"axis\" transform=\"rotate(-90 14 {y:.1})\" \
         text-anchor=\"middle\">{u}</text>",
        y = TOP + plot_h / 2.0,
        u = escape(unit)
    );
}

/// A line chart of per-second values from second `first` (Unix seconds); the first series is
/// also filled (an area), the others drawn as lines over it.
pub(crate) fn line_chart(title: &str, first: u64, series: &[Series], unit: &str) -> String {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let bucket = n.div_ceil(MAX_POINTS).max(1);
    let title = if bucket > 1 {
        format!("{title} (the highest second of every {bucket})")
    } else {
        title.to_string()
    };
    let reduced: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            s.values
                .chunks(bucket)
                .map(|c| c.iter().cloned().fold(0.0, f64::max))
                .collect()
        })
        .collect();
    let max = reduced.iter().flatten().cloned().fold(0.0, f64::max);
    let top = nice_ceiling(max);
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let points = n.div_ceil(bucket).max(1);
    let x = |i: usize| {
        if points == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (points - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);

    let mut out = String::new();
    open(&mut out, &title, series);
    y_axis(&mut out, top, unit);
    // Time labels: about six, at whole multiples of a round step.
    let span = n.max(1) as u64;
    let step = [
        1u64, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600,
    ]
    .into_iter()
    .find(|s| span / s <= 6)
    .unwrap_or(43200);
    let mut t = first.div_ceil(step) * step;
    while t < first + span {
        let i = ((t - first) as usize) / bucket;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" class=\"tick\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" class=\"axis\" text-anchor=\"middle\">{l}</text>",
            x = x(i),
            y1 = TOP + plot_h,
            y2 = TOP + plot_h + 5.0,
            ty = TOP + plot_h + 18.0,
            l = time::clock(t)
        );
        t += step;
    }
    let _ = write!(
        out,
        "<text x=\"{cx:.1}\" y=\"{ly:.1}\" class=\"axis\" text-anchor=\"middle\">time (UTC)</text>",
        cx = LEFT + plot_w / 2.0,
        ly = H - 6.0
    );
    for (k, values) in reduced.iter().enumerate().rev() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut path = String::with_capacity(values.len() * 14);
        for (i, v) in values.iter().enumerate() {
            let _ = write!(path, "{:.1},{:.1} ", x(i), y(*v));
        }
        if k == 0 && values.len() > 1 {
            let _ = write!(
                out,
                "<polygon points=\"{:.1},{b:.1} {path}{:.1},{b:.1}\" fill=\"{colour}\" \
                 fill-opacity=\"0.18\" stroke=\"none\"/>",
                x(0),
                x(values.len() - 1),
                b = TOP + plot_h
            );
        }
        if values.len() == 1 {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x(0),
                y(values[0])
            );
        } else {
            let _ = write!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\"/>",
                path.trim_end()
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r}\" y2=\"{b:.1}\" class=\"axisline\"/></svg>",
        b = TOP + plot_h,
        r = W - RIGHT
    );
    out
}

/// A bar chart: one group of bars per category, one bar per series, each bar labelled with
/// its value on hover (`<title>`).
pub(crate) fn bar_chart(
    title: &str,
    categories: &[String],
    series: &[Series],
    unit: &str,
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().cloned())
        .fold(0.0, f64::max);
    let top = nice_ceiling(max);
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let groups = categories.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    let mut out = String::new();
    open(&mut out, title, series);
    y_axis(&mut out, top, unit);
    for (g, label) in categories.iter().enumerate() {
        let gx = LEFT + group_w * g as f64 + group_w * 0.1;
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(g).cloned().unwrap_or(0.0);
            let h = plot_h * v / top;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" \
                 fill=\"{c}\"><title>{l}: {n} {v}</title></rect>",
                x = gx + bar_w * k as f64,
                y = TOP + plot_h - h,
                c = COLOURS[k % COLOURS.len()],
                l = escape(label),
                n = escape(&s.name),
                v = thousands_f1(v)
            );
        }
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" class=\"axis\" text-anchor=\"middle\">{l}</text>",
            x = gx + group_w * 0.4,
            y = TOP + plot_h + 16.0,
            l = escape(label)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r}\" y2=\"{b:.1}\" class=\"axisline\"/></svg>",
        b = TOP + plot_h,
        r = W - RIGHT
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_tops() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(1004.1), 2000.0);
        assert_eq!(nice_ceiling(230.0), 250.0);
    }
}
