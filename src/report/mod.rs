//! The benchmark report: one self-contained HTML file (inline CSS and SVG, no script, nothing
//! fetched) per run of `prescale report`.
//!
//! [`section`] computes what one trace shows (backtests, the best forecast, the replay and
//! advice), [`chart`] draws the figures, and [`render`] lays out the [`Page`].

pub mod chart;
pub mod section;

pub use section::{write, ReportError, ReportSettings};

/// A table of text cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, as many cells as the header.
    pub rows: Vec<Vec<String>>,
}

/// Everything shown for one trace.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The trace's name.
    pub name: String,
    /// One line about the data (points, step, span).
    pub about: String,
    /// Rolling-origin backtest, one row per model.
    pub backtest: Table,
    /// The forecast figure (SVG) and its caption.
    pub forecast_svg: String,
    /// What the forecast figure shows.
    pub forecast_caption: String,
    /// The replay table, one row per policy, with the scores.
    pub simulation: Table,
    /// Advice measured by replaying again.
    pub advice: Vec<String>,
    /// The load against ready capacity figure (SVG) and its caption.
    pub capacity_svg: String,
    /// What the capacity figure shows.
    pub capacity_caption: String,
    /// Cost against shortfall: one row per replay of the frontier sweep.
    pub frontier: Table,
    /// The verdicts at the HPA's 70% target, one line per policy.
    pub verdicts: Vec<String>,
    /// The frontier figure (SVG).
    pub frontier_svg: String,
    /// What the frontier figure shows.
    pub frontier_caption: String,
}

/// What the reference row of every replay table means.
const RATE_ORACLE_NOTE: &str = "<p>The rate-oracle row is no policy: it is predictive fed each \
step's level (the mean of the two steps on either side, the step itself left out), so it reads \
the future. Its shortfall is what each step's own noise leaves when the level is known: a \
reference for how much a better forecast could still win, not a strict bound.</p>";

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The title.
    pub title: String,
    /// Settings and versions, as (name, value).
    pub settings: Vec<(String, String)>,
    /// The scoring formulas, shown verbatim.
    pub formulas: String,
    /// One section per trace.
    pub sections: Vec<Section>,
}

/// Escapes text for HTML.
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}\
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}\
pre{background:#f7f7f7;padding:.8em;font-size:.85em;white-space:pre-wrap}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}dt{font-weight:600}";

fn table(t: &Table) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in &t.header {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr></thead><tbody>");
    for row in &t.rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!("<td>{}</td>", escape(cell)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

fn figure(svg: &str, caption: &str) -> String {
    if svg.is_empty() {
        return format!("<p><em>{}</em></p>", escape(caption));
    }
    format!(
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(caption)
    )
}

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(&page.title),
        escape(&page.title)
    );
    html.push_str("<nav><ul>");
    for (i, s) in page.sections.iter().enumerate() {
        html.push_str(&format!(
            "<li><a href=\"#trace-{i}\">{}</a></li>",
            escape(&s.name)
        ));
    }
    html.push_str("</ul></nav>");
    for (i, s) in page.sections.iter().enumerate() {
        html.push_str(&format!(
            "<section id=\"trace-{i}\"><h2>{}</h2><p>{}</p>",
            escape(&s.name),
            escape(&s.about)
        ));
        html.push_str("<h3>Backtest</h3>");
        html.push_str(&table(&s.backtest));
        html.push_str(&figure(&s.forecast_svg, &s.forecast_caption));
        html.push_str("<h3>Scaling replay</h3>");
        html.push_str(&table(&s.simulation));
        html.push_str(RATE_ORACLE_NOTE);
        if !s.advice.is_empty() {
            html.push_str("<ul>");
            for a in &s.advice {
                html.push_str(&format!("<li>{}</li>", escape(a)));
            }
            html.push_str("</ul>");
        }
        html.push_str(&figure(&s.capacity_svg, &s.capacity_caption));
        if !s.frontier.rows.is_empty() {
            html.push_str("<h3>Cost against shortfall</h3>");
            if !s.verdicts.is_empty() {
                html.push_str("<ul>");
                for v in &s.verdicts {
                    html.push_str(&format!("<li>{}</li>", escape(v)));
                }
                html.push_str("</ul>");
            }
            html.push_str(&figure(&s.frontier_svg, &s.frontier_caption));
            html.push_str(&table(&s.frontier));
        }
        html.push_str("</section>");
    }
    html.push_str("<h2>Scores</h2><pre>");
    html.push_str(&escape(&page.formulas));
    html.push_str("</pre><h2>Settings and versions</h2><dl>");
    for (k, v) in &page.settings {
        html.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
    }
    html.push_str("</dl></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_every_part_and_escapes_text() {
        let page = Page {
            title: "prescale report".into(),
            settings: vec![("model".into(), "ets <default>".into())],
            formulas: "overall = a & b".into(),
            sections: vec![Section {
                name: "AMZN".into(),
                about: "15,831 points".into(),
                backtest: Table {
                    header: vec!["model".into(), "MASE".into()],
                    rows: vec![vec!["ets".into(), "0.9".into()]],
                },
                forecast_svg: "<svg id=\"f\"></svg>".into(),
                forecast_caption: "last day".into(),
                simulation: Table {
                    header: vec!["policy".into()],
                    rows: vec![vec!["reactive".into()]],
                },
                advice: vec!["raise headroom to p95".into()],
                capacity_svg: String::new(),
                capacity_caption: "no replay".into(),
                frontier: Table {
                    header: vec!["policy".into()],
                    rows: vec![vec!["hybrid".into()]],
                },
                verdicts: vec!["predictive needs 23% fewer".into()],
                frontier_svg: "<svg id=\"frontier\"></svg>".into(),
                frontier_caption: "frontiers".into(),
            }],
        };
        let html = render(&page);
        for part in [
            "<h2>AMZN</h2>",
            "<td>ets</td>",
            "<svg id=\"f\"></svg>",
            "raise headroom to p95",
            "overall = a &amp; b",
            "ets &lt;default&gt;",
            "<em>no replay</em>",
            "<h3>Cost against shortfall</h3>",
            "predictive needs 23% fewer",
            "<svg id=\"frontier\"></svg>",
            "<td>hybrid</td>",
        ] {
            assert!(html.contains(part), "{part}");
        }
        assert!(!html.contains("<script"));
    }
}
