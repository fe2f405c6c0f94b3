//! The M4 hourly protocol reproduces the competition's published seasonal naive figures.

use crate::common;

use prescale::eval::m4;
use prescale::model;

#[test]
fn seasonal_naive_matches_the_published_m4_hourly_row() {
    let data = m4::load(&common::dataset("m4-hourly")).expect("bundled M4 hourly set");
    assert_eq!(data.train.len(), 414);
    let m = model::by_name("seasonal-naive").unwrap();
    let s = m4::evaluate(m.as_ref(), &data, None).unwrap();
    // Published sNaive hourly row (datasets/m4-hourly/published-hourly.csv): 13.912, 1.193, 0.6275.
    assert_eq!(format!("{:.3}", s.smape), "13.912", "{s:?}");
    assert_eq!(format!("{:.3}", s.mase), "1.193", "{s:?}");
    assert!((s.owa - 0.6275).abs() < 5e-4, "{s:?}");
    assert_eq!((s.n_series, s.fallbacks), (414, 0));
}

#[test]
fn owa_of_naive2_is_one() {
    assert!((m4::owa(m4::NAIVE2_SMAPE, m4::NAIVE2_MASE) - 1.0).abs() < 1e-12);
}
