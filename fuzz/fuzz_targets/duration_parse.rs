//! Vault's duration values (seconds, whole days, Go durations) on arbitrary text: seconds or
//! an error, never a panic or a hang.
#![no_main]

use authmount_framework::duration::parse_seconds;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_seconds(&Value::String(text.to_string()));
    }
});
