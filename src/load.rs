//! `weir load`: the reference client of the TCP source, used as a load generator.
//!
//! Each connection is one producer (`load-<pid>-<start>-<n>`) on its own thread with a
//! blocking socket, plus a thread that reads its acknowledgements. It numbers its lines
//! from 1, keeps every line until it is acknowledged, and after any failure
//! (connection refused or reset, the engine restarting) reconnects, says hello with the
//! sequence number of its oldest unacknowledged line, and sends everything
//! unacknowledged again: the engine drops what it already holds (docs/PROTOCOL.md).
//!
//! Events are `{"key":"key-<k>","ts":<ms>,"value":<v>}` with `k` uniform below
//! `--keys`, `ts` the wall clock minus a random 0..=`--disorder-ms`, and `v` an
//! integer below 1000. Acknowledgement latency is measured per line from the moment
//! its write started to the moment its acknowledgement arrived (a resent line keeps
//! its first send time), in an HDR histogram. Progress goes to stderr once a second;
//! the summary is one line on stdout:
//!
//! ```text
//! connections=4 events=1000000 acked=1000000 errors=0 reconnects=0 elapsed_s=2.1 events_per_s=476190 p50_ms=0.9 p99_ms=2.8 p999_ms=4.1 max_ms=6.0
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

/// Largest latency the histogram holds, µs (an hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Arguments of `weir load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The engine's TCP source, HOST:PORT.
    #[arg(long)]
    pub target: String,
    /// Concurrent connections, one producer each.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Events per second over all connections; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Events to send over all connections.
    #[arg(long, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Seconds to send for (10 when neither this nor --total is given).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Each event's time is the wall clock minus a random 0..=this many ms.
    #[arg(long, default_value_t = 0)]
    pub disorder_ms: u64,
    /// Unacknowledged events per connection before it waits for acknowledgements.
    #[arg(long, default_value_t = 100_000)]
    pub window: u64,
    /// Events per write.
    #[arg(long, default_value_t = 500)]
    pub batch: u64,
    /// Give up after this many seconds without progress (no connection, no ack).
    #[arg(long, default_value_t = 60.0)]
    pub give_up_after: f64,
}

/// Counters over all connections.
#[derive(Debug, Default)]
struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    done: AtomicBool,
}

/// Lines written and not yet acknowledged, as written.
#[derive(Debug)]
struct Chunk {
    /// Sequence number of the first line in `bytes`.
    first: u64,
    /// The first line not yet acknowledged.
    unacked: u64,
    /// The last line.
    last: u64,
    bytes: Vec<u8>,
    sent: Instant,
}

/// A connection's state shared with its reader thread.
#[derive(Debug)]
struct Window {
    chunks: VecDeque<Chunk>,
    unacked: u64,
    /// Highest sequence number acknowledged.
    acked: u64,
    /// Why the current socket is unusable.
    broken: Option<String>,
    hist: Histogram<u64>,
    last_ack_at: Instant,
    last_progress: Instant,
}

impl Window {
    /// Everything up to `n` is acknowledged.
    fn ack_to(&mut self, n: u64, totals: &Totals) {
        if n > self.acked {
            self.acked = n;
            self.last_ack_at = Instant::now();
            self.last_progress = self.last_ack_at;
        }
        self.release(totals);
    }

