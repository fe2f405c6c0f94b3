//! Timestamp detection and parsing: whatever a file's first row implies, every later row is
//! parsed with that format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::source::timestamp::TimestampFormat;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line picks the format, the others are parsed with it.
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return;
    };
    if let Some(format) = TimestampFormat::detect(first) {
        let _ = format.parse(first);
        for line in lines {
            let _ = format.parse(line);
        }
    }
});
