//! The provider side of the browser login: the token request (authorization code with PKCE,
//! RFC 6749 §4.1.3 and RFC 7636 §4.5; device code, RFC 8628 §3.4), ID Token validation
//! (OpenID Connect Core 1.0 §3.1.3.7 and §3.2.2.11), the userinfo request (§5.3), and the
//! device authorization request (RFC 8628 §3.1).
//!
//! Requests go through the provider's [`Fetcher`] (its CA bundle, 5 s connect and 15 s total
//! timeouts, 1 MiB answers at most). Signatures are checked with the mount's key cache
//! ([`crate::oidc::DiscoverySource`]: a refetch on an unknown `kid`, with a cool-down), claims
//! with the rules of [`crate::claims`]. Error texts never carry a token or a secret.

use serde_json::{Map, Value};
use sha2::Digest;

use crate::claims::{self, ClaimError, Leeways};
use crate::fetch::{Answer, Fetcher, MAX_DOCUMENT_BYTES};
use crate::keys::{Alg, Jws, KeyError, KeySource};

/// The client credentials of the mount (`oidc_client_id`, `oidc_client_secret`).
#[derive(Clone, Copy)]
pub struct Client<'a> {
    /// `oidc_client_id`.
    pub id: &'a str,
    /// `oidc_client_secret`.
    pub secret: &'a str,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A successful token endpoint answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Clone, PartialEq)]
pub struct Tokens {
    /// `id_token`.
    pub id_token: String,
    /// `access_token` (for the userinfo endpoint), possibly empty.
    pub access_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// What a token request ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    /// The provider answered an OAuth error (RFC 6749 §5.2): `error` and `error_description`.
    OAuth {
        /// The `error` code, e.g. `invalid_grant`.
        error: String,
        /// The `error_description`, empty when the provider gave none.
        description: String,
    },
    /// Anything else: transport, timeout, size, a bad answer. A readable cause.
    Other(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The shape of Go's oauth2 errors, which Vault's messages carry.
            TokenError::OAuth { error, description } if description.is_empty() => {
                write!(f, "oauth2: {error:?}")
            }
            TokenError::OAuth { error, description } => {
                write!(f, "oauth2: {error:?} {description:?}")
            }
            TokenError::Other(cause) => f.write_str(cause),
        }
    }
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5).
/// Client authentication: HTTP Basic (`client_secret_basic`); when the provider refuses it
/// with `invalid_client`, once more with the secret in the body (`client_secret_post`), as
/// Vault's OAuth library does; the code is not spent by a refused client authentication.
///
/// Errors: [`TokenError::OAuth`] (e.g. `invalid_grant` for a garbage, expired or replayed
/// code), [`TokenError::Other`] (`unable to exchange auth code with provider: <cause>`,
/// `id_token is missing from auth code exchange`).
pub async fn exchange_code(
    fetcher: &Fetcher,
    token_endpoint: &str,
    client: Client<'_>,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<Tokens, TokenError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if !code_verifier.is_empty() {
        form.push(("code_verifier", code_verifier));
    }
    let answer = token_request(fetcher, token_endpoint, client, &form).await?;
    tokens_of(answer).map_err(|e| match e {
        TokenError::Other(cause) if cause == "no id_token" => {
            TokenError::Other("id_token is missing from auth code exchange".into())
        }
        other => other,
    })
}

/// One token request with client authentication, falling back from Basic to the body on
/// `invalid_client` (see [`exchange_code`]).
async fn token_request(
    fetcher: &Fetcher,
    endpoint: &str,
    client: Client<'_>,
    form: &[(&str, &str)],
) -> Result<Answer, TokenError> {
    let unable =
        |e: String| TokenError::Other(format!("unable to exchange auth code with provider: {e}"));
    let answer = fetcher
        .post_form(endpoint, form, Some((client.id, client.secret)))
        .await
        .map_err(unable)?;
    if !matches!(oauth_error(&answer), Some(TokenError::OAuth { error, .. }) if error == "invalid_client")
    {
        return Ok(answer);
    }
    let mut in_body = form.to_vec();
    in_body.push(("client_id", client.id));
    in_body.push(("client_secret", client.secret));
    fetcher
        .post_form(endpoint, &in_body, None)
        .await
        .map_err(unable)
}

/// The OAuth error of a non-200 answer, if it is one (RFC 6749 §5.2).
fn oauth_error(answer: &Answer) -> Option<TokenError> {
    if answer.status == 200 {
        return None;
    }
    let doc: Value = serde_json::from_slice(&answer.body).ok()?;
    let error = doc.get("error")?.as_str()?.to_string();
    let description = doc
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some(TokenError::OAuth { error, description })
}

