//! The JWT login pipeline (`auth/<mount>/login`), in Vault's order (reference §4.2):
//! config → role → role type → token present → CIDR → header and algorithm → signature →
//! registered claims (issuer, subject, audience, times) → identity (user, metadata,
//! groups) → bound claims → [CEL rules] → single use → the `Auth` the core turns into a token.
//!
//! [`run`] is the one ordered path: `login` runs it to log in, and `login/explain`
//! ([`crate::explain`]) runs the very same checks with a [`Trace`] switched on, which records
//! each check's name, what it compared and its outcome. The two can therefore never disagree.
//! A real login's trace is off and costs nothing.
//!
//! Cheap checks run before any cryptography; a failure names its class, never a key or
//! the token. Nothing here reports metrics: the caller reports the failure class of the
//! refusal ([`LoginError::class`]) once, so an explain is never counted as a login.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use authmount_framework::metrics::{login_failure, LoginFailure};
use authmount_framework::{tokenutil, Alias, Auth, Error, Result};
use serde_json::{json, Map, Value};

use crate::claims::{self, ClaimError, Registered};
use crate::config::{JwtConfig, ParsedConfig};
use crate::keys::{Jws, KeyError, KeyMatch};
use crate::oidc_flow::Roles;
use crate::role::{BoundClaimsType, Role, RoleType};
use crate::single_use::SingleUse;

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
    /// aud, time claims; with the failure class of the check that refused.
    InvalidToken(LoginFailure, String),
    /// 400: identity problems (user claim, groups) and the strict audience rule, bare.
    Claims(ClaimError),
    /// 400 `error validating claims: <detail>`: bound_claims.
    BoundClaims(ClaimError),
    /// 400 `error validating token: the role is single-use and the token has no "jti"
    /// claim` (authmount's role field `single_use`).
    MissingJti,
    /// 400 `error validating token: the role is single-use and the token has no "exp"
    /// claim`: the single-use memory could never forget it.
    MissingExp,
    /// 400 `token already used: ...`: a single-use role saw this JWT log in before.
    Replayed,
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
            LoginError::InvalidToken(_, detail) => write!(f, "error validating token: {detail}"),
            LoginError::Claims(e) => write!(f, "{e}"),
            LoginError::BoundClaims(e) => write!(f, "error validating claims: {e}"),
            LoginError::MissingJti => f.write_str(
                "error validating token: the role is single-use and the token has no \"jti\" claim",
            ),
            LoginError::MissingExp => f.write_str(
                "error validating token: the role is single-use and the token has no \"exp\" claim",
            ),
            LoginError::Replayed => f.write_str(
                "token already used: this role accepts each JWT (known by its iss and jti) only once",
            ),
            LoginError::ClaimRule(message) => f.write_str(message),
        }
    }
}

impl LoginError {
    /// The failure class `authmount_logins_total` counts this refusal under.
    pub fn class(&self) -> LoginFailure {
        match self {
            LoginError::NotConfigured => LoginFailure::NotConfigured,
            LoginError::MissingRole => LoginFailure::MissingRole,
            LoginError::RoleNotFound(_) => LoginFailure::RoleNotFound,
            LoginError::OidcRole => LoginFailure::RoleType,
            LoginError::MissingToken => LoginFailure::MissingToken,
            LoginError::CidrDenied => LoginFailure::Cidr,
            LoginError::ValidatorSetup(_) => LoginFailure::KeySource,
            LoginError::InvalidToken(class, _) => *class,
            LoginError::Claims(e) => claim_class(e),
            LoginError::BoundClaims(_) => LoginFailure::BoundClaim,
            LoginError::MissingJti | LoginError::MissingExp => LoginFailure::Claims,
            LoginError::Replayed => LoginFailure::Replayed,
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

/// Reports the refusal's failure class (metrics) and makes it the API error.
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
    LoginError::InvalidToken(claim_class(&e), e.to_string())
}

/// One check of the pipeline as [`Trace`] recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The check's name: `config`, `role`, `role_type`, `token`, `cidr`, `token_format`,
    /// `algorithm`, `signature`, `claims_format`, `issuer`, `subject`, `audience`,
    /// `time_window`, `user_claim`, `groups_claim`, `bound_claim`, `single_use`.
    pub name: &'static str,
    /// True when it passed.
    pub passed: bool,
    /// What it compared: the token's value, the expected one, leeways, the key. Never the
    /// JWT, its signature or key material.
    pub details: Map<String, Value>,
    /// The error login answers when it failed.
    pub error: Option<String>,
}

/// The checks of one run of the pipeline, in order; off (recording nothing, evaluating no
/// details) for a real login.
#[derive(Debug, Default)]
pub struct Trace {
    checks: Option<Vec<Check>>,
}

impl Trace {
    /// A trace that records nothing (a real login).
    pub fn off() -> Trace {
        Trace { checks: None }
    }

