//! One client connection: hello, lines in, batches to the log, acknowledgements out.
//!
//! The task reads the socket in chunks of [`READ_BYTES`], splits them into lines
//! ([`LineSplitter`]), numbers the lines, drops those a resend repeats, decodes the rest
//! with the pipeline's decoder and appends each chunk's lines as one batch record to
//! the shard's log. Acknowledgements go out when the syncer has made batches durable;
//! error replies go out as soon as a line is found bad. Whatever a client sends, the
//! worst it gets is error replies and, for a broken hello or a fenced producer, a
//! closed connection with the reason on the line before: it cannot stall the shard
//! (nothing here blocks the thread), grow memory past its line limit, or touch other
//! connections.
//!
//! The task waits for one of two things at a time: its socket being readable, or the
//! source's progress signal (acknowledgements, backlog space, failure, close). While
//! the backlog is full it does not read at all, so TCP flow control slows the client.
//! After each read it lets every other task of the shard run before reading again, so
//! connections share a busy shard read by read.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use weir_engine::{EventId, Invalid, InvalidReason};

use super::lines::{Line, LineSplitter};
use super::protocol::{self, FirstLine, Hello};
use super::record::BatchWriter;
use super::registry::{Admission, Producer};
use super::state::{AckCell, Shared, State};

/// Bytes read from the socket at a time.
pub(crate) const READ_BYTES: usize = 64 * 1024;

/// Largest batch record, before the log's own limit.
const BATCH_BYTES: usize = 256 * 1024;

/// Longest part of a bad line kept for the dead-letter file.
const DEAD_LINE_BYTES: usize = 64 * 1024;

/// How long a hello waits for the other shards to load and for the producer's
/// earlier batches to become durable.
const HELLO_WAIT: Duration = Duration::from_secs(10);

/// How long a connection that is closed with a reason keeps reading (and discarding)
/// so that the reason is not lost to a reset.
const LINGER: Duration = Duration::from_millis(500);

use crate::clock::unix_ms_i64 as now_ms;

/// Who the connection appends for.
#[derive(Debug)]
enum Session {
    /// No hello: numbered per connection, no deduplication across connections.
    Anonymous,
    /// A producer that said hello, holding epoch `epoch`.
    Producer {
        id: String,
        producer: Arc<Producer>,
        epoch: u64,
    },
}

impl Drop for Session {
    fn drop(&mut self) {
        // The registry forgets a producer only long after it was last heard of; a
        // disconnect is the last time, later than any batch the connection stored.
        if let Session::Producer { producer, .. } = self {
            producer.heard_of(now_ms());
        }
    }
}

/// Turning lines into batches (everything of a connection but its socket and splitter).
#[derive(Debug)]
struct Ingest {
    session: Session,
    /// The sequence number of the next line.
    next_seq: u64,
    /// Lines up to this sequence number are already stored (a resend): dropped.
    dup_until: u64,
    ack: Rc<AckCell>,
    batch: BatchWriter,
    /// Largest batch payload.
    batch_limit: usize,
    /// Longest part of a bad line stored.
    dead_line_bytes: usize,
    max_line_bytes: usize,
    /// Replies waiting to be written.
    out: Vec<u8>,
    /// Close with this reason once the replies are out.
    close: Option<String>,
    duplicates: u64,
}

impl Ingest {
    fn producer_id(&self) -> &str {
        match &self.session {
            Session::Anonymous => "",
            Session::Producer { id, .. } => id,
        }
    }

