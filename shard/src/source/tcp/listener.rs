//! Accepting connections: one listener per shard on the shared port.
//!
//! glommio's `TcpListener::bind` sets `SO_REUSEPORT`, so every shard binds the same
//! address and the kernel spreads incoming connections over the shards by a hash of
//! their addresses: ingest scales with cores and no shard hands sockets to another.
//! Each accepted connection runs as its own task on the shard's executor.
//!
//! `max_connections` counts connections over all shards of the pipeline. One past it
//! is not silently dropped: it gets `{"error":"too many connections ..."}` and is
//! closed. A failed `accept` (out of file descriptors, say) is logged and retried
//! after a pause, never a busy loop.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};

use super::connection;
use super::protocol;
use super::state::Shared;

/// Runs the accept loop until the source is dropped (which cancels this task).
pub(crate) async fn run(shared: Rc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if shared.state.borrow().closed {
                    return;
                }
                let failed = shared.state.borrow().failed.clone();
                if let Some(why) = failed {
                    let why = format!("the source cannot store events: {why}");
                    glommio::spawn_local(refuse(stream, why)).detach();
                    continue;
                }
                match shared.registry.admit() {
                    Some(admission) => {
                        let _ = stream.set_nodelay(true);
                        glommio::spawn_local(connection::serve(
                            Rc::clone(&shared),
                            stream,
                            admission,
                        ))
                        .detach();
                    }
                    None => {
                        let why = format!(
                            "too many connections: the limit is {}",
                            shared.registry.max_connections()
                        );
                        glommio::spawn_local(refuse(stream, why)).detach();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %shared.pipeline, error = %e, "accept failed; retrying");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Tells a connection why it is refused, then closes it.
async fn refuse(mut stream: TcpStream, why: String) {
    let mut out = Vec::new();
    protocol::connection_error(&mut out, &why);
    let _ = stream.write_all(&out).await;
    let _ = stream.close().await;
}
