//! The HTTP/1.1 client a Swift server uses to talk to another one (Swift's
//! `bufferedhttp`): request head and body written by the caller,
//! `Expect: 100-continue` handled, the response head read with a timeout,
//! and the response body streamed with a timeout on every read. Never
//! buffers a whole body.
//!
//! Swift opens a new connection for every backend request. Given a [`Pool`],
//! a connection whose exchange ended cleanly is kept open for the next
//! request to the same backend instead (HTTP/1.1 keep-alive, which Swift's
//! storage servers speak): no connect and no close per request. An idle
//! connection the backend closed in the meantime is replaced by a new one
//! before anything of the request was answered or any body byte sent, so
//! the caller never sees the difference. Without a pool, every request says
//! `Connection: close`, as Swift's proxy does.
//!
//! Header names and values are WSGI strings (latin-1), as everywhere in
//! the pipeline. What to send and how long to wait is the caller's
//! business: this module only frames bytes and bounds every wait it makes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use std::borrow::Cow;

use super::message::{Headers, Text};
use super::quote::{bytes_to_wsgi, push_wsgi_bytes};

mod pool;
pub use pool::Pool;

/// Why a backend exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} from {addr} timed out after {timeout:?}")]
    Timeout {
        addr: String,
        what: &'static str,
        timeout: Duration,
    },
    #[error("{what} {addr}: {source}")]
    Io {
        addr: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("bad response from {addr}: {message}")]
    Protocol { addr: String, message: String },
}

impl ClientError {
    /// Whether this is a timeout (Swift logs those differently from errors).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectTimeout { .. } | ClientError::Timeout { .. }
        )
    }
}

/// Longest response head accepted from a backend.
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines accepted in a response head.
const MAX_HEADERS: usize = 256;
/// Read size for bodies.
const READ_CHUNK: usize = 64 * 1024;

/// `ip:port`, with brackets for IPv6 (Swift's `Host` header and log form).
pub fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

/// A connection to one backend, for one request.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read past the response head.
    rbuf: BytesMut,
    /// `ip:port` for messages.
    addr: String,
    /// The request body goes out chunked.
    chunked: bool,
    /// The request method (a HEAD response has no body).
    method_head: bool,
    /// Where the connection goes when its exchange ends cleanly.
    pool: Option<Arc<Pool>>,
    /// Request body bytes still to send (`Content-Length`), or whether the
    /// last chunk is still to send (chunked).
    body_left: u64,
    /// The final response allows keeping the connection (HTTP/1.1, no
    /// `Connection: close`).
    keep_alive: bool,
    /// Set while the connection came from the pool and nothing has been
    /// answered or sent past the head: how to start over on a new one.
    retry: Option<Retry>,
}

