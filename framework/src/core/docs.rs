//! The core's two documentation endpoints, both generated from the mounted backends' path
//! tables by [`crate::openapi`]:
//!
//! * help: any request with [`Request::help`] set (`GET /v1/<path>?help=1`). For
//!   `auth/<mount>/<path>` it answers Vault's help shape, `{"help": "<text>", "openapi":
//!   <document of that one path>, "see_also": null}` (no envelope, as Vault answers help);
//!   for the mount itself (`auth/<mount>/`) the text lists every route and the document
//!   covers the whole backend, with paths relative to the mount and `servers` naming it.
//! * `GET /v1/sys/internal/specs/openapi`: one OpenAPI 3 document of every mounted path,
//!   `/auth/<mount>/<path>`, answered as the raw document.
//!
//! Help needs a token whose policies grant `read` on the path asked about; the document
//! needs `read` on `sys/internal/specs/openapi`. Help never runs the path's handler,
//! whatever the HTTP verb. (Vault lists in the document only the paths the token may use;
//! authmount lists every mounted path to whoever may read the document.)

use serde_json::{json, Value};

use super::Core;
use crate::error::{Error, Result};
use crate::openapi::{self, Document};
use crate::policy::Capability;
use crate::request::{Operation, Request};
use crate::response::Reply;

impl Core {
    /// Answers a help request for `path` (relative to `/v1/`).
    ///
    /// Errors: 403 without a token allowed on `path`; 404 `unsupported path` for a path that
    /// is not under a mounted backend or that no route of the backend matches.
    pub(super) async fn help(&self, path: &str, req: &Request) -> Result<Reply> {
        self.authorize_capability(req, path, Capability::Read, false)
            .await?;
        let mounted = path
            .strip_prefix("auth/")
            .filter(|rest| !rest.starts_with("token/"));
        let Some((mount, sub_path)) = mounted.map(|r| self.mounts.route(r)).transpose()?.flatten()
        else {
            return Err(Error::unsupported_path(path));
        };
        let router = mount.backend.router();
        let mut doc = Document::new(&format!(
            "/v1/auth/{}",
            mount.entry.path.trim_end_matches('/')
        ));
        let text = if sub_path.is_empty() {
            doc.add_router("", router);
            openapi::backend_help(mount.backend.help(), router)
        } else {
            let matched = router.find(sub_path)?;
            doc.add_path("", matched.spec);
            openapi::path_help(matched.spec, sub_path)
        };
        Ok(Reply::ok(json!({
            "help": text,
            "openapi": doc.into_json(),
            "see_also": Value::Null,
        })))
    }

    /// `GET sys/internal/specs/openapi`: the OpenAPI document of every mounted path.
    pub(super) fn openapi_document(&self, op: Operation) -> Result<Reply> {
        if op != Operation::Read {
            return Err(Error::UnsupportedOperation);
        }
        let mut doc = Document::new("/v1");
        for entry in self.mounts.entries()? {
            if let Some(mount) = self.mounts.get(&entry.path)? {
                doc.add_router(&format!("auth/{}", entry.path), mount.backend.router());
            }
        }
        Ok(Reply::ok(doc.into_json()))
    }
}
