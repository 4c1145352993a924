//! The Prometheus text exposition (format 0.0.4) of a [`MetricsSnapshot`].
//!
//! Every metric of SPEC.md §8 is always present with its `# HELP` and `# TYPE` lines,
//! even before it has a sample, so dashboards and alerts can rely on the names. Label
//! values are escaped (`\\`, `\"`, `\n`); histograms get their `+Inf` bucket, `_sum` and
//! `_count`.

use std::fmt::Write;

use crate::model::{Histogram, MetricsSnapshot};

/// Names of every metric family, in the order rendered.
pub const FAMILIES: [&str; 17] = [
    "stream_events_processed_total",
    "stream_processing_duration_seconds",
    "stream_active_windows",
    "stream_watermark_lag_seconds",
    "stream_events_late_total",
    "stream_events_dropped_late_total",
    "stream_events_invalid_total",
    "stream_events_deduplicated_total",
    "stream_results_emitted_total",
    "stream_checkpoints_total",
    "stream_checkpoint_duration_seconds",
    "stream_queue_depth",
    "stream_backpressure_seconds_total",
    "stream_log_bytes",
    "stream_shard_busy_seconds_total",
    "stream_shard_idle_seconds_total",
    "stream_shard_backpressured_seconds_total",
];

/// Renders `snapshot` in the Prometheus text format.
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = Exposition::default();
    let s = snapshot;

    out.family(FAMILIES[0], "counter", "Events applied to window state.");
    for m in &s.pipeline_shards {
        let shard = m.shard.to_string();
        out.sample(
            FAMILIES[0],
            &[("pipeline", &m.pipeline), ("shard", &shard)],
            m.processed,
        );
    }
    out.family(
        FAMILIES[1],
        "histogram",
        "Time from ingest to the event being applied to window state, in seconds.",
    );
    out.histogram(FAMILIES[1], &s.processing_duration);
    out.family(FAMILIES[2], "gauge", "Open (key, window) states.");
    for m in &s.pipeline_shards {
        let shard = m.shard.to_string();
        out.sample(
            FAMILIES[2],
            &[("pipeline", &m.pipeline), ("shard", &shard)],
            m.active_windows,
        );
    }
    out.family(
        FAMILIES[3],
        "gauge",
        "Wall clock minus the watermark of a source partition, in seconds.",
    );
    for p in &s.partitions {
        out.sample(
            FAMILIES[3],
            &[("pipeline", &p.pipeline), ("partition", &p.partition)],
            p.lag_s,
        );
    }
    if !s.source_positions.is_empty() {
        out.family(
            "stream_source_offset",
            "gauge",
            "The offset of the next record a source partition reads (Kafka).",
        );
        for p in &s.source_positions {
            out.sample(
                "stream_source_offset",
                &[("pipeline", &p.pipeline), ("partition", &p.partition)],
                p.offset,
            );
        }
        out.family(
            "stream_source_lag_records",
            "gauge",
            "Records between a source partition's position and its end (Kafka lag).",
        );
        for p in &s.source_positions {
            out.sample(
                "stream_source_lag_records",
                &[("pipeline", &p.pipeline), ("partition", &p.partition)],
                p.records_behind,
            );
        }
    }
    if !s.kafka_sinks.is_empty() {
        out.family(
            "stream_kafka_sink_committed_checkpoint",
            "gauge",
            "The checkpoint the last committed Kafka transaction of a sink carried.",
        );
        for k in &s.kafka_sinks {
            let shard = k.shard.to_string();
            out.sample(
                "stream_kafka_sink_committed_checkpoint",
                &[
                    ("pipeline", &k.pipeline),
                    ("sink", &k.sink),
                    ("shard", &shard),
                ],
                k.committed_checkpoint,
            );
        }
        out.family(
            "stream_kafka_sink_transaction_records",
            "gauge",
            "Records sent into a Kafka sink's open transaction.",
        );
        for k in &s.kafka_sinks {
            let shard = k.shard.to_string();
            out.sample(
                "stream_kafka_sink_transaction_records",
                &[
                    ("pipeline", &k.pipeline),
                    ("sink", &k.sink),
                    ("shard", &shard),
                ],
                k.transaction_records,
            );
        }
    }
    out.family(
        FAMILIES[4],
        "counter",
        "Late events that updated an already fired window.",
    );
    for p in &s.pipelines {
        out.sample(FAMILIES[4], &[("pipeline", &p.pipeline)], p.late);
    }
    out.family(
        FAMILIES[5],
        "counter",
        "Events dropped because their window's state had expired (later than allowed lateness).",
    );
    for p in &s.pipelines {
        out.sample(FAMILIES[5], &[("pipeline", &p.pipeline)], p.dropped_late);
    }
    out.family(
        FAMILIES[6],
        "counter",
        "Input lines that were not valid events, by reason.",
    );
    for p in &s.pipelines {
        for r in &p.invalid {
            out.sample(
                FAMILIES[6],
                &[("pipeline", &p.pipeline), ("reason", &r.reason)],
                r.count,
            );
        }
    }
    out.family(
        FAMILIES[7],
        "counter",
        "Events recognised as already processed and skipped.",
    );
    for p in &s.pipelines {
        out.sample(FAMILIES[7], &[("pipeline", &p.pipeline)], p.deduplicated);
    }
    out.family(
        FAMILIES[8],
        "counter",
        "Window results emitted, all revisions.",
    );
    for p in &s.pipelines {
        out.sample(FAMILIES[8], &[("pipeline", &p.pipeline)], p.results);
    }
    if s.pipelines
        .iter()
        .any(|p| p.keys_on_two_partitions.is_some())
    {
        out.family(
            "stream_keys_on_two_partitions_total",
            "counter",
            "Keys of a Kafka source seen on more than one input partition.",
        );
        for p in &s.pipelines {
            if let Some(n) = p.keys_on_two_partitions {
                out.sample(
                    "stream_keys_on_two_partitions_total",
                    &[("pipeline", &p.pipeline)],
                    n,
                );
            }
        }
    }
    out.family(FAMILIES[9], "counter", "Checkpoints attempted, by outcome.");
    out.sample(
        FAMILIES[9],
        &[("status", "completed")],
        s.checkpoints.completed,
    );
    out.sample(FAMILIES[9], &[("status", "failed")], s.checkpoints.failed);
    out.family(
        FAMILIES[10],
        "histogram",
        "Time from a checkpoint's barrier to its manifest, in seconds.",
    );
    out.histogram(FAMILIES[10], &s.checkpoint_duration);

    let shard_families: [(&str, &str, &str); 6] = [
        (
            FAMILIES[11],
            "gauge",
            "Events waiting in a shard's inboxes.",
        ),
        (
            FAMILIES[12],
            "counter",
            "Seconds a shard's sources were paused because a queue it sends to was full.",
        ),
        (
            FAMILIES[13],
            "gauge",
            "Bytes of a shard's append log on disk.",
        ),
        (
            FAMILIES[14],
            "counter",
            "Seconds a shard's thread spent doing work.",
        ),
        (
            FAMILIES[15],
            "counter",
            "Seconds a shard's thread had nothing to do.",
        ),
        (
            FAMILIES[16],
            "counter",
            "Seconds a shard's thread spent waiting on a full outgoing queue.",
        ),
    ];
    for (i, (name, kind, help)) in shard_families.into_iter().enumerate() {
        out.family(name, kind, help);
        for m in &s.shards {
            let shard = m.shard.to_string();
            let labels = [("shard", shard.as_str())];
            match i {
                0 => out.sample(name, &labels, m.queue_depth),
                1 => out.sample(name, &labels, m.backpressure_s),
                2 => out.sample(name, &labels, m.log_bytes),
                3 => out.sample(name, &labels, m.busy_s),
                4 => out.sample(name, &labels, m.idle_s),
                _ => out.sample(name, &labels, m.backpressured_s),
            }
        }
    }
    out.text
}