/// The tokens of a token endpoint answer. Errors: an OAuth error, another status
/// (`token endpoint answered <status>`), a body that is not a JSON object, no `id_token`
/// (`no id_token`).
fn tokens_of(answer: Answer) -> Result<Tokens, TokenError> {
    if let Some(e) = oauth_error(&answer) {
        return Err(e);
    }
    if answer.status != 200 {
        return Err(TokenError::Other(format!(
            "unable to exchange auth code with provider: token endpoint answered {}",
            answer.status
        )));
    }
    let doc: Map<String, Value> = serde_json::from_slice(&answer.body).map_err(|e| {
        TokenError::Other(format!(
            "unable to exchange auth code with provider: the answer is not JSON: {e}"
        ))
    })?;
    let text = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or_default();
    if text("id_token").is_empty() {
        return Err(TokenError::Other("no id_token".into()));
    }
    Ok(Tokens {
        id_token: text("id_token").to_string(),
        access_token: text("access_token").to_string(),
    })
}

/// The answer of a device authorization request (RFC 8628 §3.2).
#[derive(Clone, PartialEq)]
pub struct DeviceAuthorization {
    /// `device_code`: secret, kept in the pending login.
    pub device_code: String,
    /// `user_code`.
    pub user_code: String,
    /// `verification_uri` (or Google's `verification_url`).
    pub verification_uri: String,
    /// `verification_uri_complete` (or `verification_url_complete`), possibly empty.
    pub verification_uri_complete: String,
    /// `interval` in seconds, 0 when not given.
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("verification_uri", &self.verification_uri)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Asks the device authorization endpoint for a device and user code (RFC 8628 §3.1), with
/// the client id and secret in the body as OpenBao sends them. Errors: a readable cause.
pub async fn device_authorize(
    fetcher: &Fetcher,
    endpoint: &str,
    client: Client<'_>,
    scope: &str,
) -> Result<DeviceAuthorization, String> {
    let form = [
        ("client_id", client.id),
        ("client_secret", client.secret),
        ("scope", scope),
    ];
    let answer = fetcher.post_form(endpoint, &form, None).await?;
    if let Some(e) = oauth_error(&answer) {
        return Err(e.to_string());
    }
    if answer.status != 200 {
        return Err(format!(
            "device authorization endpoint answered {}",
            answer.status
        ));
    }
    let doc: Map<String, Value> = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the device authorization answer is not JSON: {e}"))?;
    let text = |a: &str, b: &str| {
        doc.get(a)
            .or_else(|| doc.get(b))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let device = DeviceAuthorization {
        device_code: text("device_code", "device_code"),
        user_code: text("user_code", "user_code"),
        verification_uri: text("verification_uri", "verification_url"),
        verification_uri_complete: text("verification_uri_complete", "verification_url_complete"),
        interval: doc.get("interval").and_then(Value::as_i64).unwrap_or(0),
    };
    if device.device_code.is_empty() || device.verification_uri.is_empty() {
        return Err("the device authorization answer lacks device_code or verification_uri".into());
    }
    Ok(device)
}

/// Polls the token endpoint with a device code (RFC 8628 §3.4), client id and secret in the
/// body. Errors: [`TokenError::OAuth`] (`authorization_pending` and `slow_down` mean: poll
/// again), [`TokenError::Other`].
pub async fn device_token(
    fetcher: &Fetcher,
    token_endpoint: &str,
    client: Client<'_>,
    device_code: &str,
) -> Result<Tokens, TokenError> {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
        ("client_id", client.id),
        ("client_secret", client.secret),
    ];
    let answer = fetcher
        .post_form(token_endpoint, &form, None)
        .await
        .map_err(|e| TokenError::Other(format!("error polling for device authorization: {e}")))?;
    tokens_of(answer).map_err(|e| match e {
        TokenError::Other(cause) if cause == "no id_token" => {
            TokenError::Other("No id_token found in response.".into())
        }
        other => other,
    })
}

/// Reads the userinfo endpoint with the access token (OpenID Connect Core §5.3). The answer
/// must be a JSON object whose `sub` equals the ID token's `sub` (§5.3.2) and whose `iss`, when
/// present, is the issuer. Errors: a readable cause (the login goes on without these claims).
pub async fn userinfo(
    fetcher: &Fetcher,
    endpoint: &str,
    access_token: &str,
    subject: &str,
    issuer: &str,
) -> Result<Map<String, Value>, String> {
    let answer = fetcher.get_bearer(endpoint, access_token).await?;
    if answer.status != 200 {
        return Err(format!("userinfo endpoint answered {}", answer.status));
    }
    let claims = claims::parse_object_strict(&answer.body)
        .map_err(|e| format!("the userinfo answer is not a JSON object: {e}"))?;
    if claims.get("sub").and_then(Value::as_str) != Some(subject) {
        return Err("the userinfo sub is not the ID token's".into());
    }
    if claims
        .get("iss")
        .is_some_and(|iss| iss.as_str() != Some(issuer))
    {
        return Err("the userinfo iss is not the issuer".into());
    }
    Ok(claims)
}

/// What an ID Token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct IdTokenRules<'a> {
    /// The issuer of the discovery document (= `oidc_discovery_url`), exact.
    pub issuer: &'a str,
    /// `oidc_client_id`.
    pub client_id: &'a str,
    /// The role's `bound_audiences`; the client id when empty. One must be in `aud`.
    pub audiences: &'a [String],
    /// Allowed `alg` values (the config's `jwt_supported_algs`; RS256 when it lists none, as
    /// in Vault's browser login).
    pub algs: &'a [Alg],
    /// The nonce sent with the authorization request; `None` for the device flow (no nonce
    /// is sent there).
    pub nonce: Option<&'a str>,
    /// `max_age` in seconds (0 = none) and when the authorization request was made: then
    /// `auth_time` is required and must be at most `max_age` (+ the clock skew) before it.
    pub max_age: i64,
    /// When the authorization request was made (Unix seconds).
    pub requested_at: f64,
    /// The role's leeways (clock skew 60 s by default).
    pub leeways: Leeways,
    /// The access token issued with it, to check `at_hash` when present (§3.1.3.8).
    pub access_token: Option<&'a str>,
    /// The authorization code, to check `c_hash` when present (§3.3.2.11).
    pub code: Option<&'a str>,
}

