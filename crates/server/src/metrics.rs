//! Prometheus metrics in the text exposition format: HTTP requests by route and status,
//! their latency as a histogram, the SQL statements the pool executed, and the
//! transactions run again after a transient failure (a deadlock, a serialization failure,
//! a busy SQLite).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prima_service::db::Stats;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters; one per server.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((method.to_owned(), path.to_owned(), status))
            .or_default() += 1;
        drop(requests);
        let mut latency = self.latency.lock().expect("metrics lock");
        let histogram = latency.entry(path.to_owned()).or_default();
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The metrics page.
    pub fn render(&self, db: &Stats) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str(
            "# HELP prima_http_requests_total HTTP requests served, by route and status.\n",
        );
        out.push_str("# TYPE prima_http_requests_total counter\n");
        for ((method, path, status), count) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "prima_http_requests_total{{method=\"{method}\",path=\"{path}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP prima_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE prima_http_request_duration_seconds histogram\n");
        for (path, h) in self.latency.lock().expect("metrics lock").iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "prima_http_request_duration_seconds_bucket{{path=\"{path}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "prima_http_request_duration_seconds_bucket{{path=\"{path}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "prima_http_request_duration_seconds_sum{{path=\"{path}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "prima_http_request_duration_seconds_count{{path=\"{path}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP prima_db_statements_total SQL statements executed.\n");
        out.push_str("# TYPE prima_db_statements_total counter\n");
        let _ = writeln!(out, "prima_db_statements_total {}", db.statements());
        out.push_str(
            "# HELP prima_db_background_statements_total SQL statements of background work (outbox relay, event hub).\n",
        );
        out.push_str("# TYPE prima_db_background_statements_total counter\n");
        let _ = writeln!(
            out,
            "prima_db_background_statements_total {}",
            db.background_statements()
        );
        out.push_str("# HELP prima_db_statement_errors_total SQL statements that failed.\n");
        out.push_str("# TYPE prima_db_statement_errors_total counter\n");
        let _ = writeln!(out, "prima_db_statement_errors_total {}", db.failed());
        out.push_str("# HELP prima_db_statement_seconds_total Time spent executing SQL.\n");
        out.push_str("# TYPE prima_db_statement_seconds_total counter\n");
        let _ = writeln!(out, "prima_db_statement_seconds_total {}", db.seconds());
        let retries = prima_service::db::retry_counts();
        out.push_str(
            "# HELP prima_db_transaction_retries_total Transactions run again after a deadlock, serialization failure or busy SQLite.\n",
        );
        out.push_str("# TYPE prima_db_transaction_retries_total counter\n");
        let _ = writeln!(
            out,
            "prima_db_transaction_retries_total {}",
            retries.retried
        );
        out.push_str(
            "# HELP prima_db_transaction_retries_exhausted_total Requests answered CONFLICT because every attempt failed transiently.\n",
        );
        out.push_str("# TYPE prima_db_transaction_retries_exhausted_total counter\n");
        let _ = writeln!(
            out,
            "prima_db_transaction_retries_exhausted_total {}",
            retries.exhausted
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_and_lands_in_its_latency_buckets() {
        let metrics = Metrics::default();
        metrics.record("POST", "/graphql", 200, Duration::from_millis(7));
        let page = metrics.render(&Stats::default());
        assert!(page.contains(
            "prima_http_requests_total{method=\"POST\",path=\"/graphql\",status=\"200\"} 1"
        ));
        assert!(page.contains(
            "prima_http_request_duration_seconds_bucket{path=\"/graphql\",le=\"0.005\"} 0"
        ));
        assert!(page.contains(
            "prima_http_request_duration_seconds_bucket{path=\"/graphql\",le=\"0.01\"} 1"
        ));
        assert!(page.contains("prima_db_statements_total 0"));
        assert!(page.contains("# TYPE prima_db_transaction_retries_total counter"));
        assert!(page.contains("prima_db_transaction_retries_exhausted_total "));
    }
}
