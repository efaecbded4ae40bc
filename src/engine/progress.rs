//! Speed and ETA from a series of (time, bytes) samples.
//!
//! This module owns only the smoothing arithmetic; the scheduler decides which bytes count
//! (confirmed chunks, plus bytes in flight when the transport reports them).

/// An exponentially smoothed transfer speed.
///
/// ```
/// use resumable_wasm::engine::progress::Speed;
/// let mut s = Speed::default();
/// s.sample(0, 0);
/// s.sample(1_000, 1_000_000);
/// assert_eq!(s.bytes_per_second(), 1_000_000.0);
/// assert_eq!(s.eta_ms(500_000), Some(500));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Speed {
    last: Option<(u64, u64)>,
    bps: f64,
}

/// Weight of the newest sample in the average.
const SMOOTHING: f64 = 0.3;
/// Samples closer together than this are merged into the next one.
const MIN_INTERVAL_MS: u64 = 200;

impl Speed {
    /// Records that `bytes` (a running total) were reached at `now_ms`.
    pub fn sample(&mut self, now_ms: u64, bytes: u64) {
        match self.last {
            None => self.last = Some((now_ms, bytes)),
            Some((t, b)) => {
                if bytes < b {
                    self.last = Some((now_ms, bytes));
                    return;
                }
                let dt = now_ms.saturating_sub(t);
                if dt == 0 || (dt < MIN_INTERVAL_MS && self.bps > 0.0) {
                    return;
                }
                #[allow(clippy::cast_precision_loss)]
                let inst = (bytes - b) as f64 * 1000.0 / dt as f64;
                self.bps = if self.bps > 0.0 {
                    SMOOTHING * inst + (1.0 - SMOOTHING) * self.bps
                } else {
                    inst
                };
                self.last = Some((now_ms, bytes));
            }
        }
    }

    /// The smoothed speed in bytes per second (0 before two samples).
    #[must_use]
    pub fn bytes_per_second(&self) -> f64 {
        self.bps
    }

    /// Milliseconds to send `remaining` bytes at the current speed; `None` while unknown.
    #[must_use]
    pub fn eta_ms(&self, remaining: u64) -> Option<u64> {
        if remaining == 0 {
            return Some(0);
        }
        if self.bps <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let ms = remaining as f64 * 1000.0 / self.bps;
        if ms.is_finite() && ms < 9.0e15 {
            // Finite, non-negative and below 2^53: the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(ms.round() as u64)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing() {
        let mut s = Speed::default();
        assert_eq!(s.eta_ms(10), None);
        assert_eq!(s.eta_ms(0), Some(0));
        s.sample(0, 0);
        s.sample(1000, 1000);
        assert_eq!(s.bytes_per_second(), 1000.0);
        s.sample(1100, 1500); // too close: merged into the next sample
        assert_eq!(s.bytes_per_second(), 1000.0);
        s.sample(2000, 4000);
        assert!((s.bytes_per_second() - (0.3 * 3000.0 + 0.7 * 1000.0)).abs() < 1e-9);
        s.sample(3000, 10); // went backwards (a file removed): restart
        assert!(s.bytes_per_second() > 0.0);
    }
}
