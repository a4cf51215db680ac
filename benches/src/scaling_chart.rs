//! A small SVG line chart of how the cost per event changes with the work: one panel per question (a growing
//! backlog, a growing batch), each with one line per implementation, both axes logarithmic. `bench-report` draws it
//! from the medians of its runs; this module only lays out the points it is given.

use std::fmt::Write as _;

/// One line of a panel: a name and its points (x, nanoseconds per event), x increasing.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend.
    pub name: String,
    /// (x, nanoseconds per event), x increasing; both must be positive (the axes are logarithmic).
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title, what x is, and its lines.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Above the panel.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

const PANEL_WIDTH: f64 = 430.0;
const PANEL_HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 60.0;
const COLORS: [&str; 4] = ["#c0392b", "#2c6fbb", "#3a7d44", "#8e44ad"];

/// The panels side by side, as an SVG document. Panels without a point are left out; `None` if none has any.
///
/// ```
/// use benches::scaling_chart::{Panel, Series, svg};
///
/// let panel = Panel {
///     title: "Per event as the backlog grows".into(),
///     x_label: "events of backlog".into(),
///     series: vec![Series { name: "ours".into(), points: vec![(1e3, 3000.0), (1e7, 3300.0)] }],
/// };
/// let chart = svg(&[panel]).expect("one panel has points");
/// assert!(chart.starts_with("<svg") && chart.contains("ours"));
/// ```
pub fn svg(panels: &[Panel]) -> Option<String> {
    let panels: Vec<&Panel> = panels
        .iter()
        .filter(|panel| panel.series.iter().any(|series| !series.points.is_empty()))
        .collect();
    if panels.is_empty() {
        return None;
    }
    let width = (MARGIN_LEFT + PANEL_WIDTH + 20.0) * panels.len() as f64;
    let height = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM + 20.0 * 4.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    for (index, panel) in panels.iter().enumerate() {
        let left = index as f64 * (MARGIN_LEFT + PANEL_WIDTH + 20.0) + MARGIN_LEFT;
        draw_panel(&mut out, panel, left);
    }
    out.push_str("</svg>\n");
    Some(out)
}

/// Decades that hold every value, at least one wide.
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (low, high) = values
        .filter(|value| *value > 0.0)
        .fold((f64::MAX, f64::MIN), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    let low = low.log10().floor() as i32;
    let high = (high.log10().ceil() as i32).max(low + 1);
    (low, high)
}

fn draw_panel(out: &mut String, panel: &Panel, left: f64) {
    let points = || panel.series.iter().flat_map(|series| series.points.iter());
    let (x_low, x_high) = decades(points().map(|point| point.0));
    let (y_low, y_high) = decades(points().map(|point| point.1));
    let x = |value: f64| {
        left + (value.log10() - f64::from(x_low)) / f64::from(x_high - x_low) * PANEL_WIDTH
    };
    let y = |value: f64| {
        MARGIN_TOP + PANEL_HEIGHT
            - (value.log10() - f64::from(y_low)) / f64::from(y_high - y_low) * PANEL_HEIGHT
    };
    let title = escape(&panel.title);
    let _ = writeln!(
        out,
        r#"<text x="{left:.1}" y="20" font-size="13">{title}</text>"#
    );
    for power in x_low..=x_high {
        let at = x(10_f64.powi(power));
        let _ = writeln!(
            out,
            r##"<line x1="{at:.1}" y1="{MARGIN_TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle" fill="#666">{}</text>"##,
            MARGIN_TOP + PANEL_HEIGHT,
            MARGIN_TOP + PANEL_HEIGHT + 14.0,
            short(10_f64.powi(power))
        );
    }
    for power in y_low..=y_high {
        let at = y(10_f64.powi(power));
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666">{}</text>"##,
            left + PANEL_WIDTH,
            left - 4.0,
            at + 4.0,
            nanos(10_f64.powi(power))
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + PANEL_WIDTH / 2.0,
        MARGIN_TOP + PANEL_HEIGHT + 32.0,
        escape(&panel.x_label)
    );
    for (index, series) in panel.series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let path: Vec<String> = series
            .points
            .iter()
            .map(|(px, py)| format!("{:.1},{:.1}", x(*px), y(*py)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for (px, py) in &series.points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{}: {}</title></circle>"#,
                x(*px),
                y(*py),
                short(*px),
                nanos(*py)
            );
        }
        let legend_y = MARGIN_TOP + PANEL_HEIGHT + 52.0 + 16.0 * index as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{left:.1}" y="{:.1}" width="14" height="4" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_y - 4.0,
            left + 20.0,
            legend_y,
            escape(&series.name)
        );
    }
}

/// 1000 as "1k", 10 000 000 as "10M".
fn short(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// Nanoseconds as "100 ns", "10 µs", "1 ms".
fn nanos(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{} ms", v / 1e6),
        v if v >= 1e3 => format!("{} µs", v / 1e3),
        v => format!("{v} ns"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_inside_its_panel() {
        let panel = Panel {
            title: "t".into(),
            x_label: "x".into(),
            series: vec![Series {
                name: "a".into(),
                points: vec![(1.0, 150.0), (1000.0, 20_000.0)],
            }],
        };
        let chart = svg(&[panel]).expect("points");
        for circle in chart.lines().filter(|line| line.starts_with("<circle")) {
            let number = |name: &str| -> f64 {
                let start = circle.find(name).expect("attribute") + name.len() + 2;
                circle[start..]
                    .split('"')
                    .next()
                    .expect("value")
                    .parse()
                    .expect("number")
            };
            let (cx, cy) = (number("cx"), number("cy"));
            assert!(
                (MARGIN_LEFT..=MARGIN_LEFT + PANEL_WIDTH).contains(&cx),
                "{circle}"
            );
            assert!(
                (MARGIN_TOP..=MARGIN_TOP + PANEL_HEIGHT).contains(&cy),
                "{circle}"
            );
        }
    }

    #[test]
    fn panels_without_points_are_left_out() {
        let empty = Panel {
            title: "t".into(),
            x_label: "x".into(),
            series: vec![],
        };
        assert!(svg(&[empty]).is_none());
    }
}
