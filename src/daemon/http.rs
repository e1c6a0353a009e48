//! The admin API's connections, served by axum on a [`GatedListener`]: [`Gate`] bounds the open
//! connections (the oldest one still sending its request makes room for a new one), and each
//! connection's reads and writes are bounded in time ([`GatedIo`]). Every answer closes its
//! connection and is never cached.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// Largest request body accepted.
pub const MAX_REQUEST: usize = 4 << 20;

/// Bounds the open connections. When they are all taken, the oldest one still waiting for its
/// request is dropped to make room, so idle clients can never lock `/health` out; a connection
/// whose request is being answered is never dropped.
#[derive(Clone)]
pub struct Gate {
    max: usize,
    inner: Arc<Mutex<GateState>>,
}

#[derive(Default)]
struct GateState {
    next: u64,
    open: usize,
    /// Connections still reading their request, oldest first, with the means to drop them.
    reading: BTreeMap<u64, oneshot::Sender<()>>,
    /// Connections told to close whose task has not ended yet: they no longer count.
    evicted: BTreeSet<u64>,
}

/// One admitted connection; the gate counts it until it is dropped.
pub struct Ticket {
    id: u64,
    gate: Gate,
    answering: Arc<AtomicBool>,
    /// Fires when the gate drops this connection to make room.
    pub evicted: oneshot::Receiver<()>,
}

