//! An admin address that cannot be bound stops `weir run` with a non-zero exit and one
//! message naming the config key, the address and the reason, before any shard starts
//! (no checkpoint is written); no panic.

mod admin_common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use admin_common::*;

#[test]
fn an_admin_port_in_use_fails_weir_run_with_the_address_and_the_reason() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"data_dir = "data"
[processing]
parallelism = 2
[admin]
http = "{addr}"
metrics = "127.0.0.1:{}"
{}"#,
        free_port()?,
        generator_pipeline("clicks", 100)
    );
    let mut child = spawn_weir(dir.path(), &config)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("weir run kept running with its admin port taken".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(dir.path().join("weir.log"))?;
    assert!(!status.success(), "{status}: {log}");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("admin.http: cannot listen on {addr}")),
        "{log}"
    );
    assert!(log.to_lowercase().contains("in use"), "the reason: {log}");
    assert!(!log.contains("panicked"), "{log}");
    // It failed before the engine started: no shard ran, no checkpoint was written.
    assert!(!log.contains("weir running"), "{log}");
    assert!(!log.contains("final checkpoint"), "{log}");
    assert!(
        !dir.path().join("data/checkpoints").exists()
            || std::fs::read_dir(dir.path().join("data/checkpoints"))?
                .next()
                .is_none(),
        "{log}"
    );
    drop(taken);
    Ok(())
}
