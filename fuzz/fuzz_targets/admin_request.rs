//! Admin requests: any method, target and headers routed against a backend with one
//! pipeline; the router never panics, answers a status from the documented set, and
//! every JSON answer is JSON.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use weir_admin::model::*;
use weir_admin::{Backend, BackendError, Listener, Method, Request, Router};

struct OnePipeline;

fn unknown(id: &str) -> BackendError {
    BackendError::UnknownPipeline { id: id.to_owned() }
}

impl Backend for OnePipeline {
    fn status(&self) -> Status {
        Status::default()
    }
    fn health(&self) -> Health {
        Health::ok()
    }
    fn pipelines(&self) -> Vec<PipelineInfo> {
        Vec::new()
    }
    fn set_running(&self, id: &str, _: bool) -> Result<PipelineInfo, BackendError> {
        Err(unknown(id))
    }
    fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError> {
        Err(unknown(id))
    }
    fn watermarks(&self) -> WatermarkReport {
        WatermarkReport::default()
    }
    fn state_summary(&self, _: Duration) -> Result<StateSummary, BackendError> {
        Ok(StateSummary::from_shards(Vec::new()))
    }
    fn state_scan(&self, q: &StateQuery, _: Duration) -> Result<Vec<WindowState>, BackendError> {
        if q.pipeline == "clicks" {
            Ok(Vec::new())
        } else {
            Err(unknown(&q.pipeline))
        }
    }
    fn state_key(&self, p: &str, _: &str, _: Duration) -> Result<Vec<WindowState>, BackendError> {
        if p == "clicks" {
            Ok(Vec::new())
        } else {
            Err(unknown(p))
        }
    }
    fn windows(
        &self,
        _: Option<&str>,
        _: usize,
        _: Duration,
    ) -> Result<WindowsReport, BackendError> {
        Ok(WindowsReport::default())
    }
    fn checkpoint(&self, _: Duration) -> Result<CheckpointInfo, BackendError> {
        Err(BackendError::Unavailable {
            reason: "no shards".into(),
        })
    }
    fn checkpoints(&self) -> Vec<CheckpointInfo> {
        Vec::new()
    }
    fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot::default()
    }
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW",
];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\n');
    let target = parts.next().unwrap_or_default();
    let mut request = Request::new(Method::parse(METHODS[usize::from(m % 8)]), target);
    for h in parts.by_ref().take(8) {
        if let Some((name, value)) = h.split_once(':') {
            request = request.with_header(name, value.trim());
        }
    }
    if m & 0x80 != 0 {
        request = request.with_body(rest.to_vec());
    }
    let listener = if m & 0x40 != 0 {
        Listener::Metrics
    } else {
        Listener::Http
    };
    let router = Router::new(Arc::new(OnePipeline), listener)
        .with_token((m & 0x20 != 0).then(|| "secret".to_owned()));
    let answer = router.handle(&request);
    assert!(
        [200, 202, 400, 401, 404, 405, 413, 503].contains(&answer.status()),
        "{} for {target:?}",
        answer.status()
    );
    let json = answer
        .headers()
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.contains("json"));
    if json {
        assert!(
            serde_json::from_slice::<serde_json::Value>(answer.body()).is_ok(),
            "{target:?}"
        );
    }
});
