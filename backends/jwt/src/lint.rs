//! Role lint (authmount only): a role write that binds too little still succeeds, and
//! answers 200 with Vault's `warnings` naming what is weak. Judged against the mount's
//! config (its issuer decides which rules apply), so a role written before the config is
//! not linted.
//!
//! The rules:
//! * a `jwt` role with no `bound_audiences`, no `bound_subject` and no `bound_claims` takes
//!   any token the issuer signs (an `oidc` role is bound to the client id by the browser
//!   login);
//! * GitHub Actions (`iss` `https://token.actions.githubusercontent.com`, with or without an
//!   enterprise path): a role bound by `repository` / `repository_owner` (or a `repo:...`
//!   subject) without `repository_id` / `repository_owner_id`: names can be deleted and
//!   re-created by someone else, the ids cannot;
//! * GitLab (`iss` `https://gitlab.com`, or a host named `gitlab.*`): a role bound by
//!   `project_path` / `namespace_path` without `project_id` / `namespace_id`, for the same
//!   reason;
//! * a glob (`bound_claims_type` `glob`) made only of `*`, which matches every value.

use serde_json::Value;

use crate::config::JwtConfig;
use crate::role::{BoundClaimsType, Role, RoleType};

/// GitHub Actions' OIDC issuer.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The issuer the mount trusts: `bound_issuer`, else `oidc_discovery_url`; "" when neither.
fn issuer(config: &JwtConfig) -> &str {
    match config.bound_issuer.as_str() {
        "" => config.oidc_discovery_url.as_str(),
        bound => bound,
    }
}

fn is_github(issuer: &str) -> bool {
    let issuer = issuer.trim_end_matches('/');
    issuer == GITHUB_ACTIONS_ISSUER || issuer.starts_with(&format!("{GITHUB_ACTIONS_ISSUER}/"))
}

fn is_gitlab(issuer: &str) -> bool {
    let host = issuer
        .strip_prefix("https://")
        .unwrap_or_default()
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "gitlab.com" || host.starts_with("gitlab.")
}

/// The warnings for `role` under `config` (empty for a well-bound role).
pub fn weak_bindings(role: &Role, config: &JwtConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    let bound = |claim: &str| {
        role.bound_claims
            .as_ref()
            .is_some_and(|b| b.get(claim).is_some_and(|v| !is_empty(v)))
    };
    let audiences = role.bound_audiences.as_ref().is_some_and(|a| !a.is_empty());
    let claims = role.bound_claims.as_ref().is_some_and(|c| !c.is_empty());
    if role.role_type == RoleType::Jwt && !audiences && role.bound_subject.is_empty() && !claims {
        warnings.push("weak binding: the role has no bound_audiences, bound_subject or bound_claims, so any token its issuer signs for anyone logs in; bind the audience and the subject or claims that identify the workload".to_string());
    }
    let issuer = issuer(config);
    if is_github(issuer) {
        let by_name = bound("repository")
            || bound("repository_owner")
            || role.bound_subject.starts_with("repo:");
        if by_name && !bound("repository_id") && !bound("repository_owner_id") {
            warnings.push("weak binding: GitHub Actions role bound by repository or owner names (repository, repository_owner or a repo: subject) without repository_id or repository_owner_id; a deleted repository or organisation name can be re-created by someone else, its numeric id cannot: add bound_claims repository_id (or repository_owner_id)".to_string());
        }
    }
    if is_gitlab(issuer) {
        for (name, id) in [
            ("project_path", "project_id"),
            ("namespace_path", "namespace_id"),
        ] {
            if bound(name) && !bound(id) {
                warnings.push(format!("weak binding: GitLab role bound by {name} without {id}; a path can be renamed and re-created by someone else, the numeric id cannot: add bound_claims {id}"));
            }
        }
    }
    if role.bound_claims_type == BoundClaimsType::Glob {
        let mut keys: Vec<&String> = match &role.bound_claims {
            Some(b) => b
                .iter()
                .filter(|(_, v)| patterns(v).any(matches_everything))
                .map(|(k, _)| k)
                .collect(),
            None => vec![],
        };
        keys.sort();
        for key in keys {
            warnings.push(format!("weak binding: the glob for bound claim {key:?} matches every value; it only checks that the claim is present"));
        }
    }
    warnings
}

/// True for a bound value that binds nothing (`""`, `[]`, `null`).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The string patterns of a glob value (a string or a list of them).
fn patterns(value: &Value) -> impl Iterator<Item = &str> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items.into_iter().filter_map(Value::as_str)
}

/// True for a glob made only of `*` (at least one).
fn matches_everything(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_recognised() {
        assert!(is_github("https://token.actions.githubusercontent.com"));
        assert!(is_github("https://token.actions.githubusercontent.com/"));
        assert!(is_github(
            "https://token.actions.githubusercontent.com/my-enterprise"
        ));
        assert!(!is_github(
            "https://token.actions.githubusercontent.com.evil.test"
        ));
        assert!(is_gitlab("https://gitlab.com"));
        assert!(is_gitlab("https://gitlab.example.org:8443/"));
        assert!(!is_gitlab("https://notgitlab.com"));
        assert!(!is_gitlab("http://gitlab.com"));
        assert!(matches_everything("**") && !matches_everything("*@x") && !matches_everything(""));
    }
}
