//! A Prometheus `query_range` answer, decoded and laid on the query's grid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::source::prometheus::{decode_range_body, RangeQuery};

fuzz_target!(|data: &[u8]| {
    // The grid the seeds were recorded on: 1 h at 60 s from 2023-11-14T22:13:20Z.
    let query = RangeQuery {
        url: "http://127.0.0.1:9090".into(),
        query: "sum(rate(http_requests_total[5m]))".into(),
        start: 1_700_000_000_000,
        end: 1_700_003_600_000,
        step: 60_000,
    };
    let _ = decode_range_body(&query, data);
});
