//! Just enough of the Prometheus text format to read the server's tick lateness at the start and end of
//! the measured window: a histogram's cumulative buckets (summed over label sets) and counters.

/// Sums of every sample named `name` (any labels), or None when there is none.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for (sample, _, value) in samples(text) {
        if sample == name {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// The first metric family whose name contains `needle` and that has `_bucket` samples (a histogram),
/// returned by its base name.
pub fn find_histogram(text: &str, needle: &str) -> Option<String> {
    samples(text)
        .filter_map(|(name, _, _)| name.strip_suffix("_bucket"))
        .find(|base| base.contains(needle))
        .map(str::to_owned)
}

/// The first sample name that contains `needle` and ends with `_total` (a counter).
pub fn find_counter(text: &str, needle: &str) -> Option<String> {
    samples(text)
        .map(|(name, _, _)| name)
        .find(|name| name.contains(needle) && name.ends_with("_total"))
        .map(str::to_owned)
}

/// A histogram: cumulative counts by upper bound (ascending, `+Inf` last), summed over label sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist {
    pub buckets: Vec<(f64, f64)>,
}

impl Hist {
    pub fn read(text: &str, base: &str) -> Option<Self> {
        let bucket = format!("{base}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (name, labels, value) in samples(text) {
            if name != bucket {
                continue;
            }
            let Some(le) = label(labels, "le").and_then(parse_value) else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += value,
                None => buckets.push((le, value)),
            }
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Self { buckets })
    }

    /// Observations in `self` and not in `earlier` (a later scrape minus an earlier one).
    pub fn since(&self, earlier: &Hist) -> Hist {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |&(_, c)| c);
                (le, (c - before).max(0.0))
            })
            .collect();
        Hist { buckets }
    }

    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |&(_, c)| c)
    }

    /// The q-quantile, interpolated linearly inside its bucket like Prometheus's
    /// `histogram_quantile` (a quantile in the `+Inf` bucket is the highest finite bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev_le = 0.0;
        let mut prev_count = 0.0;
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return Some(prev_le);
                }
                let in_bucket = count - prev_count;
                if in_bucket <= 0.0 {
                    return Some(le);
                }
                return Some(prev_le + (le - prev_le) * (rank - prev_count) / in_bucket);
            }
            prev_le = le;
            prev_count = count;
        }
        Some(prev_le)
    }

    /// Observations above `bound` (counted from the first bucket whose upper bound is >= `bound`).
    pub fn above(&self, bound: f64) -> f64 {
        let at = self
            .buckets
            .iter()
            .find(|(le, _)| *le >= bound)
            .map_or(self.count(), |&(_, c)| c);
        self.count() - at
    }
}

/// `(name, labels inside the braces, value)` for each sample line.
fn samples(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line[open..].find('}')? + open;
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            None => {
                let sp = line.find(char::is_whitespace)?;
                (&line[..sp], "", &line[sp..])
            }
        };
        let value = parse_value(rest.split_whitespace().next()?)?;
        Some((name.trim(), labels, value))
    })
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BEFORE: &str = r#"# HELP skirmish_tick_lateness_seconds How late each tick started.
# TYPE skirmish_tick_lateness_seconds histogram
skirmish_tick_lateness_seconds_bucket{arbiter="0",le="0.001"} 90
skirmish_tick_lateness_seconds_bucket{arbiter="0",le="0.005"} 100
skirmish_tick_lateness_seconds_bucket{arbiter="0",le="0.05"} 100
skirmish_tick_lateness_seconds_bucket{arbiter="0",le="+Inf"} 100
skirmish_tick_lateness_seconds_bucket{arbiter="1",le="0.001"} 10
skirmish_tick_lateness_seconds_bucket{arbiter="1",le="0.005"} 10
skirmish_tick_lateness_seconds_bucket{arbiter="1",le="0.05"} 10
skirmish_tick_lateness_seconds_bucket{arbiter="1",le="+Inf"} 10
skirmish_tick_lateness_seconds_sum 0.05
skirmish_tick_lateness_seconds_count 110
skirmish_late_ticks_total 2
"#;

    fn after() -> String {
        BEFORE
            .replace(
                r#"arbiter="0",le="0.001"} 90"#,
                r#"arbiter="0",le="0.001"} 1080"#,
            )
            .replace(
                r#"arbiter="0",le="0.005"} 100"#,
                r#"arbiter="0",le="0.005"} 1098"#,
            )
            .replace(
                r#"arbiter="0",le="0.05"} 100"#,
                r#"arbiter="0",le="0.05"} 1100"#,
            )
            .replace(
                r#"arbiter="0",le="+Inf"} 100"#,
                r#"arbiter="0",le="+Inf"} 1100"#,
            )
            .replace("skirmish_late_ticks_total 2", "skirmish_late_ticks_total 5")
    }

    #[test]
    fn finds_metrics_by_part_of_their_name() {
        assert_eq!(
            find_histogram(BEFORE, "tick_lateness").as_deref(),
            Some("skirmish_tick_lateness_seconds")
        );
        assert_eq!(
            find_counter(BEFORE, "late_ticks").as_deref(),
            Some("skirmish_late_ticks_total")
        );
        assert_eq!(
            sum(BEFORE, "skirmish_tick_lateness_seconds_count"),
            Some(110.0)
        );
        assert_eq!(find_histogram(BEFORE, "nope"), None);
    }

    #[test]
    fn window_quantiles_come_from_bucket_deltas() {
        let h0 = Hist::read(BEFORE, "skirmish_tick_lateness_seconds").unwrap();
        let h1 = Hist::read(&after(), "skirmish_tick_lateness_seconds").unwrap();
        assert_eq!(h0.count(), 110.0);
        let d = h1.since(&h0);
        assert_eq!(d.count(), 1000.0);
        // 990 of the 1000 window ticks were under 1 ms, 8 under 5 ms, 2 under 50 ms.
        let p50 = d.quantile(0.5).unwrap();
        assert!(p50 > 0.0 && p50 < 0.001, "{p50}");
        let p99 = d.quantile(0.99).unwrap();
        assert!((p99 - 0.001).abs() < 1e-9, "{p99}");
        let p999 = d.quantile(0.999).unwrap();
        assert!(p999 > 0.005 && p999 <= 0.05, "{p999}");
        assert_eq!(d.above(0.005), 2.0);
        let late0 = sum(BEFORE, "skirmish_late_ticks_total").unwrap();
        let late1 = sum(&after(), "skirmish_late_ticks_total").unwrap();
        assert_eq!(late1 - late0, 3.0);
    }

    #[test]
    fn empty_windows_have_no_quantile() {
        let h = Hist::read(BEFORE, "skirmish_tick_lateness_seconds").unwrap();
        assert_eq!(h.since(&h).quantile(0.99), None);
    }
}
