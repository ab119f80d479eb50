//! The JWT login pipeline (`auth/<mount>/login`), in Vault's order (reference §4.2):
//! config → role → role type → token present → CIDR → header and algorithm → signature →
//! registered claims (issuer, subject, audience, times) → identity (user, metadata,
//! groups) → bound claims → the `Auth` the core turns into a token.
//!
//! Cheap checks run before any cryptography; a failure names its class, never a key or
//! the token.

use std::fmt;
use std::net::IpAddr;

use authmount_framework::metrics::{login_failure, LoginFailure};
use authmount_framework::{tokenutil, Alias, Auth, Error};
use serde_json::{json, Map, Value};

use crate::claims::{self, ClaimError};
use crate::config::ParsedConfig;
use crate::keys::{Jws, KeyError};
use crate::role::{BoundClaimsType, Role};

/// Why a login failed; each class has a fixed status and message (reference §4.8).
#[derive(Debug, Clone, PartialEq)]
pub enum LoginError {
    /// 400 `could not load configuration`.
    NotConfigured,
    /// 400 `missing role`.
    MissingRole,
    /// 400 `role "<name>" could not be found`.
    RoleNotFound(String),
    /// 400 `role with oidc role_type is not allowed`.
    OidcRole,
    /// 400 `missing token`.
    MissingToken,
    /// 403 `permission denied`: the client address is outside `token_bound_cidrs`.
    CidrDenied,
    /// 400 `error configuring token validator: <detail>`: the key source cannot be set up.
    ValidatorSetup(String),
    /// 400 `error validating token: <detail>`: malformed, algorithm, signature, iss, sub,
    /// aud, time claims.
    InvalidToken(String),
    /// 400: identity problems (user claim, groups) and the strict audience rule, bare.
    Claims(ClaimError),
    /// 400 `error validating claims: <detail>`: bound_claims.
    BoundClaims(ClaimError),
    /// 400 `<message>`: a CEL claim rule refused the login ([`crate::cel::check`]).
    ClaimRule(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::NotConfigured => f.write_str("could not load configuration"),
            LoginError::MissingRole => f.write_str("missing role"),
            LoginError::RoleNotFound(name) => write!(f, "role {name:?} could not be found"),
            LoginError::OidcRole => f.write_str("role with oidc role_type is not allowed"),
            LoginError::MissingToken => f.write_str("missing token"),
            LoginError::CidrDenied => f.write_str("permission denied"),
            LoginError::ValidatorSetup(detail) => {
                write!(f, "error configuring token validator: {detail}")
            }
            LoginError::InvalidToken(detail) => write!(f, "error validating token: {detail}"),
            LoginError::Claims(e) => write!(f, "{e}"),
            LoginError::BoundClaims(e) => write!(f, "error validating claims: {e}"),
            LoginError::ClaimRule(message) => f.write_str(message),
        }
    }
}

impl LoginError {
    /// The failure class `authmount_logins_total` counts this refusal under (a malformed or
    /// badly signed token is classed where [`verify`] found it).
    pub fn class(&self) -> LoginFailure {
        match self {
            LoginError::NotConfigured => LoginFailure::NotConfigured,
            LoginError::MissingRole => LoginFailure::MissingRole,
            LoginError::RoleNotFound(_) => LoginFailure::RoleNotFound,
            LoginError::OidcRole => LoginFailure::RoleType,
            LoginError::MissingToken => LoginFailure::MissingToken,
            LoginError::CidrDenied => LoginFailure::Cidr,
            LoginError::ValidatorSetup(_) => LoginFailure::KeySource,
            LoginError::InvalidToken(_) => LoginFailure::Other,
            LoginError::Claims(e) => claim_class(e),
            LoginError::BoundClaims(_) => LoginFailure::BoundClaim,
            LoginError::ClaimRule(_) => LoginFailure::ClaimRule,
        }
    }
}

/// The failure class of a claim check.
fn claim_class(e: &ClaimError) -> LoginFailure {
    match e {
        ClaimError::AmbiguousClaim { .. } | ClaimError::ClaimType { .. } => LoginFailure::Malformed,
        ClaimError::NoTimeClaims | ClaimError::Expired => LoginFailure::Expired,
        ClaimError::NotYetValid | ClaimError::IssuedInFuture => LoginFailure::NotYetValid,
        ClaimError::InvalidIssuer => LoginFailure::Issuer,
        ClaimError::InvalidSubject => LoginFailure::BoundSubject,
        ClaimError::AudienceMismatch | ClaimError::AudienceNotBound => LoginFailure::Audience,
        ClaimError::BoundClaimMissing(_)
        | ClaimError::BoundClaimMismatch(_)
        | ClaimError::ReceivedClaimUnsupported(_)
        | ClaimError::BoundClaimUnsupported(_)
        | ClaimError::NotGlobString(_) => LoginFailure::BoundClaim,
        _ => LoginFailure::Claims,
    }
}

