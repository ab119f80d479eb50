//! The JWT parser on arbitrary input: the compact-JWS split and header rules
//! (`Jws::parse`), the strict JSON object parser used for headers and payloads
//! (`parse_object_strict`: duplicate members, depth) and the registered-claim rules
//! (`registered_claims`). Any input must give a value or an error, never a panic, a hang or
//! an out-of-memory.
#![no_main]

use authmount_jwt::claims::{parse_object_strict, registered_claims};
use authmount_jwt::keys::Jws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as a payload or header after base64url decoding.
    if let Ok(claims) = parse_object_strict(data) {
        let _ = registered_claims(&claims);
    }
    // The bytes as the token text a client sends.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = Jws::parse(text) {
        if let Ok(claims) = parse_object_strict(&jws.payload) {
            let _ = registered_claims(&claims);
        }
    }
});
