//! Decoding input lines into events (SPEC.md §3), with a reason for every bad line.
//!
//! The key is a string (a number becomes its decimal text); the time is integer ms since
//! the epoch or an RFC 3339 string; the value is a number. Field names may be dotted paths
//! into nested objects. A line that cannot be decoded yields an [`Invalid`] whose
//! [`InvalidReason::label`] is the metric label and whose message goes to the dead-letter
//! file. Nothing here panics on any input.

use std::fmt;

use serde_json::Value;
use weir_config::{EventFields, TimeField};

use crate::event::{Event, EventId};
use crate::key::Key;
use crate::time::EventTime;

/// Event times must lie within ±2^53 ms (±285,000 years) so that window arithmetic
/// never overflows.
pub const MAX_ABS_TIME_MS: i64 = 1 << 53;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a line is not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidReason {
    /// Not valid JSON (or not UTF-8).
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// The key field is absent.
    MissingKey,
    /// The key is not a string or number, or is too long.
    BadKey,
    /// The time field is absent.
    MissingTime,
    /// The time is not integer ms or an RFC 3339 string, or is out of range.
    BadTime,
    /// The value field is absent.
    MissingValue,
    /// The value is not a finite number.
    BadValue,
    /// The line is longer than allowed.
    TooLong,
}

impl InvalidReason {
    /// Every reason, for metric families that list all labels.
    pub const ALL: [InvalidReason; 9] = [
        InvalidReason::NotJson,
        InvalidReason::NotObject,
        InvalidReason::MissingKey,
        InvalidReason::BadKey,
        InvalidReason::MissingTime,
        InvalidReason::BadTime,
        InvalidReason::MissingValue,
        InvalidReason::BadValue,
        InvalidReason::TooLong,
    ];

    /// The `reason` label of `stream_events_invalid_total`.
    pub fn label(self) -> &'static str {
        match self {
            InvalidReason::NotJson => "not_json",
            InvalidReason::NotObject => "not_object",
            InvalidReason::MissingKey => "missing_key",
            InvalidReason::BadKey => "bad_key",
            InvalidReason::MissingTime => "missing_time",
            InvalidReason::BadTime => "bad_time",
            InvalidReason::MissingValue => "missing_value",
            InvalidReason::BadValue => "bad_value",
            InvalidReason::TooLong => "too_long",
        }
    }
}

/// A line that is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The class of problem.
    pub reason: InvalidReason,
    /// A sentence for the dead-letter file.
    pub message: String,
}

impl Invalid {
    fn new(reason: InvalidReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.label(), self.message)
    }
}

/// Decodes lines of one pipeline into events.
#[derive(Debug, Clone)]
pub struct EventDecoder {
    key: Vec<String>,
    time: Option<Vec<String>>,
    value: Option<Vec<String>>,
}

fn path(dotted: &str) -> Vec<String> {
    dotted.split('.').map(str::to_owned).collect()
}

impl EventDecoder {
    /// A decoder for the configured fields; `needs_value` is false for count-only
    /// pipelines, whose events need no value field.
    pub fn new(fields: &EventFields, needs_value: bool) -> Self {
        Self {
            key: path(&fields.key),
            time: match &fields.time {
                TimeField::Field(f) => Some(path(f)),
                TimeField::Processing => None,
            },
            value: needs_value.then(|| path(&fields.value)),
        }
    }

    /// Decodes one JSON line; `now_ms` is the time of a processing-time pipeline.
    pub fn decode_json(&self, line: &[u8], id: EventId, now_ms: i64) -> Result<Event, Invalid> {
        let doc: Value = serde_json::from_slice(line)
            .map_err(|e| Invalid::new(InvalidReason::NotJson, format!("not JSON: {e}")))?;
        if !doc.is_object() {
            return Err(Invalid::new(InvalidReason::NotObject, "not a JSON object"));
        }
        let lookup = |p: &[String]| p.iter().try_fold(&doc, |v, k| v.get(k.as_str()));
        let key = match lookup(&self.key) {
            None => return Err(missing(InvalidReason::MissingKey, &self.key)),
            Some(Value::String(s)) => key_of(s)?,
            Some(Value::Number(n)) => Key::new(&n.to_string()),
            Some(other) => {
                return Err(Invalid::new(
                    InvalidReason::BadKey,
                    format!("key must be a string or number, got {other}"),
                ));
            }
        };
        let time = match &self.time {
            None => now_ms,
            Some(p) => match lookup(p) {
                None => return Err(missing(InvalidReason::MissingTime, p)),
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(t) => check_time(t)?,
                    None => {
                        return Err(Invalid::new(
                            InvalidReason::BadTime,
                            format!("time must be integer milliseconds, got {n}"),
                        ));
                    }
                },
                Some(Value::String(s)) => parse_time_text(s)?,
                Some(other) => {
                    return Err(Invalid::new(
                        InvalidReason::BadTime,
                        format!("time must be integer ms or an RFC 3339 string, got {other}"),
                    ));
                }
            },
        };
        let value = match &self.value {
            None => 0.0,
            Some(p) => match lookup(p) {
                None => return Err(missing(InvalidReason::MissingValue, p)),
                Some(Value::Number(n)) => check_value(n.as_f64().unwrap_or(f64::NAN))?,
                Some(other) => {
                    return Err(Invalid::new(
                        InvalidReason::BadValue,
                        format!("value must be a number, got {other}"),
                    ));
                }
            },
        };
        Ok(Event::new(key, EventTime(time), value, id))
    }

    /// Decodes a record of text fields (a CSV row), looked up by column name (the
    /// configured field name, dots included).
    pub fn decode_fields<'a>(
        &self,
        get: impl Fn(&str) -> Option<&'a str>,
        id: EventId,
        now_ms: i64,
    ) -> Result<Event, Invalid> {
        let column = |p: &[String]| p.join(".");
        let key_col = column(&self.key);
        let key =
            key_of(get(&key_col).ok_or_else(|| missing(InvalidReason::MissingKey, &self.key))?)?;
        let time = match &self.time {
            None => now_ms,
            Some(p) => {
                let text = get(&column(p)).ok_or_else(|| missing(InvalidReason::MissingTime, p))?;
                match text.trim().parse::<i64>() {
                    Ok(t) => check_time(t)?,
                    Err(_) => parse_time_text(text.trim())?,
                }
            }
        };
        let value = match &self.value {
            None => 0.0,
            Some(p) => {
                let text =
                    get(&column(p)).ok_or_else(|| missing(InvalidReason::MissingValue, p))?;
                let v = text.trim().parse::<f64>().map_err(|_| {
                    Invalid::new(
                        InvalidReason::BadValue,
                        format!("value {text:?} is not a number"),
                    )
                })?;
                check_value(v)?
            }
        };
        Ok(Event::new(key, EventTime(time), value, id))
    }
}

