//! Small statistics over samples: median, percentiles, min and max.

/// The median of `xs` (the mean of the two middle values for an even count); 0 when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `xs`; 0 when empty.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * v.len() as f64).ceil().max(1.0);
    // The rank is a small positive whole number: no truncation happens.
    #[allow(clippy::cast_possible_truncation)]
    let idx = (rank as usize).min(v.len()) - 1;
    v[idx]
}

/// Minimum and maximum of `xs`; (0, 0) when empty.
pub fn min_max(xs: &[f64]) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    }
}

/// "median (min–max)" of per-repeat values, as the anchors write it.
pub fn summary(xs: &[f64], decimals: usize) -> String {
    if xs.is_empty() {
        return "n/a".into();
    }
    let (lo, hi) = min_max(xs);
    if xs.len() == 1 {
        return format!("{:.*}", decimals, xs[0]);
    }
    format!("{:.*} ({:.*}–{:.*})", decimals, median(xs), decimals, lo, decimals, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), 50.0);
        assert_eq!(percentile(&xs, 99.0), 99.0);
        assert_eq!(percentile(&xs, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn summary_like_the_anchors() {
        assert_eq!(summary(&[2.0, 1.0, 3.0], 1), "2.0 (1.0–3.0)");
        assert_eq!(summary(&[2.0], 2), "2.00");
        assert_eq!(summary(&[], 2), "n/a");
    }
}
