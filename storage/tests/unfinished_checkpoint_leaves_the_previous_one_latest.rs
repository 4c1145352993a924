//! A crash in the middle of a checkpoint (blobs written, manifest not yet
//! renamed into place) must leave the previous checkpoint as the latest.

use serde_json::json;
use weir_storage::checkpoint::{CheckpointId, CheckpointStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_checkpoint_without_a_renamed_manifest_is_ignored_and_cleaned_up() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 3)?;
    let mut first = store.begin(CheckpointId::new(1))?;
    first.put_blob("shard-0", b"state one")?;
    let committed = first.commit(&json!({ "log_offset": 8 }))?;
    assert_eq!(committed.id, CheckpointId::new(1));

    // Crash after the blobs: no manifest at all.
    let mut second = store.begin(CheckpointId::new(2))?;
    second.put_blob("shard-0", b"state two")?;
    drop(second);
    // Crash after writing the temporary manifest, before the rename.
    let mut third = store.begin(CheckpointId::new(3))?;
    third.put_blob("shard-0", b"state three")?;
    drop(third);
    let third_dir = tmp.path().join("00000000000000000003");
    std::fs::write(
        third_dir.join("MANIFEST.json.tmp"),
        br#"{"format":1,"id":3}"#,
    )?;
    assert!(third_dir.exists());

    // A process restarting finds checkpoint 1.
    let store = CheckpointStore::open(tmp.path(), 3)?;
    let latest = store.latest_complete()?.ok_or("no checkpoint")?;
    assert_eq!(latest.id(), CheckpointId::new(1));
    assert_eq!(latest.blob("shard-0"), Some(b"state one".as_slice()));
    assert_eq!(latest.manifest().meta["log_offset"], 8);
    assert_eq!(store.list()?.len(), 1);
    assert!(!third_dir.exists(), "the unfinished folder is cleaned up");
    assert!(!tmp.path().join("00000000000000000002").exists());

    // The ids of unfinished checkpoints can be used again.
    assert_eq!(store.next_id()?, CheckpointId::new(2));
    let mut retry = store.begin(CheckpointId::new(2))?;
    retry.put_blob("shard-0", b"state two, again")?;
    retry.commit(&json!({ "log_offset": 64 }))?;
    let latest = store.latest_complete()?.ok_or("no checkpoint")?;
    assert_eq!(latest.id(), CheckpointId::new(2));
    assert_eq!(latest.blob("shard-0"), Some(b"state two, again".as_slice()));
    Ok(())
}

#[test]
fn checkpoint_ids_must_grow() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 2)?;
    store.begin(CheckpointId::new(5))?.commit(&json!(null))?;
    assert!(matches!(
        store.begin(CheckpointId::new(5)),
        Err(weir_storage::Error::CheckpointNotMonotonic { .. })
    ));
    assert!(store.begin(CheckpointId::new(4)).is_err());
    assert!(matches!(
        CheckpointStore::open(tmp.path(), 0),
        Err(weir_storage::Error::InvalidRetain { retain: 0 })
    ));
    Ok(())
}
