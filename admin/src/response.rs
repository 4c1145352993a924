//! An HTTP answer as the router builds it: status, headers and body bytes.

use serde::Serialize;

/// `Content-Type` of JSON answers.
pub(crate) const JSON: &str = "application/json";
/// `Content-Type` of the Prometheus text format, version 0.0.4.
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of the dashboard.
pub(crate) const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of the OpenAPI document.
pub(crate) const YAML: &str = "application/yaml";

/// One answer: what the server writes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An answer with a body of the given content type.
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type", content_type.to_owned()),
                // Every answer is live data (or cheap to send again): never cache.
                ("Cache-Control", "no-store".to_owned()),
            ],
            body: body.into(),
        }
    }

    /// A JSON answer.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status, JSON, body),
            // Only a map with non-string keys fails to serialise; none of our types has one.
            Err(e) => Self::error(500, &format!("cannot serialise the answer: {e}")),
        }
    }

    /// An error answer: `{"error": message}`.
    pub(crate) fn error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "error": message }).to_string();
        Self::new(status, JSON, body)
    }

    /// Adds a header.
    #[must_use]
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Type`.
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or_default()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (empty if it is not UTF-8, which none of ours is).
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }
}
