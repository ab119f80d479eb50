//! The mount's config (`auth/<mount>/config`): fields, write-time checks, read shape.
//!
//! Source: Vault JWT API `config` (reference §2), with DECISIONS D13. A write replaces the
//! whole config (only `namespace_in_state` is kept when omitted); nothing is stored unless
//! every check passes.

use std::sync::Arc;

use authmount_framework::{Clock, Error, Field, FieldData, FieldType, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::fetch::Fetcher;
use crate::jwks::{InlineKeys, JwksSource, RemoteKeys};
use crate::keys::{Alg, KeySource, StaticKeys};
use crate::oidc::DiscoverySource;

/// The config as stored. Field names and meanings are Vault's (reference §2.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtConfig {
    /// `oidc_discovery_url`: issuer base URL; keys come from its discovery document.
    pub oidc_discovery_url: String,
    /// `oidc_discovery_ca_pem`.
    pub oidc_discovery_ca_pem: String,
    /// `oidc_client_id`.
    pub oidc_client_id: String,
    /// `oidc_client_secret`: write-only, never returned.
    pub oidc_client_secret: String,
    /// `oidc_response_mode`: "", `query` or `form_post`.
    pub oidc_response_mode: String,
    /// `oidc_response_types`: each `code` or `id_token`.
    pub oidc_response_types: Vec<String>,
    /// `jwks_url`.
    pub jwks_url: String,
    /// `jwks_ca_pem`.
    pub jwks_ca_pem: String,
    /// `jwks_pairs`: objects `{"jwks_url","jwks_ca_pem"}`, stored as given.
    pub jwks_pairs: Vec<Value>,
    /// `jwt_validation_pubkeys`: PEM public keys or certificates.
    pub jwt_validation_pubkeys: Vec<String>,
    /// `jwt_supported_algs`: empty means all ten asymmetric algorithms.
    pub jwt_supported_algs: Vec<String>,
    /// `bound_issuer`: exact `iss` when non-empty.
    pub bound_issuer: String,
    /// `default_role`, lower-cased.
    pub default_role: String,
    /// `provider_config`.
    pub provider_config: Map<String, Value>,
    /// `namespace_in_state`: true for a new config, kept when omitted.
    pub namespace_in_state: bool,
    /// `unsupported_critical_cert_extensions`: dotted OIDs.
    pub unsupported_critical_cert_extensions: Vec<String>,
    /// `jwks_inline` (authmount, not Vault): a JWKS document held in the config, as written
    /// (a JSON object or a string holding one); `null` when unset.
    pub jwks_inline: Value,
}

/// A config with its key source and allowed algorithms ready for logins; built once per write.
pub struct ParsedConfig {
    /// What is stored.
    pub stored: JwtConfig,
    /// Where signatures are checked.
    pub keys: Arc<dyn KeySource>,
    /// The allowed `alg` values (all ten when the config lists none).
    pub algs: Vec<Alg>,
    /// The OIDC Discovery source (also in `keys`) when the config has `oidc_discovery_url`:
    /// the browser login takes the provider's endpoints and HTTP client from it.
    pub(crate) discovery: Option<Arc<DiscoverySource>>,
    /// Warnings for the write that made this config (entries of `jwks_inline` skipped).
    pub warnings: Vec<String>,
}

