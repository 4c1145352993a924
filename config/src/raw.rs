//! The TOML document as written: plain serde types with defaults and no unknown keys.
//!
//! Kinds with variants (windows, sources, sinks) are read flat here and turned into typed
//! enums by validation, so that an error can say precisely which key a kind lacks or
//! does not take.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default = "default_app_name")]
    pub app_name: String,
    pub instance: Option<String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    #[serde(default)]
    pub debug: bool,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub processing: RawProcessing,
    #[serde(default)]
    pub watermarks: RawWatermarks,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub pipelines: Vec<RawPipeline>,
}

fn default_app_name() -> String {
    "weir".to_owned()
}

fn default_data_dir() -> String {
    "data".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuntime {
    pub cores: Option<Vec<i64>>,
    pub admin_core: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcessing {
    #[serde(default = "default_parallelism")]
    pub parallelism: i64,
    #[serde(default = "default_queue_size")]
    pub queue_size: i64,
    #[serde(default = "default_batch_size")]
    pub batch_size: i64,
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: f64,
    #[serde(default = "default_key_groups")]
    pub key_groups: i64,
    #[serde(default = "default_batch_linger_ms")]
    pub batch_linger_ms: i64,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: f64,
}

impl Default for RawProcessing {
    fn default() -> Self {
        Self {
            parallelism: default_parallelism(),
            queue_size: default_queue_size(),
            batch_size: default_batch_size(),
            checkpoint_interval: default_checkpoint_interval(),
            key_groups: default_key_groups(),
            batch_linger_ms: default_batch_linger_ms(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

fn default_shutdown_timeout() -> f64 {
    30.0
}

fn default_parallelism() -> i64 {
    2
}
fn default_queue_size() -> i64 {
    10_000
}
fn default_batch_size() -> i64 {
    1024
}
fn default_checkpoint_interval() -> f64 {
    30.0
}
fn default_key_groups() -> i64 {
    4096
}
fn default_batch_linger_ms() -> i64 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWatermarks {
    #[serde(default = "default_delay_seconds")]
    pub delay_seconds: f64,
    #[serde(default = "default_idle_timeout_seconds")]
    pub idle_timeout_seconds: f64,
    pub max_idle_lag_seconds: Option<f64>,
    #[serde(default = "default_max_drift_seconds")]
    pub max_drift_seconds: f64,
    #[serde(default = "default_max_future_seconds")]
    pub max_future_seconds: f64,
}

impl Default for RawWatermarks {
    fn default() -> Self {
        Self {
            delay_seconds: default_delay_seconds(),
            idle_timeout_seconds: default_idle_timeout_seconds(),
            max_idle_lag_seconds: None,
            max_drift_seconds: default_max_drift_seconds(),
            max_future_seconds: default_max_future_seconds(),
        }
    }
}

fn default_delay_seconds() -> f64 {
    2.0
}
fn default_idle_timeout_seconds() -> f64 {
    10.0
}
fn default_max_drift_seconds() -> f64 {
    5.0
}
fn default_max_future_seconds() -> f64 {
    86_400.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: i64,
    #[serde(default = "default_fsync")]
    pub fsync: String,
    #[serde(default = "default_retain_checkpoints")]
    pub retain_checkpoints: i64,
    #[serde(default = "default_spare_segments")]
    pub spare_segments: i64,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            segment_bytes: default_segment_bytes(),
            fsync: default_fsync(),
            retain_checkpoints: default_retain_checkpoints(),
            spare_segments: default_spare_segments(),
        }
    }
}

fn default_segment_bytes() -> i64 {
    64 * 1024 * 1024
}
fn default_fsync() -> String {
    "group".to_owned()
}
fn default_retain_checkpoints() -> i64 {
    3
}
fn default_spare_segments() -> i64 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    #[serde(default = "default_http")]
    pub http: String,
    #[serde(default = "default_metrics")]
    pub metrics: String,
    #[serde(default)]
    pub token: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            http: default_http(),
            metrics: default_metrics(),
            token: String::new(),
            enabled: true,
        }
    }
}

fn default_http() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_metrics() -> String {
    "127.0.0.1:9090".to_owned()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    pub id: String,
    pub source: RawSource,
    pub event: Option<RawEvent>,
    pub window: RawWindow,
    #[serde(default = "default_aggregates")]
    pub aggregates: Vec<String>,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    pub late_sink: Option<RawSink>,
    pub watermark: Option<RawPipelineWatermark>,
    pub percentile_precision: Option<i64>,
}

fn default_aggregates() -> Vec<String> {
    vec!["count".to_owned()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    #[serde(rename = "type")]
    pub kind: String,
    // generator
    pub keys: Option<i64>,
    pub rate: Option<f64>,
    pub total: Option<i64>,
    pub disorder_ms: Option<i64>,
    pub partitions: Option<i64>,
    pub seed: Option<i64>,
    pub start_ms: Option<i64>,
    pub step_ms: Option<i64>,
    // file
    pub path: Option<String>,
    pub format: Option<String>,
    pub follow: Option<bool>,
    // tcp
    pub bind: Option<String>,
    pub max_line_bytes: Option<i64>,
    pub max_connections: Option<i64>,
    // kafka
    pub bootstrap: Option<String>,
    pub topic: Option<String>,
    pub group: Option<String>,
    pub start: Option<String>,
    pub event_time: Option<String>,
    pub bounded: Option<bool>,
    pub discovery_interval_ms: Option<i64>,
    pub assignment: Option<String>,
    pub state_topic: Option<String>,
    pub properties: Option<toml::Table>,
    // custom
    pub name: Option<String>,
    pub options: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    #[serde(default = "default_key_field")]
    pub key: String,
    #[serde(default = "default_time_field")]
    pub time: String,
    #[serde(default = "default_value_field")]
    pub value: String,
}

impl Default for RawEvent {
    fn default() -> Self {
        Self {
            key: default_key_field(),
            time: default_time_field(),
            value: default_value_field(),
        }
    }
}

fn default_key_field() -> String {
    "key".to_owned()
}
fn default_time_field() -> String {
    "ts".to_owned()
}
fn default_value_field() -> String {
    "value".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    #[serde(rename = "type")]
    pub kind: String,
    pub size_ms: Option<i64>,
    pub slide_ms: Option<i64>,
    pub gap_ms: Option<i64>,
    #[serde(default)]
    pub allowed_lateness_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
    pub delivery: Option<String>,
    pub delay_ms: Option<i64>,
    pub name: Option<String>,
    pub options: Option<toml::Table>,
    // kafka
    pub bootstrap: Option<String>,
    pub topic: Option<String>,
    pub transaction_timeout_ms: Option<i64>,
    pub properties: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipelineWatermark {
    pub delay_ms: Option<i64>,
    pub idle_timeout_ms: Option<i64>,
    pub max_idle_lag_ms: Option<i64>,
    pub max_drift_ms: Option<i64>,
    pub max_future_ms: Option<i64>,
}
