//! The one clock every time-dependent rule reads: token expiry and renewal, identity
//! timestamps, JWT time claims, remote key cool-downs.
//!
//! Servers use [`Clock::system`]; tests use [`Clock::manual`] and move time forward with
//! [`Clock::advance`] instead of sleeping, so TTL, expiry and cool-down tests are exact.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time. Cheap to clone; clones of a manual clock share its time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock's Unix time in milliseconds.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that stands still at the current system time until [`Clock::advance`]d.
    pub fn manual() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            manual: Some(Arc::new(AtomicI64::new(now))),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.manual {
            ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }

    /// Unix time in milliseconds.
    pub fn unix_millis(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }

    /// Unix time in nanoseconds (a manual clock has millisecond steps). Fits an `i64` until
    /// the year 2262.
    pub fn unix_nanos(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst).saturating_mul(1_000_000),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        }
    }

    /// Unix time in whole seconds.
    pub fn unix(&self) -> i64 {
        self.unix_millis().div_euclid(1000)
    }

    /// Unix time in seconds with a fraction (JWT time claims may carry fractions).
    pub fn unix_f64(&self) -> f64 {
        self.unix_millis() as f64 / 1000.0
    }

    /// The current time as a [`SystemTime`].
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_millis().max(0) as u64)
    }

    /// A point on this clock to measure a span from with [`Clock::since`] (cool-downs,
    /// cache ages): monotonic on the system clock (wall-clock jumps do not move it), the
    /// manual time on a manual clock.
    pub fn mark(&self) -> Mark {
        match &self.manual {
            Some(ms) => Mark::Manual(ms.load(Ordering::SeqCst)),
            None => Mark::System(Instant::now()),
        }
    }

    /// The time passed since `mark` (zero if the mark is from another kind of clock or in
    /// the future).
    pub fn since(&self, mark: Mark) -> Duration {
        match (mark, &self.manual) {
            (Mark::System(at), None) => at.elapsed(),
            (Mark::Manual(at), Some(ms)) => {
                Duration::from_millis(ms.load(Ordering::SeqCst).saturating_sub(at).max(0) as u64)
            }
            _ => Duration::ZERO,
        }
    }
}

/// A point on a [`Clock`], from [`Clock::mark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A point on the system's monotonic clock.
    System(Instant),
    /// A manual clock's Unix time in milliseconds.
    Manual(i64),
}

/// An instant with nanoseconds, as the identity store keeps its `creation_time` and
/// `last_update_time`: Unix nanoseconds inside, RFC 3339 with up to nine fraction digits
/// outside (in storage and in answers), as Go's `time.RFC3339Nano` writes it (UTC, `Z`,
/// trailing zeros of the fraction dropped, no fraction when it is zero:
/// `2026-01-02T03:04:05.1234Z`). Reads also the whole Unix seconds that earlier versions
/// stored. Source: Vault API `identity/entity` reads (`creation_time` as an RFC 3339 string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `clock` reads now.
    pub fn now(clock: &Clock) -> Self {
        Timestamp(clock.unix_nanos())
    }

    /// The instant at whole Unix seconds `secs`.
    pub fn from_unix(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// RFC 3339 in UTC with the fraction Go's `RFC3339Nano` writes (instants before 1970 are
    /// written as 1970-01-01T00:00:00Z).
    pub fn rfc3339(self) -> String {
        let nanos = self.0.max(0);
        let secs = nanos / 1_000_000_000;
        let fraction = nanos % 1_000_000_000;
        let whole = humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
        )
        .to_string();
        if fraction == 0 {
            return whole;
        }
        let digits = format!("{fraction:09}");
        let digits = digits.trim_end_matches('0');
        format!("{}.{digits}Z", whole.trim_end_matches('Z'))
    }

    /// Parses what [`Timestamp::rfc3339`] writes (any RFC 3339 time in UTC). Errors: the
    /// parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = humantime::parse_rfc3339(text).map_err(|e| e.to_string())?;
        let d = t.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
        Ok(Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            /// Earlier versions: whole Unix seconds.
            Seconds(i64),
            Text(String),
        }
        match Stored::deserialize(d)? {
            Stored::Seconds(secs) => Ok(Timestamp::from_unix(secs)),
            Stored::Text(text) => Timestamp::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual();
        let copy = clock.clone();
        let start = clock.unix_millis();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.unix_millis(), start);
        copy.advance(Duration::from_secs(90));
        assert_eq!(clock.unix_millis(), start + 90_000);
        assert_eq!(clock.unix(), (start + 90_000).div_euclid(1000));
    }

    #[test]
    fn timestamps_are_written_as_go_writes_rfc3339_nano() {
        let t = Timestamp(1_796_524_462_338_836_177);
        assert_eq!(t.rfc3339(), "2026-12-06T02:34:22.338836177Z");
        assert_eq!(
            Timestamp(1_796_524_462_339_548_290).rfc3339(),
            "2026-12-06T02:34:22.33954829Z"
        );
        assert_eq!(
            Timestamp::from_unix(1_796_524_462).rfc3339(),
            "2026-12-06T02:34:22Z"
        );
        assert_eq!(Timestamp::parse(&t.rfc3339()), Ok(t));
        // Stored as text; earlier versions stored whole seconds.
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-12-06T02:34:22.338836177Z\""
        );
        let old: Timestamp = serde_json::from_str("1796524462").unwrap();
        assert_eq!(old, Timestamp::from_unix(1_796_524_462));
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn the_system_clock_follows_the_system() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let now = Clock::system().unix();
        assert!(now >= before && now <= before + 1);
    }
}
