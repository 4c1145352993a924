//! Serves the admin API and dashboard over a simulated engine whose numbers move, to look
//! at the dashboard without running weir:
//!
//! ```sh
//! cargo run -p weir-admin --example demo -- 127.0.0.1:8080 127.0.0.1:9090 [token]
//! ```
//!
//! Two pipelines on two shards; events flow while a pipeline runs, windows open and
//! close, checkpoints can be taken. Nothing here is the real runtime.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_admin::model::*;
use weir_admin::{AdminServer, Backend, BackendError};

const PIPELINES: [&str; 2] = ["clicks", "orders"];
const RATE: [f64; 2] = [42_000.0, 9_500.0];

struct Demo {
    started: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    running: [bool; 2],
    /// Events processed per pipeline until `since`, plus the running time after it.
    processed: [f64; 2],
    since: Instant,
    checkpoints: Vec<CheckpointInfo>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Demo {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn index(id: &str) -> Result<usize, BackendError> {
        PIPELINES
            .iter()
            .position(|p| *p == id)
            .ok_or_else(|| BackendError::UnknownPipeline { id: id.to_owned() })
    }

    /// Events processed so far by pipeline `i`.
    fn processed(inner: &Inner, i: usize) -> u64 {
        let extra = if inner.running[i] {
            inner.since.elapsed().as_secs_f64() * RATE[i]
        } else {
            0.0
        };
        (inner.processed[i] + extra) as u64
    }

    fn wobble(&self, period_s: f64) -> f64 {
        (self.started.elapsed().as_secs_f64() / period_s).sin()
    }

    fn info(&self, i: usize) -> PipelineInfo {
        let running = self.inner().running[i];
        PipelineInfo {
            id: PIPELINES[i].into(),
            state: if running {
                PipelineState::Running
            } else {
                PipelineState::Stopped
            },
            source: ["tcp 0.0.0.0:7000", "file data/in/orders-*.jsonl (jsonl)"][i].into(),
            window: [
                "tumbling 60000 ms, lateness 5000 ms",
                "sliding 300000 ms every 30000 ms",
            ][i]
                .into(),
            aggregates: vec!["count".into(), "sum".into(), "p99".into()],
        }
    }

    fn lag_ms(&self, i: usize) -> i64 {
        let base = 2000.0 + 1500.0 * self.wobble(7.0 + i as f64);
        if self.inner().running[i] {
            base as i64
        } else {
            base as i64 + self.started.elapsed().as_millis() as i64 % 60_000
        }
    }

    fn windows(&self, i: usize) -> u64 {
        (8000.0 + 3000.0 * self.wobble(11.0 + i as f64)) as u64 / (i as u64 + 1)
    }
}

impl Backend for Demo {
    fn status(&self) -> Status {
        let inner = self.inner();
        let events: Vec<u64> = (0..2).map(|i| Demo::processed(&inner, i)).collect();
        let up = self.started.elapsed().as_secs_f64();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            app_name: "weir-demo".into(),
            instance: "weir-demo".into(),
            uptime_s: up,
            shards: (0..2)
                .map(|s| ShardStatus {
                    shard: s,
                    core: Some(s + 1),
                    events: events.iter().sum::<u64>() / 2,
                    queue_depth: (200.0 + 150.0 * self.wobble(3.0 + s as f64)) as u64,
                    busy_s: up * [0.71, 0.46][s],
                    idle_s: up * [0.25, 0.54][s],
                    backpressured_s: up * [0.04, 0.0][s],
                })
                .collect(),
            totals: Totals {
                pipelines: 2,
                events_processed: events.iter().sum(),
                results_emitted: events.iter().sum::<u64>() / 40,
                events_late: 17,
                events_dropped_late: 2,
                events_invalid: 5,
                events_deduplicated: 0,
                queue_depth: 300,
            },
            last_checkpoint: inner.checkpoints.last().cloned(),
        }
    }

    fn health(&self) -> Health {
        Health::ok()
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        (0..2).map(|i| self.info(i)).collect()
    }

