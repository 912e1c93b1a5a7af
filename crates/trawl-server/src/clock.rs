//! The time by which sessions and share links expire: the system's, or one a test moves by hand
//! (so that a test of a 12-hour expiry neither sleeps 12 hours nor races a short timeout).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: nanoseconds since 1970 that only [`Clock::advance`]
    /// changes.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that starts at the system's time now and moves only when told to.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(crate::catalogue::now_ns()))),
        }
    }

    /// Moves a manual clock forward by `by`; the system clock cannot be moved (a no-op).
    pub fn advance(&self, by: Duration) {
        if let Some(ns) = &self.manual {
            let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
            ns.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Nanoseconds since 1970.
    pub fn now_ns(&self) -> i64 {
        match &self.manual {
            Some(ns) => ns.load(Ordering::SeqCst),
            None => crate::catalogue::now_ns(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual();
        let other = clock.clone();
        let t = clock.now_ns();
        assert_eq!(other.now_ns(), t);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(other.now_ns(), t + 3_600_000_000_000);
    }
}
