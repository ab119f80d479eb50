//! `X-Vault-Wrap-TTL`: how long the caller wants its answer response-wrapped.
//!
//! Vault reads the header with `parseutil.ParseDurationSecond`: whole seconds (`"300"`,
//! `"+300"`), whole days (`"2d"`), or a Go duration (`"90s"`, `"1h30m"`, `"1.5h"`, `"500ms"`).
//! A value that is none of these, or negative, is a 400
//! `error parsing X-Vault-Wrap-TTL header: <Go's message>`, with Go's messages word for word
//! (`time: invalid duration "abc"`, `time: unknown unit "x" in duration "1x"`,
//! `time: missing unit in duration "1.5"`, `strconv.ParseInt: parsing "x": invalid syntax`,
//! `requested wrap ttl cannot be negative`, and for seconds or days beyond a Go duration's
//! ~292 years `multiplication of durations resulted in overflow, one operand may be too large`).
//!
//! Source: Vault `http/handler.go` `requestWrapInfo`; Go `time.ParseDuration`, `strconv.ParseInt`.

use std::time::Duration;

/// Nanoseconds per unit, as Go's `time` package names them.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // micro sign
    ("\u{3bc}s", 1_000), // Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest magnitude a Go `time.Duration` holds (its minimum is -2^63 ns).
const GO_DURATION_LIMIT: u64 = 1 << 63;

/// The wrap TTL asked for by the raw header value: `Ok(None)` for an empty or zero value
/// (no wrapping), `Err(message)` for Vault's 400 message.
pub(super) fn parse(raw: &[u8]) -> Result<Option<Duration>, String> {
    let value = raw.trim_ascii();
    let nanos = parse_duration_second(value)
        .map_err(|e| format!("error parsing X-Vault-Wrap-TTL header: {e}"))?;
    if nanos < 0 {
        return Err(
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative".into(),
        );
    }
    Ok(Some(Duration::from_nanos(nanos as u64)).filter(|d| !d.is_zero()))
}

/// Go's `parseutil.ParseDurationSecond` on a string, in nanoseconds.
fn parse_duration_second(s: &[u8]) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(seconds) = parse_int(s) {
        return scale(seconds, 1_000_000_000);
    }
    if let Some(days) = s.strip_suffix(b"d") {
        let days = parse_int(days)?;
        return scale(days, 86_400_000_000_000);
    }
    parse_go_duration(s)
}

/// `value * unit` nanoseconds, refused where a Go `time.Duration` would overflow.
fn scale(value: i64, unit: i64) -> Result<i64, String> {
    value.checked_mul(unit).ok_or_else(|| {
        "multiplication of durations resulted in overflow, one operand may be too large".into()
    })
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with its error texts.
fn parse_int(s: &[u8]) -> Result<i64, String> {
    let error = |why: &str| format!("strconv.ParseInt: parsing {}: {why}", quote(s));
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(error("invalid syntax"));
    }
    let mut magnitude: u64 = 0;
    for d in digits {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(d - b'0')))
            .filter(|&m| m <= GO_DURATION_LIMIT)
            .ok_or_else(|| error("value out of range"))?;
    }
    match (negative, magnitude) {
        (true, m) => Ok(0i64.wrapping_sub_unsigned(m)),
        (false, m) if m < GO_DURATION_LIMIT => Ok(m as i64),
        _ => Err(error("value out of range")),
    }
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, in nanoseconds.
fn parse_go_duration(orig: &[u8]) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut negative = false;
    if let Some(&c @ (b'-' | b'+')) = s.first() {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for d in &s[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(d - b'0')))
                .filter(|&w| w <= GO_DURATION_LIMIT)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let (mut fraction, mut fraction_scale, mut fraction_len) = (0u64, 1f64, 0);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            fraction_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
            // Digits beyond what a u64 holds are dropped, as Go drops them.
            for d in &s[..fraction_len] {
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(d - b'0')))
                {
                    Some(f) if f < GO_DURATION_LIMIT => {
                        fraction = f;
                        fraction_scale *= 10.0;
                    }
                    _ => break,
                }
            }
            s = &s[fraction_len..];
        }
        if int_len == 0 && fraction_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let unit_name = &s[..unit_len];
        s = &s[unit_len..];
        let unit = UNITS
            .iter()
            .find(|(name, _)| name.as_bytes() == unit_name)
            .map(|&(_, nanos)| nanos)
            .ok_or_else(|| {
                format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit_name),
                    quote(orig)
                )
            })?;
        if whole > GO_DURATION_LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / fraction_scale)) as u64;
            if value > GO_DURATION_LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > GO_DURATION_LIMIT {
            return Err(invalid());
        }
    }
    match (negative, total) {
        (true, t) => Ok(0i64.wrapping_sub_unsigned(t)),
        (false, t) if t < GO_DURATION_LIMIT => Ok(t as i64),
        _ => Err(invalid()),
    }
}

