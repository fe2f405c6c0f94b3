//! Model files: a file that loads must also predict without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::model::FittedModel;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(model) = FittedModel::from_json(text, "fuzz.json".as_ref()) {
        let _ = model.predict(24, &[80.0, 95.0]);
    }
});
