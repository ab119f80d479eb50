//! The seed role of the docs and the claims it accepts: what most tests log in with.

use serde_json::{json, Value};

use crate::clock::now;

/// The issuer of the seed claims (`bound_issuer` of the seed mounts).
pub const SEED_ISSUER: &str = "https://issuer.test/";
/// The subject of the seed claims (`bound_subject` of the seed role).
pub const SEED_SUBJECT: &str = "r3qX9DljwFIWhsiqwFiu38209F10atW6@clients";
/// The audience of the seed claims (`bound_audiences` of the seed role).
pub const SEED_AUDIENCE: &str = "https://vault.plugin.auth.jwt.test";

/// The seed role of the docs (sent as strings, no `role_type`): bound to the seed subject
/// and audience, user claim `https://vault/user`, groups claim `https://vault/groups`,
/// policy `webapps`, TTL 1h.
pub fn seed_role() -> Value {
    json!({
        "bound_subject": SEED_SUBJECT,
        "bound_audiences": SEED_AUDIENCE,
        "user_claim": "https://vault/user",
        "groups_claim": "https://vault/groups",
        "policies": "webapps",
        "ttl": "1h",
    })
}

/// Claims the seed role accepts, for `user` (group `engineering`), issued now and valid for
/// five minutes.
pub fn seed_claims(user: &str) -> Value {
    let now = now();
    json!({
        "iss": SEED_ISSUER,
        "sub": SEED_SUBJECT,
        "aud": SEED_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "https://vault/user": user,
        "https://vault/groups": ["engineering"],
    })
}
