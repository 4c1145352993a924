//! Custom sources and sinks, registered by a program that embeds weir.
//!
//! A pipeline names them in its config (`source = { type = "custom", name = "…",
//! partitions = N, options = { … } }`, `sinks = [{ type = "custom", name = "…",
//! options = { … } }]`), and the program passes factories for those names to
//! [`crate::Runtime::start_with`]. A factory runs on each shard's own thread when the
//! shard starts, once per (pipeline, shard), and gets the partitions that shard owns
//! (partition `i` belongs to shard `i mod shards`). See docs/EXTENDING.md.

use crate::message::ShardId;
use std::collections::HashMap;
use std::sync::Arc;

use weir_config::Options;
use weir_engine::PartitionId;

use crate::sink::Sink;
use crate::source::Source;

/// What a source factory is given.
#[derive(Debug)]
pub struct SourceContext<'a> {
    /// The pipeline id.
    pub pipeline: &'a str,
    /// The shard that will poll the source.
    pub shard: ShardId,
    /// The partitions this shard owns.
    pub partitions: &'a [PartitionId],
    /// The `options` table of the config.
    pub options: &'a Options,
}

/// What a sink factory is given.
#[derive(Debug)]
pub struct SinkContext<'a> {
    /// The pipeline id.
    pub pipeline: &'a str,
    /// The shard whose results it takes.
    pub shard: ShardId,
    /// The `options` table of the config.
    pub options: &'a Options,
}

type SourceFactory = dyn Fn(&SourceContext<'_>) -> Result<Box<dyn Source>, String> + Send + Sync;
type SinkFactory = dyn Fn(&SinkContext<'_>) -> Result<Box<dyn Sink>, String> + Send + Sync;

/// Named factories of custom sources and sinks.
#[derive(Clone, Default)]
pub struct Extensions {
    sources: HashMap<String, Arc<SourceFactory>>,
    sinks: HashMap<String, Arc<SinkFactory>>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("sinks", &self.sinks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Extensions {
    /// No extensions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a source factory under `name`.
    pub fn source(
        mut self,
        name: &str,
        factory: impl Fn(&SourceContext<'_>) -> Result<Box<dyn Source>, String> + Send + Sync + 'static,
    ) -> Self {
        self.sources.insert(name.to_owned(), Arc::new(factory));
        self
    }

    /// Registers a sink factory under `name`.
    pub fn sink(
        mut self,
        name: &str,
        factory: impl Fn(&SinkContext<'_>) -> Result<Box<dyn Sink>, String> + Send + Sync + 'static,
    ) -> Self {
        self.sinks.insert(name.to_owned(), Arc::new(factory));
        self
    }

    /// Makes a custom source.
    pub fn make_source(
        &self,
        name: &str,
        cx: &SourceContext<'_>,
    ) -> Result<Box<dyn Source>, String> {
        let factory = self.sources.get(name).ok_or_else(|| {
            format!("no custom source named {name:?} is registered in this program")
        })?;
        factory(cx)
    }

    /// Makes a custom sink.
    pub fn make_sink(&self, name: &str, cx: &SinkContext<'_>) -> Result<Box<dyn Sink>, String> {
        let factory = self.sinks.get(name).ok_or_else(|| {
            format!("no custom sink named {name:?} is registered in this program")
        })?;
        factory(cx)
    }

    /// Whether a source name is registered.
    pub fn has_source(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Whether a sink name is registered.
    pub fn has_sink(&self, name: &str) -> bool {
        self.sinks.contains_key(name)
    }
}