/// A sample value: integers print exactly, floats as Prometheus spells them.
trait Value {
    fn write_to(&self, out: &mut String);
}

impl Value for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write_to(&self, out: &mut String) {
        write_float(out, *self);
    }
}

fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write_to(&mut self.text);
        self.text.push('\n');
    }

    /// Buckets in increasing bound, cumulative counts never decreasing (a backend that
    /// sampled its shards at slightly different moments cannot make the output invalid),
    /// then `+Inf`, `_sum` and `_count`.
    fn histogram(&mut self, name: &str, h: &Histogram) {
        let mut buckets: Vec<_> = h.buckets.iter().filter(|b| b.le.is_finite()).collect();
        buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
        buckets.dedup_by(|b, a| a.le == b.le);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for b in buckets {
            cumulative = cumulative.max(b.count);
            let mut le = String::new();
            write_float(&mut le, b.le);
            self.sample(&bucket, &[("le", &le)], cumulative);
        }
        let count = h.count.max(cumulative);
        self.sample(&bucket, &[("le", "+Inf")], count);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], count);
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bucket, PartitionLag};

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        let snapshot = MetricsSnapshot {
            partitions: vec![PartitionLag {
                pipeline: "p".into(),
                partition: "data/\"in\"\\a.jsonl".into(),
                lag_s: 1.5,
            }],
            ..MetricsSnapshot::default()
        };
        let text = render(&snapshot);
        assert!(text.contains(
            r#"stream_watermark_lag_seconds{pipeline="p",partition="data/\"in\"\\a.jsonl"} 1.5"#
        ));
    }

    #[test]
    fn histograms_are_sorted_cumulative_and_end_with_inf() {
        let h = Histogram {
            buckets: vec![
                Bucket { le: 0.5, count: 3 },
                Bucket { le: 0.1, count: 4 },
                Bucket {
                    le: f64::INFINITY,
                    count: 9,
                },
            ],
            sum: 1.25,
            count: 5,
        };
        let mut out = Exposition::default();
        out.histogram("h", &h);
        assert_eq!(
            out.text,
            "h_bucket{le=\"0.1\"} 4\nh_bucket{le=\"0.5\"} 4\nh_bucket{le=\"+Inf\"} 5\nh_sum 1.25\nh_count 5\n"
        );
    }

    #[test]
    fn every_family_has_help_and_type_even_without_samples() {
        let text = render(&MetricsSnapshot::default());
        for name in FAMILIES {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