/// What it takes to send a request head again on a new connection.
struct Retry {
    ip: String,
    port: u16,
    head: Vec<u8>,
    conn_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Connection {
    /// Connect to `ip:port` and send the request head (Swift's
    /// `http_connect_raw` under `conn_timeout`): `path` already quoted, with
    /// its query. `Host` is added unless `headers` has one, and
    /// `Connection: close` in place of any `Connection` in `headers`. The body (if any) is framed by the caller's
    /// `Content-Length` or `Transfer-Encoding: chunked`.
    pub async fn open(
        ip: &str,
        port: u16,
        method: &str,
        path: &str,
        headers: &Headers,
        conn_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        Connection::open_with(None, ip, port, method, path, headers, conn_timeout).await
    }

    /// [`Connection::open`], on an idle connection from `pool` when it has
    /// one to this backend; the connection goes back there when the whole
    /// exchange has been read.
    pub async fn open_with(
        pool: Option<&Arc<Pool>>,
        ip: &str,
        port: u16,
        method: &str,
        path: &str,
        headers: &Headers,
        conn_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let addr = host_port(ip, port);
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.contains("host") {
            head.extend_from_slice(b"Host: ");
            head.extend_from_slice(addr.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        for (k, v) in headers.iter() {
            // Hop-by-hop: whether the connection persists is this module's
            // business (a client's `Connection: close`, passed on with the
            // rest of its headers, must not close a pooled connection).
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
            push_wsgi_bytes(&mut head, k);
            head.extend_from_slice(b": ");
            push_wsgi_bytes(&mut head, v);
            head.extend_from_slice(b"\r\n");
        }
        if pool.is_none() {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let body_left = if chunked {
            1
        } else {
            headers
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        // An idle connection first; one the backend closed meanwhile fails
        // the write (or the first read, see `read_head`), and a new one
        // takes its place. Not for a body sent without waiting for
        // `100 Continue`: once it is on the wire, a closed connection could
        // not be told from a failing backend.
        let body_first = body_left > 0
            && !headers
                .get("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let mut reused = None;
        if let Some(mut stream) = pool.filter(|_| !body_first).and_then(|p| p.take(&addr)) {
            let sent = tokio::time::timeout(conn_timeout, stream.write_all(&head)).await;
            if matches!(sent, Ok(Ok(()))) {
                reused = Some(stream);
            }
        }
        let (stream, retry) = match reused {
            Some(stream) => (
                stream,
                Some(Retry {
                    ip: ip.to_owned(),
                    port,
                    head,
                    conn_timeout,
                }),
            ),
            None => (
                connect_and_send(ip, port, &addr, &head, conn_timeout).await?,
                None,
            ),
        };
        Ok(Connection {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            addr,
            chunked,
            method_head: method.eq_ignore_ascii_case("HEAD"),
            pool: pool.cloned(),
            body_left,
            keep_alive: false,
            retry,
        })
    }

    /// `ip:port` of the backend.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Read a response head within `timeout`. A `100 Continue` is returned
    /// like any other head; call again for the final one.
    pub async fn read_head(&mut self, timeout: Duration) -> Result<ResponseHead, ClientError> {
        match tokio::time::timeout(timeout, self.read_head_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                what: "response",
                timeout,
            }),
        }
    }

    async fn read_head_inner(&mut self) -> Result<ResponseHead, ClientError> {
        loop {
            if let Some(end) = find_head_end(&self.rbuf) {
                let raw = self.rbuf.split_to(end);
                let (head, http11) = parse_head(&raw).map_err(|message| ClientError::Protocol {
                    addr: self.addr.clone(),
                    message,
                })?;
                if head.status >= 200 {
                    self.keep_alive = http11
                        && !head
                            .headers
                            .get_all("connection")
                            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
                }
                return Ok(head);
            }
            if self.rbuf.len() > MAX_HEAD {
                return Err(self.protocol("response head too long"));
            }
            self.rbuf.reserve(4096);
            let read = self.stream.read_buf(&mut self.rbuf).await;
            if matches!(read, Ok(0) | Err(_))
                && self.rbuf.is_empty()
                && let Some(retry) = self.retry.take()
            {
                // An idle connection the backend had closed: the request
                // never reached it. Start over on a new connection.
                self.stream = connect_and_send(
                    &retry.ip,
                    retry.port,
                    &self.addr,
                    &retry.head,
                    retry.conn_timeout,
                )
                .await?;
                continue;
            }
            self.retry = None;
            let n = read.map_err(|source| ClientError::Io {
                addr: self.addr.clone(),
                what: "reading the response from",
                source,
            })?;
            if n == 0 {
                return Err(self.protocol(if self.rbuf.is_empty() {
                    "connection closed before a response"
                } else {
                    "connection closed in the response head"
                }));
            }
        }
    }

    fn protocol(&self, message: &str) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            message: message.to_owned(),
        }
    }

    /// Send a piece of the request body within `timeout` (chunk-framed when
    /// the request is chunked). Empty pieces send nothing.
    pub async fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), ClientError> {
        if data.is_empty() {
            return Ok(());
        }
        // Body bytes on the wire: a request cannot simply be sent again.
        self.retry = None;
        if !self.chunked {
            self.body_left = self.body_left.saturating_sub(data.len() as u64);
        }
        let addr = &self.addr;
        let chunked = self.chunked;
        let stream = &mut self.stream;
        let work = async {
            if chunked {
                // The chunk's size line, data and CRLF in one write, not three.
                let size = format!("{:x}\r\n", data.len());
                write_all_vectored(stream, &[size.as_bytes(), data, b"\r\n"]).await
            } else {
                stream.write_all(data).await
            }
        };
        bounded_io(addr, "sending the body to", timeout, work).await
    }

    /// End the request body (the last chunk of a chunked body).
    pub async fn finish(&mut self, timeout: Duration) -> Result<(), ClientError> {
        if !self.chunked {
            return Ok(());
        }
        self.retry = None;
        let addr = &self.addr;
        let stream = &mut self.stream;
        bounded_io(
            addr,
            "ending the body to",
            timeout,
            stream.write_all(b"0\r\n\r\n"),
        )
        .await?;
        self.body_left = 0;
        Ok(())
    }

    /// The response body that follows `head`, read with `timeout` per read.
    pub fn into_body(mut self, head: &ResponseHead, timeout: Duration) -> ResponseBody {
        let framing =
            if self.method_head || head.status < 200 || head.status == 204 || head.status == 304 {
                Framing::Done
            } else if head
                .headers
                .get("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
            {
                Framing::ChunkSize
            } else if let Some(n) = head
                .headers
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                Framing::Length(n)
            } else {
                Framing::Close
            };
        if framing == Framing::Close {
            // Its end is the connection's.
            self.keep_alive = false;
        }
        if framing == Framing::Done {
            self.release();
            return ResponseBody::empty();
        }
        ResponseBody {
            conn: Some(self),
            framing,
            timeout,
        }
    }

    /// End the exchange after the final response `head` when nothing more
    /// of it will be read: the connection goes back to the pool if the
    /// response has no body, and is closed otherwise.
    pub fn finish_with(self, head: &ResponseHead) {
        drop(self.into_body(head, Duration::ZERO));
    }

    /// Back to the pool if the exchange is complete (the whole request
    /// sent, the whole response read and nothing more) and both ends keep
    /// the connection; closed otherwise.
    fn release(self) {
        if let Some(pool) = &self.pool
            && self.keep_alive
            && self.body_left == 0
            && self.rbuf.is_empty()
        {
            pool.put(&self.addr, self.stream);
        }
    }
}

/// Connect to `ip:port` and write `head`, all within `conn_timeout`.
async fn connect_and_send(
    ip: &str,
    port: u16,
    addr: &str,
    head: &[u8],
    conn_timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let work = async {
        let stream = match ip.parse::<std::net::IpAddr>() {
            Ok(a) => TcpStream::connect((a, port)).await,
            Err(_) => TcpStream::connect((ip, port)).await,
        };
        let mut stream = stream.map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
        // Small writes (heads, the last chunk) must not wait for acks.
        let _ = stream.set_nodelay(true);
        stream
            .write_all(head)
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.to_owned(),
                what: "sending the request to",
                source,
            })?;
        Ok::<_, ClientError>(stream)
    };
    tokio::time::timeout(conn_timeout, work)
        .await
        .map_err(|_| ClientError::ConnectTimeout {
            addr: addr.to_owned(),
            timeout: conn_timeout,
        })?
}