fn missing(reason: InvalidReason, p: &[String]) -> Invalid {
    Invalid::new(reason, format!("field {:?} is missing", p.join(".")))
}

fn key_of(s: &str) -> Result<Key, Invalid> {
    if s.len() > MAX_KEY_BYTES {
        return Err(Invalid::new(
            InvalidReason::BadKey,
            format!("key is {} bytes, the limit is {MAX_KEY_BYTES}", s.len()),
        ));
    }
    Ok(Key::new(s))
}

fn check_time(t: i64) -> Result<i64, Invalid> {
    if t.unsigned_abs() > MAX_ABS_TIME_MS as u64 {
        return Err(Invalid::new(
            InvalidReason::BadTime,
            format!("time {t} is out of range (±2^53 ms)"),
        ));
    }
    Ok(t)
}

fn check_value(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Invalid::new(
            InvalidReason::BadValue,
            "value must be a finite number",
        ))
    }
}

/// Parses an RFC 3339 timestamp into ms since the epoch.
pub fn parse_time_text(s: &str) -> Result<i64, Invalid> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            Invalid::new(
                InvalidReason::BadTime,
                format!("time {s:?} is neither integer ms nor RFC 3339"),
            )
        })?;
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms)
        .map_err(|_| {
            Invalid::new(
                InvalidReason::BadTime,
                format!("time {s:?} is out of range"),
            )
        })
        .and_then(check_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(needs_value: bool) -> EventDecoder {
        EventDecoder::new(
            &EventFields {
                key: "user.id".into(),
                time: TimeField::Field("ts".into()),
                value: "amount".into(),
            },
            needs_value,
        )
    }

    fn reason(line: &str) -> InvalidReason {
        match decoder(true).decode_json(line.as_bytes(), EventId::default(), 0) {
            Ok(e) => panic!("decoded {e:?}"),
            Err(i) => i.reason,
        }
    }

    #[test]
    fn good_lines_decode_with_dotted_paths_and_rfc3339() -> Result<(), Invalid> {
        let d = decoder(true);
        let e = d.decode_json(
            br#"{"user":{"id":42},"ts":1000,"amount":2.5}"#,
            EventId::default(),
            0,
        )?;
        assert_eq!((e.key.as_str(), e.time.0, e.value), ("42", 1000, 2.5));
        let e = d.decode_json(
            br#"{"user":{"id":"a"},"ts":"2023-11-14T22:13:20.5Z","amount":1}"#,
            EventId::default(),
            0,
        )?;
        assert_eq!(e.time.0, 1_700_000_000_500);
        let e =
            decoder(false).decode_json(br#"{"user":{"id":"a"},"ts":1}"#, EventId::default(), 0)?;
        assert_eq!(e.value, 0.0);
        Ok(())
    }

    #[test]
    fn bad_lines_get_a_reason() {
        assert_eq!(reason("nope"), InvalidReason::NotJson);
        assert_eq!(reason("[1]"), InvalidReason::NotObject);
        assert_eq!(reason(r#"{"ts":1,"amount":1}"#), InvalidReason::MissingKey);
        assert_eq!(
            reason(r#"{"user":{"id":[1]},"ts":1,"amount":1}"#),
            InvalidReason::BadKey
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"amount":1}"#),
            InvalidReason::MissingTime
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"ts":1.5,"amount":1}"#),
            InvalidReason::BadTime
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"ts":"yesterday","amount":1}"#),
            InvalidReason::BadTime
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"ts":1e300,"amount":1}"#),
            InvalidReason::BadTime
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"ts":1}"#),
            InvalidReason::MissingValue
        );
        assert_eq!(
            reason(r#"{"user":{"id":"a"},"ts":1,"amount":"x"}"#),
            InvalidReason::BadValue
        );
    }

    #[test]
    fn csv_fields_decode_by_column_name() -> Result<(), Invalid> {
        let row = [("user.id", "7"), ("ts", "15"), ("amount", " 3.5")];
        let get = |c: &str| row.iter().find(|(k, _)| *k == c).map(|(_, v)| *v);
        let e = decoder(true).decode_fields(get, EventId::default(), 0)?;
        assert_eq!((e.key.as_str(), e.time.0, e.value), ("7", 15, 3.5));
        Ok(())
    }
}
