//! What an audit device writes instead of a secret: `hmac-sha256:<hex>`, the HMAC-SHA256 of
//! the value under the device's salt. The same input always gives the same text on one
//! device (so entries can be correlated, and `sys/audit-hash` finds a known value), and
//! nothing about the input can be read back from it.
//!
//! Source: Vault `sdk/helper/salt` (`GetIdentifiedHMAC`) and `audit/hashstructure.go` (every
//! string of `data` hashed, keys and non-string values kept).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The prefix of every hashed value.
pub const PREFIX: &str = "hmac-sha256:";

/// `hmac-sha256:<64 hex digits>`: HMAC-SHA256 of `input` keyed with `salt`.
pub fn hmac(salt: &[u8], input: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC accepts any key");
    mac.update(input.as_bytes());
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Replaces every string inside `value` (at any depth, in objects and arrays) by its hash;
/// object keys, numbers, booleans and nulls are kept.
pub fn hash_strings(salt: &[u8], value: &mut Value) {
    match value {
        Value::String(s) => *s = hmac(salt, s),
        Value::Array(items) => items.iter_mut().for_each(|v| hash_strings(salt, v)),
        Value::Object(map) => map.values_mut().for_each(|v| hash_strings(salt, v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_answer_and_structure_kept() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac(b"Jefe", "what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut v = json!({"a": "x", "n": 3, "b": true, "l": ["x", {"k": "x"}], "z": null});
        hash_strings(b"Jefe", &mut v);
        let h = hmac(b"Jefe", "x");
        assert_eq!(
            v,
            json!({"a": h, "n": 3, "b": true, "l": [h, {"k": h}], "z": null})
        );
    }
}
