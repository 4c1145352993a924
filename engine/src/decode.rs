//! Decoding input lines into events (SPEC.md §3), with a reason for every bad line.
//!
//! The key is a string (a number becomes its text as written); the time is integer ms since
//! the epoch or an RFC 3339 string; the value is a number. Field names may be dotted paths
//! into nested objects. A line that cannot be decoded yields an [`Invalid`] whose
//! [`InvalidReason::label`] is the metric label and whose message goes to the dead-letter
//! file. Nothing here panics on any input.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};
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
    /// The time lies further ahead of the wall clock than the pipeline allows.
    FutureTime,
    /// A CSV line that is not a record (bad quoting, or not UTF-8).
    NotCsv,
}

impl InvalidReason {
    /// Every reason, for metric families that list all labels.
    pub const ALL: [InvalidReason; 11] = [
        InvalidReason::NotJson,
        InvalidReason::NotObject,
        InvalidReason::MissingKey,
        InvalidReason::BadKey,
        InvalidReason::MissingTime,
        InvalidReason::BadTime,
        InvalidReason::MissingValue,
        InvalidReason::BadValue,
        InvalidReason::TooLong,
        InvalidReason::FutureTime,
        InvalidReason::NotCsv,
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
            InvalidReason::FutureTime => "future_time",
            InvalidReason::NotCsv => "not_csv",
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
    /// A bad record for `reason`, explained by `message`.
    pub fn new(reason: InvalidReason, message: impl Into<String>) -> Self {
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
    max_future_ms: u64,
    max_abs_value: f64,
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
            max_future_ms: 0,
            max_abs_value: f64::MAX,
        }
    }

    /// Refuses (`bad_value`) values of a magnitude above `max` (a pipeline computing
    /// percentiles, whose histograms hold magnitudes up to
    /// [`crate::aggregate::PERCENTILE_MAX_ABS`]).
    pub fn with_max_abs_value(mut self, max: f64) -> Self {
        self.max_abs_value = max;
        self
    }

    fn in_range(&self, value: f64) -> Result<f64, Invalid> {
        if value.abs() > self.max_abs_value {
            return Err(Invalid::new(
                InvalidReason::BadValue,
                format!(
                    "value {value} is beyond ±{:e}, the range percentiles are computed in",
                    self.max_abs_value
                ),
            ));
        }
        Ok(value)
    }

    /// Refuses (`future_time`) events whose time field is more than `ms` ahead of the
    /// processing time they are decoded at; 0 refuses none.
    pub fn with_max_future(mut self, ms: u64) -> Self {
        self.max_future_ms = ms;
        self
    }

    /// `time`, read from the event, unless it lies too far ahead of `now_ms`.
    fn not_future(&self, time: i64, now_ms: i64) -> Result<i64, Invalid> {
        let bound = i64::try_from(self.max_future_ms).unwrap_or(i64::MAX);
        if bound > 0 && time.saturating_sub(now_ms) > bound {
            return Err(Invalid::new(
                InvalidReason::FutureTime,
                format!(
                    "time {time} is {} ms ahead of the wall clock ({now_ms}); the bound is {bound} ms",
                    time.saturating_sub(now_ms)
                ),
            ));
        }
        Ok(time)
    }

