//! Control requests: pausing pipelines, reports and state scans for the admin thread,
//! and the coordinator's checkpoint, commit and shutdown.

use super::Shard;
use crate::control::{Control, ShardReport};
use crate::message::ShardId;

impl Shard {
    /// Answers one control request (from the coordinator or the admin thread).
    pub(super) fn handle_control(&mut self, c: Control) {
        match c {
            Control::SetRunning { pipeline, running } => {
                if let Some(p) = self.pipelines.get_mut(pipeline) {
                    if running
                        && !p.running
                        && let Some(source) = p.source.as_mut()
                    {
                        source.resumed();
                    }
                    p.running = running;
                }
            }
            Control::Inspect { reply } => {
                let report = ShardReport {
                    shard: ShardId(self.id),
                    pipelines: self.pipelines.iter().map(|p| p.report()).collect(),
                };
                let _ = reply.try_send(report);
            }
            Control::Checkpoint { id } => {
                if self.align.start(id) {
                    self.begin_checkpoint(id);
                }
            }
            Control::Committed { id } => self.committed(id),
            Control::Shutdown => self.life.end(),
            Control::Windows {
                pipeline,
                key,
                prefix,
                limit,
                reply,
            } => {
                let found = match self.pipelines.get(pipeline) {
                    None => Vec::new(),
                    Some(p) => {
                        let mut select = |k: &weir_engine::Key| {
                            key.as_deref().is_none_or(|want| k.as_str() == want)
                                && prefix
                                    .as_deref()
                                    .is_none_or(|pre| k.as_str().starts_with(pre))
                        };
                        p.open_windows(&mut select, limit)
                    }
                };
                let _ = reply.try_send(found);
            }
        }
    }
}
