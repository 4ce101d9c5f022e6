//! IMSLP work pages as HTML: any text either parses or is refused with an input error.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(err) = scoregen::imslp::parse_html(text) {
        assert!(err.is_input(), "a parse failure must be the input's fault: {err}");
    }
});
