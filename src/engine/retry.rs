//! The retry policy: how long to wait before retrying a chunk, and when to give up.
//!
//! This module owns the backoff arithmetic, `Retry-After` parsing and the engine's tiny
//! deterministic random source. It does not decide *whether* a failure is retryable (that is
//! [`crate::engine::classify`]) and never reads a clock or an OS random source.

/// The longest wait the engine computes: an hour (see [`RetryPolicy::delay_ms`]).
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// Backoff with full jitter, capped, with a retry budget per chunk.
///
/// The `n`-th retry (1-based) waits a uniformly random time in
/// `[0, min(max_interval_ms, base_interval_ms · 2^(n−1))]`; a `Retry-After` answer raises
/// that to at least the server's delay.
///
/// ```
/// use resumable_wasm::engine::retry::RetryPolicy;
/// let p = RetryPolicy { max_retries: 8, base_interval_ms: 500, max_interval_ms: 30_000 };
/// assert_eq!(p.ceiling_ms(1), 500);
/// assert_eq!(p.ceiling_ms(3), 2_000);
/// assert_eq!(p.ceiling_ms(20), 30_000);
/// assert!(p.delay_ms(2, 0xdead_beef, None) <= 1_000);
/// assert!(p.delay_ms(1, 7, Some(5_000)) >= 5_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries allowed per chunk (`maxChunkRetries`, default 8).
    pub max_retries: u32,
    /// The first retry's ceiling (`chunkRetryInterval`, default 500 ms).
    pub base_interval_ms: u64,
    /// The largest ceiling (`maxRetryInterval`, default 30 000 ms).
    pub max_interval_ms: u64,
}

impl RetryPolicy {
    /// Whether a chunk that has already been retried `retries` times may be retried again.
    #[must_use]
    pub fn allows(&self, retries: u32) -> bool {
        retries < self.max_retries
    }

    /// The jitter ceiling of retry number `retry` (1-based).
    #[must_use]
    pub fn ceiling_ms(&self, retry: u32) -> u64 {
        let shift = retry.saturating_sub(1).min(63);
        let grown = self.base_interval_ms.checked_shl(shift).unwrap_or(u64::MAX);
        let grown = if shift > 0 && grown >> shift != self.base_interval_ms {
            u64::MAX
        } else {
            grown
        };
        grown.min(self.max_interval_ms.max(self.base_interval_ms))
    }

    /// The delay before retry number `retry` (1-based), from a random value `random` and an
    /// optional server minimum `retry_after_ms`; never more than [`MAX_DELAY_MS`], whatever the
    /// server asked for.
    #[must_use]
    pub fn delay_ms(&self, retry: u32, random: u64, retry_after_ms: Option<u64>) -> u64 {
        let ceiling = self.ceiling_ms(retry).min(MAX_DELAY_MS);
        let jittered = random % (ceiling + 1);
        jittered.max(retry_after_ms.unwrap_or(0)).min(MAX_DELAY_MS)
    }
}

/// Parses a `Retry-After` header in its delta-seconds form into milliseconds.
///
/// HTTP dates are ignored (`None`): comparing them needs a wall clock the engine does not have.
///
/// ```
/// use resumable_wasm::engine::retry::parse_retry_after;
/// assert_eq!(parse_retry_after(" 3 "), Some(3_000));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
/// ```
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

/// A xorshift64* generator seeded by the caller: deterministic jitter without an OS source.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed non-zero constant).
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_retries: 3,
            base_interval_ms: 500,
            max_interval_ms: 30_000,
        };
        let c: Vec<u64> = (1..=8).map(|n| p.ceiling_ms(n)).collect();
        assert_eq!(c, vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert!(p.allows(2));
        assert!(!p.allows(3));
        let mut rng = Rng::new(1);
        for n in 1..10 {
            let d = p.delay_ms(n, rng.next_u64(), None);
            assert!(d <= p.ceiling_ms(n));
        }
        assert_eq!(p.delay_ms(1, 10, Some(60_000)), 60_000);
        let huge = RetryPolicy {
            max_retries: 1,
            base_interval_ms: u64::MAX / 2,
            max_interval_ms: u64::MAX,
        };
        assert_eq!(huge.ceiling_ms(5), u64::MAX);
        let zero = RetryPolicy {
            max_retries: 1,
            base_interval_ms: 0,
            max_interval_ms: 0,
        };
        assert_eq!(zero.delay_ms(4, 12345, None), 0);
    }

    #[test]
    fn no_delay_exceeds_an_hour() {
        let p = RetryPolicy {
            max_retries: 100,
            base_interval_ms: MAX_DELAY_MS,
            max_interval_ms: MAX_DELAY_MS,
        };
        for retry in [1, 2, 40, 64, 100] {
            assert!(p.delay_ms(retry, u64::MAX, None) <= MAX_DELAY_MS);
        }
        // A server's Retry-After of a day is honoured up to the bound.
        let day = parse_retry_after("86400");
        assert_eq!(p.delay_ms(1, 0, day), MAX_DELAY_MS);
        assert_eq!(
            p.delay_ms(1, 0, parse_retry_after("999999999999")),
            MAX_DELAY_MS
        );
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("0"), Some(0));
        assert_eq!(parse_retry_after("120"), Some(120_000));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("1.5"), None);
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0);
    }
}