    /// A trace that records every check (login explain).
    pub fn on() -> Trace {
        Trace {
            checks: Some(Vec::new()),
        }
    }

    /// The checks recorded so far, in order.
    pub fn checks(&self) -> &[Check] {
        self.checks.as_deref().unwrap_or_default()
    }

    /// Records the check `name` with the details `details` computes from its value (only
    /// when the trace is on), and hands the result back.
    pub(crate) fn record<T>(
        &mut self,
        name: &'static str,
        result: std::result::Result<T, LoginError>,
        details: impl FnOnce(Option<&T>) -> Value,
    ) -> std::result::Result<T, LoginError> {
        if let Some(checks) = &mut self.checks {
            let details = match details(result.as_ref().ok()) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            checks.push(Check {
                name,
                passed: result.is_ok(),
                details,
                error: result.as_ref().err().map(ToString::to_string),
            });
        }
        result
    }
}

/// What one login (or explain) presents.
pub struct Attempt<'a> {
    /// The mount's config, if written.
    pub config: Option<&'a ParsedConfig>,
    /// Where roles are read.
    pub roles: &'a dyn Roles,
    /// The `role` field (lower-cased), if sent.
    pub role: Option<&'a str>,
    /// The `jwt` field, if sent.
    pub jwt: Option<&'a str>,
    /// The client's address, for `token_bound_cidrs`.
    pub remote_addr: Option<IpAddr>,
    /// The time, Unix seconds with a fraction.
    pub now: f64,
    /// The mount's single-use memory.
    pub single_use: SingleUse<'a>,
    /// True for a login: a single-use token is consumed. False for explain, which only
    /// reads whether it was used.
    pub consume: bool,
    /// A role without `bound_audiences` accepts any audience (OpenBao's CEL login) instead
    /// of refusing a token that carries one (Vault's login).
    pub any_audience_when_unbound: bool,
}

/// The outcome of [`run`].
pub struct Verdict {
    /// The role the attempt used, once it was found (so a name a client sent never becomes
    /// a metrics label before that).
    pub role: Option<(String, Arc<Role>)>,
    /// The login, or the first check that refused it.
    pub outcome: std::result::Result<Auth, LoginError>,
}

/// A check's result, or the end of the run with its refusal.
macro_rules! pass {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}

/// Runs every check of a login in order, recording them in `trace`, and stops at the first
/// that fails. Errors (not refusals): storage failures reading the role or the single-use
/// memory.
pub async fn run(attempt: &Attempt<'_>, trace: &mut Trace) -> Result<Verdict> {
    let mut found = None;
    let outcome = checks(attempt, trace, &mut found).await?;
    Ok(Verdict {
        role: found,
        outcome,
    })
}

/// A token that passed the checks every JWT login shares ([`verify`]): its claims and the
/// role it was checked against.
pub(crate) struct Verified {
    /// The verified claims.
    pub claims: Map<String, Value>,
    /// The registered claims among them.
    pub reg: Registered,
    /// The role's name.
    pub role_name: String,
    /// The role.
    pub role: Arc<Role>,
}