/// Reports `class` as the failure of this login (metrics) and gives `e` back.
fn classed<E>(class: LoginFailure, e: E) -> E {
    login_failure(class);
    e
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        login_failure(e.class());
        match e {
            LoginError::CidrDenied => Error::PermissionDenied,
            other => Error::invalid(other.to_string()),
        }
    }
}

fn invalid(e: ClaimError) -> LoginError {
    login_failure(claim_class(&e));
    LoginError::InvalidToken(e.to_string())
}

/// Checks that `addr` may log in with `role` (reference §4.2 step 6). A missing address is
/// refused when the role binds CIDRs.
pub fn check_cidrs(role: &Role, addr: Option<IpAddr>) -> Result<(), LoginError> {
    let cidrs = &role.tokens.token.bound_cidrs;
    if cidrs.is_empty() || addr.is_some_and(|a| cidrs.iter().any(|c| c.contains(&a))) {
        Ok(())
    } else {
        Err(LoginError::CidrDenied)
    }
}

/// Verifies `token` against the config and `role` at time `now` (Unix seconds) and returns
/// the `Auth` of the login. The signature is checked before any claim is read.
pub async fn verify(
    config: &ParsedConfig,
    role_name: &str,
    role: &Role,
    token: &str,
    now: f64,
) -> Result<Auth, LoginError> {
    let jws = Jws::parse(token)
        .map_err(|e| classed(LoginFailure::Malformed, LoginError::InvalidToken(e)))?;
    if !config.algs.contains(&jws.alg) {
        login_failure(LoginFailure::Algorithm);
        return Err(LoginError::InvalidToken(
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
                .into(),
        ));
    }
    config.keys.verify(&jws).await.map_err(|e| match e {
        KeyError::Setup(detail) => LoginError::ValidatorSetup(detail),
        KeyError::Invalid(detail) => {
            classed(LoginFailure::Signature, LoginError::InvalidToken(detail))
        }
    })?;
    let claims = claims::parse_object_strict(&jws.payload).map_err(|e| {
        classed(
            LoginFailure::Malformed,
            LoginError::InvalidToken(format!("malformed jwt: payload: {e}")),
        )
    })?;
    let reg = claims::registered_claims(&claims).map_err(invalid)?;
    claims::validate_issuer(&reg, &config.stored.bound_issuer).map_err(invalid)?;
    claims::validate_subject(&reg, &role.bound_subject).map_err(invalid)?;
    let audiences = role.bound_audiences.as_deref().unwrap_or_default();
    claims::validate_audience(&reg, audiences).map_err(|e| match e {
        ClaimError::AudienceNotBound => LoginError::Claims(e),
        other => invalid(other),
    })?;
    claims::validate_times(&reg, &role.leeways(), now).map_err(invalid)?;
    identity(&claims, role_name, role)
}

/// Identity of reference §4.6 then bound claims (§4.5): so a token missing both the user
/// claim and a bound claim reports the user claim. Shared by the JWT login and the browser
/// login ([`crate::oidc_flow`]), whose claims come from the ID token and userinfo.
pub(crate) fn identity(
    claims: &Map<String, Value>,
    role_name: &str,
    role: &Role,
) -> Result<Auth, LoginError> {
    let user = claims::user_name(claims, &role.user_claim, role.user_claim_json_pointer)
        .map_err(LoginError::Claims)?;
    let mut metadata = match &role.claim_mappings {
        Some(m) => claims::mapped_metadata(claims, m),
        None => Default::default(),
    };
    metadata.insert("role".into(), role_name.to_string());
    let group_aliases = if role.groups_claim.is_empty() {
        vec![]
    } else {
        claims::group_names(claims, &role.groups_claim).map_err(LoginError::Claims)?
    };
    if let Some(bound) = &role.bound_claims {
        claims::validate_bound_claims(
            claims,
            bound,
            role.bound_claims_type == BoundClaimsType::Glob,
        )
        .map_err(LoginError::BoundClaims)?;
    }
    // CEL claim rules, then the extra policies they yield (crate::cel).
    let mut token = role.tokens.token.clone();
    let extra_policies = crate::cel::check(role, claims)?;
    if !extra_policies.is_empty() {
        token.policies = tokenutil::parse_policies(&[token.policies, extra_policies].concat());
    }
    let mut internal_data = Map::new();
    internal_data.insert("role".into(), json!(role_name));
    Ok(Auth {
        alias: Alias {
            name: user,
            metadata: metadata.clone(),
        },
        group_aliases,
        metadata,
        internal_data,
        token,
    })
}
