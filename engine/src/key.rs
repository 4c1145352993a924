//! Keys, their one stable hash, and key groups.
//!
//! A key is hashed exactly once, when it is made; the hash picks its key group (where its
//! state lives) and is reused as the hash-table hash on every shard, so the hot path never
//! hashes a string twice. The hash is XXH3-64 of the key's UTF-8 bytes with seed 0: a
//! published algorithm, so it is the same in every build and on every restart, which
//! state stored by key group depends on.

use std::fmt;

use compact_str::CompactString;

/// An event key: a string (inline up to 24 bytes) with its stable hash.
#[derive(Clone)]
pub struct Key {
    hash: u64,
    text: CompactString,
}

impl Key {
    /// Makes a key from its text.
    pub fn new(text: &str) -> Self {
        Self {
            hash: stable_hash(text.as_bytes()),
            text: CompactString::new(text),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stable hash of the text.
    #[inline]
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The key group among `nr_groups`.
    #[inline]
    pub fn group(&self, nr_groups: u32) -> KeyGroup {
        KeyGroup::of_hash(self.hash, nr_groups)
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable 64-bit hash of key bytes (XXH3-64, seed 0).
#[inline]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A key group: the unit in which keyed state is placed on shards and stored in snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u32);

impl KeyGroup {
    /// The group of a key hash among `nr_groups` (> 0).
    ///
    /// It takes the upper 32 bits of the hash, so that the bits that pick a group are not
    /// the low bits a hash table uses to pick a bucket: keys of one shard's groups still
    /// spread over all of that shard's buckets.
    #[inline]
    pub fn of_hash(hash: u64, nr_groups: u32) -> Self {
        let high = hash >> 32;
        let n = nr_groups.max(1);
        // The same value as the modulo; a mask when the count is a power of two (the
        // default 4096), which spares the hot path a division per event.
        if n.is_power_of_two() {
            KeyGroup((high & u64::from(n - 1)) as u32)
        } else {
            KeyGroup((high % u64::from(n)) as u32)
        }
    }
}

/// A contiguous range of key groups `[start, end)` owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupRange {
    /// First group of the range.
    pub start: u32,
    /// One past the last group.
    pub end: u32,
}

impl KeyGroupRange {
    /// Whether the range holds the group.
    #[inline]
    pub fn contains(&self, group: KeyGroup) -> bool {
        self.start <= group.0 && group.0 < self.end
    }

    /// Number of groups in the range.
    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// How `nr_groups` key groups are split over `nr_shards` shards: contiguous ranges whose
/// sizes differ by at most one, as Flink assigns key groups to operator instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupMap {
    nr_groups: u32,
    nr_shards: u32,
}

impl KeyGroupMap {
    /// A map of `nr_groups` over `nr_shards`; both are at least 1.
    pub fn new(nr_groups: u32, nr_shards: u32) -> Self {
        Self {
            nr_groups: nr_groups.max(1),
            nr_shards: nr_shards.max(1),
        }
    }

    /// Number of key groups.
    pub fn nr_groups(&self) -> u32 {
        self.nr_groups
    }

    /// Number of shards.
    pub fn nr_shards(&self) -> u32 {
        self.nr_shards
    }

    /// The shard that owns a group.
    #[inline]
    pub fn shard_of(&self, group: KeyGroup) -> u32 {
        let scaled = u64::from(group.0) * u64::from(self.nr_shards);
        if self.nr_groups.is_power_of_two() {
            (scaled >> self.nr_groups.trailing_zeros()) as u32
        } else {
            (scaled / u64::from(self.nr_groups)) as u32
        }
    }

    /// The shard that owns a key hash.
    #[inline]
    pub fn shard_of_hash(&self, hash: u64) -> u32 {
        self.shard_of(KeyGroup::of_hash(hash, self.nr_groups))
    }

    /// The groups a shard owns.
    pub fn range_of(&self, shard: u32) -> KeyGroupRange {
        let bound = |s: u32| -> u32 {
            // The smallest group g with g * shards / groups >= s.
            ((u64::from(s) * u64::from(self.nr_groups)).div_ceil(u64::from(self.nr_shards))) as u32
        };
        KeyGroupRange {
            start: bound(shard),
            end: bound(shard + 1).min(self.nr_groups),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Fixed values: if these change, every stored checkpoint becomes unreadable.
        assert_eq!(stable_hash(b""), 0x2d06800538d394c2);
        assert_eq!(
            Key::new("u42").group(4096),
            KeyGroup::of_hash(stable_hash(b"u42"), 4096)
        );
    }

    #[test]
    fn ranges_cover_every_group_once_and_agree_with_shard_of() {
        for groups in [1u32, 2, 7, 128, 4096] {
            for shards in 1..=groups.min(9) {
                let map = KeyGroupMap::new(groups, shards);
                let mut next = 0;
                for s in 0..shards {
                    let r = map.range_of(s);
                    assert_eq!(r.start, next);
                    for g in r.start..r.end {
                        assert_eq!(map.shard_of(KeyGroup(g)), s);
                    }
                    next = r.end;
                }
                assert_eq!(next, groups);
            }
        }
    }
}
