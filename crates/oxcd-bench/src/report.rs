//! Latency statistics and the report (text like etcd's benchmark, or one JSON object).

use std::time::Duration;

/// What a run measured.
#[derive(Default)]
pub struct Report {
    /// Sorted latencies of the successful requests (for `watch`: of delivered events).
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
    pub client_cpu_seconds: f64,
    /// Workload-specific numbers, reported as they are.
    pub extra: Vec<(&'static str, f64)>,
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

impl Report {
    pub fn new(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Report {
        latencies.sort_unstable();
        Report {
            latencies,
            errors,
            elapsed,
            ..Default::default()
        }
    }

    pub fn print(&self, json: bool) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p = |q| ms(percentile(&self.latencies, q));
        let max = ms(self.latencies.last().copied().unwrap_or_default());
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rps = self.latencies.len() as f64 / secs;
        if json {
            let mut out = serde_json::json!({
                "requests": self.latencies.len(), "errors": self.errors, "seconds": secs,
                "requests_per_second": rps,
                "client_cpu_seconds": self.client_cpu_seconds,
                "latency_ms": {"p50": p(50.0), "p90": p(90.0), "p99": p(99.0),
                               "p999": p(99.9), "max": max},
            });
            for (k, v) in &self.extra {
                out[*k] = serde_json::json!(v);
            }
            println!("{out}");
        } else {
            println!("Summary:");
            println!("  Total:\t{secs:.4} secs.");
            println!(
                "  Requests:\t{} ({} errors)",
                self.latencies.len(),
                self.errors
            );
            println!("  Requests/sec:\t{rps:.1}");
            for (k, v) in &self.extra {
                println!("  {k}:\t{v:.1}");
            }
            println!("  Client CPU:\t{:.2} secs.", self.client_cpu_seconds);
            println!(
                "Latency (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                p(50.0),
                p(90.0),
                p(99.0),
                p(99.9),
                max
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_sample() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 99.9), Duration::from_millis(100));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn report_sorts_latencies() {
        let r = Report::new(
            vec![Duration::from_millis(3), Duration::from_millis(1)],
            0,
            Duration::from_secs(1),
        );
        assert_eq!(r.latencies[0], Duration::from_millis(1));
    }
}
