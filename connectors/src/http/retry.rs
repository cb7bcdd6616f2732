//! Backoff between retries.

use std::time::Duration;

use rand::Rng;

/// "Full jitter" backoff: a uniformly random wait in
/// `[0, min(cap, base * 2^attempt)]`.
///
/// Randomising the whole interval (rather than adding a little jitter to a
/// fixed exponential delay) spreads the retries of many clients that failed
/// together, so they do not hit a recovering server in synchronised waves.
/// `attempt` is 0 for the first retry.
pub fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    let ceiling = base.saturating_mul(factor).min(cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_within_the_exponential_ceiling() {
        let base = Duration::from_millis(10);
        let cap = Duration::from_millis(100);
        for attempt in 0..40 {
            let ceiling = (base * 2u32.saturating_pow(attempt.min(20))).min(cap);
            for _ in 0..50 {
                assert!(full_jitter(base, cap, attempt) <= ceiling);
            }
        }
        assert_eq!(full_jitter(Duration::ZERO, cap, 3), Duration::ZERO);
    }
}
