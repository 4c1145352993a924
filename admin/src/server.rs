//! The admin server: one thread per listener, each running a tiny_http loop around a
//! [`Router`].
//!
//! The REST listener (`[admin] http`) serves every route; the metrics listener
//! (`[admin] metrics`) serves `/metrics` and `/health` only. When both addresses are the
//! same, one listener serves everything. Requests are answered one at a time per listener:
//! the slowest answer is bounded by the shard timeout, and a slow scan on the REST port
//! never delays a scrape on the metrics port. The rare request that comes with a body (no
//! route takes one) is answered on a thread of its own, because reading or draining a body
//! waits for the client, and a client must not be able to stall a listener.
//!
//! Lifecycle is RAII: [`AdminServer::shutdown`], or dropping the server, stops accepting,
//! finishes the request in hand and joins the listener threads (a thread answering a
//! request with a body is not joined: it ends when its client sends or goes away).

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::request::{MAX_BODY_BYTES, Method, Request};
use crate::response::Response;
use crate::route::Listener;
use crate::router::{DEFAULT_SHARD_TIMEOUT, Router};

/// Configures and starts an [`AdminServer`].
pub struct AdminServerBuilder {
    config: weir_config::Admin,
    backend: Arc<dyn Backend>,
    core: Option<usize>,
    shard_timeout: Duration,
    timeouts: ConnectionTimeouts,
    sockets: Option<AdminSockets>,
}

/// How long a connection may stay idle, and a write to it stall, before it is closed;
/// zero is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// A keep-alive connection with no request for this long is closed (it also bounds
    /// the wait for a request's next bytes).
    pub idle: Duration,
    /// An answer whose client takes nothing for this long is abandoned and the
    /// connection closed, so a client that does not read cannot hold a listener.
    pub write: Duration,
}

