//! `retain` bounds how many complete checkpoints stay on disk.

use serde::{Deserialize, Serialize};
use weir_storage::checkpoint::{CheckpointId, CheckpointStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    sources: Vec<(String, u64)>,
}

#[test]
fn committing_beyond_retain_deletes_the_oldest_checkpoints() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = CheckpointStore::open(tmp.path(), 2)?;
    for _ in 0..5 {
        let id = store.next_id()?;
        let mut writer = store.begin(id)?;
        writer.put_blob("shard-0", &id.get().to_le_bytes())?;
        let manifest = writer.commit(&Meta {
            sources: vec![("clicks/0".into(), id.get() * 100)],
        })?;
        assert_eq!(manifest.id, id);
        assert_eq!(manifest.blobs.len(), 1);
    }

    let ids: Vec<u64> = store.list()?.iter().map(|m| m.id.get()).collect();
    assert_eq!(ids, [4, 5]);
    let mut folders: Vec<String> = std::fs::read_dir(tmp.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    folders.sort();
    assert_eq!(folders, ["00000000000000000004", "00000000000000000005"]);

    let latest = store.latest_complete()?.ok_or("no checkpoint")?;
    assert_eq!(latest.id(), CheckpointId::new(5));
    let meta: Meta = latest.manifest().meta_as()?;
    assert_eq!(meta.sources, [("clicks/0".to_owned(), 500)]);

    // The manifest is readable JSON naming each blob's length and checksum.
    let text = std::fs::read_to_string(tmp.path().join("00000000000000000005/MANIFEST.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(json["id"], 5);
    assert_eq!(json["blobs"][0]["name"], "shard-0");
    assert_eq!(json["blobs"][0]["len"], 8);
    assert_eq!(
        json["blobs"][0]["crc32c"],
        crc32c::crc32c(&5u64.to_le_bytes())
    );
    assert!(json["created"].as_str().is_some_and(|s| s.ends_with('Z')));
    Ok(())
}
