//! OIDC Discovery (OpenID Connect Discovery 1.0 §4) as a key source: the provider metadata
//! at `<oidc_discovery_url>/.well-known/openid-configuration` (parsed with the
//! `openidconnect` crate), whose `issuer` must equal the configured URL exactly, and whose
//! `jwks_uri` becomes a cached remote key set ([`crate::jwks`]).
//!
//! The document is read when the config is written (the write-time check) or, after a
//! restart, at the first login; it is then kept until the config changes.

use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use openidconnect::core::CoreProviderMetadata;
use tokio::sync::OnceCell;

use crate::fetch::Fetcher;
use crate::jwks::{JwksSource, RemoteKeys, COOL_DOWN};
use crate::keys::{Jws, KeyError, KeySource};

/// Keys found through OIDC Discovery.
pub struct DiscoverySource {
    issuer: String,
    fetcher: Fetcher,
    keys: OnceCell<JwksSource>,
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl DiscoverySource {
    /// A source for the issuer base URL `issuer` (without `/.well-known/...`).
    pub fn new(issuer: String, fetcher: Fetcher) -> DiscoverySource {
        DiscoverySource {
            issuer,
            fetcher,
            keys: OnceCell::new(),
            last_failure: Mutex::new(None),
        }
    }

    /// Reads the discovery document and fetches its key set now. Errors:
    /// `error checking oidc discovery URL: <cause>` (DECISIONS D13).
    pub async fn check(&self) -> Result<(), String> {
        self.keys()
            .await
            .map(|_| ())
            .map_err(|cause| format!("error checking oidc discovery URL: {cause}"))
    }

    /// The key set, discovering it on first use. A failed discovery is not retried within
    /// [`COOL_DOWN`]: logins meanwhile get the same error without a fetch.
    async fn keys(&self) -> Result<&JwksSource, String> {
        if let Some(keys) = self.keys.get() {
            return Ok(keys);
        }
        if let Some((at, error)) = self
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            if at.elapsed() < COOL_DOWN {
                return Err(error);
            }
        }
        let result: Result<&JwksSource, String> = self
            .keys
            .get_or_try_init(|| async {
                let jwks_uri = self.discover().await?;
                let set = RemoteKeys::new(jwks_uri, self.fetcher.clone());
                set.fetch_now()
                    .await
                    .map_err(|e| format!("fetching keys: {e}"))?;
                Ok(JwksSource::new(vec![set]))
            })
            .await;
        if let Err(error) = &result {
            *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), error.clone()));
        }
        result
    }

    /// The `jwks_uri` of the provider, after checking its `issuer`.
    async fn discover(&self) -> Result<String, String> {
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
        Ok(metadata.jwks_uri().as_str().to_string())
    }
}

#[async_trait]
impl KeySource for DiscoverySource {
    async fn verify(&self, jws: &Jws) -> Result<(), KeyError> {
        let keys = self
            .keys()
            .await
            .map_err(|e| KeyError::Setup(format!("keyset configuration error: {e}")))?;
        keys.verify(jws).await
    }
}
