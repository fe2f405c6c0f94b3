//! Kubernetes `Quantity` strings, as the HPA reads an External metric's value.
//!
//! The HPA reads `value.MilliValue()`, so values are written in whole milli-units, in the
//! canonical decimal form Kubernetes itself writes (`10500m`, `13`, `12M`): trailing zeros
//! become a suffix, and there is never a fractional part. Written here because no Rust crate
//! formats Quantities in that canonical form without pulling in a Kubernetes client.

/// The canonical Quantity for `value`, in whole milli-units rounded towards zero (a value a
/// hair under a whole number of pods stays under it: the HPA rounds the quotient up), or
/// `None` for a value that is not finite or does not fit in the HPA's int64 milli-value.
///
/// ```
/// use prescale::serve::quantity::format;
///
/// assert_eq!(format(10.5).as_deref(), Some("10500m"));
/// assert_eq!(format(13.0).as_deref(), Some("13"));
/// assert_eq!(format(12_000_000.0).as_deref(), Some("12M"));
/// assert_eq!(format(f64::NAN), None);
/// ```
pub fn format(value: f64) -> Option<String> {
    let milli = (value * 1000.0).trunc();
    // Beyond 2^63 milli-units the HPA's int64 overflows; i64 casts saturate, so refuse.
    if !milli.is_finite() || milli.abs() >= 9.2e18 {
        return None;
    }
    Some(format_milli(milli as i64))
}

/// The canonical Quantity for a whole number of milli-units.
pub fn format_milli(milli: i64) -> String {
    if milli == 0 {
        return "0".into();
    }
    let sign = if milli < 0 { "-" } else { "" };
    let magnitude = milli.unsigned_abs();
    if !magnitude.is_multiple_of(1000) {
        return format!("{sign}{magnitude}m");
    }
    let mut whole = magnitude / 1000;
    const SUFFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut exponent = 0;
    while whole.is_multiple_of(1000) && exponent + 1 < SUFFIXES.len() {
        whole /= 1000;
        exponent += 1;
    }
    format!("{sign}{whole}{}", SUFFIXES[exponent])
}

/// The milli-value of a canonical Quantity written by [`format_milli`] (and of plain decimal
/// numbers), as the HPA's `MilliValue()` reads it: rounded up. For tests and clients; `None`
/// for anything else.
pub fn parse_milli(text: &str) -> Option<i64> {
    let (number, scale) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let exponent = match &text[i..] {
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                _ => return None,
            };
            (&text[..i], exponent)
        }
        None => (text, 0),
    };
    let value: f64 = number.parse().ok()?;
    let milli = value * 10f64.powi(scale + 3);
    (milli.is_finite() && milli.abs() < 9.2e18).then(|| milli.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_forms_match_kubernetes() {
        for (value, text) in [
            (10.5, "10500m"),
            (0.001, "1m"),
            (0.5, "500m"),
            (12_345_678.0, "12345678"),
            (12_000_000.0, "12M"),
            (1500.0, "1500"),
            (1000.0, "1k"),
            (0.0, "0"),
            (1.2345, "1234m"),
            (-1.5, "-1500m"),
            (0.00025, "0"),
        ] {
            assert_eq!(format(value).unwrap(), text, "{value}");
        }
        assert_eq!(format(1e30), None);
        assert_eq!(format(f64::INFINITY), None);
        // A plan of 13 pods served a hair under 13 stays 13 for the HPA's ceil.
        assert_eq!(format(13.0 * (1.0 - 1e-9)).unwrap(), "12999m");
    }

    proptest! {
        #[test]
        fn milli_values_round_trip(milli in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000) {
            let text = format_milli(milli);
            prop_assert!(!text.contains('.'));
            let back = parse_milli(&text).unwrap();
            // f64 parsing loses digits above 2^53; the suffix form is exact below.
            let tolerance = (milli.unsigned_abs() as f64 * 1e-15).ceil() as i64 + 1;
            prop_assert!((back - milli).abs() <= tolerance, "{} -> {} -> {}", milli, text, back);
        }

        #[test]
        fn any_finite_value_formats_or_is_refused(v in proptest::num::f64::ANY) {
            if let Some(text) = format(v) {
                prop_assert!(parse_milli(&text).is_some(), "{}", text);
            } else {
                prop_assert!(!v.is_finite() || v.abs() >= 9.2e15);
            }
        }
    }
}
