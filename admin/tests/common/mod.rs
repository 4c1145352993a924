//! A backend with fixed, realistic data for the HTTP-layer tests, and request helpers.
//!
//! Pipelines: `clicks` (running, tumbling), `orders` (stopped, sliding) and `replay`
//! (finished, session). Two shards. [`Fixture::stall`] makes shard 1 stall: health turns
//! 503 and every request that asks the shards times out.
#![allow(dead_code, reason = "each test file uses a part of the fixture")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_admin::model::*;
use weir_admin::{Backend, BackendError, Listener, Method, Request, Response, Router};

pub const NOW_MS: i64 = 1_700_000_100_000;

/// The fixed backend.
pub struct Fixture {
    states: Mutex<Vec<(String, PipelineState)>>,
    stalled: AtomicBool,
    /// The timeout of the last request that asked the shards.
    pub last_timeout: Mutex<Option<Duration>>,
    /// The last state scan asked for.
    pub last_scan: Mutex<Option<StateQuery>>,
    /// The last windows request: pipeline and limit.
    pub last_windows: Mutex<Option<(Option<String>, usize)>>,
}

impl Fixture {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            states: Mutex::new(vec![
                ("clicks".into(), PipelineState::Running),
                ("orders".into(), PipelineState::Stopped),
                ("replay".into(), PipelineState::Finished),
            ]),
            stalled: AtomicBool::new(false),
            last_timeout: Mutex::new(None),
            last_scan: Mutex::new(None),
            last_windows: Mutex::new(None),
        })
    }

    /// Makes shard 1 stall.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    fn state(&self, id: &str) -> Result<PipelineState, BackendError> {
        let states = self.states.lock().map_err(|_| unavailable())?;
        states
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, s)| *s)
            .ok_or_else(|| BackendError::UnknownPipeline { id: id.to_owned() })
    }

    fn ask_shards(&self, timeout: Duration) -> Result<(), BackendError> {
        if let Ok(mut last) = self.last_timeout.lock() {
            *last = Some(timeout);
        }
        if self.stalled.load(Ordering::SeqCst) {
            return Err(BackendError::Timeout {
                shard: Some(1),
                waited_ms: timeout.as_millis() as u64,
            });
        }
        Ok(())
    }

    fn info(&self, id: &str) -> Result<PipelineInfo, BackendError> {
        let state = self.state(id)?;
        let (source, window) = match id {
            "clicks" => (
                "file data/in/*.jsonl (jsonl)",
                "tumbling 60000 ms, lateness 5000 ms",
            ),
            "orders" => ("tcp 0.0.0.0:7000", "sliding 300000 ms every 30000 ms"),
            _ => ("generator 1000 keys, 100000 events", "session gap 30000 ms"),
        };
        Ok(PipelineInfo {
            id: id.to_owned(),
            state,
            source: source.into(),
            window: window.into(),
            aggregates: vec!["count".into(), "sum".into(), "p99".into()],
        })
    }

    fn all_windows(&self) -> Vec<WindowState> {
        let w = |pipeline: &str, shard, key: &str, start: i64, count, sum| WindowState {
            pipeline: pipeline.into(),
            shard,
            key: key.into(),
            window_start: start,
            window_end: start + 60_000,
            count,
            sum,
            min: 1.0,
            max: sum,
            fired: false,
        };
        vec![
            w("clicks", 0, "u1", 1_700_000_040_000, 3, 12.5),
            w("clicks", 1, "u10", 1_700_000_040_000, 1, 4.0),
            w("clicks", 1, "u2", 1_700_000_040_000, 7, 30.0),
            w("clicks", 0, "user/42 x", 1_700_000_040_000, 2, 9.0),
            w("orders", 0, "o1", 1_700_000_000_000, 5, 500.0),
        ]
    }
}

fn unavailable() -> BackendError {
    BackendError::Unavailable {
        reason: "fixture poisoned".into(),
    }
}

