//! The few `f64` operations the engine needs that `core` lacks without std (`trunc`, `round`,
//! `fract` live in std): JS hands every number over as an `f64`.

use crate::engine::plan::MAX_SAFE_INTEGER;

/// `x` rounded toward zero. Exact: every `f64` of magnitude 2^52 or more is already whole, and
/// below that the `i64` round trip drops only the fraction.
#[must_use]
pub fn trunc(x: f64) -> f64 {
    // Written without `abs`/`copysign`, which `core` gained only in Rust 1.85. NaN fails the
    // range test and is returned as is.
    const WHOLE_FROM: f64 = 4_503_599_627_370_496.0; // 2^52
    if !(x > -WHOLE_FROM && x < WHOLE_FROM) {
        return x;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let t = (x as i64) as f64;
    if t == 0.0 && x.is_sign_negative() {
        -0.0 // -0.4 → -0, as std
    } else {
        t
    }
}

/// `x` as a whole number of `0..=2^53-1` (a byte count, a millisecond delay), or `None` when it
/// is negative, fractional, not finite or beyond what JS counts exactly.
#[must_use]
pub fn whole(x: f64) -> Option<u64> {
    #[allow(clippy::cast_precision_loss)]
    let max = MAX_SAFE_INTEGER as f64;
    // The range test also rejects NaN and the infinities.
    if (0.0..=max).contains(&x) && trunc(x) == x {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(x as u64)
    } else {
        None
    }
}

/// A non-negative `x` rounded to the nearest whole number, halves up (as `f64::round` for
/// these), saturating at `u64::MAX`.
#[must_use]
pub fn round_non_negative(x: f64) -> u64 {
    let t = trunc(x);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = t as u64;
    if x - t >= 0.5 {
        n.saturating_add(1)
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [f64; 16] = [
        0.0,
        -0.0,
        0.4,
        0.5,
        0.6,
        1.5,
        2.5,
        -1.5,
        -2.7,
        123.456,
        4.5e15,
        9.007_199_254_740_991e15,
        9.1e15,
        1e21,
        -1e21,
        0.499_999_999_999_999_94,
    ];

    #[test]
    fn trunc_matches_std() {
        for x in SAMPLES {
            assert_eq!(trunc(x).to_bits(), x.trunc().to_bits(), "{x}");
        }
        assert!(trunc(f64::NAN).is_nan());
        assert_eq!(trunc(f64::INFINITY), f64::INFINITY);
    }

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

    #[test]
    fn round_matches_std_for_non_negative() {
        for x in SAMPLES.into_iter().filter(|x| *x >= 0.0 && *x < 1e19) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let expected = x.round() as u64;
            assert_eq!(round_non_negative(x), expected, "{x}");
        }
    }
}
