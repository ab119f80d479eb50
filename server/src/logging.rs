//! The server's logs: Vault's `log_format` (`standard`, the default, or `json`: one JSON
//! object a line, from tracing-subscriber's json formatter), chosen by `-log-format` on the
//! command line, else `AUTHMOUNT_LOG_FORMAT`, else `log_format` in the config file.
//!
//! Every line written while a request is served carries the request's id (the `request_id`
//! of its answer): the HTTP edge opens a `request` span with `request_id`, `method` and
//! `path` around it ([`request_span`]); the json format shows it under `span`, the standard
//! format as `request{request_id=...}:`. Nothing logged carries a header, a body, a token or
//! a JWT: paths and statuses only (a login's JWT is in its body).
//!
//! Source: Vault server configuration `log_format`, `-log-format`, `VAULT_LOG_FORMAT`.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (`standard`, Vault's default).
    #[default]
    Standard,
    /// One JSON object a line (`json`).
    Json,
}

impl LogFormat {
    /// Parses Vault's names: `standard` or `json` (any case; empty = standard). Errors: the
    /// message for anything else.
    pub fn parse(name: &str) -> Result<LogFormat, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "standard" => Ok(LogFormat::Standard),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "invalid log format {other:?}: use \"standard\" or \"json\""
            )),
        }
    }

    /// The format to use: the flag's, else `AUTHMOUNT_LOG_FORMAT`'s, else the config's.
    /// Errors: an invalid name, naming where it came from.
    pub fn choose(flag: Option<&str>, config: Option<&str>) -> Result<LogFormat, String> {
        if let Some(flag) = flag {
            return LogFormat::parse(flag).map_err(|e| format!("-log-format: {e}"));
        }
        if let Some(env) = std::env::var("AUTHMOUNT_LOG_FORMAT")
            .ok()
            .filter(|v| !v.is_empty())
        {
            return LogFormat::parse(&env).map_err(|e| format!("AUTHMOUNT_LOG_FORMAT: {e}"));
        }
        LogFormat::parse(config.unwrap_or("")).map_err(|e| format!("log_format: {e}"))
    }
}

/// Installs the process's log subscriber: `level` (`trace` ... `error`, or any
/// `RUST_LOG`-style directive; `RUST_LOG` wins when set) in `format`, to stdout.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Standard => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The span around one HTTP request: its id (the answer's `request_id`), verb and path
/// (never the query string, which may hold a token or a code).
pub fn request_span(request_id: &str, method: &str, path: &str) -> tracing::Span {
    tracing::info_span!(target: "authmount::http", "request", request_id = %request_id, method = %method, path = %path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vaults_names() {
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("standard"), Ok(LogFormat::Standard));
        assert_eq!(LogFormat::parse(""), Ok(LogFormat::Standard));
        assert!(LogFormat::parse("xml").unwrap_err().contains("xml"));
        assert_eq!(
            LogFormat::choose(Some("json"), Some("standard")),
            Ok(LogFormat::Json)
        );
    }
}