impl Default for ConnectionTimeouts {
    fn default() -> Self {
        Self {
            idle: DEFAULT_IDLE_TIMEOUT,
            write: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// The default [`ConnectionTimeouts::idle`]: longer than the usual scrape and dashboard
/// intervals, so that they keep their connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default [`ConnectionTimeouts::write`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin listeners' sockets, bound ahead of the server: `weir run` binds them
/// before it starts the engine, so that a port in use stops it before any shard runs.
#[derive(Debug)]
pub struct AdminSockets {
    bound: Vec<(Listener, SocketAddr, String, TcpListener)>,
}

impl AdminSockets {
    /// Binds the listeners of `config` (none when `enabled = false`), after checking
    /// that `core`, the core the admin threads will be pinned to, exists.
    pub fn bind(config: &weir_config::Admin, core: Option<usize>) -> Result<Self> {
        let mut sockets = Self { bound: Vec::new() };
        if !config.enabled {
            return Ok(sockets);
        }
        if let Some(core) = core {
            check_core(core)?;
        }
        let http = parse(Listener::Http, &config.http)?;
        let metrics = parse(Listener::Metrics, &config.metrics)?;
        // Port 0 asks for a fresh port each time, so two `:0` addresses are two listeners.
        let shared = http == metrics && http.port() != 0;
        let mut wanted = vec![(Listener::Http, http, &config.http)];
        if !shared {
            wanted.push((Listener::Metrics, metrics, &config.metrics));
        }
        for (listener, addr, configured) in wanted {
            let bind_error = |e: &dyn std::fmt::Display| Error::Bind {
                listener,
                address: configured.to_owned(),
                reason: e.to_string(),
            };
            let socket = listen(addr).map_err(|e| bind_error(&e))?;
            let bound = socket.local_addr().map_err(|e| bind_error(&e))?;
            sockets
                .bound
                .push((listener, bound, configured.to_owned(), socket));
        }
        Ok(sockets)
    }
}

impl AdminServerBuilder {
    /// A server for `config` over `backend`, unpinned, with [`DEFAULT_SHARD_TIMEOUT`].
    pub fn new(config: &weir_config::Admin, backend: Arc<dyn Backend>) -> Self {
        Self {
            config: config.clone(),
            backend,
            core: None,
            shard_timeout: DEFAULT_SHARD_TIMEOUT,
            timeouts: ConnectionTimeouts::default(),
            sockets: None,
        }
    }

    /// Serves on sockets bound beforehand ([`AdminSockets::bind`]) instead of binding
    /// the configured addresses in [`start`](Self::start).
    #[must_use]
    pub fn sockets(mut self, sockets: AdminSockets) -> Self {
        self.sockets = Some(sockets);
        self
    }

    /// Pins the admin threads to this core (`runtime.admin_core`).
    #[must_use]
    pub fn core(mut self, core: Option<usize>) -> Self {
        self.core = core;
        self
    }

    /// How long requests that ask the shards wait for them.
    #[must_use]
    pub fn shard_timeout(mut self, timeout: Duration) -> Self {
        self.shard_timeout = timeout;
        self
    }

    /// How long connections may stay idle, or stall a write, before they are closed.
    #[must_use]
    pub fn connection_timeouts(mut self, timeouts: ConnectionTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Binds the listeners and starts their threads. With `enabled = false` nothing is
    /// bound and the server is empty.
    pub fn start(self) -> Result<AdminServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut server = AdminServer {
            listeners: Vec::new(),
            stop: Arc::clone(&stop),
        };
        if !self.config.enabled {
            return Ok(server);
        }
        let sockets = match self.sockets {
            Some(sockets) => sockets,
            None => AdminSockets::bind(&self.config, self.core)?,
        };
        for (listener, _, configured, socket) in sockets.bound {
            let router = Router::new(Arc::clone(&self.backend), listener)
                .with_token(self.config.token.clone())
                .with_shard_timeout(self.shard_timeout);
            // On error `server` is dropped here, which stops the listeners already started.
            let running = spawn(
                listener,
                &configured,
                socket,
                router,
                self.core,
                self.timeouts,
                &stop,
            )?;
            server.listeners.push(running);
        }
        Ok(server)
    }
}

/// The running admin server; stops when shut down or dropped.
pub struct AdminServer {
    listeners: Vec<Running>,
    stop: Arc<AtomicBool>,
}

struct Running {
    listener: Listener,
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Starts the server for `config` over `backend`, unpinned, with the default shard
    /// timeout; see [`AdminServerBuilder`] for the options.
    pub fn start(config: &weir_config::Admin, backend: Arc<dyn Backend>) -> Result<Self> {
        AdminServerBuilder::new(config, backend).start()
    }

    /// A builder for the options.
    pub fn builder(config: &weir_config::Admin, backend: Arc<dyn Backend>) -> AdminServerBuilder {
        AdminServerBuilder::new(config, backend)
    }

    /// The address the REST API is bound to (the real port when `:0` was configured).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.addr_of(Listener::Http)
    }

    /// The address `/metrics` is served on: the metrics listener's, or the REST
    /// listener's when both share one address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.addr_of(Listener::Metrics).or_else(|| self.http_addr())
    }

    fn addr_of(&self, listener: Listener) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.listener == listener)
            .map(|l| l.addr)
    }

    /// Stops accepting, finishes the requests in hand and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        self.stop.store(true, Ordering::Release);
        for running in &self.listeners {
            running.http.unblock();
        }
        for running in &mut self.listeners {
            let panicked = running.thread.take().is_some_and(|t| t.join().is_err());
            if panicked {
                tracing::error!(listener = %running.listener, "admin thread panicked");
            }
        }
        // Dropping the tiny_http servers closes the sockets and their accept threads.
        self.listeners.clear();
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Connections the kernel queues for a listener before it accepts them. std binds with
/// 128, so a burst of more clients (a dashboard fleet, a load balancer's checks) had
/// SYNs dropped and retried a second or more later; the kernel caps this at
/// `net.core.somaxconn` (4096 on current kernels).
const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as std's).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn parse(listener: Listener, address: &str) -> Result<SocketAddr> {
    address.parse().map_err(|_| Error::Address {
        listener,
        address: address.to_owned(),
    })
}

fn check_core(core: usize) -> Result<()> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if available.contains(&core) {
        Ok(())
    } else {
        Err(Error::NoSuchCore { core, available })
    }
}

