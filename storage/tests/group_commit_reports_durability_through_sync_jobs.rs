//! Group commit: many appends share one sync job run off the caller's thread,
//! `mark_durable` records the result, and `never` claims nothing beyond the
//! page cache.

use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn one_sync_job_makes_every_earlier_append_durable() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (mut log, _) = Log::open(tmp.path(), LogOptions::new(8192, FsyncPolicy::Group))?;
    assert!(log.sync_job()?.is_none(), "nothing to sync in an empty log");

    let offsets = (0..20u8)
        .map(|i| log.append(&[i; 900]))
        .collect::<Result<Vec<_>, _>>()?;
    assert!(log.segment_count() > 1, "the job spans segments");
    assert!(offsets.iter().all(|&o| !log.is_durable(o)));

    let job = log.sync_job()?.ok_or("a job")?;
    assert_eq!(job.target(), log.end_offset());
    // Appends go on while the job runs elsewhere.
    let during = log.append(b"during the sync")?;
    let durable = std::thread::spawn(move || job.run())
        .join()
        .map_err(|_| "sync thread panicked")??;
    log.mark_durable(durable)?;
    assert!(offsets.iter().all(|&o| log.is_durable(o)));
    assert!(!log.is_durable(during));

    // An older job finishing late never moves the durable offset back.
    log.mark_durable(offsets[3])?;
    assert_eq!(log.durable_offset(), durable);

    // A job that overlaps the previous one covers the rest.
    assert_eq!(log.flush_now()?, log.end_offset());
    assert!(log.is_durable(during));
    assert!(log.sync_job()?.is_none());

    let beyond = weir_storage::LogOffset::new(log.end_offset().get() + 16);
    assert!(matches!(
        log.mark_durable(beyond),
        Err(Error::DurableBeyondEnd { .. })
    ));
    Ok(())
}

#[test]
fn with_never_nothing_is_synced_and_everything_counts_as_durable() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (mut log, _) = Log::open(tmp.path(), LogOptions::new(8192, FsyncPolicy::Never))?;
    let offset = log.append(b"page cache only")?;
    assert!(log.sync_job()?.is_none());
    assert_eq!(log.durable_offset(), log.end_offset());
    assert!(log.is_durable(offset));
    Ok(())
}

#[test]
fn fsync_policies_parse_from_their_config_strings() -> TestResult {
    for policy in [FsyncPolicy::Never, FsyncPolicy::Group, FsyncPolicy::Always] {
        assert_eq!(policy.as_str().parse::<FsyncPolicy>()?, policy);
        let json = serde_json::to_string(&policy)?;
        assert_eq!(json, format!("\"{policy}\""));
        assert_eq!(serde_json::from_str::<FsyncPolicy>(&json)?, policy);
    }
    assert!(matches!(
        "sometimes".parse::<FsyncPolicy>(),
        Err(Error::FsyncPolicy { .. })
    ));
    Ok(())
}
