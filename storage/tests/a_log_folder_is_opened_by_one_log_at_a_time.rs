//! Two logs on one folder would overwrite each other's records.

use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_second_open_of_the_same_folder_fails_until_the_first_is_dropped() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = LogOptions::new(8192, FsyncPolicy::Never);
    let (first, _) = Log::open(tmp.path(), options)?;
    assert!(matches!(
        Log::open(tmp.path(), options),
        Err(Error::Locked { .. })
    ));
    drop(first);
    let (_second, _) = Log::open(tmp.path(), options)?;
    assert!(matches!(
        Log::open(
            tmp.path().join("other"),
            LogOptions::new(5000, FsyncPolicy::Never)
        ),
        Err(Error::InvalidSegmentBytes {
            segment_bytes: 5000
        })
    ));
    Ok(())
}
