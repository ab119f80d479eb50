//! Vault's "duration-seconds" values: `300`, `"300"`, `"5m"`, `"1h30m"`, `"1.5h"`, `"2d"`.
//!
//! Go's duration grammar (`time.ParseDuration`: signed decimal numbers with optional fractions,
//! each with a unit `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m` or `h`, within Go's range of ±2^63
//! ns) plus Vault's integer-days suffix `d`. Values are truncated to whole seconds. Source:
//! Vault `sdk/helper/parseutil.ParseDurationSecond`, Go `time.ParseDuration` (its grammar and
//! limits; the parser is ours).

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
    go_nanos(s)
        .map(|nanos| nanos / 1_000_000_000)
        .map_err(|why| match quote {
            true => go_message(s, &why),
            false => "time: invalid duration".to_string(),
        })
}

/// Why a string is not a Go duration (worded by [`go_message`]).
#[derive(Debug, PartialEq)]
enum GoError {
    /// No number where one is needed, or a total outside Go's range.
    Invalid,
    /// A number without a unit (`"1.5"`).
    MissingUnit,
    /// A unit Go does not know (`"1x"`).
    UnknownUnit(String),
}

/// Go's `time.ParseDuration` message for `s`: `time: unknown unit "x" in duration "1x"`,
/// `time: missing unit in duration "1.5"`, else `time: invalid duration "tomorrow"`.
fn go_message(s: &str, why: &GoError) -> String {
    match why {
        GoError::UnknownUnit(unit) => format!("time: unknown unit {unit:?} in duration {s:?}"),
        GoError::MissingUnit => format!("time: missing unit in duration {s:?}"),
        GoError::Invalid => format!("time: invalid duration {s:?}"),
    }
}

