//! When a region of a weights plan is down: never, over the whole horizon, or over windows of
//! it.
//!
//! The plan file writes `down: true` (the whole horizon), `down: {from, until}` or a list of
//! such windows. A bound is a step of the schedule (a whole number, from 0) or a time (text:
//! RFC 3339 such as `2015-04-22T12:00:00Z`, or `YYYY-MM-DD HH:MM:SS` read as UTC, as the
//! forecast files write them). A window is half-open: down from `from` (absent: the first
//! step) up to but not including `until` (absent: through the last step). Bounds are checked
//! against the schedule's steps once every forecast is read, so [`DownSpec`] is what the
//! file says and [`Down`] what it means on the steps.

use serde_norway::Value;

use crate::scale::config::{join, ConfigReader};
use crate::series::{format_millis, Millis};
use crate::source::timestamp::TimestampFormat;

/// When a region is down, on the schedule's clock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Down {
    /// It takes traffic whenever it has a forecast and capacity.
    #[default]
    Never,
    /// Down over the whole horizon.
    Always,
    /// Down during these half-open windows `[from, until)` of unix milliseconds.
    Windows(Vec<(Millis, Millis)>),
}

impl Down {
    /// Whether the region is down at time `t`.
    pub fn at(&self, t: Millis) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::Windows(w) => w.iter().any(|(from, until)| (*from..*until).contains(&t)),
        }
    }
}

/// One end of a window as the file writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A step of the schedule, from 0.
    Step(u64),
    /// A time (unix milliseconds).
    Time(Millis),
}

/// A window as the file writes it, with its path for problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Where it is in the file (`regions[1].down`, `regions[1].down[0]`).
    pub path: String,
    /// Its start (absent: the first step).
    pub from: Option<Bound>,
    /// Its end, excluded (absent: through the last step).
    pub until: Option<Bound>,
}

/// `down` as the file writes it, before its bounds are placed on the steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DownSpec {
    /// Absent or `false`.
    #[default]
    Never,
    /// `true`.
    Always,
    /// One window or a list of them.
    Windows(Vec<WindowSpec>),
}

const SHAPES: &str = "expected true, false, {from, until} or a list of such windows";

/// Reads `down` of the region mapping `m` at `path`, noting every problem.
pub fn read(r: &mut ConfigReader, m: &serde_norway::Mapping, path: &str) -> DownSpec {
    let at = join(path, "down");
    match m.get("down") {
        None | Some(Value::Bool(false)) => DownSpec::Never,
        Some(Value::Bool(true)) => DownSpec::Always,
        Some(v @ Value::Mapping(_)) => {
            read_window(r, v, &at).map_or(DownSpec::Never, |w| DownSpec::Windows(vec![w]))
        }
        Some(Value::Sequence(items)) => {
            if items.is_empty() {
                r.problem(format!("{at}: an empty list ({SHAPES})"));
            }
            DownSpec::Windows(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| read_window(r, v, &format!("{at}[{i}]")))
                    .collect(),
            )
        }
        Some(other) => {
            r.problem(format!("{at}: {SHAPES}, got {other:?}"));
            DownSpec::Never
        }
    }
}

fn read_window(r: &mut ConfigReader, v: &Value, at: &str) -> Option<WindowSpec> {
    let m = r.mapping(v, at)?;
    r.known(m, at, &["from", "until"]);
    if !m.contains_key("from") && !m.contains_key("until") {
        r.problem(format!(
            "{at}: a window needs from, until or both (down: true for the whole horizon)"
        ));
        return None;
    }
    let mut bound = |key: &str| -> Result<Option<Bound>, ()> {
        let Some(v) = m.get(key) else { return Ok(None) };
        let parsed = match v {
            Value::Number(n) => n.as_u64().map(Bound::Step),
            Value::String(s) => [TimestampFormat::Rfc3339, TimestampFormat::NaiveUtc]
                .into_iter()
                .find_map(|f| f.parse(s))
                .map(Bound::Time),
            _ => None,
        };
        match parsed {
            Some(b) => Ok(Some(b)),
            None => {
                r.problem(format!(
                    "{}: expected a step (0, 1, ...) or a time (2015-04-22T12:00:00Z or 2015-04-22 12:00:00, UTC), got {v:?}",
                    join(at, key)
                ));
                Err(())
            }
        }
    };
    let from = bound("from");
    let until = bound("until");
    Some(WindowSpec {
        path: at.to_string(),
        from: from.ok()?,
        until: until.ok()?,
    })
}

