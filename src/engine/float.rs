//! JS hands every number over as an `f64`: the one checked way from there to a count.

use crate::engine::plan::MAX_SAFE_INTEGER;

/// `x` as a whole number of `0..=2^53-1` (a byte count, a millisecond delay), or `None` when it
/// is negative, fractional, not finite or beyond what JS counts exactly.
#[must_use]
pub fn whole(x: f64) -> Option<u64> {
    #[allow(clippy::cast_precision_loss)]
    let max = MAX_SAFE_INTEGER as f64;
    // The range test also rejects NaN and the infinities.
    if (0.0..=max).contains(&x) && x.trunc() == x {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(x as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_accepts_only_safe_integers() {
        assert_eq!(whole(0.0), Some(0));
        assert_eq!(whole(5.0), Some(5));
        assert_eq!(whole(9_007_199_254_740_991.0), Some(MAX_SAFE_INTEGER));
        for bad in [
            -1.0,
            0.5,
            9_007_199_254_740_992.0,
            f64::NAN,
            f64::INFINITY,
            1e21,
        ] {
            assert_eq!(whole(bad), None, "{bad}");
        }
    }
}
