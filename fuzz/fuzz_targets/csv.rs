//! CSV files as the file source reads them: records split at newlines outside quotes
//! (the split loses no byte and every record has balanced quotes), each record parsed
//! into fields and decoded by column name, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_config::{EventFields, TimeField};
use weir_engine::{EventDecoder, EventId};
use weir_shard::fuzzing::{csv_record, file_records};

fuzz_target!(|data: &[u8]| {
    let (records, rest) = file_records(data, true);
    let mut joined = Vec::with_capacity(data.len());
    for r in &records {
        assert_eq!(r.iter().filter(|&&b| b == b'"').count() % 2, 0, "{r:?}");
        joined.extend_from_slice(r);
        joined.push(b'\n');
    }
    joined.extend_from_slice(rest);
    assert_eq!(joined, data, "the split loses or adds bytes");
    let (lines, _) = file_records(data, false);
    assert!(lines.len() >= records.len());

    let decoder = EventDecoder::new(
        &EventFields {
            key: "k".into(),
            time: TimeField::Field("ts".into()),
            value: "v".into(),
        },
        true,
    );
    let mut header: Option<Vec<String>> = None;
    for r in records {
        let Ok(row) = csv_record(r) else {
            continue;
        };
        match &header {
            None => header = Some(row),
            Some(h) => {
                let get = |name: &str| {
                    h.iter()
                        .position(|c| c.trim() == name)
                        .and_then(|i| row.get(i))
                        .map(String::as_str)
                };
                if let Ok(e) = decoder.decode_fields(get, EventId::default(), 0) {
                    assert!(e.value.is_finite());
                    assert!(e.time.0.unsigned_abs() <= 1 << 53);
                }
            }
        }
    }
});
