//! The CSV reader, then the grid every command builds from what it read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::series::{Aggregation, Duplicates};
use prescale::source::{csv::parse_samples, to_series, ColumnSpec};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    for duplicates in [Duplicates::Refuse, Duplicates::Mean] {
        if let Ok(samples) = parse_samples(data, path, &ColumnSpec::default(), duplicates) {
            // Any error is fine; a panic, a hang or an unbounded allocation is not.
            let _ = to_series(&samples, None, Aggregation::Mean);
        }
    }
});