impl Backend for Fixture {
    fn status(&self) -> Status {
        Status {
            version: "0.1.0".into(),
            app_name: "weir-test".into(),
            instance: "weir-test-1".into(),
            uptime_s: 3600.5,
            shards: vec![
                ShardStatus {
                    shard: 0,
                    core: Some(2),
                    events: 1_200_000,
                    queue_depth: 17,
                    busy_s: 2100.0,
                    idle_s: 1400.0,
                    backpressured_s: 100.5,
                },
                ShardStatus {
                    shard: 1,
                    core: Some(3),
                    events: 1_100_000,
                    queue_depth: 0,
                    busy_s: 1800.0,
                    idle_s: 1800.5,
                    backpressured_s: 0.0,
                },
            ],
            totals: Totals {
                pipelines: 3,
                events_processed: 2_300_000,
                results_emitted: 41_000,
                events_late: 12,
                events_dropped_late: 3,
                events_invalid: 5,
                events_deduplicated: 40,
                queue_depth: 17,
            },
            last_checkpoint: self.checkpoints().last().cloned(),
        }
    }

    fn health(&self) -> Health {
        if self.stalled.load(Ordering::SeqCst) {
            Health {
                problems: vec![Problem::ShardStalled {
                    shard: 1,
                    silent_ms: 12_000,
                }],
            }
        } else {
            Health::ok()
        }
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        ["clicks", "orders", "replay"]
            .iter()
            .filter_map(|id| self.info(id).ok())
            .collect()
    }

    fn set_running(&self, id: &str, running: bool) -> Result<PipelineInfo, BackendError> {
        {
            let mut states = self.states.lock().map_err(|_| unavailable())?;
            let entry = states
                .iter_mut()
                .find(|(p, _)| p == id)
                .ok_or_else(|| BackendError::UnknownPipeline { id: id.to_owned() })?;
            entry.1 = match (entry.1, running) {
                (PipelineState::Finished, true) => {
                    return Err(BackendError::Conflict {
                        reason: format!("pipeline {id:?} has finished; it cannot be started"),
                    });
                }
                (PipelineState::Finished, false) => PipelineState::Finished,
                (_, true) => PipelineState::Running,
                (_, false) => PipelineState::Stopped,
            };
        }
        self.info(id)
    }

    fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError> {
        let state = self.state(id)?;
        Ok(PipelineStats {
            pipeline: id.to_owned(),
            state,
            processed: 2_000_000,
            late: 12,
            dropped_late: 3,
            invalid: 5,
            deduplicated: 40,
            results: 41_000,
            events_per_s: 52_500.5,
            latency_ms: Latency {
                p50: 0.4,
                p99: 2.5,
                p999: 9.75,
                max: 31.0,
            },
            active_windows: 1234,
            watermark_ms: Some(NOW_MS - 2500),
            watermark_lag_ms: Some(2500),
            kafka_sinks: Vec::new(),
            keys_on_two_partitions: None,
        })
    }

    fn watermarks(&self) -> WatermarkReport {
        WatermarkReport {
            pipelines: vec![PipelineWatermarks {
                pipeline: "clicks".into(),
                watermark_ms: Some(NOW_MS - 4000),
                partitions: vec![
                    PartitionWatermark {
                        partition: "data/in/a.jsonl".into(),
                        shard: 0,
                        watermark_ms: Some(NOW_MS - 4000),
                        lag_ms: Some(4000),
                        state: PartitionState::Active,
                        offset: None,
                        records_behind: None,
                    },
                    PartitionWatermark {
                        partition: "data/in/b.jsonl".into(),
                        shard: 1,
                        watermark_ms: Some(NOW_MS - 90_000),
                        lag_ms: Some(90_000),
                        state: PartitionState::Idle,
                        offset: None,
                        records_behind: None,
                    },
                ],
                shards: vec![
                    OperatorWatermark {
                        shard: 0,
                        watermark_ms: Some(NOW_MS - 4000),
                    },
                    OperatorWatermark {
                        shard: 1,
                        watermark_ms: Some(NOW_MS - 3000),
                    },
                ],
                held_back_by: Some(HoldBack {
                    partition: "data/in/a.jsonl".into(),
                    since_ms: NOW_MS - 60_000,
                }),
            }],
        }
    }

