//! `sys/metrics` of the `sys/` path table: the process's metrics ([`crate::metrics`]) in
//! the Prometheus / OpenMetrics text format.
//!
//! Access: a token whose policies grant `read` on `sys/metrics` (Vault's rule), unless the
//! server config says `telemetry { unauthenticated_metrics_access = true }`
//! ([`Core::set_unauthenticated_metrics`]), then anyone. Like every `sys/` path but the status
//! ones, it answers 503 while sealed.
//!
//! `format`: `prometheus` is the only format served. Vault answers its in-memory JSON shape
//! without `format`; we answer a 400 that says to ask for `format=prometheus` instead. An
//! unknown format is a 400 with Vault's message `metric response format "<f>" unknown`
//! (Vault sends it as text/plain; we send it in `{"errors":[...]}`).
//!
//! Source: Vault API `sys/metrics`; checked against OpenBao 2.7.2.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Core, CoreInner};
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::metrics::{metrics, CONTENT_TYPE};
use crate::path::{Field, FieldType, Path};
use crate::policy::Capability;
use crate::request::{Operation, Request};
use crate::response::Response;

/// The `sys/metrics` entry of the `sys/` path table.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    vec![Path::new("metrics")
        .help("The server's metrics (logins, key fetches, caches, storage, tokens, seal) in the Prometheus text format: GET sys/metrics?format=prometheus. Needs read on sys/metrics unless the server config sets telemetry { unauthenticated_metrics_access = true }.")
        .fields([Field::new(
            "format",
            FieldType::String,
            "The format to export metrics in; only \"prometheus\" is served.",
        )])
        // The handler authenticates itself: the config decides whether a token is needed.
        .unauthenticated()
        .read(core, CoreInner::read_metrics)]
}

impl Core {
    /// `telemetry { unauthenticated_metrics_access = ... }`: whether `sys/metrics` answers
    /// without a token (default false: a token with `read` on `sys/metrics` is needed).
    pub fn set_unauthenticated_metrics(&self, open: bool) {
        self.inner
            .unauthenticated_metrics
            .store(open, Ordering::Relaxed);
    }
}

impl CoreInner {
    /// `GET sys/metrics?format=prometheus`. Errors: 403 without a token granting `read` on
    /// `sys/metrics` (unless unauthenticated access is configured); 400 for a missing or
    /// unknown format.
    async fn read_metrics(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        if !self.unauthenticated_metrics.load(Ordering::Relaxed) {
            let request = Request {
                client_token: req.presented_token.clone(),
                remote_addr: req.remote_addr,
                ..Request::new(Operation::Read, "sys/metrics")
            };
            self.authenticate_for(&request, "sys/metrics", Capability::Read, false)
                .await?;
        }
        match req.fields.str("format").unwrap_or("") {
            "prometheus" => {}
            "" => {
                return Err(Error::invalid(
                    "metrics are served in one format: ask for sys/metrics?format=prometheus",
                ))
            }
            other => {
                return Err(Error::invalid(format!(
                    "metric response format {other:?} unknown"
                )))
            }
        }
        let live = self.tokens.accessors().await.ok().map(|a| a.len());
        let initialized = self.is_initialized().await.unwrap_or(false);
        metrics().set_state(self.seal.is_sealed(), initialized, live);
        Ok(Response::raw_body(200, CONTENT_TYPE, metrics().encode()))
    }
}
