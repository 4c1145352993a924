//! weir-storage: the per-shard append log and the checkpoint store.
