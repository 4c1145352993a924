//! A failed sync must not be retried into silence: the log refuses all work
//! until it is reopened, and reopening recovers it.

use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_failed_sync_poisons_the_log_until_it_is_reopened() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = LogOptions::new(1 << 16, FsyncPolicy::Group);
    let (mut log, _) = Log::open(tmp.path(), options)?;

    // A sync that works advances the durable offset.
    let first = log.append(b"synced")?;
    let job = log.sync_job()?.ok_or("a job for the first record")?;
    let durable = job.run()?;
    log.mark_durable(durable)?;
    assert!(log.is_durable(first));
    assert!(!log.is_poisoned());

    // A sync that fails poisons the log, from the job's own thread.
    let second = log.append(b"not synced")?;
    log.inject_sync_failure();
    let job = log.sync_job()?.ok_or("a job for the second record")?;
    let failure = std::thread::spawn(move || job.run())
        .join()
        .map_err(|_| "sync thread panicked")?;
    assert!(
        matches!(failure, Err(Error::Io { op: "msync", .. })),
        "{failure:?}"
    );
    assert!(log.is_poisoned());
    assert!(!log.is_durable(second));

    assert!(matches!(log.append(b"refused"), Err(Error::Poisoned)));
    assert!(matches!(log.sync_job(), Err(Error::Poisoned)));
    assert!(matches!(log.flush_now(), Err(Error::Poisoned)));
    assert!(matches!(
        log.mark_durable(log.end_offset()),
        Err(Error::Poisoned)
    ));
    assert!(matches!(log.truncate_before(second), Err(Error::Poisoned)));
    assert!(matches!(
        log.read_from(first).next(),
        Some(Err(Error::Poisoned))
    ));
    drop(log);

    // Reopening runs recovery and the log works again.
    let (mut log, report) = Log::open(tmp.path(), options)?;
    assert_eq!(report.records, 2);
    log.append(b"after reopen")?;
    log.flush_now()?;
    assert_eq!(log.read_from(first).count(), 3);
    Ok(())
}
