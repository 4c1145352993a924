//! A checkpoint whose blob was damaged on disk must not be restored: loading
//! warns, naming the checkpoint and the blob, and falls back to the previous
//! complete checkpoint.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use weir_storage::checkpoint::{CheckpointId, CheckpointStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Collects the text of every warning.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = String::new();
        event.record(&mut Text(&mut text));
        if let Ok(mut all) = self.0.lock() {
            all.push(text);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_flipped_byte_in_a_blob_makes_loading_fall_back_with_a_warning() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 3)?;
    for id in 1..=2u64 {
        let mut writer = store.begin(CheckpointId::new(id))?;
        writer.put_blob(
            "shard-0.groups-0-2047",
            format!("shard 0 at {id}").as_bytes(),
        )?;
        writer.put_blob(
            "shard-1.groups-2048-4095",
            format!("shard 1 at {id}").as_bytes(),
        )?;
        writer.commit(&json!({ "id": id }))?;
    }
    let blob = tmp
        .path()
        .join("00000000000000000002/shard-1.groups-2048-4095");
    let mut bytes = std::fs::read(&blob)?;
    bytes[3] ^= 0x20;
    std::fs::write(&blob, &bytes)?;

    let warnings = Warnings::default();
    let latest = tracing::subscriber::with_default(warnings.clone(), || store.latest_complete())?
        .ok_or("no checkpoint")?;
    assert_eq!(latest.id(), CheckpointId::new(1));
    assert_eq!(
        latest.blob("shard-1.groups-2048-4095"),
        Some(b"shard 1 at 1".as_slice())
    );

    let warnings = warnings.0.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("checkpoint=2"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("blob=shard-1.groups-2048-4095"),
        "{}",
        warnings[0]
    );

    // A missing blob is treated the same way.
    std::fs::remove_file(
        tmp.path()
            .join("00000000000000000001/shard-0.groups-0-2047"),
    )?;
    assert!(store.latest_complete()?.is_none());
    Ok(())
}