impl DownSpec {
    /// Places the windows on `times` (the schedule's steps, ascending), noting a bound outside
    /// the horizon, a window that ends before it starts or covers no step.
    pub fn resolve(&self, r: &mut ConfigReader, times: &[Millis]) -> Down {
        let windows = match self {
            Self::Never => return Down::Never,
            Self::Always => return Down::Always,
            Self::Windows(w) => w,
        };
        let horizon = match (times.first(), times.last()) {
            (Some(first), Some(last)) => format!(
                "steps 0 to {} ({} to {})",
                times.len() - 1,
                format_millis(*first),
                format_millis(*last)
            ),
            _ => "the forecasts have no step".into(),
        };
        let mut out = Vec::new();
        for w in windows {
            // A step past the last may end a window (`until`: the end of the horizon).
            let place = |r: &mut ConfigReader, key: &str, b: Bound, end_ok: bool| {
                let at = join(&w.path, key);
                match b {
                    Bound::Step(k) => match usize::try_from(k).ok() {
                        Some(k) if k < times.len() => Some(times[k]),
                        Some(k) if end_ok && k == times.len() && !times.is_empty() => {
                            Some(Millis::MAX)
                        }
                        _ => {
                            r.problem(format!("{at}: step {k} is outside the horizon ({horizon})"));
                            None
                        }
                    },
                    Bound::Time(t) => match (times.first(), times.last()) {
                        (Some(first), Some(last)) if (*first..=*last).contains(&t) => Some(t),
                        _ => {
                            r.problem(format!(
                                "{at}: {} is outside the horizon ({horizon}){}",
                                format_millis(t),
                                if end_ok {
                                    "; leave until out to stay down through the last step"
                                } else {
                                    ""
                                }
                            ));
                            None
                        }
                    },
                }
            };
            let from = match w.from {
                None => times.first().copied().or(Some(Millis::MIN)),
                Some(b) => place(r, "from", b, false),
            };
            let until = match w.until {
                None => Some(Millis::MAX),
                Some(b) => place(r, "until", b, true),
            };
            let (Some(from), Some(until)) = (from, until) else {
                continue;
            };
            let shown = |t: Millis| {
                if t == Millis::MAX {
                    "the end of the horizon".to_string()
                } else {
                    format_millis(t)
                }
            };
            if from >= until {
                r.problem(format!(
                    "{}: from ({}) is not before until ({})",
                    w.path,
                    shown(from),
                    shown(until)
                ));
            } else if !times.iter().any(|t| (from..until).contains(t)) {
                r.problem(format!(
                    "{}: from {} until {} covers no step",
                    w.path,
                    shown(from),
                    shown(until)
                ));
            } else {
                out.push((from, until));
            }
        }
        Down::Windows(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    fn spec(yaml: &str) -> (DownSpec, Vec<String>) {
        let m: serde_norway::Mapping = serde_norway::from_str(yaml).unwrap();
        let mut r = ConfigReader::default();
        let s = read(&mut r, &m, "regions[0]");
        let problems = r.finish().err().map(|e| e.problems).unwrap_or_default();
        (s, problems)
    }

    fn resolved(yaml: &str, times: &[Millis]) -> Result<Down, Vec<String>> {
        let (s, mut problems) = spec(yaml);
        let mut r = ConfigReader::default();
        let down = s.resolve(&mut r, times);
        if let Err(e) = r.finish() {
            problems.extend(e.problems);
        }
        if problems.is_empty() {
            Ok(down)
        } else {
            Err(problems)
        }
    }

    fn hours(n: i64) -> Vec<Millis> {
        (0..n).map(|h| h * HOUR).collect()
    }

    #[test]
    fn true_false_and_absent_keep_their_meaning() {
        assert_eq!(resolved("down: true", &hours(3)), Ok(Down::Always));
        assert_eq!(resolved("down: false", &hours(3)), Ok(Down::Never));
        assert_eq!(resolved("name: x", &hours(3)), Ok(Down::Never));
    }

    #[test]
    fn windows_by_step_and_by_time_are_half_open() {
        let d = resolved("down: {from: 1, until: 3}", &hours(5)).unwrap();
        let at: Vec<bool> = hours(5).iter().map(|t| d.at(*t)).collect();
        assert_eq!(at, [false, true, true, false, false]);
        let d = resolved(
            "down: {from: '1970-01-01T02:00:00Z', until: '1970-01-01 03:00:00'}",
            &hours(5),
        )
        .unwrap();
        let at: Vec<bool> = hours(5).iter().map(|t| d.at(*t)).collect();
        assert_eq!(at, [false, false, true, false, false]);
        // Open ends: from the start, through the end; the step past the last ends a window.
        let d = resolved(
            "down: [{until: 1}, {from: 4}, {from: 2, until: 5}]",
            &hours(5),
        )
        .unwrap();
        let at: Vec<bool> = hours(5).iter().map(|t| d.at(*t)).collect();
        assert_eq!(at, [true, false, true, true, true]);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let problems = resolved(
            "down:
  - {from: 3, until: 1}
  - {from: 9}
  - {from: '1969-12-31T00:00:00Z'}
  - {from: 1.5, until: yes}
  - {}
  - {from: 0, until: 1, for: 2h}
  - {from: '1970-01-01T00:10:00Z', until: '1970-01-01T00:20:00Z'}
  - 7",
            &hours(4),
        )
        .unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "regions[0].down[0]: from (1970-01-01T03:00:00Z) is not before until (1970-01-01T01:00:00Z)",
            "regions[0].down[1].from: step 9 is outside the horizon (steps 0 to 3 (1970-01-01T00:00:00Z to 1970-01-01T03:00:00Z))",
            "regions[0].down[2].from: 1969-12-31T00:00:00Z is outside the horizon",
            "regions[0].down[3].from: expected a step (0, 1, ...) or a time",
            "regions[0].down[3].until: expected a step (0, 1, ...) or a time",
            "regions[0].down[4]: a window needs from, until or both",
            "regions[0].down[5].for: unknown key",
            "regions[0].down[6]: from 1970-01-01T00:10:00Z until 1970-01-01T00:20:00Z covers no step",
            "regions[0].down[7]: expected a mapping",
        ] {
            assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
        }
        assert_eq!(problems.len(), 9, "{all}");
        let bad = resolved("down: sometimes", &hours(2)).unwrap_err();
        assert!(bad[0].starts_with("regions[0].down: expected true, false, {from, until}"));
        let late =
            resolved("down: {from: 0, until: '1970-01-01T05:00:00Z'}", &hours(2)).unwrap_err();
        assert!(late[0].contains("leave until out"), "{late:?}");
        let none = resolved("down: {from: 0}", &[]).unwrap_err();
        assert!(none[0].contains("the forecasts have no step"), "{none:?}");
    }
}
