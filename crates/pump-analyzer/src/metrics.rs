//! Prometheus metrics (`GET /metrics`, text format 0.0.4). A handful of atomics; the exposition
//! format is simple enough that a client library would add more code than it saves.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::CommitCounts;

/// Ingest outcomes counted per request.
pub const OUTCOMES: [&str; 9] = [
    "accepted",
    "duplicate",
    "rejected",
    "bad_request",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "too_large",
    "error",
];

/// Upper bounds of the ingest latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Set by the ingest handler on its response: what happened to the request's items.
#[derive(Debug, Clone, Copy)]
pub struct IngestTag(pub &'static str);

#[derive(Default)]
pub struct Metrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_us: AtomicU64,
}

/// Gauges read at scrape time.
pub struct Gauges {
    pub sse_clients: usize,
    /// HTTP connections open, and the most that may be.
    pub connections: (usize, usize),
    pub runs_in_progress: usize,
    pub sessions_active: i64,
    /// The SQLite writer's commit counters.
    pub commits: Option<CommitCounts>,
}

impl Metrics {
    pub fn record_ingest(&self, outcome: &str, elapsed: Duration) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The outcome of an ingest response from its status (and the handler's tag on a 200).
    pub fn outcome(status: u16, tag: Option<IngestTag>) -> &'static str {
        match status {
            200 => tag.map_or("accepted", |t| t.0),
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            413 => "too_large",
            422 => "rejected",
            429 => "rate_limited",
            _ => "error",
        }
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP pump_ingest_requests_total Ingest requests by outcome.\n");
        out.push_str("# TYPE pump_ingest_requests_total counter\n");
        for (name, value) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(out, "pump_ingest_requests_total{{outcome=\"{name}\"}} {}", value.load(Ordering::Relaxed));
        }
        out.push_str(
            "# HELP pump_ingest_duration_seconds Time to answer an ingest request (durable commit included).\n",
        );
        out.push_str("# TYPE pump_ingest_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "pump_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "pump_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "pump_ingest_duration_seconds_sum {sum}");
        let _ = writeln!(out, "pump_ingest_duration_seconds_count {count}");
        // One sample with its HELP and TYPE lines; `kind` is "gauge" or "counter".
        let metric = |out: &mut String, kind: &str, name: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let sse = gauges.sse_clients.to_string();
        metric(&mut out, "gauge", "pump_sse_clients", "Server-Sent Events connections open.", sse);
        let open = gauges.connections.0.to_string();
        metric(&mut out, "gauge", "pump_http_connections", "HTTP connections open.", open);
        let max = gauges.connections.1.to_string();
        metric(&mut out, "gauge", "pump_http_connections_max", "HTTP connections that may be open at once.", max);
        let runs = gauges.runs_in_progress.to_string();
        metric(&mut out, "gauge", "pump_runs_in_progress", "Run scans running or queued.", runs);
        let sessions = gauges.sessions_active.to_string();
        metric(&mut out, "gauge", "pump_sessions_active", "Browser sessions stored and not yet purged.", sessions);
        if let Some(CommitCounts { commits, writes, commit_seconds, deferred, syncs, sync_seconds }) = gauges.commits {
            let help = "Transactions the SQLite writer committed (each one group commit).";
            metric(&mut out, "counter", "pump_store_commits_total", help, commits.to_string());
            let help = "Write requests those commits carried (divided by the commits: the mean group size).";
            metric(&mut out, "counter", "pump_store_committed_writes_total", help, writes.to_string());
            let help = "Time spent in COMMIT, most of it the sync to disk (except for deferred syncs).";
            metric(&mut out, "counter", "pump_store_commit_seconds_total", help, commit_seconds.to_string());
            let help = "Commits whose sync to disk was left to the syncer thread (SQLITE_SYNC=background: all).";
            metric(&mut out, "counter", "pump_store_deferred_syncs_total", help, deferred.to_string());
            let help =
                "Syncs of the SQLite log to disk made by the syncer thread (each covers every commit before it).";
            metric(&mut out, "counter", "pump_store_log_syncs_total", help, syncs.to_string());
            let help = "Time the syncer thread spent in those syncs (divided by them: this disk's sync latency).";
            metric(&mut out, "counter", "pump_store_log_sync_seconds_total", help, sync_seconds.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histogram_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.record_ingest("accepted", Duration::from_micros(800));
        m.record_ingest("rate_limited", Duration::from_millis(30));
        let text = m.render(&Gauges {
            sse_clients: 2,
            connections: (3, 100),
            runs_in_progress: 0,
            sessions_active: 3,
            commits: Some(CommitCounts {
                commits: 4,
                writes: 10,
                commit_seconds: 0.25,
                deferred: 1,
                syncs: 3,
                sync_seconds: 0.5,
            }),
        });
        assert!(text.contains("pump_ingest_requests_total{outcome=\"accepted\"} 1"));
        assert!(text.contains("pump_ingest_requests_total{outcome=\"rate_limited\"} 1"));
        assert!(text.contains("pump_ingest_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("pump_ingest_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("pump_ingest_duration_seconds_count 2"));
        assert!(text.contains("pump_sse_clients 2"));
        assert!(text.contains("pump_sessions_active 3"));
        assert!(text.contains("pump_store_commits_total 4\n"));
        assert!(text.contains("pump_store_committed_writes_total 10\n"));
        assert!(text.contains("pump_store_commit_seconds_total 0.25\n"));
        assert!(text.contains("pump_store_deferred_syncs_total 1\n"));
        assert!(text.contains("pump_store_log_syncs_total 3\n"));
        assert!(text.contains("pump_store_log_sync_seconds_total 0.5\n"));
    }
}
