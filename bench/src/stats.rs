//! Summaries of samples as the report's JSON carries them.
use serde_json::{Value, json};
use testkit::median;

use crate::throughput::Sample;

/// Median, min, max and the samples themselves.
pub fn stats(v: &[f64]) -> Value {
    json!({
        "median": median(v),
        "min": v.iter().copied().fold(f64::INFINITY, f64::min),
        "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "samples": v,
    })
}

/// [`stats`] of one figure of each throughput sample.
pub fn sample_json(s: &[Sample], f: impl Fn(&Sample) -> f64) -> Value {
    stats(&s.iter().map(f).collect::<Vec<_>>())
}
