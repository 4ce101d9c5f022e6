//! IMSLP work pages as wikitext: any text either parses or is refused with an input error,
//! and the nesting limit keeps deep `{{{{...` from exhausting the stack.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(err) = scoregen::imslp::parse_wikitext(text) {
        assert!(err.is_input(), "a parse failure must be the input's fault: {err}");
    }
});