    fn state_summary(&self, timeout: Duration) -> Result<StateSummary, BackendError> {
        self.ask_shards(timeout)?;
        Ok(StateSummary::from_shards(vec![
            ShardState {
                shard: 0,
                keys: 600,
                windows: 700,
                bytes: 180_000,
                log_segments: 2,
                log_bytes: 100_000_000,
            },
            ShardState {
                shard: 1,
                keys: 400,
                windows: 534,
                bytes: 120_000,
                log_segments: 1,
                log_bytes: 40_000_000,
            },
        ]))
    }

    fn state_scan(
        &self,
        query: &StateQuery,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        self.state(&query.pipeline)?;
        self.ask_shards(timeout)?;
        if let Ok(mut last) = self.last_scan.lock() {
            *last = Some(query.clone());
        }
        let mut windows: Vec<_> = self
            .all_windows()
            .into_iter()
            .filter(|w| w.pipeline == query.pipeline && w.key.starts_with(&query.prefix))
            .collect();
        windows.sort_by(|a, b| (&a.key, a.window_start).cmp(&(&b.key, b.window_start)));
        windows.truncate(query.limit);
        Ok(windows)
    }

    fn state_key(
        &self,
        pipeline: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        self.state(pipeline)?;
        self.ask_shards(timeout)?;
        Ok(self
            .all_windows()
            .into_iter()
            .filter(|w| w.pipeline == pipeline && w.key == key)
            .collect())
    }

    fn windows(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        timeout: Duration,
    ) -> Result<WindowsReport, BackendError> {
        if let Some(p) = pipeline {
            self.state(p)?;
        }
        self.ask_shards(timeout)?;
        if let Ok(mut last) = self.last_windows.lock() {
            *last = Some((pipeline.map(str::to_owned), limit));
        }
        let matching: Vec<_> = self
            .all_windows()
            .into_iter()
            .filter(|w| pipeline.is_none_or(|p| w.pipeline == p))
            .collect();
        let mut open: Vec<WindowCount> = Vec::new();
        for w in &matching {
            match open
                .iter_mut()
                .find(|c| c.pipeline == w.pipeline && c.shard == w.shard)
            {
                Some(c) => c.open += 1,
                None => open.push(WindowCount {
                    pipeline: w.pipeline.clone(),
                    shard: w.shard,
                    open: 1,
                }),
            }
        }
        let truncated = limit > 0 && matching.len() > limit;
        let windows = matching.into_iter().take(limit).collect();
        Ok(WindowsReport {
            open,
            windows,
            truncated,
        })
    }

    fn checkpoint(&self, timeout: Duration) -> Result<CheckpointInfo, BackendError> {
        self.ask_shards(timeout)?;
        Ok(CheckpointInfo {
            id: 8,
            completed_at_ms: NOW_MS,
            duration_ms: 42,
            bytes: 1_048_576,
        })
    }

    fn checkpoints(&self) -> Vec<CheckpointInfo> {
        (5..=7)
            .map(|id| CheckpointInfo {
                id,
                completed_at_ms: NOW_MS - (8 - id as i64) * 30_000,
                duration_ms: 30 + id,
                bytes: 1_000_000 + id * 1000,
            })
            .collect()
    }

    fn metrics(&self) -> MetricsSnapshot {
        realistic_snapshot()
    }
}

