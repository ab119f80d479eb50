//! OIDC Discovery (OpenID Connect Discovery 1.0 §4) as a key source: the provider metadata
//! at `<oidc_discovery_url>/.well-known/openid-configuration` (parsed with the
//! `openidconnect` crate), whose `issuer` must equal the configured URL exactly, and whose
//! `jwks_uri` becomes a cached remote key set ([`crate::jwks`]). The browser login
//! ([`crate::oidc_flow`]) also takes its endpoints from it ([`Endpoints`]).
//!
//! The document is read when the config is written (the write-time check) or, after a
//! restart, at the first login; it is then kept until the config changes.

use std::sync::Mutex;

use async_trait::async_trait;
use authmount_framework::Clock;
use authmount_framework::Mark;
use openidconnect::core::CoreProviderMetadata;
use tokio::sync::OnceCell;

use crate::fetch::Fetcher;
use crate::jwks::{JwksSource, RemoteKeys, COOL_DOWN};
use crate::keys::{Jws, KeyError, KeyMatch, KeySource};

/// The provider endpoints the browser login uses, from the discovery document
/// (OpenID Connect Discovery 1.0 §3; RFC 8628 §4 for the device endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// `issuer`: equal to the configured `oidc_discovery_url`, byte for byte.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization: String,
    /// `token_endpoint` (absent for implicit-only providers).
    pub token: Option<String>,
    /// `userinfo_endpoint`.
    pub userinfo: Option<String>,
    /// `device_authorization_endpoint`.
    pub device_authorization: Option<String>,
}

/// What discovery yields: the endpoints and the key set of `jwks_uri`.
struct Discovered {
    endpoints: Endpoints,
    keys: JwksSource,
}

/// Keys (and endpoints) found through OIDC Discovery.
pub struct DiscoverySource {
    issuer: String,
    fetcher: Fetcher,
    /// Times the cool-down after a failed discovery (the mount's clock).
    clock: Clock,
    found: OnceCell<Discovered>,
    last_failure: Mutex<Option<(Mark, String)>>,
}

impl DiscoverySource {
    /// A source for the issuer base URL `issuer` (without `/.well-known/...`); `clock` times
    /// its cool-downs.
    pub fn new(issuer: String, fetcher: Fetcher, clock: Clock) -> DiscoverySource {
        DiscoverySource {
            issuer,
            fetcher,
            clock,
            found: OnceCell::new(),
            last_failure: Mutex::new(None),
        }
    }

    /// The HTTP client of this provider (its CA bundle, timeouts and size cap), for the
    /// token, userinfo and device endpoints.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The provider's endpoints, discovering them on first use (as [`Self::check`]).
    /// Errors: the discovery failure.
    pub async fn endpoints(&self) -> Result<&Endpoints, String> {
        Ok(&self.discovered().await?.endpoints)
    }

    /// Reads the discovery document and fetches its key set now. Errors:
    /// `error checking oidc discovery URL: <cause>` (DECISIONS D13).
    pub async fn check(&self) -> Result<(), String> {
        self.discovered()
            .await
            .map(|_| ())
            .map_err(|cause| format!("error checking oidc discovery URL: {cause}"))
    }

    /// The endpoints and key set, discovered on first use. A failed discovery is not retried
    /// within [`COOL_DOWN`]: logins meanwhile get the same error without a fetch.
    async fn discovered(&self) -> Result<&Discovered, String> {
        if let Some(found) = self.found.get() {
            return Ok(found);
        }
        if let Some((at, error)) = self
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            if self.clock.since(at) < COOL_DOWN {
                return Err(error);
            }
        }
        let result: Result<&Discovered, String> = self
            .found
            .get_or_try_init(|| async {
                let (endpoints, jwks_uri) = self.discover().await?;
                let set = RemoteKeys::new(jwks_uri, self.fetcher.clone(), self.clock.clone());
                set.fetch_now()
                    .await
                    .map_err(|e| format!("fetching keys: {e}"))?;
                Ok(Discovered {
                    endpoints,
                    keys: JwksSource::new(vec![set]).labelled("oidc_discovery_url"),
                })
            })
            .await;
        if let Err(error) = &result {
            *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((self.clock.mark(), error.clone()));
        }
        result
    }

    /// The endpoints and `jwks_uri` of the provider, after checking its `issuer`; the fetch
    /// is counted in `authmount_key_fetches_total{kind="discovery"}`.
    async fn discover(&self) -> Result<(Endpoints, String), String> {
        let result = self.discover_once().await;
        authmount_framework::metrics::metrics().key_fetch(
            "discovery",
            &self.issuer,
            result.is_ok(),
        );
        result
    }

    async fn discover_once(&self) -> Result<(Endpoints, String), String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc = self.fetcher.get(&url).await?;
        let metadata: CoreProviderMetadata = serde_json::from_slice(&doc.body)
            .map_err(|e| format!("the discovery document is not valid provider metadata: {e}"))?;
        let issuer = metadata.issuer().as_str();
        if issuer != self.issuer {
            return Err(format!(
                "issuer did not match: the document says {issuer:?}, the config {:?}",
                self.issuer
            ));
        }
        // The device endpoint is not part of OpenID Connect Discovery: read it by hand.
        let device_authorization = serde_json::from_slice::<serde_json::Value>(&doc.body)
            .ok()
            .and_then(|v| {
                v.get("device_authorization_endpoint")?
                    .as_str()
                    .map(str::to_string)
            });
        let endpoints = Endpoints {
            issuer: issuer.to_string(),
            authorization: metadata.authorization_endpoint().as_str().to_string(),
            token: metadata.token_endpoint().map(|u| u.as_str().to_string()),
            userinfo: metadata.userinfo_endpoint().map(|u| u.as_str().to_string()),
            device_authorization,
        };
        Ok((endpoints, metadata.jwks_uri().as_str().to_string()))
    }
}

#[async_trait]
impl KeySource for DiscoverySource {
    async fn verify(&self, jws: &Jws) -> Result<KeyMatch, KeyError> {
        let found = self
            .discovered()
            .await
            .map_err(|e| KeyError::Setup(format!("keyset configuration error: {e}")))?;
        found.keys.verify(jws).await
    }
}