/// The fields of `config`.
pub fn fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new(
            "oidc_discovery_url",
            String,
            "OIDC Discovery URL, without any .well-known component (base path).",
        ),
        Field::new(
            "oidc_discovery_ca_pem",
            String,
            "CA certificate or chain (PEM) for the discovery URL.",
        ),
        Field::new(
            "oidc_client_id",
            String,
            "The OAuth client id for the OIDC browser flow.",
        ),
        Field::new(
            "oidc_client_secret",
            String,
            "The OAuth client secret; never returned.",
        )
        .sensitive(),
        Field::new("oidc_response_mode", String, "'query' or 'form_post'."),
        Field::new(
            "oidc_response_types",
            CommaStringSlice,
            "'code' and/or 'id_token'.",
        ),
        Field::new(
            "jwks_url",
            String,
            "JWKS URL to fetch verification keys from.",
        ),
        Field::new(
            "jwks_ca_pem",
            String,
            "CA certificate or chain (PEM) for the JWKS URL.",
        ),
        Field::new(
            "jwks_pairs",
            Raw,
            "List of {jwks_url, jwks_ca_pem} objects.",
        ),
        Field::new(
            "jwt_validation_pubkeys",
            CommaStringSlice,
            "PEM public keys or certificates that verify JWTs.",
        ),
        Field::new(
            "jwt_supported_algs",
            CommaStringSlice,
            "Allowed JWS algorithms; empty means all asymmetric ones.",
        ),
        Field::new(
            "bound_issuer",
            String,
            "The exact value the 'iss' claim must have.",
        ),
        Field::new(
            "default_role",
            LowerCaseString,
            "Role used when a login names none.",
        ),
        Field::new("provider_config", Map, "Provider-specific settings."),
        Field::new(
            "namespace_in_state",
            Bool,
            "Put the namespace in the OIDC state.",
        ),
        Field::new(
            "unsupported_critical_cert_extensions",
            CommaStringSlice,
            "Critical certificate extensions (OIDs) to tolerate.",
        ),
        Field::new(
            "jwks_inline",
            Raw,
            "A JWKS document (JSON object, or a string holding one) whose keys verify JWTs; exclusive with the other key sources. authmount only.",
        ),
    ]
}

const PROVIDERS: [&str; 5] = ["azure", "gsuite", "okta", "secureauth", "ibmisam"];

impl JwtConfig {
    /// Builds a config from a write, replacing everything but `namespace_in_state` of
    /// `previous`, and runs the checks of reference §2.2, remote sources fetched (their
    /// cool-downs timed by `clock`). Errors: 400 with Vault's message.
    pub async fn from_write(
        fields: &FieldData,
        previous: Option<&JwtConfig>,
        clock: &Clock,
    ) -> Result<ParsedConfig> {
        let s = |name: &str| fields.str(name).unwrap_or_default().to_string();
        let list = |name: &str| fields.strings(name).unwrap_or_default();
        let jwks_pairs = match fields.get("jwks_pairs") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(invalid_pairs()),
        };
        let config = JwtConfig {
            oidc_discovery_url: s("oidc_discovery_url"),
            oidc_discovery_ca_pem: s("oidc_discovery_ca_pem"),
            oidc_client_id: s("oidc_client_id"),
            oidc_client_secret: s("oidc_client_secret"),
            oidc_response_mode: s("oidc_response_mode"),
            oidc_response_types: list("oidc_response_types"),
            jwks_url: s("jwks_url"),
            jwks_ca_pem: s("jwks_ca_pem"),
            jwks_pairs,
            jwt_validation_pubkeys: list("jwt_validation_pubkeys"),
            jwt_supported_algs: list("jwt_supported_algs"),
            bound_issuer: s("bound_issuer"),
            default_role: s("default_role"),
            provider_config: fields
                .get("provider_config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            namespace_in_state: fields
                .bool("namespace_in_state")
                .unwrap_or_else(|| previous.is_none_or(|p| p.namespace_in_state)),
            unsupported_critical_cert_extensions: list("unsupported_critical_cert_extensions"),
            jwks_inline: match fields.get("jwks_inline") {
                None | Some(Value::Null) => Value::Null,
                Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
                Some(v) => v.clone(),
            },
        };
        config.build(true, clock).await
    }

