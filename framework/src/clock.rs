//! The one clock every time-dependent rule reads: token expiry and renewal, identity
//! timestamps, JWT time claims, remote key cool-downs.
//!
//! Servers use [`Clock::system`]; tests use [`Clock::manual`] and move time forward with
//! [`Clock::advance`] instead of sleeping, so TTL, expiry and cool-down tests are exact.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    fn the_system_clock_follows_the_system() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let now = Clock::system().unix();
        assert!(now >= before && now <= before + 1);
    }
}
