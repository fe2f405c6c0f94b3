//! The report's charts, drawn with `plotters` into SVG strings that the page inlines.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::forecast::Forecast;
use crate::human::thousands;
use crate::series::{format_millis, Millis};

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct ChartError(String);

fn err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 340;

/// Colours of the policies, in the order reactive, predictive, hybrid.
const POLICY_COLOURS: [RGBColor; 3] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// `MM-DD HH:MM` for an axis label.
fn time_label(t: f64) -> String {
    let text = format_millis(t as Millis);
    text.get(5..16)
        .map_or(text.clone(), |s| s.replace('T', " "))
}

/// The y range covering every finite value, padded by 5%.
fn y_range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// A chart with a title, time on x (`MM-DD HH:MM`) and thousands-grouped values on y, its
/// grid drawn.
fn time_axes<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, ChartError> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|x| time_label(*x))
        .y_label_formatter(&|y| thousands(*y))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// History (its last part), the forecast's mean with its 80% and 95% bands, and what actually
/// happened over the forecast's span.
pub fn forecast_chart(
    title: &str,
    history: &[(Millis, f64)],
    forecast: &Forecast,
    actual: &[f64],
) -> Result<String, ChartError> {
    let times: Vec<Millis> = forecast.timestamps().collect();
    let x0 = history.first().map_or(forecast.start, |p| p.0) as f64;
    let x1 = times.last().copied().unwrap_or(forecast.start) as f64;
    let bands: Vec<&f64> = forecast
        .intervals
        .iter()
        .flat_map(|i| i.lower.iter().chain(&i.upper))
        .collect();
    let (y0, y1) = y_range(
        history
            .iter()
            .map(|p| &p.1)
            .chain(forecast.mean.iter())
            .chain(actual.iter())
            .chain(bands),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = time_axes(&root, title, x0..x1.max(x0 + 1.0), y0..y1)?;
        // Widest band first, so the narrower one sits on top.
        let mut intervals: Vec<_> = forecast.intervals.iter().collect();
        intervals.sort_by(|a, b| b.level.total_cmp(&a.level));
        for (k, interval) in intervals.iter().enumerate() {
            let mut outline: Vec<(f64, f64)> = times
                .iter()
                .zip(&interval.upper)
                .map(|(t, v)| (*t as f64, *v))
                .collect();
            outline.extend(
                times
                    .iter()
                    .zip(&interval.lower)
                    .rev()
                    .map(|(t, v)| (*t as f64, *v)),
            );
            let shade = BLUE.mix(0.12 + 0.1 * k as f64);
            chart
                .draw_series(std::iter::once(Polygon::new(outline, shade.filled())))
                .map_err(err)?
                .label(format!("{}% interval", interval.level))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                history.iter().map(|(t, v)| (*t as f64, *v)),
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("history")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        chart
            .draw_series(LineSeries::new(
                times.iter().zip(actual).map(|(t, v)| (*t as f64, *v)),
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label("actual")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        chart
            .draw_series(LineSeries::new(
                times
                    .iter()
                    .zip(&forecast.mean)
                    .map(|(t, v)| (*t as f64, *v)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label("forecast mean")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The load against the ready capacity (ready pods × capacity per pod) of each policy.
pub fn capacity_chart(
    title: &str,
    times: &[Millis],
    load: &[f64],
    ready_capacity: &[(&str, Vec<f64>)],
) -> Result<String, ChartError> {
    let x0 = times.first().copied().unwrap_or(0) as f64;
    let x1 = times.last().copied().unwrap_or(0) as f64;
    let (y0, y1) = y_range(
        load.iter()
            .chain(ready_capacity.iter().flat_map(|(_, v)| v)),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = time_axes(&root, title, x0..x1.max(x0 + 1.0), y0.min(0.0)..y1)?;
        chart
            .draw_series(LineSeries::new(
                times.iter().zip(load).map(|(t, v)| (*t as f64, *v)),
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("load")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        for (i, (name, capacity)) in ready_capacity.iter().enumerate() {
            let colour = POLICY_COLOURS[i % POLICY_COLOURS.len()];
            // Capacity holds over each step: draw it as steps, not slopes.
            let mut points = Vec::with_capacity(2 * times.len());
            for (k, (t, c)) in times.iter().zip(capacity).enumerate() {
                let start = if k == 0 { *t } else { times[k - 1] };
                points.push((start as f64, *c));
                points.push((*t as f64, *c));
            }
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(1)))
                .map_err(err)?
                .label(format!("ready capacity, {name}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Colours of the frontier curves: the three policies as in [`POLICY_COLOURS`], then the two
/// references in greys.
const CURVE_COLOURS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(120, 120, 120),
    RGBColor(20, 20, 20),
];

/// One curve of a frontier chart: its name, every replayed point and its efficient frontier
/// (both as (replica-hours, unserved %)), and labels to mark points with (the HPA's targets).
#[derive(Debug, Clone, Default)]
pub struct FrontierCurve {
    /// The curve's name.
    pub name: String,
    /// Every replay.
    pub points: Vec<(f64, f64)>,
    /// The efficient ones, cheapest first: drawn as the line.
    pub frontier: Vec<(f64, f64)>,
    /// Points to label, e.g. `(point, "70%")`.
    pub marks: Vec<((f64, f64), String)>,
}

/// Cost against shortfall: replica-hours on x, unserved load on y, one line per curve through
/// its efficient points, every replay as a dot, marked points labelled.
pub fn frontier_chart(title: &str, curves: &[FrontierCurve]) -> Result<String, ChartError> {
    let xs: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .collect();
    let (x0, x1) = y_range(xs.iter());
    let (_, y1) = y_range(ys.iter());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + 80)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), 0.0..y1.max(1e-6))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_desc("replica-hours")
            .y_desc("unserved load (%)")
            .x_label_formatter(&|x| thousands(*x))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (i, c) in curves.iter().enumerate() {
            let colour = CURVE_COLOURS[i % CURVE_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    c.frontier.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(err)?
                .label(c.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
            chart
                .draw_series(c.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(err)?;
            chart
                .draw_series(c.marks.iter().map(|(p, text)| {
                    // A few pixels up and right of its dot, so the label does not cover it.
                    EmptyElement::at(*p)
                        + Text::new(
                            text.clone(),
                            (5, -14),
                            ("sans-serif", 12).into_font().color(&colour),
                        )
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Interval;

    #[test]
    fn the_frontier_chart_names_its_curves_and_marks() {
        let curves = [
            FrontierCurve {
                name: "reactive".into(),
                points: vec![(100.0, 2.0), (80.0, 4.0)],
                frontier: vec![(80.0, 4.0), (100.0, 2.0)],
                marks: vec![((100.0, 2.0), "50%".into())],
            },
            FrontierCurve {
                name: "predictive".into(),
                points: vec![(70.0, 1.0)],
                frontier: vec![(70.0, 1.0)],
                marks: vec![],
            },
        ];
        let svg = frontier_chart("taxi", &curves).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "taxi",
            "reactive",
            "predictive",
            "50%",
            "replica-hours",
            "unserved",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        // Nothing to draw is still a chart, not an error.
        assert!(frontier_chart("empty", &[]).unwrap().starts_with("<svg"));
    }

    #[test]
    fn charts_are_svg_with_their_labels() {
        let history: Vec<(Millis, f64)> =
            (0..48).map(|i| (i * 3_600_000, (i % 24) as f64)).collect();
        let f = Forecast {
            start: 48 * 3_600_000,
            step: 3_600_000,
            mean: vec![1.0, 2.0, 3.0],
            intervals: vec![Interval {
                level: 95.0,
                lower: vec![0.0, 1.0, 2.0],
                upper: vec![2.0, 3.0, 4.0],
            }],
            components: vec![],
        };
        let svg = forecast_chart("taxi", &history, &f, &[1.5, 2.5, 2.0]).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in ["taxi", "history", "actual", "forecast mean", "95% interval"] {
            assert!(svg.contains(text), "{text}");
        }
        let svg = capacity_chart(
            "replay",
            &[0, 300_000, 600_000],
            &[1.0, 5.0, 2.0],
            &[
                ("reactive", vec![2.0, 2.0, 6.0]),
                ("predictive", vec![6.0, 6.0, 3.0]),
            ],
        )
        .unwrap();
        assert!(svg.contains("ready capacity, predictive") && svg.contains("load"));
    }
}