    /// Decodes one JSON line; `now_ms` is the time of a processing-time pipeline.
    ///
    /// The line is parsed once, front to back, and only the configured fields are kept:
    /// every other member is skipped (still checked to be JSON, though a number in it
    /// may be too large for a double), and a key without
    /// escapes is borrowed from the line, so a well-formed event costs no allocation
    /// besides a long key's own. When a field occurs twice the last occurrence counts,
    /// as in any JSON object model.
    pub fn decode_json(&self, line: &[u8], id: EventId, now_ms: i64) -> Result<Event, Invalid> {
        let text = std::str::from_utf8(line).map_err(|e| {
            Invalid::new(
                InvalidReason::NotJson,
                format!("not JSON: invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        if !text.trim_start().starts_with('{') {
            // Not an object: say whether it is JSON at all.
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => Invalid::new(InvalidReason::NotObject, "not a JSON object"),
                Err(e) => Invalid::new(InvalidReason::NotJson, format!("not JSON: {e}")),
            });
        }
        let mut found: [Option<Found<'_>>; 3] = [None, None, None];
        let wanted = [
            Some(self.key.as_slice()),
            self.time.as_deref(),
            self.value.as_deref(),
        ];
        let mut de = serde_json::Deserializer::from_str(text);
        Pick {
            wanted,
            found: &mut found,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| Invalid::new(InvalidReason::NotJson, format!("not JSON: {e}")))?;
        self.event_of(found, id, now_ms)
    }

    /// Makes the event from the configured fields as found in a line (key, time, value),
    /// or says what is wrong with them.
    fn event_of(
        &self,
        found: [Option<Found<'_>>; 3],
        id: EventId,
        now_ms: i64,
    ) -> Result<Event, Invalid> {
        let [key, time, value] = found;
        let key = match key {
            None => return Err(missing(InvalidReason::MissingKey, &self.key)),
            Some(Found::Str(s)) => key_of(&s)?,
            Some(Found::Num(n)) => Key::new(&n.to_string()),
            Some(other) => {
                return Err(Invalid::new(
                    InvalidReason::BadKey,
                    format!("key must be a string or number, got {other}"),
                ));
            }
        };
        let time = match &self.time {
            None => now_ms,
            Some(p) => match time {
                None => return Err(missing(InvalidReason::MissingTime, p)),
                Some(Found::Num(n)) => match n.as_i64() {
                    Some(t) => check_time(t)?,
                    None => {
                        return Err(Invalid::new(
                            InvalidReason::BadTime,
                            format!("time must be integer milliseconds, got {n}"),
                        ));
                    }
                },
                Some(Found::Str(s)) => parse_time_text(&s)?,
                Some(other) => {
                    return Err(Invalid::new(
                        InvalidReason::BadTime,
                        format!("time must be integer ms or an RFC 3339 string, got {other}"),
                    ));
                }
            },
        };
        let time = match &self.time {
            None => time,
            Some(_) => self.not_future(time, now_ms)?,
        };
        let value = match &self.value {
            None => 0.0,
            Some(p) => match value {
                None => return Err(missing(InvalidReason::MissingValue, p)),
                Some(Found::Num(n)) => {
                    self.in_range(check_value(n.as_f64().unwrap_or(f64::NAN))?)?
                }
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
                let t = match text.trim().parse::<i64>() {
                    Ok(t) => check_time(t)?,
                    Err(_) => parse_time_text(text.trim())?,
                };
                self.not_future(t, now_ms)?
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
                self.in_range(check_value(v)?)?
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

/// A configured field's value as found in a line.
#[derive(Debug, Clone)]
enum Found<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    /// Anything else (`true`, `null`, an array or object), kept for the error message.
    Other(Value),
}

impl Found<'_> {
    /// The field as a JSON value model holds it.
    fn of(v: &Value) -> Self {
        match v {
            Value::String(s) => Found::Str(Cow::Owned(s.clone())),
            Value::Number(n) => Found::Num(n.clone()),
            other => Found::Other(other.clone()),
        }
    }
}

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Str(s) => write!(f, "{}", Value::String(s.to_string())),
            Found::Num(n) => write!(f, "{n}"),
            Found::Other(v) => write!(f, "{v}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Found<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FoundVisitor)
    }
}

struct FoundVisitor;

impl<'de> Visitor<'de> for FoundVisitor {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Found::Other(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Found::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Found::Num(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Found::Other(Value::Null), Found::Num))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Found::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Found::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Found::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Found::Other(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
            .map(Found::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(Found::Other)
    }
}

/// An object member's name, borrowed from the line unless it has escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Walks a JSON value and keeps the configured fields: `wanted[i]` is the rest of field
/// `i`'s path below this value (`None`: not under it). Field paths follow object
/// members only; under anything but an object they are absent.
struct Pick<'p, 'r, 'de> {
    wanted: [Option<&'p [String]>; 3],
    found: &'r mut [Option<Found<'de>>; 3],
}

impl<'de> DeserializeSeed<'de> for Pick<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pick<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let mut here = [false; 3];
            let mut below: [Option<&[String]>; 3] = [None; 3];
            for i in 0..3 {
                if let Some((first, rest)) = self.wanted[i].and_then(<[String]>::split_first)
                    && *first == name
                {
                    // A later member of the same name replaces what an earlier one gave.
                    self.found[i] = None;
                    if rest.is_empty() {
                        here[i] = true;
                    } else {
                        below[i] = Some(rest);
                    }
                }
            }
            let any_here = here.contains(&true);
            let any_below = below.iter().any(Option::is_some);
            match (any_here, any_below) {
                (false, false) => {
                    map.next_value::<IgnoredAny>()?;
                }
                (true, false) if here[0] => {
                    // The key keeps its text as written: a number key is its digits
                    // (`12345678901234567890123`, `-0`, `1e400` stay what they are).
                    let text = map.next_value::<&'de RawValue>()?.get();
                    let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
                    let parsed = || {
                        Found::deserialize(&mut serde_json::Deserializer::from_str(text))
                            .map_err(serde::de::Error::custom)
                    };
                    let plain = text
                        .strip_prefix('"')
                        .and_then(|t| t.strip_suffix('"'))
                        .filter(|t| !t.contains('\\'));
                    let value = match plain {
                        // A string without escapes is its own text: no second parse.
                        Some(t) => Found::Str(Cow::Borrowed(t)),
                        None if number => Found::Str(Cow::Borrowed(text)),
                        None => parsed()?,
                    };
                    for i in (0..3).filter(|&i| here[i]) {
                        self.found[i] = Some(if i > 0 && number {
                            parsed()?
                        } else {
                            value.clone()
                        });
                    }
                }
                (true, false) => {
                    let value = map.next_value::<Found<'de>>()?;
                    for i in (0..3).filter(|&i| here[i]) {
                        self.found[i] = Some(value.clone());
                    }
                }
                (false, true) => map.next_value_seed(Pick {
                    wanted: below,
                    found: &mut *self.found,
                })?,
                (true, true) => {
                    // One field is this member and another lies inside it: keep it whole.
                    let text = map.next_value::<&'de RawValue>()?.get();
                    let value: Value =
                        serde_json::from_str(text).map_err(serde::de::Error::custom)?;
                    for i in (0..3).filter(|&i| here[i] || below[i].is_some()) {
                        let at = if here[i] {
                            Some(&value)
                        } else {
                            below[i]
                                .and_then(|p| p.iter().try_fold(&value, |v, k| v.get(k.as_str())))
                        };
                        self.found[i] = match at {
                            // A number key keeps its text as written.
                            Some(Value::Number(_)) if i == 0 => {
                                Some(Found::Str(Cow::Borrowed(text)))
                            }
                            at => at.map(Found::of),
                        };
                    }
                }
            }
        }
        Ok(())
    }
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

    /// The decoder as first written: the whole line into a `serde_json::Value`, then
    /// lookups. Simple and slow; the reference that the streaming walk must agree with
    /// (both then read the fields they found the same way).
    fn reference(d: &EventDecoder, line: &[u8]) -> Result<(String, i64, f64), Invalid> {
        let doc: Value = serde_json::from_slice(line)
            .map_err(|e| Invalid::new(InvalidReason::NotJson, format!("not JSON: {e}")))?;
        if !doc.is_object() {
            return Err(Invalid::new(InvalidReason::NotObject, "not a JSON object"));
        }
        let lookup = |p: Option<&[String]>| {
            p.and_then(|p| p.iter().try_fold(&doc, |v, k| v.get(k.as_str())))
                .map(Found::of)
        };
        let found = [
            lookup(Some(&d.key)),
            lookup(d.time.as_deref()),
            lookup(d.value.as_deref()),
        ];
        let e = d.event_of(found, EventId::default(), 0)?;
        Ok((e.key.as_str().to_owned(), e.time.0, e.value))
    }

    fn json_value(depth: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u64..3000).prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_default()),
            Just("1e400".to_owned()),
            Just("-0".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just(r#""2023-11-14T22:13:20.5Z""#.to_owned()),
            "[a-z\\\"\u{e9}\u{1F600} ]{0,6}"
                .prop_map(|t| { serde_json::to_string(&t).unwrap_or_default() }),
            Just(r#""k\u0041\n""#.to_owned()),
        ];
        leaf.prop_recursive(depth, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((member_name(), inner), 0..4).prop_map(|m| {
                    let parts: Vec<String> =
                        m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", parts.join(","))
                }),
            ]
        })
    }

    fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just(r#""user""#.to_owned()),
            Just(r#""id""#.to_owned()),
            Just(r#""ts""#.to_owned()),
            Just(r#""amount""#.to_owned()),
            Just(r#""u\u0073er""#.to_owned()),
            Just(r#""other""#.to_owned()),
        ]
    }

    fn json_line() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let object =
            proptest::collection::vec((member_name(), json_value(3)), 0..6).prop_map(|m| {
                let parts: Vec<String> = m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!(" {{{}}} ", parts.join(","))
            });
        let line = prop_oneof![4 => object, 1 => json_value(2)].prop_map(String::into_bytes);
        // Sometimes damage it: cut it short, or put a random byte somewhere.
        (line, any::<u8>(), 0usize..200, any::<u8>()).prop_map(|(mut l, how, at, byte)| {
            match how % 8 {
                0 => l.truncate(at % (l.len() + 1)),
                1 => l.insert(at % (l.len() + 1), byte),
                _ => {}
            }
            l
        })
    }

    proptest::proptest! {
        #[test]
        fn streaming_decoder_agrees_with_the_value_reference(
            line in json_line(),
            needs_value in proptest::bool::ANY,
            nested in proptest::bool::ANY,
        ) {
            let d = EventDecoder::new(
                &EventFields {
                    key: if nested { "user.id".into() } else { "user".into() },
                    time: TimeField::Field("ts".into()),
                    value: "amount".into(),
                },
                needs_value,
            );
            let got = d
                .decode_json(&line, EventId::default(), 0)
                .map(|e| (e.key.as_str().to_owned(), e.time.0, e.value));
            match (got, reference(&d, &line)) {
                // A number key keeps its text as written; the reference, holding the
                // number as a double, gives the double's text.
                (Ok(a), Ok(b)) if a.0 != b.0 => {
                    let number = |k: &str| k.parse::<f64>().ok();
                    proptest::prop_assert!(number(&a.0).is_some() && number(&a.0) == number(&b.0), "{a:?} {b:?}");
                    proptest::prop_assert_eq!((a.1, a.2), (b.1, b.2));
                }
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                // Skipped members are checked for JSON grammar, not for a number's range.
                (_, Err(b)) if b.message.contains("number out of range") => {}
                (Err(a), Err(b)) if a.reason == InvalidReason::NotJson => {
                    proptest::prop_assert_eq!(a.reason, b.reason)
                }
                (a, b) => proptest::prop_assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn values_are_the_nearest_double_to_their_text() -> Result<(), Invalid> {
        // Found by fuzzing: serde_json's fast float parser gave 1.2030799999999999e288
        // for 120308e283, one ulp off; values are parsed correctly rounded.
        for text in [
            "120308e283",
            "0.1",
            "2.2250738585072014e-308",
            "9007199254740993",
            "1e23",
        ] {
            let line = format!(r#"{{"user":{{"id":"a"}},"ts":1,"amount":{text}}}"#);
            let e = decoder(true).decode_json(line.as_bytes(), EventId::default(), 0)?;
            assert_eq!(Some(e.value), text.parse::<f64>().ok(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn number_keys_keep_their_text_as_written() -> Result<(), Invalid> {
        let d = EventDecoder::new(
            &EventFields {
                key: "k".into(),
                time: TimeField::Field("ts".into()),
                value: "v".into(),
            },
            true,
        );
        for (key, want) in [
            ("12345678901234567890123", "12345678901234567890123"),
            ("12345678901234567890124", "12345678901234567890124"),
            ("-0", "-0"),
            ("0", "0"),
            ("1.50", "1.50"),
            ("1e400", "1e400"),
            ("\"u1\"", "u1"),
            ("\"a\\u0041\"", "aA"),
        ] {
            let line = format!(r#"{{"k": {key} ,"ts":1,"v":2}}"#);
            let e = d.decode_json(line.as_bytes(), EventId::default(), 0)?;
            assert_eq!(e.key.as_str(), want, "{line}");
        }
        // A raw control character inside the key string is not JSON, as everywhere.
        let bad = d.decode_json(
            b"{\"k\":\"a\x01b\",\"ts\":1,\"v\":2}",
            EventId::default(),
            0,
        );
        assert_eq!(
            bad.map_err(|e| e.reason).err(),
            Some(InvalidReason::NotJson)
        );
        Ok(())
    }

    #[test]
    fn future_times_and_out_of_range_percentile_values_are_refused() -> Result<(), Invalid> {
        let day: i64 = 86_400_000;
        let d = decoder(true).with_max_future(day as u64);
        let now: i64 = 1_700_000_000_000;
        let at = |ts: i64| format!(r#"{{"user":{{"id":"a"}},"ts":{ts},"amount":1}}"#);
        assert_eq!(
            d.decode_json(at(now + day).as_bytes(), EventId::default(), now)?
                .time
                .0,
            now + day
        );
        let far = d.decode_json(at(now + day + 1).as_bytes(), EventId::default(), now);
        assert_eq!(
            far.map_err(|e| e.reason).err(),
            Some(InvalidReason::FutureTime)
        );
        let far = d.decode_json(at(1 << 53).as_bytes(), EventId::default(), now);
        assert_eq!(
            far.map_err(|e| e.reason).err(),
            Some(InvalidReason::FutureTime)
        );
        // Old times are fine; without a bound, so is the far future.
        assert!(
            d.decode_json(at(0).as_bytes(), EventId::default(), now)
                .is_ok()
        );
        assert!(
            decoder(true)
                .decode_json(at(1 << 53).as_bytes(), EventId::default(), now)
                .is_ok()
        );
        let csv = d.decode_fields(
            |c| match c {
                "user.id" => Some("a"),
                "ts" => Some("9007199254740992"),
                _ => Some("1"),
            },
            EventId::default(),
            now,
        );
        assert_eq!(
            csv.map_err(|e| e.reason).err(),
            Some(InvalidReason::FutureTime)
        );
        let p = decoder(true).with_max_abs_value(crate::aggregate::PERCENTILE_MAX_ABS);
        let v = |amount: &str| format!(r#"{{"user":{{"id":"a"}},"ts":1,"amount":{amount}}}"#);
        assert_eq!(
            p.decode_json(v("1e15").as_bytes(), EventId::default(), 0)?
                .value,
            1e15
        );
        assert_eq!(
            p.decode_json(v("-1e15").as_bytes(), EventId::default(), 0)?
                .value,
            -1e15
        );
        for bad in ["1.0000001e15", "-2e15", "1e17"] {
            let e = p.decode_json(v(bad).as_bytes(), EventId::default(), 0);
            assert_eq!(
                e.map_err(|e| e.reason).err(),
                Some(InvalidReason::BadValue),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_member_that_is_both_a_field_and_the_parent_of_one_is_read_whole() -> Result<(), Invalid> {
        let d = EventDecoder::new(
            &EventFields {
                key: "a.b".into(),
                time: TimeField::Field("a".into()),
                value: "v".into(),
            },
            true,
        );
        let line = br#"{"a":{"b":"k"},"v":1}"#;
        let e = d.decode_json(line, EventId::default(), 0);
        assert_eq!(
            e.map(|e| e.key.as_str().to_owned()),
            reference(&d, line).map(|r| r.0)
        );
        let d = EventDecoder::new(
            &EventFields {
                key: "a".into(),
                time: TimeField::Field("a.t".into()),
                value: "v".into(),
            },
            true,
        );
        assert_eq!(
            d.decode_json(br#"{"a":{"t":5},"v":1}"#, EventId::default(), 0)
                .map_err(|e| e.reason),
            Err(InvalidReason::BadKey)
        );
        Ok(())
    }

    #[test]
    fn the_last_of_duplicate_members_counts() -> Result<(), Invalid> {
        let line =
            br#"{"user":{"id":"a"},"ts":1,"amount":1,"user":{"x":1},"user":{"id":"b"},"ts":2}"#;
        let e = decoder(true).decode_json(line, EventId::default(), 0)?;
        assert_eq!((e.key.as_str(), e.time.0), ("b", 2));
        let line = br#"{"user":{"id":"a"},"ts":1,"amount":1,"user":5}"#;
        assert_eq!(
            reason(std::str::from_utf8(line).unwrap_or_default()),
            InvalidReason::MissingKey
        );
        Ok(())
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