impl Gate {
    /// A gate for at most `max` connections (at least 1).
    pub fn new(max: usize) -> Gate {
        Gate {
            max: max.max(1),
            inner: Arc::new(Mutex::new(GateState::default())),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a new connection, dropping the oldest one still reading if all are taken; `None`
    /// when every connection is busy answering (the new one is closed at once).
    pub fn admit(&self) -> Option<Ticket> {
        let mut s = self.state();
        if s.open - s.evicted.len() >= self.max && !Self::evict_oldest(&mut s) {
            return None;
        }
        s.next += 1;
        s.open += 1;
        let (tx, rx) = oneshot::channel();
        let id = s.next;
        s.reading.insert(id, tx);
        Some(Ticket {
            id,
            gate: self.clone(),
            answering: Arc::default(),
            evicted: rx,
        })
    }

    /// Drops the oldest connection still reading its request (to free a file descriptor when
    /// the system has none left); `false` if there is none.
    pub fn evict(&self) -> bool {
        Self::evict_oldest(&mut self.state())
    }

    fn evict_oldest(s: &mut GateState) -> bool {
        match s.reading.pop_first() {
            Some((id, tx)) => {
                let _ = tx.send(());
                s.evicted.insert(id);
                true
            }
            None => false,
        }
    }
}

impl Ticket {
    /// The request is read: from now on the connection is busy and never dropped by the gate.
    pub fn answering(&self) {
        self.arrived().answering();
    }

    fn arrived(&self) -> Arrived {
        Arrived {
            id: self.id,
            gate: self.gate.clone(),
            answering: Arc::clone(&self.answering),
        }
    }
}

/// A connection as the handlers see it (axum's connect info), to tell the gate that its request
/// has arrived.
#[derive(Clone)]
pub struct Arrived {
    id: u64,
    gate: Gate,
    answering: Arc<AtomicBool>,
}

impl Arrived {
    /// The request is read: see [`Ticket::answering`].
    pub fn answering(&self) {
        self.answering.store(true, Ordering::Relaxed);
        self.gate.state().reading.remove(&self.id);
    }
}

impl Connected<IncomingStream<'_, GatedListener>> for Arrived {
    fn connect_info(stream: IncomingStream<'_, GatedListener>) -> Self {
        stream.io().ticket.arrived()
    }
}

/// Accepts connections within a [`Gate`]. When accepting fails (no file descriptor left), an
/// idle connection is dropped to free one and the listener backs off instead of spinning.
pub struct GatedListener {
    listener: TcpListener,
    gate: Gate,
    /// Longest wait for the next bytes of a request.
    idle: Duration,
    /// Longest time to read a whole request, or to write the answer.
    request: Duration,
}

impl GatedListener {
    /// Accepts on `listener` at most `max` connections at once.
    pub fn new(listener: TcpListener, max: usize, idle: Duration, request: Duration) -> Self {
        GatedListener {
            listener,
            gate: Gate::new(max),
            idle,
            request,
        }
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedIo, SocketAddr) {
        const FIRST_BACKOFF: Duration = Duration::from_millis(5);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (sock, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(error = %e, "Admin API cannot accept a connection; backing off.");
                    }
                    self.gate.evict();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            let Some(ticket) = self.gate.admit() else {
                continue;
            };
            let now = Instant::now();
            let request_end = now + self.request;
            return (
                GatedIo {
                    sock,
                    ticket,
                    evicted: false,
                    idle: self.idle,
                    request: self.request,
                    request_end,
                    read_by: Box::pin(tokio::time::sleep_until(request_end.min(now + self.idle))),
                    write_by: Box::pin(tokio::time::sleep(self.request)),
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An admitted connection. Until its request has arrived it is closed when the client sends
/// nothing for the idle time, when the whole request takes longer than the request time, or when
/// the gate drops it; an answer that cannot be written for the request time is given up.
pub struct GatedIo {
    sock: TcpStream,
    ticket: Ticket,
    /// The gate's drop has been seen (its channel is not polled again).
    evicted: bool,
    idle: Duration,
    request: Duration,
    request_end: Instant,
    read_by: Pin<Box<Sleep>>,
    write_by: Pin<Box<Sleep>>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl AsyncRead for GatedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ticket.answering.load(Ordering::Relaxed) {
            return Pin::new(&mut this.sock).poll_read(cx, buf);
        }
        if this.evicted {
            return Poll::Ready(Ok(()));
        }
        if let Poll::Ready(r) = Pin::new(&mut this.ticket.evicted).poll(cx) {
            this.evicted = true;
            if r.is_ok() {
                // Dropped by the gate to make room: end of input, the connection closes.
                return Poll::Ready(Ok(()));
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.sock).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = this.request_end.min(Instant::now() + this.idle);
                    this.read_by.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.read_by.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Err(timed_out("the request did not arrive in time")))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GatedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.sock).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_by.as_mut().reset(Instant::now() + this.request);
                Poll::Ready(r)
            }
            Poll::Pending => match this.write_by.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Err(timed_out("the client does not read the answer")))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().sock).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().sock).poll_shutdown(cx)
    }
}

/// Middleware: reads the whole body (within [`MAX_REQUEST`]), then tells the gate the request
/// has arrived, so the connection is no longer dropped to make room.
pub async fn arrived(
    ConnectInfo(conn): ConnectInfo<Arrived>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    conn.answering();
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Middleware: every answer closes its connection (one request per connection) and is not cached.
pub async fn close_and_no_store(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // axum names the allowed methods on a 404 for another method: the API never said them.
    h.remove(header::ALLOW);
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.gate.state();
        s.reading.remove(&self.id);
        s.evicted.remove(&self.id);
        s.open = s.open.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_drops_the_oldest_idle_connection_never_a_busy_one() {
        let gate = Gate::new(2);
        let mut a = gate.admit().unwrap();
        let b = gate.admit().unwrap();
        b.answering();
        let c = gate.admit().unwrap();
        assert!(
            a.evicted.try_recv().is_ok(),
            "the oldest idle one makes room"
        );
        drop(a);
        c.answering();
        assert!(gate.admit().is_none(), "both busy: the new one is refused");
        drop(b);
        let d = gate.admit().unwrap();
        drop((c, d));
        let s = gate.state();
        assert_eq!((s.open, s.reading.len(), s.evicted.len()), (0, 0, 0));
    }
}