fn spawn(
    listener: Listener,
    configured: &str,
    socket: TcpListener,
    router: Router,
    core: Option<usize>,
    timeouts: ConnectionTimeouts,
    stop: &Arc<AtomicBool>,
) -> Result<Running> {
    let bind_error = |e: &dyn std::fmt::Display| Error::Bind {
        listener,
        address: configured.to_owned(),
        reason: e.to_string(),
    };
    let bound = socket.local_addr().map_err(|e| bind_error(&e))?;
    let http = tiny_http::Server::from_listener_with_timeouts(
        socket,
        None,
        Some(timeouts.idle).filter(|d| !d.is_zero()),
        Some(timeouts.write).filter(|d| !d.is_zero()),
    )
    .map_err(|e| bind_error(&e))?;
    let http = Arc::new(http);
    let (pinned_tx, pinned_rx) = mpsc::sync_channel(1);
    let thread = {
        let http = Arc::clone(&http);
        let stop = Arc::clone(stop);
        thread::Builder::new()
            .name(format!("weir-admin-{listener}"))
            .spawn(move || {
                let pinned = core
                    .is_none_or(|id| core_affinity::set_for_current(core_affinity::CoreId { id }));
                let _ = pinned_tx.send(pinned);
                if pinned {
                    serve(&http, &router, &stop);
                }
            })
            .map_err(|e| Error::Spawn {
                listener,
                reason: e.to_string(),
            })?
    };
    let running = Running {
        listener,
        addr: bound,
        http,
        thread: Some(thread),
    };
    match pinned_rx.recv() {
        Ok(true) => Ok(running),
        _ => Err(Error::Pin {
            core: core.unwrap_or_default(),
        }),
    }
}

fn serve(http: &tiny_http::Server, router: &Router, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match http.recv() {
            Ok(request) if has_body(&request) => answer_aside(request, router.clone()),
            Ok(request) => answer(request, router),
            // `unblock` (shutdown) or an accept error; the loop condition decides.
            Err(e) => {
                if !stop.load(Ordering::Acquire) {
                    tracing::warn!(error = %e, "admin listener error");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Whether the client announced a body (no route takes one, but it must be read or
/// drained before the connection can be used again).
fn has_body(request: &tiny_http::Request) -> bool {
    request.body_length().is_some_and(|n| n > 0)
        || request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding"))
}

/// Answers a request with a body on a thread of its own. Reading a body, and even
/// dropping a request whose body was not read (tiny_http drains it), waits for the
/// client; a client that announces a body and never sends it must not stall the listener.
fn answer_aside(request: tiny_http::Request, router: Router) {
    let spawned = thread::Builder::new()
        .name("weir-admin-body".to_owned())
        .spawn(move || answer(request, &router));
    if let Err(e) = spawned {
        // The request went down with the closure; tiny_http answered it 500.
        tracing::warn!(error = %e, "cannot spawn a thread to answer a request with a body");
    }
}

fn answer(mut request: tiny_http::Request, router: &Router) {
    let mut converted = Request::new(Method::parse(request.method().as_str()), request.url());
    for header in request.headers() {
        converted = converted.with_header(header.field.as_str().as_str(), header.value.as_str());
    }
    // A declared length over the limit is refused from the header alone; otherwise read
    // one byte past the limit, so the router sees a body that is too large.
    let declared = request.body_length().unwrap_or(0);
    if declared <= MAX_BODY_BYTES {
        let mut body = Vec::new();
        let limit = MAX_BODY_BYTES as u64 + 1;
        if request
            .as_reader()
            .take(limit)
            .read_to_end(&mut body)
            .is_ok()
        {
            converted = converted.with_body(body);
        }
    }
    let response = router.handle(&converted);
    if let Err(e) = request.respond(to_tiny(response)) {
        tracing::debug!(error = %e, "admin client went away before its answer");
    }
}

fn to_tiny(response: Response) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut out = tiny_http::Response::from_data(response.body().to_vec())
        .with_status_code(response.status());
    for (name, value) in response.headers() {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    out
}