    /// Validates a config and builds its key source. With `check_remote` (a write), remote
    /// sources are fetched now and a failure refuses the write; without it (loading a stored
    /// config), they are fetched at the first login; `clock` times their cool-downs. The cheap checks run first, in Vault's
    /// order, then the network checks.
    pub async fn build(self, check_remote: bool, clock: &Clock) -> Result<ParsedConfig> {
        let c = &self;
        let sources = [
            !c.oidc_discovery_url.is_empty(),
            !c.jwt_validation_pubkeys.is_empty(),
            !c.jwks_url.is_empty(),
            !c.jwks_pairs.is_empty(),
        ];
        let inline = !c.jwks_inline.is_null();
        if inline && sources.iter().any(|s| *s) {
            return Err(Error::invalid(
                "'jwks_inline' cannot be combined with 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url'",
            ));
        }
        if !inline && sources.iter().filter(|s| **s).count() != 1 {
            return Err(Error::invalid(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
            ));
        }
        if c.oidc_client_id.is_empty() != c.oidc_client_secret.is_empty() {
            return Err(Error::invalid(
                "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC",
            ));
        }
        if !c.oidc_client_id.is_empty() && c.oidc_discovery_url.is_empty() {
            return Err(Error::invalid("'oidc_discovery_url' must be set for OIDC"));
        }
        if !c.jwks_ca_pem.is_empty() && !c.jwks_pairs.is_empty() {
            return Err(Error::invalid(
                "CA PEMs must be provided as part of the 'jwks_pairs' when using multiple JWKS URLs",
            ));
        }
        if !c.jwks_pairs.is_empty() && !c.bound_issuer.is_empty() {
            return Err(Error::invalid(
                "Bound issuer is not supported for use with 'jwks_pairs'",
            ));
        }
        let pairs = parse_pairs(&c.jwks_pairs)?;
        let static_keys = if c.jwt_validation_pubkeys.is_empty() {
            None
        } else {
            Some(StaticKeys::from_pems(&c.jwt_validation_pubkeys).map_err(Error::invalid)?)
        };
        let inline_keys = match inline {
            false => None,
            true => Some(
                InlineKeys::parse(&c.jwks_inline)
                    .map_err(|e| Error::invalid(format!("invalid jwks_inline: {e}")))?,
            ),
        };
        let algs = parse_algs(&c.jwt_supported_algs)?;
        validate_oidc_response(c)?;
        validate_provider(&c.provider_config)?;
        let mut discovery = None;
        let mut warnings = Vec::new();
        let keys: Arc<dyn KeySource> = if let Some(keys) = static_keys {
            Arc::new(keys)
        } else if let Some((keys, skipped)) = inline_keys {
            warnings.extend(
                skipped
                    .into_iter()
                    .map(|s| format!("jwks_inline: skipped an unusable key: {s}")),
            );
            Arc::new(keys)
        } else if !c.oidc_discovery_url.is_empty() {
            let fetcher = Fetcher::new(&c.oidc_discovery_ca_pem)
                .map_err(|e| Error::invalid(format!("error checking oidc discovery URL: {e}")))?;
            let source = Arc::new(DiscoverySource::new(
                c.oidc_discovery_url.clone(),
                fetcher,
                clock.clone(),
            ));
            if check_remote {
                source.check().await.map_err(Error::invalid)?;
            }
            discovery = Some(source.clone());
            source
        } else {
            let urls = if c.jwks_url.is_empty() {
                pairs
            } else {
                vec![(c.jwks_url.clone(), c.jwks_ca_pem.clone())]
            };
            let mut sets = Vec::new();
            for (url, ca) in urls {
                let fetcher = Fetcher::new(&ca)
                    .map_err(|e| Error::invalid(format!("error checking jwks_ca_pem: {e}")))?;
                sets.push(RemoteKeys::new(url, fetcher, clock.clone()));
            }
            let field = match c.jwks_url.is_empty() {
                true => "jwks_pairs",
                false => "jwks_url",
            };
            let source = JwksSource::new(sets).labelled(field);
            if check_remote {
                source.check().await.map_err(Error::invalid)?;
            }
            Arc::new(source)
        };
        Ok(ParsedConfig {
            stored: self,
            keys,
            algs,
            discovery,
            warnings,
        })
    }