    /// Takes acknowledged lines out of the window, recording their latency.
    fn release(&mut self, totals: &Totals) {
        let n = self.acked;
        let now = Instant::now();
        let mut newly = 0;
        while let Some(front) = self.chunks.front_mut() {
            if front.unacked > n {
                break;
            }
            let upto = n.min(front.last);
            let count = upto - front.unacked + 1;
            let us = now.duration_since(front.sent).as_micros() as u64;
            self.hist
                .saturating_record_n(us.clamp(1, MAX_LATENCY_US), count);
            newly += count;
            front.unacked = upto + 1;
            if upto == front.last {
                self.chunks.pop_front();
            }
        }
        self.unacked -= newly;
        totals.acked.fetch_add(newly, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Shared {
    window: Mutex<Window>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one connection reports at the end.
#[derive(Debug)]
struct Report {
    hist: Histogram<u64>,
    last_ack_at: Instant,
    failure: Option<String>,
}

/// The pseudo-random numbers of one connection (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One connection's plan.
struct Plan {
    index: usize,
    producer: String,
    addr: SocketAddr,
    quota: u64,
    rate: f64,
    deadline: Option<Instant>,
    start: Instant,
    args: LoadArgs,
    totals: Arc<Totals>,
}

/// A live socket and its reader thread.
struct Session {
    stream: TcpStream,
    reader: JoinHandle<()>,
}

impl Session {
    fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        let _ = self.reader.join();
    }
}

/// Reads acknowledgements until the socket ends.
fn read_acks(mut reader: BufReader<TcpStream>, shared: Arc<Shared>, totals: Arc<Totals>) {
    let mut line = String::new();
    let why = loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break "the engine closed the connection".to_owned(),
            Err(e) => break format!("read: {e}"),
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        if let Some(n) = v.get("ack").and_then(serde_json::Value::as_u64) {
            shared.lock().ack_to(n, &totals);
            shared.changed.notify_all();
        } else if let Some(e) = v.get("error").and_then(serde_json::Value::as_str) {
            if v.get("seq").is_some() {
                if totals.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("weir load: the engine rejected a line: {}", line.trim());
                }
            } else {
                break format!("the engine closed the connection: {e}");
            }
        }
    };
    let mut w = shared.lock();
    w.broken.get_or_insert(why);
    drop(w);
    shared.changed.notify_all();
}

/// Appends `n` events to `out`.
fn generate(out: &mut Vec<u8>, n: u64, rng: &mut Rng, keys: u64, disorder_ms: u64) {
    let now = wall_ms();
    let mut num = itoa::Buffer::new();
    for _ in 0..n {
        let r = rng.next();
        let key = r % keys.max(1);
        let d = if disorder_ms == 0 {
            0
        } else {
            ((r >> 20) % (disorder_ms + 1)) as i64
        };
        out.extend_from_slice(b"{\"key\":\"key-");
        out.extend_from_slice(num.format(key).as_bytes());
        out.extend_from_slice(b"\",\"ts\":");
        out.extend_from_slice(num.format(now - d).as_bytes());
        out.extend_from_slice(b",\"value\":");
        out.extend_from_slice(num.format((r >> 44) % 1000).as_bytes());
        out.extend_from_slice(b"}\n");
    }
}

impl Plan {
    /// Connects, says hello, starts the reader and resends what is unacknowledged.
    fn connect(&self, shared: &Arc<Shared>, next_seq: u64) -> Result<Session, String> {
        let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        // The hello names the first line sent after it: every unacknowledged chunk is
        // sent again from its first line, whatever the reply says (the engine drops
        // what it already holds), so that the numbering stays right.
        let (first, resend): (u64, Vec<Vec<u8>>) = {
            let w = shared.lock();
            let first = w.chunks.front().map_or(next_seq, |c| c.first);
            (first, w.chunks.iter().map(|c| c.bytes.clone()).collect())
        };
        let hello = format!("{{\"producer\":\"{}\",\"seq\":{first}}}\n", self.producer);
        (&stream)
            .write_all(hello.as_bytes())
            .map_err(|e| format!("write hello: {e}"))?;
        let read_half = stream
            .try_clone()
            .map_err(|e| format!("clone socket: {e}"))?;
        read_half
            .set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| format!("socket: {e}"))?;
        let mut reader = BufReader::new(read_half);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read hello reply: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|_| format!("bad hello reply {:?}", line.trim()))?;
        if let Some(e) = v.get("error").and_then(serde_json::Value::as_str) {
            return Err(format!("hello refused: {e}"));
        }
        let acked = v
            .get("acked")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("bad hello reply {:?}", line.trim()))?;
        let _ = reader.get_ref().set_read_timeout(None);
        {
            let mut w = shared.lock();
            w.ack_to(acked, &self.totals);
            w.broken = None;
            w.last_progress = Instant::now();
        }
        let reader = {
            let shared = Arc::clone(shared);
            let totals = Arc::clone(&self.totals);
            std::thread::Builder::new()
                .name(format!("load-acks-{}", self.index))
                .spawn(move || read_acks(reader, shared, totals))
                .map_err(|e| format!("spawn: {e}"))?
        };
        let session = Session { stream, reader };
        for bytes in resend {
            if let Err(e) = (&session.stream).write_all(&bytes) {
                session.close();
                return Err(format!("resend: {e}"));
            }
        }
        Ok(session)
    }

    /// Runs the connection to the end of its quota and its last acknowledgement.
    fn run(self, hist: Histogram<u64>) -> Report {
        let shared = Arc::new(Shared {
            window: Mutex::new(Window {
                chunks: VecDeque::new(),
                unacked: 0,
                acked: 0,
                broken: Some("not connected".into()),
                hist,
                last_ack_at: self.start,
                last_progress: Instant::now(),
            }),
            changed: Condvar::new(),
        });
        let seed = (self.index as u64) ^ (wall_ms() as u64).rotate_left(20);
        let mut rng = Rng(seed);
        let mut session: Option<Session> = None;
        let mut next_seq = 1u64;
        let mut sent = 0u64;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut backoff = Duration::from_millis(20);
        let mut connected_once = false;
        let mut last_error: Option<String> = None;
        let give_up = Duration::from_secs_f64(self.args.give_up_after.max(1.0));
        let failure = loop {
            let (broken, unacked, stalled) = {
                let w = shared.lock();
                (
                    w.broken.clone(),
                    w.unacked,
                    w.last_progress.elapsed() > give_up,
                )
            };
            if stalled {
                let acked = shared.lock().acked;
                break Some(format!(
                    "no progress for {:.0} s ({}; {} acknowledged of {} sent)",
                    give_up.as_secs_f64(),
                    last_error
                        .as_deref()
                        .or(broken.as_deref())
                        .unwrap_or("waiting for acknowledgements"),
                    acked,
                    next_seq - 1
                ));
            }
            if let Some(why) = broken {
                if let Some(old) = session.take() {
                    old.close();
                    if connected_once {
                        eprintln!("weir load: connection {}: {why}; reconnecting", self.index);
                    }
                }
                match self.connect(&shared, next_seq) {
                    Ok(s) => {
                        last_error = None;
                        if connected_once {
                            self.totals.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        connected_once = true;
                        session = Some(s);
                        backoff = Duration::from_millis(20);
                    }
                    Err(e) => {
                        if !connected_once && self.start.elapsed() > give_up {
                            break Some(e);
                        }
                        last_error = Some(e);
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                    }
                }
                continue;
            }
            let Some(stream) = session.as_ref().map(|s| &s.stream) else {
                continue;
            };
            let generating = sent < self.quota && self.deadline.is_none_or(|d| Instant::now() < d);
            if !generating {
                if unacked == 0 {
                    break None;
                }
                let w = shared.lock();
                let _ = shared
                    .changed
                    .wait_timeout(w, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let room = self.args.window.saturating_sub(unacked);
            if room == 0 {
                let w = shared.lock();
                let _ = shared
                    .changed
                    .wait_timeout(w, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let allowed = if self.rate > 0.0 {
                ((self.start.elapsed().as_secs_f64() * self.rate) as u64 + 1).saturating_sub(sent)
            } else {
                u64::MAX
            };
            let n = self
                .args
                .batch
                .max(1)
                .min(self.quota - sent)
                .min(allowed)
                .min(room);
            // Paced sending writes what is due about once a millisecond rather than a
            // few events at a time: on loopback the sender pays the kernel's TCP cost of
            // both ends, per write.
            let step = ((self.rate / 1000.0) as u64)
                .clamp(1, self.args.batch.max(1))
                .min(self.quota - sent);
            if n < step {
                let due = (sent + step) as f64 / self.rate;
                let wait = due - self.start.elapsed().as_secs_f64();
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0001, 0.01)));
                continue;
            }
            buf.clear();
            generate(&mut buf, n, &mut rng, self.args.keys, self.args.disorder_ms);
            let started = Instant::now();
            let written = (&*stream).write_all(&buf);
            let chunk = Chunk {
                first: next_seq,
                unacked: next_seq,
                last: next_seq + n - 1,
                bytes: buf.clone(),
                sent: started,
            };
            next_seq += n;
            sent += n;
            self.totals.sent.fetch_add(n, Ordering::Relaxed);
            {
                let mut w = shared.lock();
                w.unacked += n;
                w.chunks.push_back(chunk);
                // An acknowledgement may have overtaken the bookkeeping.
                w.release(&self.totals);
                if let Err(e) = written {
                    w.broken.get_or_insert(format!("write: {e}"));
                }
            }
        };
        if let Some(s) = session.take() {
            let _ = s.stream.shutdown(Shutdown::Write);
            s.close();
        }
        let w = shared.lock();
        Report {
            hist: w.hist.clone(),
            last_ack_at: w.last_ack_at,
            failure,
        }
    }
}

/// Runs `weir load`.
pub fn load(args: &LoadArgs) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        bail!("--rate must be a number >= 0");
    }
    let addr = args
        .target
        .to_socket_addrs()
        .with_context(|| format!("--target {}", args.target))?
        .next()
        .with_context(|| format!("--target {} resolves to no address", args.target))?;
    let duration = match (args.total, args.duration) {
        (Some(_), _) => None,
        (None, Some(d)) => Some(d),
        (None, None) => Some(10.0),
    };
    if let Some(d) = duration.filter(|d| !d.is_finite() || *d <= 0.0) {
        bail!("--duration must be > 0, got {d}");
    }
    let totals = Arc::new(Totals::default());
    let start = Instant::now();
    let deadline = duration.map(|d| start + Duration::from_secs_f64(d));
    let nr = args.connections as u64;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let empty = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
        .context("cannot make the latency histogram")?;
    let mut threads = Vec::with_capacity(args.connections);
    for index in 0..args.connections {
        let quota = match args.total {
            Some(t) => t / nr + u64::from((index as u64) < t % nr),
            None => u64::MAX,
        };
        let plan = Plan {
            index,
            producer: format!("load-{}-{stamp:x}-{index}", std::process::id()),
            addr,
            quota,
            rate: args.rate / nr as f64,
            deadline,
            start,
            args: args.clone(),
            totals: Arc::clone(&totals),
        };
        let hist = empty.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("load-{index}"))
                .spawn(move || plan.run(hist))
                .context("cannot start a connection thread")?,
        );
    }
    let progress = {
        let totals = Arc::clone(&totals);
        std::thread::Builder::new()
            .name("load-progress".into())
            .spawn(move || report_progress(&totals, start))
            .context("cannot start the progress thread")?
    };
    let mut hist: Option<Histogram<u64>> = None;
    let mut last_ack = start;
    let mut failures = Vec::new();
    for t in threads {
        match t.join() {
            Ok(r) => {
                match &mut hist {
                    None => hist = Some(r.hist),
                    Some(h) => {
                        let _ = h.add(&r.hist);
                    }
                }
                last_ack = last_ack.max(r.last_ack_at);
                failures.extend(r.failure);
            }
            Err(_) => failures.push("a connection thread panicked".into()),
        }
    }
    totals.done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let acked = totals.acked.load(Ordering::Relaxed);
    let sent = totals.sent.load(Ordering::Relaxed);
    let elapsed = last_ack.duration_since(start).as_secs_f64().max(1e-9);
    let q = |h: &Option<Histogram<u64>>, p: f64| {
        h.as_ref()
            .map_or(0.0, |h| h.value_at_quantile(p) as f64 / 1000.0)
    };
    let max = hist.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0);
    println!(
        "connections={} events={sent} acked={acked} errors={} reconnects={} elapsed_s={elapsed:.3} \
         events_per_s={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={max:.3}",
        args.connections,
        totals.errors.load(Ordering::Relaxed),
        totals.reconnects.load(Ordering::Relaxed),
        acked as f64 / elapsed,
        q(&hist, 0.5),
        q(&hist, 0.99),
        q(&hist, 0.999),
    );
    if let Some(f) = failures.first() {
        bail!(
            "{} of {} connections gave up (first: {f}); {} events were never acknowledged",
            failures.len(),
            args.connections,
            sent - acked
        );
    }
    Ok(())
}

/// Prints progress to stderr once a second until the load is done.
fn report_progress(totals: &Totals, start: Instant) {
    let mut last_acked = 0;
    let mut tick = start;
    while !totals.done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let secs = tick.elapsed().as_secs_f64();
        tick = Instant::now();
        let acked = totals.acked.load(Ordering::Relaxed);
        eprintln!(
            "weir load: {:>4.0}s sent={} acked={} rate={:.0}/s reconnects={}",
            start.elapsed().as_secs_f64(),
            totals.sent.load(Ordering::Relaxed),
            acked,
            (acked - last_acked) as f64 / secs,
            totals.reconnects.load(Ordering::Relaxed),
        );
        last_acked = acked;
    }
}
