//! Load and latency for weir between Kafka topics (scripts/kafka_bench.sh runs it).
//!
//! `kafka_bench produce BOOTSTRAP TOPIC EVENTS KEYS`: fills a topic as fast as the
//! producer goes with events `{"user":"u<k>","ts":<ms>,"amount":<v>}` keyed by user,
//! event time advancing 1 ms per 10 events; also writes them to `FILE` when a fifth
//! argument is given (the same workload for a file source).
//!
//! `kafka_bench latency BOOTSTRAP INPUT OUTPUT RATE SECONDS KEYS`: produces RATE
//! events/s for SECONDS with the wall clock as event time, and reads OUTPUT with
//! `read_committed`; for each result, the latency is the time it became readable minus
//! its window's end (the earliest moment the window could close). Prints one line with
//! p50/p99/max in ms, over results after the first 5 s.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn producer(bootstrap: &str) -> Res<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("partitioner", "murmur2_random")
        .create()?)
}

fn send(p: &BaseProducer, topic: &str, key: &str, line: &str) {
    loop {
        match p.send(BaseRecord::to(topic).key(key).payload(line)) {
            Ok(()) => return,
            Err(_) => p.poll(Duration::from_millis(1)),
        }
    }
}

fn produce(args: &[String]) -> Res<()> {
    let [bootstrap, topic, events, keys, rest @ ..] = args else {
        return Err("produce BOOTSTRAP TOPIC EVENTS KEYS [FILE]".into());
    };
    let (events, keys): (u64, u64) = (events.parse()?, keys.parse()?);
    let p = producer(bootstrap)?;
    let mut file = match rest.first() {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let start = Instant::now();
    let mut x: u64 = 42;
    for i in 0..events {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("u{}", x % keys);
        let line = format!(
            r#"{{"user":"{key}","ts":{},"amount":{}}}"#,
            1_700_000_000_000 + i as i64 / 10,
            x % 100
        );
        send(&p, topic, &key, &line);
        if let Some(f) = file.as_mut() {
            writeln!(f, "{line}")?;
        }
        if i % 1024 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(120))?;
    if let Some(mut f) = file {
        f.flush()?;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "produced={events} seconds={s:.2} events_per_s={:.0}",
        events as f64 / s
    );
    Ok(())
}

fn latency(args: &[String]) -> Res<()> {
    let [bootstrap, input, output, rate, seconds, keys] = args else {
        return Err("latency BOOTSTRAP INPUT OUTPUT RATE SECONDS KEYS".into());
    };
    let (rate, seconds, keys): (u64, u64, u64) = (rate.parse()?, seconds.parse()?, keys.parse()?);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("kafka-bench-{}", std::process::id()))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[output.as_str()])?;
    // Join the group before producing.
    let joined = Instant::now();
    while consumer.assignment()?.count() == 0 && joined.elapsed() < Duration::from_secs(30) {
        consumer.poll(Duration::from_millis(100));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (bootstrap, input, stop) = (bootstrap.clone(), input.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            let p = producer(&bootstrap).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut sent: u64 = 0;
            let mut x: u64 = 7;
            while start.elapsed() < Duration::from_secs(seconds) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("u{}", x % keys);
                    let line = format!(r#"{{"user":"{key}","ts":{},"amount":1}}"#, now_ms());
                    send(&p, &input, &key, &line);
                    sent += 1;
                }
                p.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_micros(500));
            }
            p.flush(Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(sent)
        })
    };
    let begin = now_ms();
    let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut results = 0u64;
    let mut quiet_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                quiet_since = Instant::now();
                let seen = now_ms();
                let Some(v) = m.payload() else { continue };
                let v: serde_json::Value = serde_json::from_slice(v)?;
                let end = v["window_end"].as_i64().unwrap_or(0);
                results += 1;
                if end > begin + 5000 {
                    hist.record((seen - end).max(0) as u64)?;
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed)
            && quiet_since.elapsed() > Duration::from_secs(5)
        {
            break;
        }
    }
    let sent = producing.join().map_err(|_| "producer panicked")??;
    println!(
        "sent={sent} rate={rate} results={results} measured={} p50_ms={} p99_ms={} max_ms={}",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("produce") => produce(&args[1..]),
        Some("latency") => latency(&args[1..]),
        _ => Err("kafka_bench produce|latency ...".into()),
    }
}
