//! The YAML configurations: a workload (simulate, report) and the server's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::scale::config::WorkloadConfig;
use prescale::serve::config::{FilesAt, Overrides, ServeConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = WorkloadConfig::from_yaml(text);
    let _ = ServeConfig::parse(text, &Overrides::default(), FilesAt::Elsewhere);
});
