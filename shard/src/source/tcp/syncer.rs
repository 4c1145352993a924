//! Group commit: one task per TCP source and shard makes appended records durable and
//! turns durability into acknowledgements.
//!
//! Whenever records were appended and no sync is running, the syncer takes a
//! [`SyncJob`](weir_storage::SyncJob) covering everything appended so far and runs it on
//! glommio's blocking pool (never `msync` on the shard thread). Connections keep
//! appending meanwhile; the next job covers all of that at once, so under load one
//! flush serves many batches of many connections. When a job is done the log's
//! durable offset moves, every batch below it is acknowledged (`State::settle`), and
//! the connections are woken to write their acks. With `fsync = "never"` there is no
//! job: records are acknowledged as soon as they are appended. `"always"` behaves as
//! `"group"` here: a sync starts as soon as the previous one ends, and every
//! acknowledgement waits for a sync that covers its batch.
//!
//! A failed sync poisons the log (see weir-storage): the source stops accepting, tells
//! its connections why, and acknowledges nothing more.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::state::{Shared, State};

/// The syncer's waiter id.
const SYNCER_ID: u64 = 0;

/// Runs until the source closes or its log fails.
pub(crate) async fn run(shared: Rc<Shared>) {
    let mut log_bytes = 0u64;
    loop {
        let seen = shared.work.generation();
        let jobs = {
            let mut st = shared.state.borrow_mut();
            if st.closed || st.failed.is_some() {
                return;
            }
            let moved = st.settle();
            publish_log_bytes(&shared, &st, &mut log_bytes);
            let mut jobs = Vec::new();
            let mut error = None;
            for (i, part) in st.parts.iter().enumerate() {
                match part.log.sync_job() {
                    Ok(Some(job)) => jobs.push((i, job)),
                    Ok(None) => {}
                    Err(e) => {
                        error.get_or_insert(format!("append log of partition {}: {e}", part.id.0));
                    }
                }
            }
            if let Some(why) = error {
                st.fail(why);
            }
            let failed = st.failed.is_some();
            drop(st);
            if moved || failed {
                shared.progress.notify();
            }
            if failed {
                return;
            }
            jobs
        };
        if jobs.is_empty() {
            shared.work.changed(SYNCER_ID, seen).await;
            continue;
        }
        let asked = std::time::Instant::now();
        let (done, ran) = glommio::executor()
            .spawn_blocking(move || {
                let t = std::time::Instant::now();
                let done = jobs
                    .into_iter()
                    .map(|(i, job)| (i, job.run()))
                    .collect::<Vec<_>>();
                (done, t.elapsed())
            })
            .await;
        let took = asked.elapsed();
        if took > std::time::Duration::from_millis(5) {
            tracing::debug!(
                took_us = took.as_micros() as u64,
                ran_us = ran.as_micros() as u64,
                "slow sync"
            );
        }
        let mut st = shared.state.borrow_mut();
        let mut error = None;
        for (i, result) in done {
            let Some(part) = st.parts.get_mut(i) else {
                continue;
            };
            let marked = result.and_then(|durable| part.log.mark_durable(durable));
            if let Err(e) = marked {
                error.get_or_insert(format!("append log of partition {}: {e}", part.id.0));
            }
        }
        if let Some(why) = error {
            st.fail(why);
        }
        st.settle();
        drop(st);
        shared.progress.notify();
    }
}

/// Publishes the bytes of this source's logs in the shard's `log_bytes` gauge (shared by
/// every TCP source of the shard, so it moves by differences).
fn publish_log_bytes(shared: &Shared, st: &State, published: &mut u64) {
    let bytes: u64 = st.parts.iter().map(|p| p.log.disk_bytes()).sum();
    let gauge = &shared.counters.shards[shared.shard].log_bytes;
    if bytes > *published {
        gauge.fetch_add(bytes - *published, Ordering::Relaxed);
    } else {
        gauge.fetch_sub(*published - bytes, Ordering::Relaxed);
    }
    *published = bytes;
}