    /// Handles one line.
    fn line(&mut self, line: Line<'_>, shared: &Shared, st: &mut State, now: i64) {
        if self.close.is_some() {
            return;
        }
        if let Line::Complete(bytes) = line
            && bytes.trim_ascii().is_empty()
        {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if seq <= self.dup_until {
            self.duplicates += 1;
            return;
        }
        match line {
            Line::Complete(bytes) => {
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                let id = EventId::default();
                match shared.decoder.decode_json(bytes, id, now) {
                    Ok(e) => {
                        self.make_room(BatchWriter::event_len(e.key.as_str()), st);
                        self.open(seq, now);
                        self.batch.event(e.key.as_str(), e.time.0, e.value);
                    }
                    Err(why) => self.reject(seq, why, bytes, st, now),
                }
            }
            Line::TooLong { head, len } => {
                let why = Invalid {
                    reason: InvalidReason::TooLong,
                    message: format!(
                        "line of {len} bytes is longer than max_line_bytes = {}",
                        self.max_line_bytes
                    ),
                };
                self.reject(seq, why, head, st, now);
            }
        }
        if self.batch.len() >= self.batch_limit {
            self.flush(st);
        }
    }

    fn reject(&mut self, seq: u64, why: Invalid, line: &[u8], st: &mut State, now: i64) {
        protocol::line_error(&mut self.out, seq, why.reason, &why.message);
        let mut message = why.message;
        if message.len() > 1024 {
            let mut cut = 1024;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let line = &line[..line.len().min(self.dead_line_bytes)];
        self.make_room(16 + message.len() + line.len(), st);
        self.open(seq, now);
        self.batch.rejected(why.reason, &message, line);
    }

    /// Starts a batch at `seq` if none is open.
    fn open(&mut self, seq: u64, now: i64) {
        if !self.batch.is_open() {
            let producer = match &self.session {
                Session::Anonymous => "",
                Session::Producer { id, .. } => id.as_str(),
            };
            self.batch.begin(producer, seq, now);
        }
    }

    /// Flushes the open batch if an entry of `len` bytes would not fit in it.
    fn make_room(&mut self, len: usize, st: &mut State) {
        if self.batch.is_open() && self.batch.len() + len > self.batch_limit {
            self.flush(st);
        }
    }

    /// Appends the open batch to the log.
    fn flush(&mut self, st: &mut State) {
        if !self.batch.is_open() {
            return;
        }
        let last = self.batch.last_seq();
        let payload = self.batch.finish(st.pool.pop().unwrap_or_default());
        if st.failed.is_some() {
            return;
        }
        let producer = match &self.session {
            Session::Anonymous => None,
            Session::Producer {
                producer,
                epoch,
                id,
                ..
            } => {
                if !producer.claim(*epoch, last) {
                    self.close = Some(format!(
                        "producer {id} said hello on another connection; this one is fenced"
                    ));
                    return;
                }
                Some((producer, *epoch))
            }
        };
        let previous = self.ack.appended.get();
        if let Err(e) = st.append(payload, last, &self.ack, producer.map(|(p, _)| p)) {
            if let Some((p, epoch)) = producer {
                p.unclaim(epoch, previous);
            }
            st.fail(format!("append log: {e}"));
        }
    }

    /// Queues an acknowledgement if the connection's durable prefix moved.
    fn queue_ack(&mut self, sent: &mut u64) {
        let acked = self.ack.acked.get();
        if acked > *sent {
            protocol::ack(&mut self.out, acked);
            *sent = acked;
        }
    }
}

/// What woke the connection.
enum Wake {
    Read(std::io::Result<usize>),
    Progress,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve(shared: Rc<Shared>, mut stream: TcpStream, admission: Admission) {
    let id = shared.next_id();
    let result = Connection::new(&shared, id).run(&mut stream).await;
    shared.progress.forget(id);
    drop(admission);
    match result {
        Ok(Some(why)) => {
            let mut out = Vec::new();
            protocol::connection_error(&mut out, &why);
            let _ = stream.write_all(&out).await;
            linger_close(&mut stream).await;
        }
        Ok(None) => {
            let _ = stream.close().await;
        }
        Err(e) => {
            tracing::debug!(pipeline = %shared.pipeline, error = %e, "connection ended");
        }
    }
}

/// Closes the sending side and reads (discarding) for a moment, so that a reason just
/// written is not destroyed by a reset caused by unread input.
pub(crate) async fn linger_close(stream: &mut TcpStream) {
    let _ = stream.close().await;
    let deadline = Instant::now() + LINGER;
    let mut buf = vec![0u8; 16 * 1024];
    let drain = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) if Instant::now() >= deadline => break,
                Ok(_) => {}
            }
        }
    };
    futures_lite::future::or(drain, glommio::timer::sleep(LINGER)).await;
}