/// Write every byte of `parts`, in order, with as few writes as the socket
/// allows.
async fn write_all_vectored(stream: &mut TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    io::IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        let n = stream.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

async fn bounded_io(
    addr: &str,
    what: &'static str,
    timeout: Duration,
    work: impl std::future::Future<Output = io::Result<()>>,
) -> Result<(), ClientError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(ClientError::Io {
            addr: addr.to_owned(),
            what,
            source,
        }),
        Err(_) => Err(ClientError::Timeout {
            addr: addr.to_owned(),
            what,
            timeout,
        }),
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// The head, and whether it is HTTP/1.1 (whose connections persist).
fn parse_head(raw: &[u8]) -> Result<(ResponseHead, bool), String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete response head".into()),
        Err(e) => return Err(format!("unparsable response head: {e}")),
    }
    let status = resp.code.ok_or("no status code")?;
    let reason = resp.reason.unwrap_or("").to_owned();
    let mut headers = Headers::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        headers.append(response_name(h.name), bytes_to_wsgi(h.value));
    }
    Ok((
        ResponseHead {
            status,
            reason,
            headers,
        },
        resp.version == Some(1),
    ))
}

/// A response header's name as text: the names Swift's storage servers send
/// with every answer, spelled as they spell them, without allocating.
fn response_name(name: &str) -> Text {
    const COMMON: &[&str] = &[
        "Content-Type",
        "Content-Length",
        "Etag",
        "Last-Modified",
        "X-Timestamp",
        "X-Backend-Timestamp",
        "X-Backend-Data-Timestamp",
        "X-Backend-Durable-Timestamp",
        "X-Backend-Storage-Policy-Index",
        "X-Put-Timestamp",
        "X-Object-Meta-Mtime",
        "Accept-Ranges",
        "Content-Range",
        "Date",
        "Connection",
        "Transfer-Encoding",
        "X-Trans-Id",
        "X-Openstack-Request-Id",
    ];
    match COMMON.iter().find(|c| **c == name) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.to_owned()),
    }
}

/// How the rest of a response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Close,
    Done,
}

/// A response body being read from a backend.
pub struct ResponseBody {
    conn: Option<Connection>,
    framing: Framing,
    timeout: Duration,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("framing", &self.framing)
            .finish()
    }
}

