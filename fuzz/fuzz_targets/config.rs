//! Config text: parsing and validation never panic, and whatever validates can be built
//! (decoders, aggregate specs, window operators, result encoders) and sizes its memory
//! within the stated bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_engine::operator::WindowOperator;
use weir_engine::{AggSpec, EventDecoder, ResultEncoder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = weir_config::from_str(text, "fuzz.toml") else {
        return;
    };
    let _ = weir_config::check_host(&config, "fuzz.toml");
    let p = config.processing.parallelism as u64;
    let slots = p * p * (config.processing.queue_size / config.processing.batch_size).max(2) as u64;
    assert!(slots <= 1 << 24, "{slots} queue slots");
    assert!(config.processing.batch_size <= 1 << 16);
    for pipeline in &config.pipelines {
        let spec = AggSpec::new(&pipeline.aggregates, pipeline.percentile_precision);
        let _ = EventDecoder::new(&pipeline.event, true);
        let _ = ResultEncoder::new(&pipeline.id, spec.clone());
        let _ = WindowOperator::new(&pipeline.window, spec);
        let w = &pipeline.window;
        assert!(w.allowed_lateness_ms <= 1 << 53);
        if let weir_config::Source::Generator(g) = &pipeline.source {
            assert!(g.start_ms.is_none_or(|t| t.unsigned_abs() <= 1 << 53));
        }
    }
});
