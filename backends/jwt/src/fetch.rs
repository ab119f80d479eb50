//! Outbound HTTP to identity providers: reqwest over rustls, with the configured CA bundle or
//! the system roots, connect and total timeouts, a cap on response size and few redirects.
//!
//! URLs come only from the config (`jwks_url`, `jwks_pairs`, `oidc_discovery_url`) and the
//! discovery document it names (`jwks_uri`, and for the browser login the token, userinfo and
//! device authorization endpoints); nothing named by a token (`jku`, `x5u`, distributed
//! claims) is ever fetched.

use std::time::Duration;

/// The largest document fetched, in bytes: a bigger JWKS or discovery document is refused.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole fetch may take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;

/// A fetched document and how long the server says it may be cached.
#[derive(Debug)]
pub struct Document {
    /// The body (at most [`MAX_DOCUMENT_BYTES`]).
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when given.
    pub max_age: Option<Duration>,
}

/// An HTTP client for one trust configuration (one CA bundle, or the system roots).
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    /// A client trusting exactly the certificates of `ca_pem`, or the system roots when it is
    /// empty. Errors: a CA bundle that does not parse.
    pub fn new(ca_pem: &str) -> Result<Fetcher, String> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .user_agent(concat!("authmount/", env!("CARGO_PKG_VERSION")));
        if !ca_pem.trim().is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
                .map_err(|e| format!("invalid CA PEM: {e}"))?;
            if certs.is_empty() {
                return Err("invalid CA PEM: no certificate found".into());
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Fetcher { client })
    }

    /// GETs `url`. Errors: transport failures, a status other than 200
    /// (`get keys failed: 500 Internal Server Error`), a body over the size cap.
    pub async fn get(&self, url: &str) -> Result<Document, String> {
        let answer = self.send(self.client.get(url)).await?;
        if answer.status != 200 {
            return Err(format!(
                "get keys failed: {}",
                reqwest::StatusCode::from_u16(answer.status)
                    .map_or_else(|_| answer.status.to_string(), |s| s.to_string())
            ));
        }
        Ok(Document {
            body: answer.body,
            max_age: answer.max_age,
        })
    }

    /// POSTs `form` as `application/x-www-form-urlencoded` to `url` (an OAuth 2.0 token or
    /// device authorization endpoint, RFC 6749 §4.1.3, RFC 8628 §3.1), with HTTP Basic
    /// client authentication when `basic` is given (RFC 6749 §2.3.1: both parts
    /// form-urlencoded first). Any status is returned with its body (OAuth errors come as
    /// 400 with JSON). Errors: transport failures and timeouts, a body over the size cap.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Answer, String> {
        let mut request = self.client.post(url).form(form);
        if let Some((id, secret)) = basic {
            let encode = |s: &str| form_urlencode(s);
            request = request.basic_auth(encode(id), Some(encode(secret)));
        }
        self.send(request).await
    }

    /// GETs `url` with `Authorization: Bearer <token>` (RFC 6750 §2.1; the OpenID Connect
    /// userinfo endpoint). Any status is returned with its body. Errors: as [`Fetcher::post_form`].
    pub async fn get_bearer(&self, url: &str, token: &str) -> Result<Answer, String> {
        self.send(self.client.get(url).bearer_auth(token)).await
    }

    /// Sends `request` (asking for JSON) and reads the answer under the size cap.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let mut response = request
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the response failed: {}", error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body,
            max_age,
        })
    }
}

/// An HTTP answer of any status, its body read under [`MAX_DOCUMENT_BYTES`].
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when given.
    pub max_age: Option<Duration>,
}

/// `application/x-www-form-urlencoded` encoding of one value (WHATWG URL §5.2), as RFC 6749
/// §2.3.1 wants for the client id and secret inside HTTP Basic credentials.
fn form_urlencode(value: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", [("v", value)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("v=").to_string()))
        .unwrap_or_default()
}

fn too_large() -> String {
    format!("response is larger than {MAX_DOCUMENT_BYTES} bytes")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `max-age=N` of a `Cache-Control` header (RFC 9111 §5.2.2.1).
fn parse_max_age(header: &str) -> Option<Duration> {
    header.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            parse_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("max-age=x"), None);
    }

    #[test]
    fn form_encodes_basic_credentials() {
        assert_eq!(form_urlencode("plain-id_1.2~"), "plain-id_1.2%7E");
        assert_eq!(form_urlencode("a b:c/d+e%"), "a+b%3Ac%2Fd%2Be%25");
    }

    #[test]
    fn refuses_a_bad_ca_bundle() {
        assert!(Fetcher::new("not a pem").is_err());
        assert!(Fetcher::new("").is_ok());
    }
}