struct Connection {
    shared: Rc<Shared>,
    id: u64,
    splitter: LineSplitter,
    ingest: Ingest,
    sent_ack: u64,
    eof: bool,
}

impl Connection {
    fn new(shared: &Rc<Shared>, id: u64) -> Self {
        let max_record = shared
            .state
            .borrow_mut()
            .own()
            .map_or(BATCH_BYTES, |p| p.log.max_record_len());
        Self {
            shared: Rc::clone(shared),
            id,
            splitter: LineSplitter::new(shared.max_line_bytes),
            ingest: Ingest {
                session: Session::Anonymous,
                next_seq: 1,
                dup_until: 0,
                ack: Rc::new(AckCell::default()),
                batch: BatchWriter::default(),
                batch_limit: BATCH_BYTES.min(max_record / 2),
                dead_line_bytes: DEAD_LINE_BYTES.min(max_record / 4),
                max_line_bytes: shared.max_line_bytes,
                out: Vec::new(),
                close: None,
                duplicates: 0,
            },
            sent_ack: 0,
            eof: false,
        }
    }

    /// Runs the connection; `Ok(Some(reason))` asks to close with that reason.
    async fn run(&mut self, stream: &mut TcpStream) -> std::io::Result<Option<String>> {
        let mut buf = vec![0u8; READ_BYTES];
        let Some(rest) = self.first_line(stream, &mut buf).await? else {
            return Ok(self.ingest.close.take());
        };
        self.process_chunk(&rest);
        loop {
            let seen = self.shared.progress.generation();
            self.ingest.queue_ack(&mut self.sent_ack);
            if !self.ingest.out.is_empty() {
                stream.write_all(&self.ingest.out).await?;
                self.ingest.out.clear();
                continue;
            }
            if let Some(why) = self.ingest.close.take() {
                return Ok(Some(why));
            }
            let (closed, failed, backlogged) = {
                let st = self.shared.state.borrow();
                (st.closed, st.failed.clone(), st.backlogged())
            };
            if closed {
                return Ok(None);
            }
            if let Some(why) = failed {
                return Ok(Some(format!(
                    "the source cannot store events ({why}); lines after the last ack were not stored"
                )));
            }
            let waiting = self.ingest.ack.acked.get() < self.ingest.ack.appended.get();
            if self.eof {
                if !waiting {
                    return Ok(None);
                }
                self.shared.progress.changed(self.id, seen).await;
                continue;
            }
            if backlogged {
                self.shared.state.borrow_mut().blocked = true;
                self.shared.progress.changed(self.id, seen).await;
                continue;
            }
            let wake = {
                let read = async { Wake::Read(stream.read(&mut buf).await) };
                let progress = async {
                    self.shared.progress.changed(self.id, seen).await;
                    Wake::Progress
                };
                futures_lite::future::or(read, progress).await
            };
            match wake {
                Wake::Read(Ok(0)) => {
                    self.eof = true;
                    // Half a line and then the end: it was never a line, and it was
                    // never acknowledged, so the client knows to send it again.
                    let dropped = self.splitter.discard();
                    if dropped > 0 {
                        tracing::debug!(pipeline = %self.shared.pipeline, bytes = dropped, "connection ended in the middle of a line");
                    }
                    self.flush();
                }
                Wake::Read(Ok(n)) => {
                    let chunk = &buf[..n];
                    self.process_chunk(chunk);
                    // One read at a time: the other connections, the syncer and the
                    // shard loop get their turn before this one reads again. A plain
                    // yield would keep the task queue busy so that the executor never
                    // polls for I/O (finished syncs, readable sockets, timers) until
                    // its 100 ms preemption; a timer that is due at once lets it poll
                    // as soon as every task has had its turn.
                    glommio::timer::sleep(Duration::from_micros(1)).await;
                }
                Wake::Read(Err(e)) => return Err(e),
                Wake::Progress => {}
            }
        }
    }

