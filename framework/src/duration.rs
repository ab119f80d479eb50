//! Vault's "duration-seconds" values: `300`, `"300"`, `"5m"`, `"1h30m"`, `"1.5h"`, `"2d"`.
//!
//! Go's duration grammar (through the `go-parse-duration` crate, which ports Go's
//! `time.ParseDuration`) plus Vault's integer-days suffix `d`. Values are truncated to whole
//! seconds. Source: Vault `sdk/helper/parseutil.ParseDurationSecond`.

use serde_json::Value;

/// Parses a duration given as a JSON number of seconds or a string, into whole seconds
/// (truncated toward zero; may be negative).
///
/// Errors: a description of why the value is not a duration (a fraction of a second given as
/// a number is truncated, not refused; `"1hr"`, `true`, objects and arrays are refused).
pub fn parse_seconds(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.2e18) {
                Ok(f.trunc() as i64)
            } else {
                Err("number is out of range".to_string())
            }
        }
        Value::String(s) => parse_str(s.trim(), false),
        other => Err(format!("cannot parse {other} as a duration")),
    }
}

/// [`parse_seconds`] on a string, with Go's own message, which quotes the value
/// (`time: invalid duration "tomorrow"`, `time: unknown unit "x" in duration "1x"`,
/// `time: missing unit in duration "1.5"`): for parameters that are never secret and that
/// Vault parses itself (`auth/token/create`'s `ttl`). Field errors elsewhere do not echo
/// the value.
pub fn parse_seconds_quoting(text: &str) -> Result<i64, String> {
    parse_str(text.trim(), true)
}

fn parse_str(s: &str, quote: bool) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Some(days) = s.strip_suffix('d') {
        if let Ok(days) = days.parse::<i64>() {
            return days
                .checked_mul(86_400)
                .ok_or_else(|| "duration is out of range".to_string());
        }
    }
    go_parse_duration::parse_duration(s)
        .map(|nanos| nanos / 1_000_000_000)
        .map_err(|go_parse_duration::Error::ParseError(why)| match quote {
            true => go_message(s, &why),
            false => "time: invalid duration".to_string(),
        })
}

/// Go's `time.ParseDuration` message for `s`, from the parser's own description:
/// `time: unknown unit "x" in duration "1x"`, `time: missing unit in duration "1.5"`, else
/// `time: invalid duration "tomorrow"`.
fn go_message(s: &str, why: &str) -> String {
    if let Some((unit, _)) = why
        .strip_prefix("unknown unit ")
        .and_then(|rest| rest.split_once(" in duration "))
    {
        return format!("time: unknown unit {unit:?} in duration {s:?}");
    }
    if why.starts_with("missing unit") {
        return format!("time: missing unit in duration {s:?}");
    }
    format!("time: invalid duration {s:?}")
}

/// Formats seconds as Go prints a `time.Duration` (`"1h0m0s"`, `"10m0s"`, `"30s"`), the way
/// Vault quotes durations inside its messages.
pub fn format_go(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// Formats seconds as Vault quotes a capped TTL (`TTL of "5h1s" exceeded ...`) and as its
/// CLI prints durations: Go's `time.Duration` text without the zero units (`"1h"`,
/// `"1h30m"`, `"5h1s"`, `"45s"`, `"0s"`).
pub fn format_compact(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = sign.to_string();
    for (value, unit) in [(h, "h"), (m, "m"), (sec, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.len() == sign.len() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_durations_drop_zero_units() {
        for (secs, text) in [
            (0, "0s"),
            (45, "45s"),
            (90, "1m30s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (18001, "5h1s"),
            (90000, "25h"),
        ] {
            assert_eq!(format_compact(secs), text);
        }
    }

    #[test]
    fn accepts_vault_forms() {
        assert_eq!(parse_seconds(&json!(300)), Ok(300));
        assert_eq!(parse_seconds(&json!("300")), Ok(300));
        assert_eq!(parse_seconds(&json!("5m")), Ok(300));
        assert_eq!(parse_seconds(&json!("1h30m")), Ok(5400));
        assert_eq!(parse_seconds(&json!("1.5h")), Ok(5400));
        assert_eq!(parse_seconds(&json!("2d")), Ok(172_800));
        assert_eq!(parse_seconds(&json!("1500ms")), Ok(1));
        assert_eq!(parse_seconds(&json!(-1)), Ok(-1));
        assert_eq!(parse_seconds(&json!("-1")), Ok(-1));
        assert_eq!(parse_seconds(&json!(1.9)), Ok(1));
    }

    #[test]
    fn refuses_what_go_refuses() {
        assert!(parse_seconds(&json!("1hr")).is_err());
        assert!(parse_seconds(&json!("h")).is_err());
        assert!(parse_seconds(&json!(true)).is_err());
        assert!(parse_seconds(&json!({"a": 1})).is_err());
        assert!(parse_seconds(&json!(1e300)).is_err());
        // Go's messages, word for word, where the value may be quoted.
        for (given, message) in [
            ("tomorrow", r#"time: invalid duration "tomorrow""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1hr", r#"time: unknown unit "hr" in duration "1hr""#),
            ("1.5", r#"time: missing unit in duration "1.5""#),
        ] {
            assert_eq!(parse_seconds_quoting(given), Err(message.to_string()));
            assert_eq!(
                parse_seconds(&json!(given)),
                Err("time: invalid duration".to_string()),
                "field errors do not echo the value"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go(3600), "1h0m0s");
        assert_eq!(format_go(600), "10m0s");
        assert_eq!(format_go(30), "30s");
        assert_eq!(format_go(2_764_800), "768h0m0s");
    }
}