/// A snapshot with the numbers of a busy two-shard engine, odd label values included.
pub fn realistic_snapshot() -> MetricsSnapshot {
    let bounds = Histogram::LATENCY_BOUNDS_S;
    let latencies: Vec<f64> = (0..2000)
        .map(|i| 0.00002 * f64::from(i % 400 + 1))
        .collect();
    let checkpoints = [0.03, 0.041, 0.038, 0.2, 1.4];
    let mut pipeline_shards = Vec::new();
    for pipeline in ["clicks", "orders"] {
        for shard in 0..2 {
            pipeline_shards.push(PipelineShardMetrics {
                pipeline: pipeline.into(),
                shard,
                processed: 1_000_000 + shard as u64 * 17,
                active_windows: 600 + shard as u64,
            });
        }
    }
    MetricsSnapshot {
        pipeline_shards,
        partitions: vec![
            PartitionLag {
                pipeline: "clicks".into(),
                partition: "data/in/a.jsonl".into(),
                lag_s: 4.0,
            },
            PartitionLag {
                pipeline: "clicks".into(),
                partition: "data/in/\"odd\" name\\with\nnewline.jsonl".into(),
                lag_s: 90.25,
            },
            PartitionLag {
                pipeline: "orders".into(),
                partition: "tcp/0".into(),
                lag_s: -0.5,
            },
        ],
        pipelines: vec![
            PipelineCounters {
                pipeline: "clicks".into(),
                late: 12,
                dropped_late: 3,
                invalid: vec![
                    ReasonCount {
                        reason: "not_json".into(),
                        count: 4,
                    },
                    ReasonCount {
                        reason: "missing_key".into(),
                        count: 1,
                    },
                ],
                deduplicated: 40,
                results: 41_000,
                keys_on_two_partitions: None,
            },
            PipelineCounters {
                pipeline: "orders".into(),
                keys_on_two_partitions: Some(3),
                ..PipelineCounters::default()
            },
        ],
        shards: vec![
            ShardMetrics {
                shard: 0,
                queue_depth: 17,
                backpressure_s: 100.5,
                log_bytes: 100_000_000,
                busy_s: 2100.0,
                idle_s: 1400.0,
                backpressured_s: 100.5,
            },
            ShardMetrics {
                shard: 1,
                queue_depth: 0,
                backpressure_s: 0.0,
                log_bytes: 40_000_000,
                busy_s: 1800.0,
                idle_s: 1800.5,
                backpressured_s: 0.0,
            },
        ],
        checkpoints: CheckpointCounts {
            completed: 7,
            failed: 1,
        },
        checkpoint_duration: Histogram::from_observations(&bounds, &checkpoints),
        processing_duration: Histogram::from_observations(&bounds, &latencies),
        source_positions: vec![SourcePosition {
            pipeline: "orders".into(),
            partition: "orders/3".into(),
            offset: 120_000,
            records_behind: 42,
        }],
        kafka_sinks: vec![KafkaSinkMetrics {
            pipeline: "orders".into(),
            sink: "sink0".into(),
            shard: 1,
            committed_checkpoint: 7,
            transaction_records: 310,
        }],
    }
}

/// A REST router over a fresh fixture.
pub fn router() -> (Arc<Fixture>, Router) {
    let fixture = Fixture::new();
    let router = Router::new(fixture.clone(), Listener::Http);
    (fixture, router)
}

pub fn get(router: &Router, target: &str) -> Response {
    router.handle(&Request::new(Method::Get, target))
}

pub fn post(router: &Router, target: &str) -> Response {
    router.handle(&Request::new(Method::Post, target))
}

/// The body as JSON (`Null` if it is not JSON, which the assertions then show).
pub fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or(serde_json::Value::Null)
}

/// Asserts an error answer: its status, JSON content type and `{"error": "..."}` body
/// containing `needle`.
pub fn assert_error(response: &Response, status: u16, needle: &str) {
    assert_eq!(response.status(), status, "{}", response.body_str());
    assert_eq!(response.content_type(), "application/json");
    let body = json(response);
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "error {message:?} should contain {needle:?}"
    );
}
