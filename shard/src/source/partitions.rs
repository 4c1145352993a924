//! The per-partition bookkeeping every source does alike: finding a partition by id,
//! pausing it for watermark alignment, listing positions for a checkpoint.

use weir_engine::{Offset, PartitionId};

use super::SourceError;

/// One partition of a source, as the shared bookkeeping sees it.
pub trait PartitionSlot {
    /// Its id.
    fn id(&self) -> PartitionId;
    /// The offset of the next record to read.
    fn position(&self) -> Offset;
    /// Whether watermark alignment holds it back.
    fn paused_mut(&mut self) -> &mut bool;
}

/// Pauses or resumes partition `id` (unknown ids are ignored).
pub fn set_paused<P: PartitionSlot>(parts: &mut [P], id: PartitionId, paused: bool) {
    if let Some(p) = parts.iter_mut().find(|p| p.id() == id) {
        *p.paused_mut() = paused;
    }
}

/// Every partition's position, in order.
pub fn positions<P: PartitionSlot>(parts: &[P]) -> Vec<(PartitionId, Offset)> {
    parts.iter().map(|p| (p.id(), p.position())).collect()
}

/// Partition `id`, for a seek; `kind` names the source in the error.
pub fn find_mut<'a, P: PartitionSlot>(
    parts: &'a mut [P],
    id: PartitionId,
    kind: &'static str,
) -> Result<&'a mut P, SourceError> {
    parts
        .iter_mut()
        .find(|p| p.id() == id)
        .ok_or(SourceError::NoSuchPartition {
            source_kind: kind,
            partition: id.0,
        })
}
