//! A handful of counters in the Prometheus text format, for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub requests: [AtomicU64; 5],
    pub logins_ok: AtomicU64,
    pub logins_failed: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Metrics {
    pub fn count_status(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP burnrate_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE burnrate_http_responses_total counter\n");
        for (i, c) in self.requests.iter().enumerate() {
            let _ =
                writeln!(out, "burnrate_http_responses_total{{class=\"{}xx\"}} {}", i + 1, c.load(Ordering::Relaxed));
        }
        for (name, help, v) in [
            ("burnrate_logins_total", "Successful logins.", &self.logins_ok),
            ("burnrate_login_failures_total", "Failed logins.", &self.logins_failed),
            ("burnrate_rate_limited_total", "Requests refused by a rate limit.", &self.rate_limited),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}