/// Go's `time.quote`: double quotes around the text, `"` and `\` escaped, and every byte of
/// a non-ASCII or control character written as `\xNN`.
fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7f => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<u64> {
        parse(s.as_bytes()).unwrap().map(|d| d.as_secs())
    }

    fn error(s: &str) -> String {
        parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_what_vault_accepts() {
        assert_eq!(secs("300"), Some(300));
        assert_eq!(secs("+300"), Some(300));
        assert_eq!(secs(" 30 "), Some(30));
        assert_eq!(secs("5d"), Some(432_000));
        assert_eq!(secs("1h30m"), Some(5400));
        assert_eq!(secs("1.5h"), Some(5400));
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs(".5m"), Some(30));
        assert_eq!(secs("2h45m30.5s"), Some(9930));
        assert_eq!(parse(b"1500ms").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse("3\u{b5}s".as_bytes()).unwrap(),
            Some(Duration::from_micros(3))
        );
    }

    #[test]
    fn zero_and_empty_ask_for_nothing() {
        for s in ["", "  ", "0", "-0", "+0", "0s", "0d", "0h0m"] {
            assert_eq!(parse(s.as_bytes()), Ok(None), "{s:?}");
        }
    }

    #[test]
    fn refuses_with_gos_messages() {
        let prefix = "error parsing X-Vault-Wrap-TTL header: ";
        for (input, message) in [
            ("abc", r#"time: invalid duration "abc""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1.5", r#"time: missing unit in duration "1.5""#),
            ("1e3", r#"time: unknown unit "e" in duration "1e3""#),
            ("30S", r#"time: unknown unit "S" in duration "30S""#),
            ("xd", r#"strconv.ParseInt: parsing "x": invalid syntax"#),
            ("d", r#"strconv.ParseInt: parsing "": invalid syntax"#),
            (
                "99999999999999999999d",
                r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
            ),
            (
                "9999999999999999999",
                r#"time: invalid duration "9999999999999999999""#,
            ),
            ("-", r#"time: invalid duration "-""#),
            (".s", r#"time: invalid duration ".s""#),
            ("1h-5m", r#"time: unknown unit "h-" in duration "1h-5m""#),
            ("\u{e9}", r#"time: invalid duration "\xc3\xa9""#),
            ("5\"m", r#"time: unknown unit "\"m" in duration "5\"m""#),
            ("-5", "requested wrap ttl cannot be negative"),
            ("-5s", "requested wrap ttl cannot be negative"),
            ("-1d", "requested wrap ttl cannot be negative"),
        ] {
            assert_eq!(error(input), format!("{prefix}{message}"), "{input:?}");
        }
    }

    #[test]
    fn refuses_what_would_overflow_a_go_duration() {
        // 10^10 s is about 317 years: beyond a Go Duration.
        let overflow = "error parsing X-Vault-Wrap-TTL header: multiplication of durations \
                        resulted in overflow, one operand may be too large";
        assert_eq!(error("10000000000"), overflow);
        assert_eq!(error("200000d"), overflow);
        assert!(error("3000000h").contains("invalid duration"));
        assert_eq!(secs("2562047h"), Some(2_562_047 * 3600));
    }

    #[test]
    fn quotes_bytes_as_go_does() {
        assert_eq!(quote("a\u{e9}\n".as_bytes()), r#""a\xc3\xa9\x0a""#);
        assert_eq!(quote(b"a\\b"), r#""a\\b""#);
    }
}
