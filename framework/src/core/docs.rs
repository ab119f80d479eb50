//! The core's two documentation endpoints, both generated from the path tables by
//! [`crate::openapi`]:
//!
//! * help: any request with [`Request::help`] set (`GET /v1/<path>?help=1`), on every
//!   endpoint the server has. It answers Vault's help shape, `{"help": "<text>", "openapi":
//!   <document of that one path>, "see_also": null}` (no envelope, as Vault answers help);
//!   for a mount itself (`auth/<mount>/`) the text lists every route and the document
//!   covers the whole backend.
//! * `GET /v1/sys/internal/specs/openapi`: one OpenAPI 3 document of every endpoint: the
//!   core's own (`sys/`, `auth/token/`, `identity/`) and every mounted path.
//!
//! Help needs a token whose policies grant `read` on the canonical path asked about; the
//! document needs `read` on `sys/internal/specs/openapi`. Help never runs the path's
//! handler, whatever the HTTP verb.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{CoreInner, Route};
use crate::backend::BackendRequest;
use crate::error::Result;
use crate::openapi::{self, Document};
use crate::path::Matched;
use crate::policy::Capability;
use crate::request::Request;
use crate::response::{Reply, Response};

impl CoreInner {
    /// Answers a help request routed to `route`: for `matched` (with its canonical full
    /// path), or for the whole table when `None` (help on a mount itself).
    ///
    /// Errors: 403 without a token allowed to read the path.
    pub(super) async fn help(
        &self,
        req: &Request,
        route: &Route,
        matched: Option<(&Matched<'_>, &str)>,
    ) -> Result<Reply> {
        let canonical = matched.map_or(route.prefix.as_str(), |(_, c)| c);
        self.authenticate_for(req, canonical, Capability::Read, false)
            .await?;
        let mut doc = Document::new(&format!("/v1/{}", route.prefix.trim_end_matches('/')));
        let text = match matched {
            None => {
                doc.add_router("", &route.table);
                let about = route.backend.as_ref().map_or("", |b| b.help());
                openapi::backend_help(about, &route.table)
            }
            Some((m, _)) => {
                doc.add_path("", m.path);
                openapi::path_help(m.path, &m.canonical)
            }
        };
        Ok(Reply::ok(json!({
            "help": text,
            "openapi": doc.into_json(),
            "see_also": Value::Null,
        })))
    }

    /// `GET sys/internal/specs/openapi`: the OpenAPI document of every endpoint.
    pub(super) async fn openapi_document(
        self: Arc<Self>,
        _req: BackendRequest,
    ) -> Result<Response> {
        let mut doc = Document::new("/v1");
        doc.add_router("sys/", &self.tables.sys);
        doc.add_router("auth/token/", &self.tables.token);
        doc.add_router("identity/", &self.tables.identity);
        for entry in self.mounts.entries()? {
            if let Some(mount) = self.mounts.get(&entry.path)? {
                doc.add_router(&format!("auth/{}", entry.path), &mount.router);
            }
        }
        Ok(Response::raw(Reply::ok(doc.into_json())))
    }
}
