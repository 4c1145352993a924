//! The console sink: lines to standard output (at-least-once).

use std::io::Write;

use crate::source::LocalFuture;

use super::Sink;

/// Writes lines to stdout, from glommio's blocking pool.
#[derive(Debug, Default)]
pub struct ConsoleSink;

impl Sink for ConsoleSink {
    fn describe(&self) -> String {
        "console".into()
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        let buf = lines.to_vec();
        Box::pin(async move {
            glommio::executor()
                .spawn_blocking(move || {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf)?;
                    out.flush()
                })
                .await
        })
    }
}