    fn set_running(&self, id: &str, running: bool) -> Result<PipelineInfo, BackendError> {
        let i = Demo::index(id)?;
        {
            let mut inner = self.inner();
            for p in 0..2 {
                inner.processed[p] = Demo::processed(&inner, p) as f64;
            }
            inner.since = Instant::now();
            inner.running[i] = running;
        }
        Ok(self.info(i))
    }

    fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError> {
        let i = Demo::index(id)?;
        let inner = self.inner();
        let running = inner.running[i];
        let processed = Demo::processed(&inner, i);
        drop(inner);
        let rate = if running {
            RATE[i] * (1.0 + 0.1 * self.wobble(5.0))
        } else {
            0.0
        };
        let lag = self.lag_ms(i);
        Ok(PipelineStats {
            pipeline: id.into(),
            state: self.info(i).state,
            processed,
            late: 17 / (i as u64 + 1),
            dropped_late: 2 * (1 - i as u64),
            invalid: 5,
            deduplicated: 0,
            results: processed / 40,
            events_per_s: rate,
            latency_ms: Latency {
                p50: 0.35 + 0.1 * self.wobble(4.0),
                p99: 2.2 + 0.8 * self.wobble(6.0),
                p999: 7.5 + 3.0 * self.wobble(9.0),
                max: 20.0,
            },
            active_windows: self.windows(i),
            watermark_ms: Some(now_ms() - lag),
            watermark_lag_ms: Some(lag),
            kafka_sinks: Vec::new(),
            keys_on_two_partitions: None,
        })
    }

    fn watermarks(&self) -> WatermarkReport {
        let now = now_ms();
        WatermarkReport {
            pipelines: (0..2)
                .map(|i| {
                    let lag = self.lag_ms(i);
                    let partition = ["tcp/0", "data/in/orders-1.jsonl"][i].to_owned();
                    PipelineWatermarks {
                        pipeline: PIPELINES[i].into(),
                        watermark_ms: Some(now - lag),
                        partitions: vec![PartitionWatermark {
                            partition: partition.clone(),
                            shard: i,
                            watermark_ms: Some(now - lag),
                            lag_ms: Some(lag),
                            state: PartitionState::Active,
                            offset: None,
                            records_behind: None,
                        }],
                        shards: (0..2)
                            .map(|s| OperatorWatermark {
                                shard: s,
                                watermark_ms: Some(now - lag),
                            })
                            .collect(),
                        held_back_by: Some(HoldBack {
                            partition,
                            since_ms: now - self.started.elapsed().as_millis() as i64,
                        }),
                    }
                })
                .collect(),
        }
    }

    fn state_summary(&self, _: Duration) -> Result<StateSummary, BackendError> {
        Ok(StateSummary::from_shards(
            (0..2)
                .map(|s| ShardState {
                    shard: s,
                    keys: 1000 + s as u64 * 10,
                    windows: self.windows(0) / 2 + self.windows(1) / 2,
                    bytes: 4_000_000,
                    log_segments: 3,
                    log_bytes: 150_000_000,
                })
                .collect(),
        ))
    }

    fn state_scan(
        &self,
        query: &StateQuery,
        _: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        Demo::index(&query.pipeline)?;
        Ok((0..query.limit.min(20))
            .map(|k| format!("user-{k}"))
            .filter(|key| key.starts_with(&query.prefix))
            .map(|key| window(&query.pipeline, &key))
            .collect())
    }

    fn state_key(
        &self,
        pipeline: &str,
        key: &str,
        _: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        Demo::index(pipeline)?;
        Ok(vec![window(pipeline, key)])
    }

    fn windows(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        _: Duration,
    ) -> Result<WindowsReport, BackendError> {
        let chosen: Vec<usize> = match pipeline {
            Some(p) => vec![Demo::index(p)?],
            None => vec![0, 1],
        };
        let open = chosen
            .iter()
            .flat_map(|&i| {
                (0..2).map(move |s| (i, s)).map(|(i, s)| WindowCount {
                    pipeline: PIPELINES[i].into(),
                    shard: s,
                    open: self.windows(i) / 2,
                })
            })
            .collect();
        let windows = (0..limit.min(10))
            .map(|k| window(PIPELINES[chosen[0]], &format!("user-{k}")))
            .collect();
        Ok(WindowsReport {
            open,
            windows,
            truncated: limit > 0,
        })
    }

