//! The JSON event decoder against `serde_json::Value`, the reference decoder: whatever
//! the line, the streaming decoder never panics, and when both read it they agree on
//! the key, time and value (a number key keeps its text as written, which the reference,
//! holding a double, can only match numerically).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weir_config::{EventFields, TimeField};
use weir_engine::{EventDecoder, EventId, InvalidReason};

fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, line)) = data.split_first() else {
        return;
    };
    let fields = EventFields {
        key: if flags & 1 == 0 {
            "user".into()
        } else {
            "user.id".into()
        },
        time: TimeField::Field("ts".into()),
        value: "amount".into(),
    };
    let needs_value = flags & 2 == 0;
    let decoder = EventDecoder::new(&fields, needs_value);
    let got = decoder.decode_json(line, EventId::default(), 0);
    let Ok(doc) = serde_json::from_slice::<Value>(line) else {
        // Skipped members are checked for grammar, not for a number's range: the
        // reference refuses 1e400 anywhere, the decoder only where it reads it.
        if let Ok(e) = &got {
            assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok(),
                "the decoder accepted a line that is not JSON: {e:?}"
            );
        }
        return;
    };
    if !doc.is_object() {
        assert_eq!(
            got.map_err(|e| e.reason).err(),
            Some(InvalidReason::NotObject)
        );
        return;
    }
    let Ok(event) = got else {
        return;
    };
    match lookup(&doc, &fields.key) {
        Some(Value::String(s)) => assert_eq!(event.key.as_str(), s),
        Some(Value::Number(n)) => {
            let written: f64 = event.key.as_str().parse().unwrap_or(f64::NAN);
            assert_eq!(
                Some(written),
                n.as_f64(),
                "key {:?} vs {n}",
                event.key.as_str()
            );
        }
        other => panic!("decoded a key from {other:?}"),
    }
    match lookup(&doc, "ts") {
        Some(Value::Number(n)) => assert_eq!(n.as_i64(), Some(event.time.0)),
        Some(Value::String(_)) => {}
        other => panic!("decoded a time from {other:?}"),
    }
    if needs_value {
        match lookup(&doc, "amount") {
            Some(Value::Number(n)) => assert_eq!(n.as_f64(), Some(event.value)),
            other => panic!("decoded a value from {other:?}"),
        }
    }
});
