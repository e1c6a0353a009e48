//! A small HTTP/1.1 server side for the local admin API: one request per connection, headers
//! and a `Content-Length` body read with limits (size, idle time between reads), one response
//! written. Enough for a few JSON endpoints and a page on 127.0.0.1, without another server
//! framework in the build. [`Gate`] bounds the open connections.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Largest request accepted (headers and body).
const MAX_REQUEST: usize = 4 << 20;

/// A request.
#[derive(Debug, Default)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string, if any.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of `name` in the query string (`?name=value`), as written.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

/// A response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, s: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: s.into().into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// Reads one request; `None` for a malformed or oversized one, or when the client sends nothing
/// for `idle`.
pub async fn read(sock: &mut TcpStream, idle: Duration) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = tokio::time::timeout(idle, sock.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_REQUEST {
        return None;
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(idle, sock.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Request {
        method,
        query: target
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default(),
        path: target.split('?').next().unwrap_or("/").to_owned(),
        headers,
        body,
    })
}

/// Writes a response and closes.
pub async fn write(sock: &mut TcpStream, r: Response) {
    let reason = match r.status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let extra: String = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n{extra}\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(&r.body).await;
    let _ = sock.shutdown().await;
}

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
        self.gate.state().reading.remove(&self.id);
    }
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
