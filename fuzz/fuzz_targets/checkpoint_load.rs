//! Checkpoints on arbitrary bytes: a manifest and a blob of any content are loaded (or
//! refused, falling back) without a panic, and a shard snapshot blob of any bytes
//! decodes or is refused. Every blob of a checkpoint that loads matches its manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_shard::checkpoint::ShardSnapshot;
use weir_storage::CheckpointStore;

fuzz_target!(|data: &[u8]| {
    let _ = weir_engine::snapshot::decode::<ShardSnapshot>(data);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    // Input: a 2-byte manifest length, the manifest, then shard 0's blob.
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (manifest, blob) = rest.split_at(split);
    let folder = dir.path().join("00000000000000000001");
    if std::fs::create_dir(&folder).is_err()
        || std::fs::write(folder.join("MANIFEST.json"), manifest).is_err()
        || std::fs::write(folder.join("shard-0000.rkyv"), blob).is_err()
    {
        return;
    }
    let Ok(store) = CheckpointStore::open(dir.path(), 3) else {
        return;
    };
    let _ = store.list();
    if let Ok(Some(loaded)) = store.latest_complete() {
        for (name, bytes) in loaded.blobs() {
            let info = loaded.manifest().blob(name);
            assert_eq!(info.map(|b| b.len), Some(bytes.len() as u64), "{name}");
            let _ = weir_engine::snapshot::decode::<ShardSnapshot>(bytes);
        }
    }
});
