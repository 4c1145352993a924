//! The files in deploy/ agree with the config schema, with each other and with the metric
//! names, so that a change to one cannot silently break another.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use weir_admin::metrics::FAMILIES;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn read(file: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::fs::read_to_string(deploy(file)).map_err(|e| format!("deploy/{file}: {e}").into())
}

/// The value of `Key=` in a systemd unit.
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// A CPU list such as `0-3,6`.
fn cpu_list(text: &str) -> Result<BTreeSet<usize>, Box<dyn std::error::Error>> {
    let mut cpus = BTreeSet::new();
    for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>()?..=b.parse::<usize>()?),
            None => {
                cpus.insert(part.parse()?);
            }
        }
    }
    Ok(cpus)
}

#[test]
fn systemd_unit_matches_the_host_config_core_map() -> TestResult {
    let unit = read("weir.service")?;
    let config = weir_config::load(deploy("weir.toml"))?;
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        Some("/usr/local/bin/weir run --config /etc/weir/weir.toml")
    );
    assert_eq!(unit_value(&unit, "LimitMEMLOCK"), Some("infinity"));
    assert_eq!(unit_value(&unit, "Restart"), Some("on-failure"));
    let user = unit_value(&unit, "User").ok_or("no User=")?;
    assert!(user != "root" && user != "0");

    let mut cores: BTreeSet<usize> = config
        .runtime
        .cores
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    cores.extend(config.runtime.admin_core);
    let affinity = cpu_list(unit_value(&unit, "CPUAffinity").ok_or("no CPUAffinity=")?)?;
    assert_eq!(
        affinity, cores,
        "CPUAffinity must be the cores and admin_core of deploy/weir.toml"
    );
    Ok(())
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify_when_available() -> TestResult {
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("systemd-analyze not on PATH: skipped");
        return Ok(());
    }
    // The real ExecStart binary does not exist here: point it at a stand-in.
    let dir = std::env::temp_dir().join(format!("weir-unit-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stand_in = dir.join("weir");
    std::fs::write(&stand_in, "#!/bin/sh\nexit 0\n")?;
    Command::new("chmod").arg("755").arg(&stand_in).status()?;
    let unit = read("weir.service")?.replace("/usr/local/bin/weir", &stand_in.to_string_lossy());
    let unit_path = dir.join("weir.service");
    std::fs::write(&unit_path, unit)?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir)?;
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    assert!(
        !said.contains("weir.service"),
        "systemd-analyze verify complained:\n{said}"
    );
    Ok(())
}

#[test]
fn container_config_is_valid_unpinned_and_is_the_k8s_configmap() -> TestResult {
    let text = read("weir.container.toml")?;
    let config = weir_config::from_str(&text, "deploy/weir.container.toml")?;
    assert_eq!(
        config.runtime.cores, None,
        "a container does not know its core ids"
    );
    assert!(
        config.admin.http.starts_with("0.0.0.0:") && config.admin.metrics.starts_with("0.0.0.0:")
    );

    let k8s = read("k8s.yaml")?;
    let start = k8s
        .find("  weir.toml: |\n")
        .ok_or("no weir.toml in the ConfigMap")?
        + "  weir.toml: |\n".len();
    let end = k8s[start..]
        .find("\n---")
        .map_or(k8s.len(), |e| start + e + 1);
    let embedded: String = k8s[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(
        embedded, text,
        "the ConfigMap in k8s.yaml must be deploy/weir.container.toml"
    );
    assert!(k8s.contains("path: /health"));
    Ok(())
}

#[test]
fn prometheus_scrapes_the_metrics_port_and_grafana_charts_every_metric() -> TestResult {
    let host = weir_config::load(deploy("weir.toml"))?;
    let port = host.admin.metrics.rsplit(':').next().ok_or("no port")?;
    let prometheus = read("prometheus.yml")?;
    assert!(
        prometheus.contains(&format!(":{port}\"]")),
        "prometheus.yml scrapes port {port}"
    );
    assert!(prometheus.contains("weir-alerts.yml"));

    let grafana: serde_json::Value = serde_json::from_str(&read("grafana-dashboard.json")?)?;
    let exprs: Vec<String> = grafana["panels"]
        .as_array()
        .ok_or("no panels")?
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for name in FAMILIES {
        assert!(
            exprs.iter().any(|e| e.contains(name)),
            "grafana-dashboard.json charts {name}"
        );
    }
    Ok(())
}
