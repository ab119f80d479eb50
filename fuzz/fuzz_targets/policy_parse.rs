//! The ACL policy parser (Vault's HCL policy language, or its JSON form) on arbitrary text,
//! and the ACL built from what parses, asked about a few paths: never a panic or a hang.
#![no_main]

use authmount_framework::policy::{Acl, Capability, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse("fuzz", text) else {
        return;
    };
    let acl = Acl::new([&policy]);
    for path in ["", "sys/policies/acl/admin", "auth/jwt/role/a", "a/b/c/", text] {
        let _ = acl.capabilities(path);
        let _ = acl.allows(path, Capability::Update, true);
    }
});