    fn checkpoint(&self, _: Duration) -> Result<CheckpointInfo, BackendError> {
        let mut inner = self.inner();
        let info = CheckpointInfo {
            id: inner.checkpoints.last().map_or(1, |c| c.id + 1),
            completed_at_ms: now_ms(),
            duration_ms: 30 + (now_ms() % 40) as u64,
            bytes: 8_000_000 + (now_ms() % 100_000) as u64,
        };
        inner.checkpoints.push(info.clone());
        if inner.checkpoints.len() > 3 {
            inner.checkpoints.remove(0);
        }
        Ok(info)
    }

    fn checkpoints(&self) -> Vec<CheckpointInfo> {
        self.inner().checkpoints.clone()
    }

    fn metrics(&self) -> MetricsSnapshot {
        let inner = self.inner();
        let processed: Vec<u64> = (0..2).map(|i| Demo::processed(&inner, i)).collect();
        drop(inner);
        let up = self.started.elapsed().as_secs_f64();
        let latencies: Vec<f64> = (1..=200).map(|i| f64::from(i) * 0.00002).collect();
        MetricsSnapshot {
            pipeline_shards: (0..4)
                .map(|n| PipelineShardMetrics {
                    pipeline: PIPELINES[n / 2].into(),
                    shard: n % 2,
                    processed: processed[n / 2] / 2,
                    active_windows: self.windows(n / 2) / 2,
                })
                .collect(),
            partitions: (0..2)
                .map(|i| PartitionLag {
                    pipeline: PIPELINES[i].into(),
                    partition: ["tcp/0", "data/in/orders-1.jsonl"][i].into(),
                    lag_s: self.lag_ms(i) as f64 / 1000.0,
                })
                .collect(),
            pipelines: (0..2)
                .map(|i| PipelineCounters {
                    pipeline: PIPELINES[i].into(),
                    late: 17,
                    dropped_late: 2,
                    invalid: vec![ReasonCount {
                        reason: "not_json".into(),
                        count: 5,
                    }],
                    deduplicated: 0,
                    results: processed[i] / 40,
                    keys_on_two_partitions: None,
                })
                .collect(),
            shards: (0..2)
                .map(|s| ShardMetrics {
                    shard: s,
                    queue_depth: 200,
                    backpressure_s: up * 0.04,
                    log_bytes: 150_000_000,
                    busy_s: up * 0.7,
                    idle_s: up * 0.26,
                    backpressured_s: up * 0.04,
                })
                .collect(),
            checkpoints: CheckpointCounts {
                completed: self.checkpoints().len() as u64,
                failed: 0,
            },
            checkpoint_duration: Histogram::from_observations(
                &Histogram::LATENCY_BOUNDS_S,
                &[0.03, 0.04],
            ),
            processing_duration: Histogram::from_observations(
                &Histogram::LATENCY_BOUNDS_S,
                &latencies,
            ),
            source_positions: Vec::new(),
            kafka_sinks: Vec::new(),
        }
    }
}

fn window(pipeline: &str, key: &str) -> WindowState {
    let start = now_ms() / 60_000 * 60_000;
    WindowState {
        pipeline: pipeline.into(),
        shard: key.len() % 2,
        key: key.into(),
        window_start: start,
        window_end: start + 60_000,
        count: 12,
        sum: 340.5,
        min: 1.5,
        max: 99.0,
        fired: false,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = weir_config::Admin {
        enabled: true,
        http: args
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        metrics: args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:9090".into()),
        token: args.get(2).cloned(),
    };
    let demo = Demo {
        started: Instant::now(),
        inner: Mutex::new(Inner {
            running: [true, true],
            processed: [0.0; 2],
            since: Instant::now(),
            checkpoints: Vec::new(),
        }),
    };
    let server = AdminServer::start(&config, Arc::new(demo))?;
    let http = server.http_addr().ok_or("admin disabled")?;
    let metrics = server.metrics_addr().ok_or("admin disabled")?;
    println!("dashboard: http://{http}/   metrics: http://{metrics}/metrics");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