/// The largest ID Token accepted, in bytes (the same cap as any fetched document).
pub const MAX_ID_TOKEN_BYTES: usize = MAX_DOCUMENT_BYTES;

/// Validates an ID Token (OpenID Connect Core §3.1.3.7) at `now` and returns its claims
/// without `nonce`: compact JWS with an allowed `alg` (DECISIONS D12 header rules), a valid
/// signature by the provider's keys (the cached key set, refetched on an unknown `kid`),
/// claims parsed strictly (D12, D14), `iss` exact, `aud` holding one of the audiences, `azp`
/// equal to the client id when present and required with several audiences or one audience
/// that is not the client id, `exp` and `iat` present and the time rules of the JWT login,
/// the nonce, `auth_time` against `max_age`, `at_hash` and `c_hash` when present.
///
/// Errors: the reason, e.g. `invalid id_token nonce`, `failed to verify id token signature`,
/// `invalid expiration time (exp) claim: token is expired`.
pub async fn verify_id_token(
    keys: &dyn KeySource,
    token: &str,
    rules: &IdTokenRules<'_>,
    now: f64,
) -> Result<Map<String, Value>, String> {
    if token.len() > MAX_ID_TOKEN_BYTES {
        return Err(format!(
            "the id_token is larger than {MAX_ID_TOKEN_BYTES} bytes"
        ));
    }
    let jws = Jws::parse(token).map_err(|e| format!("invalid id_token: {e}"))?;
    if !rules.algs.contains(&jws.alg) {
        return Err(format!(
            "invalid id_token: signed with unsupported algorithm {}",
            jws.alg
        ));
    }
    keys.verify(&jws).await.map_err(|e| match e {
        KeyError::Setup(d) | KeyError::Invalid(d) => format!("invalid id_token: {d}"),
    })?;
    let mut claims = claims::parse_object_strict(&jws.payload)
        .map_err(|e| format!("invalid id_token: malformed jwt: payload: {e}"))?;
    let reg = claims::registered_claims(&claims).map_err(|e| format!("invalid id_token: {e}"))?;
    if reg.iss.as_deref() != Some(rules.issuer) {
        return Err(format!("invalid id_token: {}", ClaimError::InvalidIssuer));
    }
    check_audience(&reg.aud, claims.get("azp"), rules)?;
    if reg.exp.is_none() || reg.iat.is_none() {
        return Err("invalid id_token: exp and iat are required".into());
    }
    claims::validate_times(&reg, &rules.leeways, now)
        .map_err(|e| format!("invalid id_token: {e}"))?;
    if let Some(expected) = rules.nonce {
        if claims.get("nonce").and_then(Value::as_str) != Some(expected) {
            return Err("invalid id_token nonce".into());
        }
    }
    claims.remove("nonce");
    if rules.max_age > 0 {
        let auth_time = claims
            .get("auth_time")
            .and_then(Value::as_f64)
            .ok_or("missing auth_time claim when max age was requested")?;
        let skew = rules.leeways.clock_skew.seconds(60);
        if auth_time + skew < rules.requested_at - rules.max_age as f64 {
            return Err(format!("auth_time is beyond max age ({})", rules.max_age));
        }
    }
    if let (Some(hash), Some(access_token)) = (claims.get("at_hash"), rules.access_token) {
        check_half_hash(hash, access_token, jws.alg, "at_hash")?;
    }
    if let (Some(hash), Some(code)) = (claims.get("c_hash"), rules.code) {
        check_half_hash(hash, code, jws.alg, "c_hash")?;
    }
    Ok(claims)
}

