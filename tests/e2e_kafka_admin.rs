//! The admin API and metrics of a Kafka pipeline: each Kafka partition's offset and lag
//! beside its watermark, and each Kafka sink's committed checkpoint and open
//! transaction.

mod admin_common;
mod kafka_common;

use std::time::Duration;

use admin_common::{Engine, Res};
use kafka_common::{broker, create_topic, partition_of, produce, topic};

#[test]
fn the_admin_shows_kafka_offsets_lag_and_transactions() -> Res<()> {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("admin-in");
    let output = topic("admin-out");
    create_topic(b, &input, 2)?;
    create_topic(b, &output, 1)?;
    let mut records: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let key = format!("u{}", i % 10);
            let line = format!(
                r#"{{"key":"{key}","ts":{},"value":1}}"#,
                1_700_000_000_000i64 + i * 10
            );
            (key, line)
        })
        .collect();
    // One window key under record keys on both partitions: input not keyed by it.
    let on = |p: u32| {
        (0..100)
            .map(|i| format!("r{i}"))
            .find(|k| partition_of(k, 2) == p)
            .unwrap_or_default()
    };
    for (n, record_key) in [on(0), on(1)].into_iter().enumerate() {
        let line = format!(
            r#"{{"key":"split","ts":{},"value":1}}"#,
            1_700_000_000_000i64 + n as i64
        );
        records.push((record_key, line));
    }
    produce(b, &input, &records)?;
    let id = format!("k{}", std::process::id());
    let engine = Engine::start_with(
        "checkpoint_interval = 0.5",
        "",
        &format!(
            r#"[[pipelines]]
id = "{id}"
source = {{ type = "kafka", bootstrap = "{b}", topic = "{input}" }}
window = {{ type = "tumbling", size_ms = 1000 }}
watermark = {{ delay_ms = 0 }}
sinks = [{{ type = "kafka", bootstrap = "{b}", topic = "{output}" }}]
"#
        ),
    )?;
    // Every record read: the offsets add up to the records, and nothing is behind.
    let w = engine.wait_for("/watermarks", Duration::from_secs(60), |v| {
        let parts = v["pipelines"][0]["partitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        parts.len() == 2
            && parts
                .iter()
                .filter_map(|p| p["offset"].as_u64())
                .sum::<u64>()
                == 1002
            && parts
                .iter()
                .all(|p| p["records_behind"].as_u64() == Some(0))
    })?;
    let parts = w["pipelines"][0]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for p in &parts {
        let name = p["partition"].as_str().unwrap_or("");
        assert!(
            name.starts_with(&format!("{input}/")),
            "named topic/partition: {p}"
        );
        assert!(p["watermark_ms"].is_i64(), "{p}");
    }
    let stats = engine.wait_for(
        &format!("/pipelines/{id}/stats"),
        Duration::from_secs(30),
        |v| {
            v["kafka_sinks"].as_array().is_some_and(|s| {
                s.len() == 2
                    && s.iter()
                        .all(|k| k["committed_checkpoint"].as_u64() >= Some(1))
            })
        },
    )?;
    assert_eq!(stats["kafka_sinks"][0]["sink"], "sink0", "{stats}");
    assert_eq!(
        stats["keys_on_two_partitions"], 1,
        "the split key is counted once: {stats}"
    );
    let metrics = admin_common::get(engine.metrics, "/metrics")?;
    let text = metrics.body;
    for want in [
        format!("stream_source_offset{{pipeline=\"{id}\",partition=\"{input}/0\"}}"),
        format!("stream_source_lag_records{{pipeline=\"{id}\",partition=\"{input}/1\"}} 0"),
        format!(
            "stream_kafka_sink_committed_checkpoint{{pipeline=\"{id}\",sink=\"sink0\",shard=\"1\"}}"
        ),
        format!(
            "stream_kafka_sink_transaction_records{{pipeline=\"{id}\",sink=\"sink0\",shard=\"0\"}}"
        ),
        format!("stream_keys_on_two_partitions_total{{pipeline=\"{id}\"}} 1"),
    ] {
        assert!(text.contains(&want), "{want} in:\n{text}");
    }
    let status = engine.stop()?;
    assert!(status.success(), "{status}");
    Ok(())
}