impl ResponseBody {
    /// An already complete, empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            conn: None,
            framing: Framing::Done,
            timeout: Duration::ZERO,
        }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// The next piece of the body (`None` at its end), each read bounded by
    /// the body's timeout. The connection closes at the end or on error.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        let timeout = self.timeout;
        let r = match tokio::time::timeout(timeout, self.next_piece()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr(),
                what: "body read",
                timeout,
            }),
        };
        match &r {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.framing = Framing::Done;
                if let Some(conn) = self.conn.take() {
                    conn.release();
                }
            }
            Err(_) => {
                self.framing = Framing::Done;
                self.conn = None;
            }
        }
        r
    }

    /// Read and drop the rest of the body, reading at most `limit` bytes
    /// (Swift's `drain_and_close`); the connection closes either way.
    pub async fn drain(&mut self, limit: u64) {
        let mut read = 0u64;
        while read < limit {
            match self.chunk().await {
                Ok(Some(b)) => read += b.len() as u64,
                _ => break,
            }
        }
        self.conn = None;
        self.framing = Framing::Done;
    }

    /// The whole body, refusing more than `limit` bytes.
    pub async fn to_bytes(&mut self, limit: usize) -> Result<Bytes, ClientError> {
        let mut out = BytesMut::new();
        while let Some(piece) = self.chunk().await? {
            if out.len() + piece.len() > limit {
                let addr = self.addr();
                self.conn = None;
                self.framing = Framing::Done;
                return Err(ClientError::Protocol {
                    addr,
                    message: format!("response body over {limit} bytes"),
                });
            }
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }

    fn addr(&self) -> String {
        self.conn
            .as_ref()
            .map_or_else(String::new, |c| c.addr.clone())
    }

    async fn fill(&mut self) -> Result<usize, ClientError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 2 {
            conn.rbuf.reserve(READ_CHUNK);
        }
        conn.stream
            .read_buf(&mut conn.rbuf)
            .await
            .map_err(|source| ClientError::Io {
                addr: conn.addr.clone(),
                what: "reading the body from",
                source,
            })
    }

    fn buffered(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.rbuf.len())
    }

    fn truncated(&self) -> ClientError {
        ClientError::Protocol {
            addr: self.addr(),
            message: "connection closed in the body".into(),
        }
    }

    async fn line(&mut self) -> Result<Bytes, ClientError> {
        loop {
            if let Some(conn) = self.conn.as_mut()
                && let Some(pos) = memchr::memchr(b'\n', &conn.rbuf)
            {
                let mut line = conn.rbuf.split_to(pos + 1);
                line.truncate(pos);
                if line.last() == Some(&b'\r') {
                    line.truncate(pos - 1);
                }
                return Ok(line.freeze());
            }
            if self.buffered() > 8192 {
                return Err(ClientError::Protocol {
                    addr: self.addr(),
                    message: "chunk line too long".into(),
                });
            }
            if self.fill().await? == 0 {
                return Err(self.truncated());
            }
        }
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.framing {
                Framing::Done | Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                Framing::Length(left) | Framing::ChunkData(left) => {
                    if self.buffered() == 0 && self.fill().await? == 0 {
                        return Err(self.truncated());
                    }
                    let Some(conn) = self.conn.as_mut() else {
                        return Ok(None);
                    };
                    let n = (conn.rbuf.len() as u64).min(left) as usize;
                    let piece = conn.rbuf.split_to(n).freeze();
                    let rest = left - n as u64;
                    self.framing = match self.framing {
                        Framing::Length(_) if rest == 0 => Framing::Done,
                        Framing::Length(_) => Framing::Length(rest),
                        _ if rest == 0 => Framing::ChunkEnd,
                        _ => Framing::ChunkData(rest),
                    };
                    return Ok(Some(piece));
                }
                Framing::Close => {
                    if self.buffered() == 0 && self.fill().await? == 0 {
                        self.framing = Framing::Done;
                        return Ok(None);
                    }
                    let Some(conn) = self.conn.as_mut() else {
                        return Ok(None);
                    };
                    let n = conn.rbuf.remaining();
                    return Ok(Some(conn.rbuf.split_to(n).freeze()));
                }
                Framing::ChunkSize => {
                    let line = self.line().await?;
                    let text = line.split(|b| *b == b';').next().unwrap_or(&[]);
                    let size = std::str::from_utf8(text)
                        .ok()
                        .map(str::trim)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| ClientError::Protocol {
                            addr: self.addr(),
                            message: "invalid chunk size".into(),
                        })?;
                    self.framing = if size == 0 {
                        Framing::Trailers
                    } else {
                        Framing::ChunkData(size)
                    };
                }
                Framing::ChunkEnd => {
                    let line = self.line().await?;
                    if !line.is_empty() {
                        return Err(ClientError::Protocol {
                            addr: self.addr(),
                            message: "missing CRLF after a chunk".into(),
                        });
                    }
                    self.framing = Framing::ChunkSize;
                }
                Framing::Trailers => {
                    if self.line().await?.is_empty() {
                        self.framing = Framing::Done;
                    }
                }
            }
        }
    }
}

/// A response body as a stream for the server to send on. A read error
/// (timeout, a backend that went away) ends the stream with that error, so
/// the client's connection is cut rather than given a short body silently.
pub fn body_stream(body: ResponseBody) -> super::stream::Unfold<ResponseBody> {
    super::stream::unfold(body, |mut body| {
        Box::pin(async move {
            match body.chunk().await {
                Ok(Some(b)) => Some((Ok(b), body)),
                Ok(None) => None,
                Err(e) => Some((Err(io::Error::other(e.to_string())), body)),
            }
        })
    })
}

#[cfg(test)]
mod tests;
