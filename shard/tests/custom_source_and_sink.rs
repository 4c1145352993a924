//! A custom source and a custom sink, written against the public traits and registered
//! by name, run through the real runtime (the example of docs/EXTENDING.md).

use std::sync::{Arc, Mutex};

use weir_engine::{Event, EventTime, Key, Offset, PartitionId};
use weir_shard::sink::Sink;
use weir_shard::source::{LocalFuture, Source, SourceError, SourceOutput};
use weir_shard::{Extensions, Runtime};

/// Counts up: partition `p` yields events `0..per_partition`, one per millisecond.
struct Counter {
    partitions: Vec<(PartitionId, u64)>,
    per_partition: u64,
    next: usize,
}

impl Source for Counter {
    fn describe(&self) -> String {
        format!("counter to {}", self.per_partition)
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.partitions.iter().map(|(p, _)| *p).collect()
    }

    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            if self.partitions.is_empty() {
                return Ok(());
            }
            let i = self.next % self.partitions.len();
            self.next += 1;
            let (partition, next) = &mut self.partitions[i];
            // At most `max`, and no further than the partition's next cut point.
            let room = max.min(out.room(*partition)) as u64;
            let end = (*next + room).min(self.per_partition);
            for n in *next..end {
                let key = Key::new(&format!("k{}", n % 7));
                let time = EventTime(1_700_000_000_000 + n as i64);
                out.event(Event::new(key, time, 1.0, out.id(*partition, Offset(n))));
            }
            *next = end;
            if end == self.per_partition {
                out.finished(*partition);
            }
            Ok(())
        })
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions
            .iter()
            .map(|(p, n)| (*p, Offset(*n)))
            .collect()
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        for (p, n) in &mut self.partitions {
            if *p == partition {
                *n = next.0;
            }
        }
        Ok(())
    }
}

/// Keeps every line it is given.
struct Collect(Arc<Mutex<Vec<u8>>>);

impl Sink for Collect {
    fn describe(&self) -> String {
        "collect".into()
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(lines);
            Ok(())
        })
    }
}

#[test]
fn a_registered_custom_source_and_sink_run_a_pipeline_end_to_end()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = weir_config::from_str(
        &format!(
            r#"
data_dir = {:?}
[processing]
parallelism = 2
[admin]
enabled = false
[[pipelines]]
id = "counted"
source = {{ type = "custom", name = "counter", partitions = 3, options = {{ per_partition = 5000 }} }}
window = {{ type = "tumbling", size_ms = 100 }}
watermark = {{ delay_ms = 5 }}
aggregates = ["count"]
sinks = [{{ type = "custom", name = "collect" }}]
"#,
            dir.path().display().to_string()
        ),
        "test.toml",
    )?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = Arc::clone(&lines);
    let extensions = Extensions::new()
        .source("counter", |cx| {
            let per_partition = cx
                .options
                .get("per_partition")
                .and_then(|v| v.as_integer())
                .ok_or("options.per_partition is required")? as u64;
            Ok(Box::new(Counter {
                partitions: cx.partitions.iter().map(|p| (*p, 0)).collect(),
                per_partition,
                next: 0,
            }))
        })
        .sink("collect", move |_| {
            Ok(Box::new(Collect(Arc::clone(&sink_lines))))
        });
    Runtime::start_with(config, extensions)?.wait()?;
    let text = String::from_utf8(lines.lock().map_err(|_| "poisoned")?.clone())?;
    let mut total = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        total += v["count"].as_u64().ok_or("count")?;
    }
    assert_eq!(total, 3 * 5000);
    Ok(())
}

#[test]
fn an_unregistered_custom_name_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = weir_config::from_str(
        &format!(
            r#"
data_dir = {:?}
[admin]
enabled = false
[[pipelines]]
id = "x"
source = {{ type = "custom", name = "nope" }}
window = {{ type = "tumbling", size_ms = 100 }}
sinks = [{{ type = "console" }}]
"#,
            dir.path().display().to_string()
        ),
        "test.toml",
    )?;
    let err = Runtime::start(config).err().ok_or("expected an error")?;
    assert!(
        err.to_string().contains("no custom source named \"nope\""),
        "{err}"
    );
    Ok(())
}
