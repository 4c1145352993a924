//! Results as JSON lines (SPEC.md §5), written without an intermediate tree.
//!
//! Integers go through itoa and floats through ryu (shortest round-trip form), straight
//! into the caller's buffer, so emitting a result costs no allocation.

use weir_config::Aggregate;

use crate::aggregate::AggSpec;
use crate::operator::{LateEvent, WindowResult};

/// Encodes results of one pipeline.
#[derive(Debug, Clone)]
pub struct ResultEncoder {
    /// `{"pipeline":"<id>","key":` with the id escaped once.
    prefix: Vec<u8>,
    pipeline_json: Vec<u8>,
    spec: AggSpec,
}

impl ResultEncoder {
    /// An encoder for a pipeline's results.
    pub fn new(pipeline: &str, spec: AggSpec) -> Self {
        let mut pipeline_json = Vec::new();
        write_json_str(&mut pipeline_json, pipeline);
        let mut prefix = b"{\"pipeline\":".to_vec();
        prefix.extend_from_slice(&pipeline_json);
        prefix.extend_from_slice(b",\"key\":");
        Self {
            prefix,
            pipeline_json,
            spec,
        }
    }

    /// Appends one result as a JSON line (with `\n`).
    pub fn encode(&self, r: &WindowResult, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        write_json_str(out, r.key.as_str());
        out.extend_from_slice(b",\"window_start\":");
        write_i64(out, r.start);
        out.extend_from_slice(b",\"window_end\":");
        write_i64(out, r.end);
        let mut q = 0;
        // Aggregates whose value left the range of f64 (a sum of huge values): they are
        // left out and named in an `error` field, never written as a wrong number.
        let mut overflowed: [Option<&str>; 10] = [None; 10];
        let mut overflows = 0;
        for agg in self.spec.aggregates() {
            let value = match agg {
                Aggregate::Count => None,
                Aggregate::Sum => Some(r.sum),
                Aggregate::Min => Some(r.min),
                Aggregate::Max => Some(r.max),
                Aggregate::Avg => Some(r.avg()),
                Aggregate::Percentile(_) => {
                    q += 1;
                    Some(r.percentiles.get(q - 1).copied().unwrap_or(f64::NAN))
                }
            };
            if let Some(v) = value
                && !v.is_finite()
            {
                if let Some(slot) = overflowed.get_mut(overflows) {
                    *slot = Some(agg.name());
                    overflows += 1;
                }
                continue;
            }
            out.extend_from_slice(b",\"");
            out.extend_from_slice(agg.name().as_bytes());
            out.extend_from_slice(b"\":");
            match value {
                None => write_u64(out, r.count),
                Some(v) => write_f64(out, v),
            }
        }
        if overflows > 0 {
            out.extend_from_slice(b",\"error\":\"");
            for (i, name) in overflowed.iter().flatten().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(name.as_bytes());
            }
            out.extend_from_slice(b" out of the range of f64\"");
        }
        out.extend_from_slice(b",\"revision\":");
        write_u64(out, u64::from(r.revision));
        out.extend_from_slice(if r.late {
            b",\"late\":true}\n"
        } else {
            b",\"late\":false}\n"
        });
    }

    /// Appends a dropped late event as a JSON line for the late side output.
    pub fn encode_late(&self, late: &LateEvent, out: &mut Vec<u8>) {
        let e = &late.event;
        out.extend_from_slice(b"{\"pipeline\":");
        out.extend_from_slice(&self.pipeline_json);
        out.extend_from_slice(b",\"key\":");
        write_json_str(out, e.key.as_str());
        out.extend_from_slice(b",\"ts\":");
        write_i64(out, e.time.0);
        out.extend_from_slice(b",\"value\":");
        write_f64(out, e.value);
        out.extend_from_slice(b",\"source\":");
        write_u64(out, u64::from(e.id.source.0));
        out.extend_from_slice(b",\"partition\":");
        write_u64(out, u64::from(e.id.partition.0));
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, e.id.offset.0);
        out.extend_from_slice(b",\"reason\":\"window_expired\",\"late_by_ms\":");
        write_i64(out, late.late_by_ms);
        out.extend_from_slice(b"}\n");
    }
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A float as JSON: shortest round-trip form; non-finite values (which valid input
/// cannot produce) become `null` so the line stays valid JSON.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A string as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends the dead-letter line of a bad record: the pipeline, the record's identity
/// (with the Kafka topic, for a Kafka source), the reason and error, and the line
/// itself (its first 64 KiB), as one JSON object.
pub fn dead_letter_line(
    out: &mut Vec<u8>,
    pipeline: &str,
    topic: Option<&str>,
    id: &crate::EventId,
    line: &[u8],
    why: &crate::Invalid,
) {
    out.extend_from_slice(b"{\"pipeline\":");
    write_json_str(out, pipeline);
    out.extend_from_slice(format!(",\"source\":{}", id.source.0).as_bytes());
    if let Some(topic) = topic {
        out.extend_from_slice(b",\"topic\":");
        write_json_str(out, topic);
    }
    out.extend_from_slice(
        format!(
            ",\"partition\":{},\"offset\":{},\"reason\":",
            id.partition.0, id.offset.0
        )
        .as_bytes(),
    );
    write_json_str(out, why.reason.label());
    out.extend_from_slice(b",\"error\":");
    write_json_str(out, &why.message);
    out.extend_from_slice(b",\"line\":");
    let shown = &line[..line.len().min(64 * 1024)];
    write_json_str(out, &String::from_utf8_lossy(shown));
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Accumulator;
    use crate::key::Key;

    #[test]
    fn results_are_the_json_of_the_spec() {
        let spec = AggSpec::new(
            &[
                Aggregate::Count,
                Aggregate::Sum,
                Aggregate::Min,
                Aggregate::Max,
                Aggregate::Avg,
                Aggregate::Percentile(500),
            ],
            3,
        );
        let mut acc = Accumulator::new();
        for v in [1.0, 40.0, 2.5] {
            acc.add(v, &spec);
        }
        let r = WindowResult::new(&Key::new("u\"42"), 0, 60_000, &acc, &spec, 0, false);
        let mut out = Vec::new();
        ResultEncoder::new("clicks", spec).encode(&r, &mut out);
        let line = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            line,
            "{\"pipeline\":\"clicks\",\"key\":\"u\\\"42\",\"window_start\":0,\"window_end\":60000,\
             \"count\":3,\"sum\":43.5,\"min\":1.0,\"max\":40.0,\"avg\":14.5,\"p50\":2.5,\
             \"revision\":0,\"late\":false}\n"
        );
    }

    #[test]
    fn an_aggregate_out_of_the_range_of_f64_is_named_in_an_error_never_null() {
        let spec = AggSpec::new(
            &[
                Aggregate::Count,
                Aggregate::Sum,
                Aggregate::Max,
                Aggregate::Avg,
            ],
            3,
        );
        let mut acc = Accumulator::new();
        for v in [1e308, 1e308] {
            acc.add(v, &spec);
        }
        let r = WindowResult::new(&Key::new("k"), 0, 10, &acc, &spec, 0, false);
        let mut out = Vec::new();
        ResultEncoder::new("p", spec).encode(&r, &mut out);
        let line = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            line,
            "{\"pipeline\":\"p\",\"key\":\"k\",\"window_start\":0,\"window_end\":10,\
             \"count\":2,\"max\":1e308,\"error\":\"sum, avg out of the range of f64\",\
             \"revision\":0,\"late\":false}\n"
        );
        assert!(!line.contains("null"));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\u{1}b\n");
        assert_eq!(out, b"\"a\\u0001b\\n\"");
    }
}