/// `aud` and `azp` (OpenID Connect Core §3.1.3.7 items 3–5; Vault's rule that the role's
/// `bound_audiences`, or else the client id, must be in `aud`).
fn check_audience(
    aud: &[String],
    azp: Option<&Value>,
    rules: &IdTokenRules<'_>,
) -> Result<(), String> {
    let client = rules.client_id.to_string();
    let wanted = if rules.audiences.is_empty() {
        std::slice::from_ref(&client)
    } else {
        rules.audiences
    };
    if !aud.iter().any(|a| wanted.contains(a)) {
        return Err("invalid id_token audiences".into());
    }
    if aud.len() > 1 && !aud.contains(&client) {
        return Err("invalid id_token: several audiences and none is the client id".into());
    }
    let azp = match azp {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("invalid id_token: azp must be a string".into()),
    };
    if azp.is_some_and(|p| p != rules.client_id) {
        return Err("invalid id_token: authorized party (azp) is not the client id".into());
    }
    let single_client = aud.len() == 1 && aud[0] == rules.client_id;
    if !single_client && azp != Some(rules.client_id) {
        return Err(
            "invalid id_token: the audience is not the client id alone and azp is not the client id"
                .into(),
        );
    }
    Ok(())
}

/// `at_hash` / `c_hash`: base64url of the left half of the hash of `value` with the hash
/// of the token's `alg` (OpenID Connect Core §3.1.3.8, §3.3.2.11).
fn check_half_hash(claim: &Value, value: &str, alg: Alg, name: &str) -> Result<(), String> {
    use base64::Engine;
    let digest: Vec<u8> = match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => sha2::Sha256::digest(value).to_vec(),
        Alg::RS384 | Alg::PS384 | Alg::ES384 => sha2::Sha384::digest(value).to_vec(),
        Alg::RS512 | Alg::PS512 | Alg::ES512 | Alg::EdDSA => sha2::Sha512::digest(value).to_vec(),
    };
    let expected =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]);
    match claim.as_str() {
        Some(h) if h == expected => Ok(()),
        _ => Err(format!("invalid id_token: {name} does not match")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_read_like_vaults() {
        let e = TokenError::OAuth {
            error: "invalid_grant".into(),
            description: "grant request is invalid".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"oauth2: "invalid_grant" "grant request is invalid""#
        );
        let answer = Answer {
            status: 400,
            body: br#"{"error":"invalid_client"}"#.to_vec(),
            max_age: None,
        };
        assert_eq!(
            oauth_error(&answer).unwrap().to_string(),
            r#"oauth2: "invalid_client""#
        );
    }

    fn rules<'a>(audiences: &'a [String]) -> IdTokenRules<'a> {
        IdTokenRules {
            issuer: "https://op",
            client_id: "cid",
            audiences,
            algs: &[Alg::RS256],
            nonce: Some("n"),
            max_age: 0,
            requested_at: 0.0,
            leeways: Leeways::default(),
            access_token: None,
            code: None,
        }
    }

    #[test]
    fn audience_and_authorized_party() {
        let none: Vec<String> = vec![];
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let azp = |p: &str| Value::String(p.into());
        assert!(check_audience(&s(&["cid"]), None, &rules(&none)).is_ok());
        assert!(check_audience(&s(&["other"]), None, &rules(&none)).is_err());
        assert!(check_audience(&s(&["cid", "x"]), None, &rules(&none)).is_err());
        assert!(check_audience(&s(&["cid", "x"]), Some(&azp("cid")), &rules(&none)).is_ok());
        assert!(check_audience(&s(&["y", "x"]), Some(&azp("cid")), &rules(&s(&["x"]))).is_err());
        assert!(check_audience(&s(&["cid"]), Some(&azp("x")), &rules(&none)).is_err());
        let bound = s(&["api"]);
        assert!(check_audience(&s(&["cid"]), None, &rules(&bound)).is_err());
        assert!(check_audience(&s(&["api"]), None, &rules(&bound)).is_err());
        assert!(check_audience(&s(&["api"]), Some(&azp("cid")), &rules(&bound)).is_ok());
    }

    #[test]
    fn half_hashes() {
        // OpenID Connect Core, appendix A.3 (at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").
        let at = Value::String("77QmUPtjPfzWtF2AnpK9RQ".into());
        assert!(check_half_hash(
            &at,
            "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
            Alg::RS256,
            "at_hash"
        )
        .is_ok());
        assert!(check_half_hash(&at, "other", Alg::RS256, "at_hash").is_err());
        assert!(check_half_hash(&Value::Bool(true), "x", Alg::RS256, "at_hash").is_err());
    }
}