/// Nanoseconds per unit, with Go's spellings (micro sign and Greek mu both mean µs).
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// A Go duration string in nanoseconds. Works on bytes and exact integers: any input length
/// is read once, fractions beyond 18 digits are read and ignored (below a nanosecond), and
/// totals beyond Go's range are refused. Errors: the reason, for the caller to word.
fn go_nanos(s: &str) -> Result<i64, GoError> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(GoError::Invalid);
    }
    // The largest magnitude: 2^63 ns for a negative duration, 2^63 - 1 otherwise.
    let limit: u128 = (1u128 << 63) - u128::from(!negative);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
        let int_len = digits(rest);
        let mut whole: u128 = 0;
        for b in rest[..int_len].bytes() {
            whole = whole * 10 + u128::from(b - b'0');
            if whole > limit {
                return Err(GoError::Invalid);
            }
        }
        rest = &rest[int_len..];
        let (mut fraction, mut scale, mut frac_len) = (0u128, 1u128, 0);
        if let Some(after) = rest.strip_prefix('.') {
            frac_len = digits(after);
            for b in after[..frac_len].bytes().take(18) {
                fraction = fraction * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            rest = &after[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(GoError::Invalid);
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let (unit, tail) = rest.split_at(unit_len);
        let per_unit = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| match unit {
                "" => GoError::MissingUnit,
                other => GoError::UnknownUnit(other.to_string()),
            })?;
        total += whole * per_unit + fraction * per_unit / scale;
        if total > limit {
            return Err(GoError::Invalid);
        }
        rest = tail;
    }
    let total = i128::try_from(total).map_err(|_| GoError::Invalid)?;
    i64::try_from(if negative { -total } else { total }).map_err(|_| GoError::Invalid)
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
    fn reads_go_microsecond_spellings_and_refuses_other_non_ascii_units() {
        assert_eq!(parse_seconds(&json!("0µs")), Ok(0));
        assert_eq!(parse_seconds(&json!("5000000000μs")), Ok(5000));
        assert_eq!(parse_seconds(&json!("1h5000000\u{b5}s")), Ok(3605));
        assert!(parse_seconds(&json!("1é")).is_err());
        assert!(parse_seconds(&json!("5ms€")).is_err());
        assert!(parse_seconds(&json!("1µ")).is_err());
        assert!(parse_seconds(&json!("1us")).is_ok());
    }

    #[test]
    fn reads_go_grammar_exactly() {
        let nanos = |s: &str| go_nanos(s);
        assert_eq!(nanos("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(nanos("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(nanos("+300ms"), Ok(300_000_000));
        assert_eq!(nanos(".5s"), Ok(500_000_000));
        assert_eq!(nanos("5.s"), Ok(5_000_000_000));
        assert_eq!(nanos("1.000000001s"), Ok(1_000_000_001));
        assert_eq!(nanos("0"), Ok(0));
        assert_eq!(nanos("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(nanos("-9223372036854775808ns"), Ok(i64::MIN));
        assert_eq!(nanos("2562047h47m16.854775807s"), Ok(i64::MAX));
        for bad in [
            "",
            "-",
            "1",
            ".s",
            "-.s",
            "1x",
            "1hr",
            "1.5",
            "s",
            "9223372036854775808ns",
            "2562048h",
            "1h1",
            "1µ",
        ] {
            assert!(nanos(bad).is_err(), "{bad:?}");
        }
    }

    /// Found by the `never_panics` property: the duration crate used before this parser
    /// panicked on `"0µs"` (byte offsets taken as character offsets) and never returned on a
    /// fraction of more than 18 digits.
    #[test]
    fn long_fractions_and_non_ascii_units_end_in_an_answer() {
        let digits = "1".repeat(10_000);
        assert_eq!(parse_seconds(&json!(format!("1.{digits}s"))), Ok(1));
        assert_eq!(
            parse_seconds(&json!(
                "0671425682210398085.531032712961691420481973.66725726ns"
            )),
            Err("time: invalid duration".to_string())
        );
        assert_eq!(
            parse_seconds(&json!("1.00000000000000000000009h")),
            Ok(3600)
        );
        assert!(parse_seconds(&json!(format!("{digits}s"))).is_err());
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

    mod properties {
        use super::*;
        use crate::error::Error;
        use crate::path::{convert, FieldType};
        use proptest::prelude::*;

        /// Strings that look like durations: signed numbers with fractions and Go's units,
        /// Vault's `d`, repeated, with stray spaces and out-of-range digits.
        fn duration_like() -> impl Strategy<Value = String> {
            let unit = prop_oneof![
                Just(""),
                Just("ns"),
                Just("us"),
                Just("µs"),
                Just("ms"),
                Just("s"),
                Just("m"),
                Just("h"),
                Just("d"),
                Just("hr"),
                Just("."),
            ];
            let part = ("[-+]?[0-9]{0,22}(\\.[0-9]{0,12})?", unit).prop_map(|(n, u)| n + u);
            (proptest::collection::vec(part, 0..5), " ?", " ?")
                .prop_map(|(parts, lead, trail)| format!("{lead}{}{trail}", parts.concat()))
        }

        fn json_number() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any string or number gives seconds or an error, never a panic; as a field value
            /// an error is a 400 (`Field validation failed`), never anything else.
            #[test]
            fn never_panics_and_rejects_with_a_400(
                value in prop_oneof![
                    duration_like().prop_map(Value::String),
                    any::<String>().prop_map(Value::String),
                    json_number(),
                ]
            ) {
                let _ = parse_seconds(&value);
                for kind in [FieldType::DurationSecond, FieldType::SignedDurationSecond] {
                    if let Err(reason) = convert(kind, &value) {
                        let error = Error::invalid(reason);
                        prop_assert_eq!(error.status(), 400);
                    }
                }
            }

            /// What `format_go` prints, the parser reads back, over Go's whole range.
            #[test]
            fn reads_back_what_go_prints(secs in -9_223_372_036i64..=9_223_372_036) {
                prop_assert_eq!(parse_seconds(&Value::String(format_go(secs))), Ok(secs));
            }

            /// The integer forms are exact: `"N"`, `N`, `"Ns"`, `"Nm"`, `"Nh"` and `"Nd"`.
            #[test]
            fn integer_forms_are_exact(n in -100_000i64..100_000) {
                prop_assert_eq!(parse_seconds(&json!(n)), Ok(n));
                prop_assert_eq!(parse_seconds(&json!(n.to_string())), Ok(n));
                prop_assert_eq!(parse_seconds(&json!(format!("{n}s"))), Ok(n));
                prop_assert_eq!(parse_seconds(&json!(format!("{n}m"))), Ok(n * 60));
                prop_assert_eq!(parse_seconds(&json!(format!("{n}h"))), Ok(n * 3600));
                prop_assert_eq!(parse_seconds(&json!(format!("{n}d"))), Ok(n * 86_400));
            }
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
