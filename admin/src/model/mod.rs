//! The plain data the [`Backend`](crate::Backend) answers with, and the JSON the API sends.
//!
//! Every type here is serde data with public fields and no behaviour beyond small
//! constructors: the binary fills them from the runtime, the router serialises them as
//! they are. Field names are the JSON names. Times are integer milliseconds since the Unix
//! epoch (`*_ms` on an instant), durations are `*_ms` or `*_s` as named, counts are `u64`.
//!
//! These are the wire format, not the domain: shards, checkpoint ids and times are plain
//! numbers here so that the JSON stays plain and this crate needs none of the runtime's
//! newtypes (`ShardId`, `CheckpointId`, `EventTime`); the backend unwraps them.

mod checkpoint;
mod health;
mod pipeline;
mod snapshot;
mod state;
mod status;
mod watermark;

pub use checkpoint::CheckpointInfo;
pub use health::{Health, Problem};
pub use pipeline::{Latency, PipelineInfo, PipelineState, PipelineStats};
pub use snapshot::{
    Bucket, CheckpointCounts, Histogram, KafkaSinkMetrics, MetricsSnapshot, PartitionLag,
    PipelineCounters, PipelineShardMetrics, ReasonCount, ShardMetrics, SourcePosition,
};
pub use state::{ShardState, StateQuery, StateSummary, WindowCount, WindowState, WindowsReport};
pub use status::{ShardStatus, Status, Totals};
pub use watermark::{
    HoldBack, OperatorWatermark, PartitionState, PartitionWatermark, PipelineWatermarks,
    WatermarkReport,
};