/// The checks of [`run`] up to the time window (config, role, token, CIDR, algorithm,
/// signature, issuer, subject, audience, times); also the token checks of OpenBao's CEL
/// login ([`crate::cel_role`]), whose role lookup `a.roles` serves.
pub(crate) async fn verify(
    a: &Attempt<'_>,
    trace: &mut Trace,
    found: &mut Option<(String, Arc<Role>)>,
) -> Result<std::result::Result<Verified, LoginError>> {
    let config = pass!(trace.record(
        "config",
        a.config.ok_or(LoginError::NotConfigured),
        |c| json!({"key_source": c.map(|c| key_source_field(&c.stored))}),
    ));
    let named = a.role.filter(|r| !r.is_empty());
    let role_name = match named {
        Some(r) => Ok(r.to_string()),
        None if !config.stored.default_role.is_empty() => Ok(config.stored.default_role.clone()),
        None => Err(LoginError::MissingRole),
    };
    let role = match role_name {
        Ok(name) => match a.roles.role(&name).await? {
            Some(role) => Ok((name, role)),
            None => Err(LoginError::RoleNotFound(name)),
        },
        Err(e) => Err(e),
    };
    let (role_name, role) = pass!(trace.record("role", role, |r| {
        json!({"role": r.map(|(n, _)| n), "default_role_used": named.is_none()})
    }));
    *found = Some((role_name.clone(), role.clone()));
    let oidc = role.role_type == RoleType::Oidc;
    pass!(trace.record(
        "role_type",
        if oidc {
            Err(LoginError::OidcRole)
        } else {
            Ok(())
        },
        |_| json!({"role_type": role.role_type.as_str()}),
    ));
    let token = pass!(trace.record(
        "token",
        a.jwt
            .filter(|t| !t.is_empty())
            .ok_or(LoginError::MissingToken),
        |_| json!({}),
    ));
    pass!(trace.record("cidr", check_cidrs(&role, a.remote_addr), |_| {
        json!({
            "client_address": a.remote_addr.map(|ip| ip.to_string()),
            "expected": role.tokens.token.bound_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }));
    let jws = pass!(trace.record(
        "token_format",
        Jws::parse(token).map_err(|e| LoginError::InvalidToken(LoginFailure::Malformed, e)),
        |j| {
            json!({
                "alg": j.map(|j| j.alg.name()),
                "kid": j.and_then(|j| j.kid.clone()),
                "typ": j.and_then(|j| j.header.get("typ").cloned()),
            })
        },
    ));
    let alg_allowed = config.algs.contains(&jws.alg);
    pass!(trace.record(
        "algorithm",
        match alg_allowed {
            true => Ok(()),
            false => Err(LoginError::InvalidToken(
                LoginFailure::Algorithm,
                "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
                    .into(),
            )),
        },
        |_| {
            json!({
                "token": jws.alg.name(),
                "expected": config.algs.iter().map(|a| a.name()).collect::<Vec<_>>(),
            })
        },
    ));
    let verified = config.keys.verify(&jws).await.map_err(|e| match e {
        KeyError::Setup(detail) => LoginError::ValidatorSetup(detail),
        KeyError::Invalid(detail) => LoginError::InvalidToken(LoginFailure::Signature, detail),
    });
    pass!(trace.record("signature", verified, |m| signature_details(
        config, &jws, m
    )));
    let claims = pass!(trace.record(
        "claims_format",
        claims::parse_object_strict(&jws.payload)
            .map_err(|e| {
                LoginError::InvalidToken(
                    LoginFailure::Malformed,
                    format!("malformed jwt: payload: {e}"),
                )
            })
            .and_then(|claims| {
                let reg = claims::registered_claims(&claims).map_err(invalid)?;
                Ok((claims, reg))
            }),
        |_| json!({}),
    ));
    let (claims, reg) = claims;
    let bound_issuer = &config.stored.bound_issuer;
    pass!(trace.record(
        "issuer",
        claims::validate_issuer(&reg, bound_issuer).map_err(invalid),
        |_| json!({"token": reg.iss, "expected": non_empty(bound_issuer)}),
    ));
    pass!(trace.record(
        "subject",
        claims::validate_subject(&reg, &role.bound_subject).map_err(invalid),
        |_| json!({"token": reg.sub, "expected": non_empty(&role.bound_subject)}),
    ));
    let audiences = role.bound_audiences.as_deref().unwrap_or_default();
    pass!(trace.record(
        "audience",
        match a.any_audience_when_unbound && audiences.is_empty() {
            true => Ok(()),
            false => claims::validate_audience(&reg, audiences),
        }
        .map_err(|e| match e {
            ClaimError::AudienceNotBound => LoginError::Claims(e),
            other => invalid(other),
        }),
        |_| json!({"token": reg.aud, "expected": audiences}),
    ));
    let leeways = role.leeways();
    pass!(trace.record(
        "time_window",
        claims::validate_times(&reg, &leeways, a.now).map_err(invalid),
        |_| time_details(&reg, &role, a.now),
    ));
    Ok(Ok(Verified {
        claims,
        reg,
        role_name,
        role,
    }))
}

async fn checks(
    a: &Attempt<'_>,
    trace: &mut Trace,
    found: &mut Option<(String, Arc<Role>)>,
) -> Result<std::result::Result<Auth, LoginError>> {
    let Verified {
        claims,
        reg,
        role_name,
        role,
    } = pass!(verify(a, trace, found).await?);
    let auth = pass!(identity_checks(&claims, &role_name, &role, trace));
    // The CEL rules (role field `claim_rules`) ran in `identity_checks`, after the bound
    // claims: all before the single-use memory is touched.
    if role.single_use {
        let until = reg.exp.unwrap_or(0.0) + crate::single_use::MAX_CLOCK_SKEW as f64;
        let until = until.max(0.0).ceil() as u64;
        let now = a.now.max(0.0) as u64;
        let outcome = match (&reg.jti, &reg.iss) {
            _ if reg.exp.is_none() => Err(LoginError::MissingExp),
            (Some(jti), iss) if !jti.is_empty() => {
                let iss = iss.as_deref().unwrap_or_default();
                let fresh = match a.consume {
                    true => a.single_use.consume(iss, jti, until, now).await?,
                    false => !a.single_use.is_used(iss, jti, now).await?,
                };
                if fresh {
                    Ok(())
                } else {
                    Err(LoginError::Replayed)
                }
            }
            _ => Err(LoginError::MissingJti),
        };
        pass!(trace.record("single_use", outcome, |_| {
            json!({"jti": reg.jti, "iss": reg.iss, "remembered_until": until})
        }));
    }
    Ok(Ok(auth))
}

/// `expected` for a binding that is off when empty: `null` then.
fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// The config field the mount's keys come from.
pub fn key_source_field(config: &JwtConfig) -> &'static str {
    if !config.jwt_validation_pubkeys.is_empty() {
        "jwt_validation_pubkeys"
    } else if !config.jwks_inline.is_null() {
        "jwks_inline"
    } else if !config.jwks_url.is_empty() {
        "jwks_url"
    } else if !config.jwks_pairs.is_empty() {
        "jwks_pairs"
    } else {
        "oidc_discovery_url"
    }
}

/// The signature check's details: the token's `kid` and the key that verified it (or the
/// source that was tried).
fn signature_details(config: &ParsedConfig, jws: &Jws, found: Option<&KeyMatch>) -> Value {
    match found {
        Some(m) => json!({
            "token_kid": jws.kid,
            "key_source": m.source,
            "key_url": m.url,
            "key_id": m.kid,
            "key_index": m.index,
        }),
        None => json!({
            "token_kid": jws.kid,
            "key_source": key_source_field(&config.stored),
        }),
    }
}

/// The time check's details: the claims, the leeways used and the window they give.
fn time_details(reg: &Registered, role: &Role, now: f64) -> Value {
    let leeways = role.leeways();
    let clock_skew = leeways.clock_skew.seconds(60);
    let exp = claims::effective_expiry(reg, &leeways);
    json!({
        "now": now.floor() as i64,
        "iat": reg.iat.map(|t| t as i64),
        "nbf": reg.nbf.map(|t| t as i64),
        "exp": reg.exp.map(|t| t as i64),
        "expiration_leeway": leeways.expiration.seconds(150) as i64,
        "clock_skew_leeway": clock_skew as i64,
        "not_before_leeway": leeways.not_before.seconds(150) as i64,
        "valid_from": reg.nbf.or(reg.iat).map(|t| (t - clock_skew) as i64),
        "valid_until": exp.map(|t| (t + clock_skew) as i64),
    })
}

/// Checks that `addr` may log in with `role` (reference §4.2 step 6). A missing address is
/// refused when the role binds CIDRs.
pub fn check_cidrs(role: &Role, addr: Option<IpAddr>) -> std::result::Result<(), LoginError> {
    let cidrs = &role.tokens.token.bound_cidrs;
    if cidrs.is_empty() || addr.is_some_and(|a| cidrs.iter().any(|c| c.contains(&a))) {
        Ok(())
    } else {
        Err(LoginError::CidrDenied)
    }
}

/// Identity of reference §4.6 then bound claims (§4.5): so a token missing both the user
/// claim and a bound claim reports the user claim. Shared by the JWT login and the browser
/// login ([`crate::oidc_flow`]), whose claims come from the ID token and userinfo.
pub(crate) fn identity(
    claims: &Map<String, Value>,
    role_name: &str,
    role: &Role,
) -> std::result::Result<Auth, LoginError> {
    identity_checks(claims, role_name, role, &mut Trace::off())
}

/// [`identity`], each check recorded in `trace`; each bound claim is its own check, in the
/// sorted order [`claims::validate_bound_claims`] uses.
fn identity_checks(
    claims: &Map<String, Value>,
    role_name: &str,
    role: &Role,
    trace: &mut Trace,
) -> std::result::Result<Auth, LoginError> {
    let user = trace.record(
        "user_claim",
        claims::user_name(claims, &role.user_claim, role.user_claim_json_pointer)
            .map_err(LoginError::Claims),
        |user| json!({"claim": role.user_claim, "token": user}),
    )?;
    let mut metadata = match &role.claim_mappings {
        Some(m) => claims::mapped_metadata(claims, m),
        None => Default::default(),
    };
    metadata.insert("role".into(), role_name.to_string());
    let group_aliases = if role.groups_claim.is_empty() {
        vec![]
    } else {
        trace.record(
            "groups_claim",
            claims::group_names(claims, &role.groups_claim).map_err(LoginError::Claims),
            |groups| json!({"claim": role.groups_claim, "token": groups}),
        )?
    };
    if let Some(bound) = &role.bound_claims {
        let glob = role.bound_claims_type == BoundClaimsType::Glob;
        let mut entries: Vec<(&String, &Value)> = bound.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (key, expected) in entries {
            let one = Map::from_iter([(key.clone(), expected.clone())]);
            trace.record(
                "bound_claim",
                claims::validate_bound_claims(claims, &one, glob).map_err(LoginError::BoundClaims),
                |_| {
                    json!({
                        "claim": key,
                        "token": claims::lookup(claims, key),
                        "expected": expected,
                        "match": role.bound_claims_type.as_str(),
                    })
                },
            )?;
        }
    }
    // CEL claim rules, then the extra policies they yield (crate::cel).
    let mut token = role.tokens.token.clone();
    let extra_policies = crate::cel::check(role, claims, trace)?;
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
