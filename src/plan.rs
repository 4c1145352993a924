//! The resolved plan printed by `weir check`: shards and their cores and key groups,
//! and each pipeline's source, window, watermark and sinks.

use std::fmt::Write;

use weir_config::{Config, Source};
use weir_engine::KeyGroupMap;

/// Renders the plan of a validated config.
pub fn render(c: &Config) -> String {
    let mut s = String::new();
    let shards = c.nr_shards();
    let map = KeyGroupMap::new(c.processing.key_groups, shards as u32);
    let _ = writeln!(s, "config ok: {}", c.app_name);
    if c.instance != c.app_name {
        let _ = writeln!(s, "instance: {}", c.instance);
    }
    let _ = writeln!(s, "data_dir: {}", c.data_dir.display());
    let _ = writeln!(
        s,
        "shards: {shards} ({} key groups; queue {} events, batch {} events)",
        c.processing.key_groups, c.processing.queue_size, c.processing.batch_size
    );
    for shard in 0..shards {
        let range = map.range_of(shard as u32);
        let core = c
            .shard_core(shard)
            .map_or_else(|| "unpinned".to_owned(), |core| format!("core {core}"));
        let _ = writeln!(
            s,
            "  shard {shard}: {core}, key groups {}..{}",
            range.start, range.end
        );
    }
    let admin = if c.admin.enabled {
        format!(
            "http {} metrics {}{}",
            c.admin.http,
            c.admin.metrics,
            if c.admin.token.is_some() {
                " (token set)"
            } else {
                ""
            }
        )
    } else {
        "disabled".to_owned()
    };
    let _ = writeln!(s, "admin: {admin}");
    let checkpoints = if c.processing.checkpoint_interval_secs > 0.0 {
        format!("every {} s", c.processing.checkpoint_interval_secs)
    } else {
        "on shutdown and on demand only".to_owned()
    };
    let _ = writeln!(
        s,
        "storage: segments of {} bytes ({} spare per TCP log), fsync {}, checkpoints {checkpoints}, keep {}",
        c.storage.segment_bytes,
        c.storage.spare_segments,
        c.storage.fsync,
        c.storage.retain_checkpoints
    );
    for p in &c.pipelines {
        let _ = writeln!(s, "pipeline {}:", p.id);
        let source = match &p.source {
            Source::Generator(g) => format!(
                "generator keys={} rate={} total={} disorder_ms={} partitions={} seed={}",
                g.keys, g.rate, g.total, g.disorder_ms, g.partitions, g.seed
            ),
            Source::File(f) => format!("file {} ({:?}, follow={})", f.path, f.format, f.follow),
            Source::Tcp(t) => format!("tcp {} (max line {} bytes)", t.bind, t.max_line_bytes),
            Source::Custom(c) => format!("custom {} ({} partitions)", c.name, c.partitions),
            Source::Kafka(k) => format!(
                "kafka {} at {} (group {}, start {:?}, event time {:?}{})",
                k.topic,
                k.bootstrap,
                k.group,
                k.start,
                k.event_time,
                if k.bounded { ", bounded" } else { "" }
            ),
        };
        let _ = writeln!(s, "  source: {source}");
        let _ = writeln!(s, "  window: {}", p.window);
        let aggs: Vec<&str> = p.aggregates.iter().map(|a| a.name()).collect();
        let _ = writeln!(s, "  aggregates: {}", aggs.join(", "));
        let _ = writeln!(
            s,
            "  watermark: delay {} ms, idle timeout {} ms{}",
            p.watermark.delay_ms,
            p.watermark.idle_timeout_ms,
            p.watermark
                .max_idle_lag_ms
                .map_or(String::new(), |l| format!(", max idle lag {l} ms"))
        );
        let sinks: Vec<String> = p.sinks.iter().map(ToString::to_string).collect();
        let _ = writeln!(s, "  sinks: {}", sinks.join(", "));
        if let Some(late) = &p.late_sink {
            let _ = writeln!(s, "  late sink: {late}");
        }
    }
    s
}