    /// Reads up to the first non-blank line and handles a hello; returns the bytes
    /// after it (or everything, for an anonymous connection), or `None` when the
    /// connection ended first or is to be closed.
    async fn first_line(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
    ) -> std::io::Result<Option<Vec<u8>>> {
        let mut head: Vec<u8> = Vec::new();
        loop {
            while let Some(nl) = memchr::memchr(b'\n', &head) {
                let line = head[..nl].trim_ascii();
                if line.is_empty() {
                    head.drain(..=nl);
                    continue;
                }
                match protocol::first_line(line) {
                    FirstLine::Event => return Ok(Some(head)),
                    FirstLine::BadHello(why) => {
                        self.ingest.close = Some(why);
                        return Ok(None);
                    }
                    FirstLine::Hello(hello) => {
                        let rest = head[nl + 1..].to_vec();
                        self.hello(hello).await;
                        if self.ingest.close.is_some() {
                            return Ok(None);
                        }
                        stream.write_all(&self.ingest.out).await?;
                        self.ingest.out.clear();
                        return Ok(Some(rest));
                    }
                }
            }
            if head.len() > self.shared.max_line_bytes.max(1024) {
                return Ok(Some(head));
            }
            let n = stream.read(buf).await?;
            if n == 0 {
                return Ok(None);
            }
            head.extend_from_slice(&buf[..n]);
        }
    }

    /// Fences the producer, learns what the engine holds of it, and answers.
    async fn hello(&mut self, hello: Hello) {
        let registry = Arc::clone(&self.shared.registry);
        let deadline = Instant::now() + HELLO_WAIT;
        while !registry.loaded() {
            if Instant::now() >= deadline {
                self.ingest.close = Some("the engine is still starting; try again".into());
                return;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let producer = registry.producer(&hello.producer, now_ms());
        let epoch = producer.fence();
        let acked = loop {
            if let Some(acked) = producer.settled() {
                break acked;
            }
            if Instant::now() >= deadline {
                self.ingest.close = Some(format!(
                    "lines of producer {} from an earlier connection are still being stored; try again",
                    hello.producer
                ));
                return;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        };
        let start = hello.seq.unwrap_or(acked + 1);
        if acked > 0 && start > acked + 1 {
            self.ingest.close = Some(format!(
                "seq {start} leaves a gap: the engine holds lines 1 to {acked} of producer {}; resend from {}",
                hello.producer,
                acked + 1
            ));
            return;
        }
        tracing::debug!(
            pipeline = %self.shared.pipeline,
            producer = %hello.producer,
            acked,
            start,
            partition = self.shared.partition.0,
            "hello"
        );
        self.ingest.next_seq = start;
        self.ingest.dup_until = acked;
        self.ingest.ack.acked.set(acked);
        self.ingest.ack.appended.set(acked);
        self.sent_ack = acked;
        protocol::hello_reply(
            &mut self.ingest.out,
            &hello.producer,
            acked,
            self.shared.partition.0,
        );
        self.ingest.session = Session::Producer {
            id: hello.producer,
            producer,
            epoch,
        };
    }

    /// Splits and handles bytes, then appends what they made.
    fn process_chunk(&mut self, chunk: &[u8]) {
        let now = now_ms();
        let shared = Rc::clone(&self.shared);
        {
            let mut st = shared.state.borrow_mut();
            let ingest = &mut self.ingest;
            self.splitter
                .feed(chunk, |line| ingest.line(line, &shared, &mut st, now));
            ingest.flush(&mut st);
        }
        self.after_append();
    }

    /// Appends an open batch (at the end of the input).
    fn flush(&mut self) {
        let shared = Rc::clone(&self.shared);
        self.ingest.flush(&mut shared.state.borrow_mut());
        self.after_append();
    }

    fn after_append(&mut self) {
        let dups = std::mem::take(&mut self.ingest.duplicates);
        if dups > 0 {
            let pc = &self.shared.counters.pipelines[self.shared.pipeline_index][self.shared.shard];
            pc.deduplicated.fetch_add(dups, Ordering::Relaxed);
        }
        self.shared.work.notify();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("producer", &self.ingest.producer_id())
            .finish()
    }
}
