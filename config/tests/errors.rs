//! Every bad config gets one message naming the file, the key and the problem.

const BASE: &str = r#"
[[pipelines]]
id = "clicks"
source = { type = "generator", total = 10 }
window = { type = "tumbling", size_ms = 1000 }
sinks = [{ type = "console" }]
"#;

fn error_of(text: &str) -> String {
    match weir_config::from_str(text, "w.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_minimal_config_gets_every_default() -> weir_config::Result<()> {
    let c = weir_config::from_str(BASE, "w.toml")?;
    assert_eq!(c.nr_shards(), 2);
    assert_eq!(c.processing.queue_size, 10_000);
    assert_eq!(c.processing.key_groups, 4096);
    assert_eq!(c.watermarks.delay_ms, 2000);
    assert_eq!(c.storage.fsync, weir_config::Fsync::Group);
    assert_eq!(c.storage.spare_segments, 4);
    assert_eq!(
        c.pipelines[0].aggregates,
        vec![weir_config::Aggregate::Count]
    );
    assert_eq!(c.pipelines[0].watermark.idle_timeout_ms, 10_000);
    Ok(())
}

#[test]
fn the_shipped_default_config_is_valid() -> weir_config::Result<()> {
    let c = weir_config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/weir.toml"))?;
    assert!(!c.pipelines.is_empty());
    Ok(())
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let e = error_of(&BASE.replace("total = 10", "total = 10, colour = 3"));
    assert!(e.starts_with("w.toml: pipelines[0].source"), "{e}");
    assert!(e.contains("colour"), "{e}");
    let e = error_of(&format!("[processing]\nparalelism = 3\n{BASE}"));
    assert!(e.starts_with("w.toml: processing"), "{e}");
    assert!(e.contains("paralelism"), "{e}");
}

#[test]
fn zero_window_size_names_the_key() {
    assert_eq!(
        error_of(&BASE.replace("size_ms = 1000", "size_ms = 0")),
        "w.toml: pipelines[0].window.size_ms: must be > 0 (got 0)"
    );
}

#[test]
fn slide_must_divide_size() {
    let e = error_of(&BASE.replace(
        r#"type = "tumbling", size_ms = 1000"#,
        r#"type = "sliding", size_ms = 1000, slide_ms = 300"#,
    ));
    assert_eq!(
        e,
        "w.toml: pipelines[0].window.slide_ms: must divide size_ms (1000)"
    );
    let e = error_of(&BASE.replace(
        r#"type = "tumbling", size_ms = 1000"#,
        r#"type = "sliding", size_ms = 1000, slide_ms = 2000"#,
    ));
    assert_eq!(
        e,
        "w.toml: pipelines[0].window.slide_ms: must be <= size_ms (1000)"
    );
}

#[test]
fn session_needs_a_gap_and_takes_no_size() {
    let e = error_of(&BASE.replace(r#"type = "tumbling""#, r#"type = "session""#));
    assert_eq!(
        e,
        "w.toml: pipelines[0].window.size_ms: is not an option of a session window"
    );
    let e = error_of(&BASE.replace(
        r#"type = "tumbling", size_ms = 1000"#,
        r#"type = "session""#,
    ));
    assert_eq!(
        e,
        "w.toml: pipelines[0].window.gap_ms: is required for a session window"
    );
}

#[test]
fn duplicate_pipeline_ids_are_rejected() {
    let e = error_of(&format!("{BASE}{BASE}"));
    assert_eq!(
        e,
        "w.toml: pipelines[1].id: duplicate pipeline id \"clicks\""
    );
}

#[test]
fn wrong_types_name_the_key() {
    let e = error_of(&BASE.replace("total = 10", "total = \"ten\""));
    assert!(e.starts_with("w.toml: pipelines[0].source.total: "), "{e}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = error_of("app_name = \n");
    assert!(e.starts_with("w.toml: line 1, column"), "{e}");
}

#[test]
fn bad_values_are_explained() {
    for (from, to, expected) in [
        (
            "total = 10",
            "total = -1",
            "pipelines[0].source.total: must be >= 0 (got -1)",
        ),
        (
            r#"type = "console""#,
            r#"type = "pulsar""#,
            "pipelines[0].sinks[0].type: unknown sink type \"pulsar\"",
        ),
        (
            r#"type = "generator""#,
            r#"type = "file""#,
            "pipelines[0].source.total: is not an option of a file source",
        ),
        (
            "[[pipelines]]",
            "[storage]\nfsync = \"sometimes\"\n[[pipelines]]",
            "storage.fsync: must be",
        ),
        (
            "[[pipelines]]",
            "[storage]\nspare_segments = -1\n[[pipelines]]",
            "storage.spare_segments: must be >= 0 (got -1)",
        ),
        (
            "[[pipelines]]",
            "[runtime]\ncores = [0, 0]\n[[pipelines]]",
            "runtime.cores[1]: core 0 is listed twice",
        ),
        (
            "[[pipelines]]",
            "[admin]\nhttp = \"localhost\"\n[[pipelines]]",
            "admin.http: \"localhost\" is not an IP:PORT address",
        ),
        (
            "sinks = [{ type = \"console\" }]",
            "sinks = [{ type = \"console\" }]\naggregates = [\"p42\"]",
            "pipelines[0].aggregates[0]: unknown aggregate \"p42\"",
        ),
    ] {
        let e = error_of(&BASE.replace(from, to));
        assert!(
            e.starts_with(&format!("w.toml: {expected}")),
            "{e}\nexpected: {expected}"
        );
    }
}

#[test]
fn a_config_without_pipelines_is_rejected() {
    assert_eq!(
        error_of("app_name = \"x\"\n"),
        "w.toml: pipelines: at least one [[pipelines]] entry is needed"
    );
}

#[test]
fn pipeline_watermark_overrides_the_default() -> weir_config::Result<()> {
    let text = format!("{BASE}watermark = {{ delay_ms = 200, max_idle_lag_ms = 1000 }}\n");
    let c = weir_config::from_str(&text, "w.toml")?;
    assert_eq!(c.pipelines[0].watermark.delay_ms, 200);
    assert_eq!(c.pipelines[0].watermark.max_idle_lag_ms, Some(1000));
    assert_eq!(c.pipelines[0].watermark.idle_timeout_ms, 10_000);
    Ok(())
}

#[test]
fn two_sinks_on_one_file_name_both_keys_however_the_path_is_spelt() {
    let two = |a: &str, b: &str| {
        BASE.replace(
            r#"sinks = [{ type = "console" }]"#,
            &format!(
                r#"sinks = [{{ type = "file", path = "{a}" }}, {{ type = "file", path = "{b}" }}]"#
            ),
        )
    };
    for (a, b) in [
        ("out/p.jsonl", "out/p.jsonl"),
        ("./p.jsonl", "p.jsonl"),
        ("out/../p.jsonl", "p.jsonl"),
    ] {
        let e = error_of(&two(a, b));
        assert!(e.starts_with("w.toml: pipelines[0].sinks[1].path: "), "{e}");
        assert!(e.contains("pipelines[0].sinks[0].path"), "{e}");
    }
    // A late sink on a result sink's file.
    let late = BASE.replace(
        r#"sinks = [{ type = "console" }]"#,
        r#"sinks = [{ type = "file", path = "r.jsonl" }]
late_sink = { type = "file", path = "./r.jsonl", delivery = "at_least_once" }"#,
    );
    let e = error_of(&late);
    assert!(
        e.starts_with("w.toml: pipelines[0].late_sink.path: "),
        "{e}"
    );
    assert!(e.contains("pipelines[0].sinks[0].path"), "{e}");
    // Two pipelines, and a sink on a pipeline's dead-letter file.
    let second = BASE.replace("clicks", "views").replace(
        r#"{ type = "console" }"#,
        r#"{ type = "file", path = "data/./dead-letter/clicks.jsonl" }"#,
    );
    let e = error_of(&format!("{BASE}{second}"));
    assert!(e.starts_with("w.toml: pipelines[1].sinks[0].path: "), "{e}");
    assert!(e.contains("pipelines[0].id"), "{e}");
    // Different files are fine.
    assert!(weir_config::from_str(&two("a.jsonl", "b.jsonl"), "w.toml").is_ok());
}

#[test]
fn a_tcp_source_on_the_admin_address_is_an_error() {
    let tcp = BASE.replace(
        r#"{ type = "generator", total = 10 }"#,
        r#"{ type = "tcp", bind = "127.0.0.1:8080" }"#,
    );
    let e = error_of(&tcp);
    assert_eq!(
        e,
        "w.toml: pipelines[0].source.bind: 127.0.0.1:8080 is already admin.http"
    );
    let off = format!("[admin]\nenabled = false\n{tcp}");
    assert!(weir_config::from_str(&off, "w.toml").is_ok());
}

#[test]
fn the_shutdown_timeout_defaults_to_30_seconds_and_must_be_positive() -> weir_config::Result<()> {
    let c = weir_config::from_str(BASE, "w.toml")?;
    assert_eq!(
        c.processing.shutdown_timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(
        error_of(&format!("[processing]\nshutdown_timeout = 0\n{BASE}")),
        "w.toml: processing.shutdown_timeout: must be > 0"
    );
    Ok(())
}

const KAFKA: &str = r#"
app_name = "app"
[processing]
checkpoint_interval = 2
[[pipelines]]
id = "p"
source = { type = "kafka", bootstrap = "127.0.0.1:9092", topic = "events" }
window = { type = "tumbling", size_ms = 1000 }
sinks = [{ type = "kafka", bootstrap = "127.0.0.1:9092", topic = "results" }]
"#;

#[test]
fn kafka_source_and_sink_get_their_defaults() -> weir_config::Result<()> {
    let c = weir_config::from_str(KAFKA, "w.toml")?;
    let weir_config::Source::Kafka(k) = &c.pipelines[0].source else {
        panic!("a kafka source");
    };
    assert_eq!(k.group, "app-p");
    assert_eq!(k.start, weir_config::KafkaStart::Earliest);
    assert!(!k.bounded);
    let weir_config::Sink::Kafka(s) = &c.pipelines[0].sinks[0] else {
        panic!("a kafka sink");
    };
    assert_eq!(s.delivery, weir_config::Delivery::ExactlyOnce);
    assert_eq!(s.transaction_timeout_ms, 60_000);
    Ok(())
}

#[test]
fn bad_kafka_keys_name_the_key() {
    let e = error_of(&KAFKA.replace("topic = \"events\"", "topic = \"ev ents\""));
    assert!(e.starts_with("w.toml: pipelines[0].source.topic"), "{e}");
    let e = error_of(&KAFKA.replace(
        "bootstrap = \"127.0.0.1:9092\", topic = \"events\"",
        "bootstrap = \"localhost\", topic = \"events\"",
    ));
    assert!(
        e.starts_with("w.toml: pipelines[0].source.bootstrap"),
        "{e}"
    );
    let e = error_of(&KAFKA.replace(
        "topic = \"events\"",
        "topic = \"events\", start = \"middle\"",
    ));
    assert!(e.starts_with("w.toml: pipelines[0].source.start"), "{e}");
    let e = error_of(&KAFKA.replace("topic = \"events\"", "topic = \"events\", path = \"x\""));
    assert!(e.starts_with("w.toml: pipelines[0].source.path"), "{e}");
    let e = error_of(&KAFKA.replace(
        "topic = \"events\"",
        "topic = \"events\", properties = { \"group.id\" = \"other\" }",
    ));
    assert!(
        e.starts_with("w.toml: pipelines[0].source.properties.group.id"),
        "{e}"
    );
    let e = error_of(&KAFKA.replace("topic = \"results\"", "topic = \"results\", path = \"x\""));
    assert!(e.starts_with("w.toml: pipelines[0].sinks[0].path"), "{e}");
}

#[test]
fn an_exactly_once_kafka_sink_needs_a_transaction_timeout_above_the_checkpoint_interval() {
    let e = error_of(&KAFKA.replace(
        "topic = \"results\"",
        "topic = \"results\", transaction_timeout_ms = 2000",
    ));
    assert!(
        e.starts_with("w.toml: pipelines[0].sinks[0].transaction_timeout_ms"),
        "{e}"
    );
    let e = error_of(&KAFKA.replace("checkpoint_interval = 2", "checkpoint_interval = 0"));
    assert!(
        e.starts_with("w.toml: pipelines[0].sinks[0].delivery"),
        "{e}"
    );
    let ok = KAFKA.replace(
        "topic = \"results\"",
        "topic = \"results\", delivery = \"at_least_once\"",
    );
    assert!(
        weir_config::from_str(
            &ok.replace("checkpoint_interval = 2", "checkpoint_interval = 0"),
            "w.toml"
        )
        .is_ok()
    );
}

/// Values that `weir check` once accepted and `weir run` then crashed or hung on.
#[test]
fn numbers_that_cannot_run_are_refused_naming_their_key() {
    let max = i64::MAX;
    let cases = [
        (
            format!("[processing]\nqueue_size = {max}\n{BASE}"),
            "w.toml: processing.queue_size: must be at most 16777216",
        ),
        (
            format!("[processing]\nqueue_size = {max}\nbatch_size = {max}\n{BASE}"),
            "w.toml: processing.batch_size: must be at most 65536",
        ),
        (
            format!("[processing]\nqueue_size = 16777216\nbatch_size = 1\n{BASE}"),
            "w.toml: processing.queue_size: parallelism² × queue_size / batch_size",
        ),
        (
            BASE.replace("size_ms = 1000", &format!("size_ms = {}", 1i64 << 62)),
            "w.toml: pipelines[0].window.size_ms: must be at most 9007199254740992 ms",
        ),
        (
            BASE.replace(
                "{ type = \"tumbling\", size_ms = 1000 }",
                &format!(
                    "{{ type = \"session\", gap_ms = 10, allowed_lateness_ms = {} }}",
                    max - 5
                ),
            ),
            "w.toml: pipelines[0].window.allowed_lateness_ms: must be at most",
        ),
        (
            BASE.replace(
                "{ type = \"tumbling\", size_ms = 1000 }",
                &format!("{{ type = \"session\", gap_ms = {max} }}"),
            ),
            "w.toml: pipelines[0].window.gap_ms: must be at most",
        ),
        (
            BASE.replace("total = 10", &format!("total = 10, start_ms = {max}")),
            "w.toml: pipelines[0].source.start_ms: must be within ±9007199254740992 ms",
        ),
        (
            BASE.replace(
                "total = 10",
                &format!("total = 10, start_ms = {}", i64::MIN),
            ),
            "w.toml: pipelines[0].source.start_ms: must be within",
        ),
        (
            BASE.replace("total = 10", "total = 10, step_ms = 9007199254740993"),
            "w.toml: pipelines[0].source.step_ms: must be at most",
        ),
        (
            BASE.replace(
                "sinks =",
                "watermark = { delay_ms = 9223372036854775807 }\nsinks =",
            ),
            "w.toml: pipelines[0].watermark.delay_ms: must be at most",
        ),
    ];
    for (text, want) in cases {
        let e = error_of(&text);
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
    // The bounds themselves are accepted.
    let edge = BASE
        .replace(
            "total = 10",
            &format!("total = 10, start_ms = {}", -(1i64 << 53)),
        )
        .replace(
            "{ type = \"tumbling\", size_ms = 1000 }",
            &format!(
                "{{ type = \"session\", gap_ms = {0}, allowed_lateness_ms = {0} }}",
                1i64 << 53
            ),
        );
    assert!(weir_config::from_str(&edge, "w.toml").is_ok());
}

#[test]
fn a_core_the_process_may_not_run_on_is_refused_by_the_host_check() -> weir_config::Result<()> {
    let host_error = |text: &str| -> weir_config::Result<String> {
        let c = weir_config::from_str(text, "w.toml")?;
        Ok(weir_config::check_host(&c, "w.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default())
    };
    let e = host_error(&format!("[runtime]\ncores = [0, 4000]\n{BASE}"))?;
    assert!(
        e.starts_with("w.toml: runtime.cores[1]: core 4000 is not one this process may run on"),
        "{e}"
    );
    let e = host_error(&format!("[runtime]\nadmin_core = 4000\n{BASE}"))?;
    assert!(
        e.starts_with("w.toml: runtime.admin_core: core 4000"),
        "{e}"
    );
    assert_eq!(host_error(&format!("[runtime]\ncores = [0]\n{BASE}"))?, "");
    Ok(())
}

#[test]
fn a_data_dir_that_is_a_file_and_a_sink_that_is_a_folder_are_refused() -> std::io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("plain");
    std::fs::write(&file, "x")?;
    let e = error_of(&format!(
        "data_dir = {:?}\n{BASE}",
        file.display().to_string()
    ));
    assert_eq!(
        e,
        format!(
            "w.toml: data_dir: {} is a file, not a folder",
            file.display()
        )
    );
    let e = error_of(&format!(
        "data_dir = {:?}\n{BASE}",
        file.join("below").display().to_string()
    ));
    assert!(e.starts_with("w.toml: data_dir:"), "{e}");
    let folder = tmp.path().to_path_buf();
    let sink = BASE.replace(
        "{ type = \"console\" }",
        &format!(
            "{{ type = \"file\", path = {:?} }}",
            folder.display().to_string()
        ),
    );
    let e = error_of(&sink);
    assert_eq!(
        e,
        format!(
            "w.toml: pipelines[0].sinks[0].path: {} is a folder, not a file",
            folder.display()
        )
    );
    let under_a_file = BASE.replace(
        "{ type = \"console\" }",
        &format!(
            "{{ type = \"file\", path = {:?} }}",
            file.join("out.jsonl").display().to_string()
        ),
    );
    let e = error_of(&under_a_file);
    assert!(
        e.starts_with("w.toml: pipelines[0].sinks[0].path: cannot create"),
        "{e}"
    );
    Ok(())
}

const GROUP: &str = r#"
app_name = "shop"
[[pipelines]]
id = "clicks"
source = { type = "kafka", bootstrap = "127.0.0.1:9092", topic = "events", assignment = "group" }
window = { type = "tumbling", size_ms = 1000 }
sinks = [{ type = "kafka", bootstrap = "127.0.0.1:9092", topic = "results" }]
"#;

#[test]
fn a_group_source_gets_its_state_topic() -> weir_config::Result<()> {
    let c = weir_config::from_str(GROUP, "w.toml")?;
    let weir_config::Source::Kafka(k) = &c.pipelines[0].source else {
        panic!("a kafka source");
    };
    assert_eq!(k.assignment, weir_config::KafkaAssignment::Group);
    assert_eq!(k.state_topic, "shop-clicks-state");
    assert_eq!(k.group, "shop-clicks");
    Ok(())
}

#[test]
fn a_group_pipeline_commits_through_one_kafka_sink_only() {
    let file_sink = GROUP.replace(
        r#"sinks = [{ type = "kafka", bootstrap = "127.0.0.1:9092", topic = "results" }]"#,
        r#"sinks = [{ type = "file", path = "out.jsonl" }]"#,
    );
    assert!(error_of(&file_sink).contains("pipelines[0].sinks: "));
    let other_cluster = GROUP.replace(
        r#"bootstrap = "127.0.0.1:9092", topic = "results""#,
        r#"bootstrap = "10.0.0.1:9092", topic = "results""#,
    );
    assert!(error_of(&other_cluster).contains("pipelines[0].sinks[0]: "));
    let at_least_once = GROUP.replace(
        r#"topic = "results" }"#,
        r#"topic = "results", delivery = "at_least_once" }"#,
    );
    assert!(error_of(&at_least_once).contains("pipelines[0].sinks[0]: "));
    let late = format!("{GROUP}late_sink = {{ type = \"console\" }}\n");
    assert!(error_of(&late).contains("pipelines[0].late_sink: "));
    let bounded = GROUP.replace(
        r#"assignment = "group""#,
        r#"assignment = "group", bounded = true"#,
    );
    assert!(error_of(&bounded).contains("pipelines[0].source.bounded: "));
    let manual_state = GROUP.replace(r#"assignment = "group""#, r#"state_topic = "s""#);
    assert!(error_of(&manual_state).contains("pipelines[0].source.state_topic: "));
    let unknown = GROUP.replace(r#"assignment = "group""#, r#"assignment = "cluster""#);
    assert!(error_of(&unknown).contains("pipelines[0].source.assignment: "));
}
