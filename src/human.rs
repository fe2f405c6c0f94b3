//! Text for people: numbers with thousands separators, and errors with their causes.

/// A number for people: thousands separated, at most one decimal below 100.
///
/// ```
/// use prescale::human::thousands;
///
/// assert_eq!(thousands(1_234_567.0), "1,234,567");
/// assert_eq!(thousands(12.25), "12.2");
/// ```
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    let whole = v.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 {
        out.insert(0, '-');
    }
    out
}

/// An error and its causes on one line, `outer: cause: root cause`, for logs and tables
/// (library errors keep their causes as [`std::error::Error::source`] rather than repeating
/// them in their own message).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        // A wrapper that already prints its cause would repeat it.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(-1_234_567.4), "-1,234,567");
        assert_eq!(thousands(1830.4), "1,830");
        assert_eq!(thousands(12.25), "12.2");
        assert_eq!(thousands(f64::NAN), "NaN");
    }

    #[test]
    fn chains_join_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "outer: disk full");
    }
}
