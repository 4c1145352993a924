//! An incremental checkpoint refers to blobs of earlier checkpoints: loading it verifies
//! and loads them, a damaged one makes it fall back, and `retain` keeps them for as long
//! as a retained checkpoint builds on them.

use weir_storage::checkpoint::{BlobInfo, CheckpointId, CheckpointStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn folders(dir: &std::path::Path) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().parse().unwrap_or(0)))
        .collect::<Result<_, _>>()?;
    ids.sort();
    Ok(ids)
}

/// Commits a checkpoint with a blob "shard-0" holding its id, building on `base`.
fn commit(
    store: &CheckpointStore,
    base: &[(u64, BlobInfo)],
) -> Result<BlobInfo, Box<dyn std::error::Error>> {
    let id = store.next_id()?;
    let mut writer = store.begin(id)?;
    let info = writer.put_blob("shard-0", &id.get().to_le_bytes())?;
    for (checkpoint, blob) in base {
        writer.refer(CheckpointId::new(*checkpoint), blob)?;
    }
    writer.commit(&serde_json::json!({}))?;
    Ok(info)
}

#[test]
fn referenced_blobs_load_with_the_checkpoint_and_outlive_retain() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 1)?;
    let one = commit(&store, &[])?;
    let two = commit(&store, &[(1, one.clone())])?;
    let three = commit(&store, &[(1, one.clone()), (2, two.clone())])?;
    // Only 3 is retained, but it builds on 1 and 2.
    assert_eq!(folders(tmp.path())?, [1, 2, 3]);
    let latest = store.latest_complete()?.ok_or("no checkpoint")?;
    assert_eq!(latest.id(), CheckpointId::new(3));
    assert_eq!(latest.blob("shard-0"), Some(&3u64.to_le_bytes()[..]));
    assert_eq!(
        latest.referenced_blob(CheckpointId::new(1), "shard-0"),
        Some(&1u64.to_le_bytes()[..])
    );
    assert_eq!(
        latest.referenced_blob(CheckpointId::new(2), "shard-0"),
        Some(&2u64.to_le_bytes()[..])
    );
    assert_eq!(latest.manifest().refs.len(), 2);

    // 4 builds on 3 only: 1 and 2 go.
    commit(&store, &[(3, three)])?;
    assert_eq!(folders(tmp.path())?, [3, 4]);
    // 5 builds on nothing: 3 and 4 go.
    commit(&store, &[])?;
    assert_eq!(folders(tmp.path())?, [5]);
    Ok(())
}

#[test]
fn a_damaged_referenced_blob_makes_the_checkpoint_fall_back() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 3)?;
    let one = commit(&store, &[])?;
    let two = commit(&store, &[])?;
    commit(&store, &[(1, one)])?;
    // Damage checkpoint 1's blob, which 3 builds on.
    std::fs::write(tmp.path().join("00000000000000000001/shard-0"), b"garbage!")?;
    let latest = store.latest_complete()?.ok_or("no checkpoint")?;
    assert_eq!(
        latest.id(),
        CheckpointId::new(2),
        "3 cannot load without 1's blob"
    );
    let _ = two;
    Ok(())
}

#[test]
fn a_checkpoint_builds_only_on_earlier_ones() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 3)?;
    let one = commit(&store, &[])?;
    let mut writer = store.begin(store.next_id()?)?;
    assert!(writer.refer(CheckpointId::new(2), &one).is_err());
    assert!(writer.refer(CheckpointId::new(5), &one).is_err());
    let bad = BlobInfo {
        name: "../x".into(),
        ..one.clone()
    };
    assert!(writer.refer(CheckpointId::new(1), &bad).is_err());
    assert!(writer.refer(CheckpointId::new(1), &one).is_ok());
    Ok(())
}