    /// The `data` of a config read (reference §2.3): every field but the client secret,
    /// empty lists as `[]`, an empty provider config as `{}`.
    pub fn read_data(&self) -> Map<String, Value> {
        let v = json!({
            "oidc_discovery_url": self.oidc_discovery_url,
            "oidc_discovery_ca_pem": self.oidc_discovery_ca_pem,
            "oidc_client_id": self.oidc_client_id,
            "oidc_response_mode": self.oidc_response_mode,
            "oidc_response_types": self.oidc_response_types,
            "jwks_url": self.jwks_url,
            "jwks_ca_pem": self.jwks_ca_pem,
            "jwks_pairs": self.jwks_pairs,
            "jwt_validation_pubkeys": self.jwt_validation_pubkeys,
            "jwt_supported_algs": self.jwt_supported_algs,
            "bound_issuer": self.bound_issuer,
            "default_role": self.default_role,
            "provider_config": self.provider_config,
            "namespace_in_state": self.namespace_in_state,
            "unsupported_critical_cert_extensions": self.unsupported_critical_cert_extensions,
        });
        let mut data = v.as_object().cloned().unwrap_or_default();
        // authmount's own field appears only when set, so Vault's read shape is kept.
        if !self.jwks_inline.is_null() {
            data.insert("jwks_inline".into(), self.jwks_inline.clone());
        }
        data
    }
}

fn invalid_pairs() -> Error {
    Error::invalid("invalid jwks_pairs: jwks_pairs must be provided as a list of json objects with the fields jwks_url and jwks_ca_pem")
}

/// The `(jwks_url, jwks_ca_pem)` of each `jwks_pairs` element. Errors: an element that is
/// not an object with a non-empty string `jwks_url`.
fn parse_pairs(pairs: &[Value]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            let url = p
                .get("jwks_url")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty());
            let ca = p
                .get("jwks_ca_pem")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match (p.is_object(), url) {
                (true, Some(url)) => Ok((url.to_string(), ca.to_string())),
                _ => Err(invalid_pairs()),
            }
        })
        .collect()
}

fn parse_algs(names: &[String]) -> Result<Vec<Alg>> {
    if names.is_empty() {
        return Ok(Alg::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            Alg::from_name(n).ok_or_else(|| {
                Error::invalid(format!(
                    "invalid jwt_supported_algs: unsupported signing algorithm {n:?}"
                ))
            })
        })
        .collect()
}

fn validate_oidc_response(c: &JwtConfig) -> Result<()> {
    if c.oidc_response_types
        .iter()
        .any(|t| t != "code" && t != "id_token")
    {
        return Err(Error::invalid(format!(
            "invalid response_types [{}]. 'code' and 'id_token' are allowed",
            c.oidc_response_types.join(" ")
        )));
    }
    match c.oidc_response_mode.as_str() {
        "" | "query" => {
            if c.oidc_response_types.iter().any(|t| t == "id_token") {
                return Err(Error::invalid(
                    "query response_mode may not be used with an id_token response_type",
                ));
            }
            Ok(())
        }
        "form_post" => Ok(()),
        other => Err(Error::invalid(format!("invalid response_mode: {other:?}"))),
    }
}

fn validate_provider(provider_config: &Map<String, Value>) -> Result<()> {
    if provider_config.is_empty() {
        return Ok(());
    }
    let provider = provider_config
        .get("provider")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::invalid("invalid provider_config: 'provider' field not found in provider_config")
        })?;
    if !PROVIDERS.contains(&provider) {
        return Err(Error::invalid(format!(
            "invalid provider_config: provider {provider:?} not found in custom providers"
        )));
    }
    Err(Error::invalid(format!(
        "invalid provider_config: error initializing {provider:?} provider_config: provider-specific group and user-info fetching is not supported by authmount"
    )))
}
