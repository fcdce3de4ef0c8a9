//! Request bodies, read lazily from the connection as the app asks for them,
//! so a proxy can stream them to backends: Content-Length or chunked
//! framing, `Expect: 100-continue` answered on the first read, and a
//! `client_timeout` bound on every read. A body can also be made by the
//! server itself (a subrequest's body: bytes, or another response's
//! stream).
//!
//! The connection and the body share the socket through [`ConnShared`]:
//! whoever reads or writes takes the I/O out of its cell for the duration and
//! puts it back, so there is never a borrow held across an await.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A client connection's byte stream (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// The connection's I/O, its buffers, and the one timer that bounds every
/// read and write.
pub(crate) struct ConnIo {
    pub io: Box<dyn Io>,
    pub rbuf: BytesMut,
    pub wbuf: Vec<u8>,
    /// Armed once per connection and re-armed only when it fires early:
    /// moving a timer on every read and write costs more than the read.
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// Read buffer room kept free before a read.
const READ_CHUNK: usize = 8 * 1024;
/// The most a body read asks for (Swift's `client_chunk_size`): large
/// uploads come in 64 KiB pieces, not 8 KiB ones, so each piece costs one
/// read here and one write to each object server.
const BODY_READ_CHUNK: usize = 64 * 1024;

impl ConnIo {
    pub fn new(io: Box<dyn Io>, timeout: Duration) -> ConnIo {
        ConnIo {
            io,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(512),
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Wait for `op`, failing with `TimedOut` once `timeout` has passed.
    async fn bounded<T>(
        timer: &mut Pin<Box<tokio::time::Sleep>>,
        timeout: Duration,
        what: &'static str,
        op: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        let deadline = Instant::now() + timeout;
        let mut op = std::pin::pin!(op);
        loop {
            tokio::select! {
                biased;
                r = &mut op => return r,
                _ = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, what));
                    }
                    // Fired for an earlier deadline: aim at ours.
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Read more bytes into `rbuf`, bounded by `timeout`; 0 means EOF.
    pub async fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        self.fill_up_to(timeout, READ_CHUNK).await
    }

    /// Drop a read buffer that a large body grew, when it holds nothing:
    /// an idle keep-alive connection keeps only a small one.
    pub fn shrink_idle(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 2 * READ_CHUNK {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
    }

    /// Read more bytes into `rbuf` for a body with `remaining` bytes to
    /// come: up to [`BODY_READ_CHUNK`] at once.
    async fn fill_body(&mut self, timeout: Duration, remaining: u64) -> io::Result<usize> {
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .clamp(READ_CHUNK, BODY_READ_CHUNK);
        self.fill_up_to(timeout, want).await
    }

    async fn fill_up_to(&mut self, timeout: Duration, want: usize) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < want / 2 {
            self.rbuf.reserve(want);
        }
        Self::bounded(
            &mut self.timer,
            timeout,
            "client read timed out",
            self.io.read_buf(&mut self.rbuf),
        )
        .await
    }

    /// Write all of `data`, bounded by `timeout`.
    pub async fn write_all_timeout(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        Self::bounded(
            &mut self.timer,
            timeout,
            "client write timed out",
            self.io.write_all(data),
        )
        .await
    }
}

/// How the rest of the current request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `remaining` bytes of a Content-Length body.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk.
    ChunkData(u64),
    /// Expecting the CRLF after a chunk.
    ChunkEnd,
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// The body was read completely.
    Done,
    /// A read failed or was abandoned mid-way: the connection cannot be reused.
    Broken,
}

/// What the connection and the body of its current request share.
pub(crate) struct ConnShared {
    pub io: RefCell<Option<ConnIo>>,
    pub framing: Cell<Framing>,
    /// `Expect: 100-continue` seen and not yet answered.
    pub continue_pending: Cell<bool>,
    pub received: Cell<u64>,
    /// The client went away (or stalled past client_timeout) mid-body.
    pub client_gone: Cell<bool>,
    pub client_timeout: Duration,
}

/// Longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 8192;

impl ConnShared {
    fn take_io(&self) -> io::Result<ConnIo> {
        self.io
            .borrow_mut()
            .take()
            .ok_or_else(|| io::Error::other("request body read while the connection is busy"))
    }

    fn put_io(&self, cio: ConnIo) {
        *self.io.borrow_mut() = Some(cio);
    }

    /// The next piece of the body, or `None` at its end.
    async fn next_chunk(&self) -> io::Result<Option<Bytes>> {
        match self.framing.get() {
            Framing::Done => return Ok(None),
            Framing::Broken => {
                return Err(io::Error::other(
                    "request body unavailable after an earlier error",
                ));
            }
            _ => {}
        }
        let mut cio = self.take_io()?;
        // Mark broken while we work: if this future is dropped mid-read, the
        // connection must not be reused.
        let framing = self.framing.replace(Framing::Broken);
        let result = self.read_piece(&mut cio, framing).await;
        self.put_io(cio);
        match result {
            Ok((piece, next)) => {
                self.framing.set(next);
                if let Some(p) = &piece {
                    self.received.set(self.received.get() + p.len() as u64);
                }
                Ok(piece)
            }
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::TimedOut
                ) {
                    self.client_gone.set(true);
                }
                Err(e)
            }
        }
    }

    async fn read_piece(
        &self,
        cio: &mut ConnIo,
        mut framing: Framing,
    ) -> io::Result<(Option<Bytes>, Framing)> {
        if self.continue_pending.replace(false) {
            cio.write_all_timeout(b"HTTP/1.1 100 Continue\r\n\r\n", self.client_timeout)
                .await?;
        }
        loop {
            match framing {
                Framing::Done => return Ok((None, Framing::Done)),
                Framing::Broken => return Err(io::Error::other("broken body")),
                Framing::Length(0) => return Ok((None, Framing::Done)),
                Framing::Length(remaining) | Framing::ChunkData(remaining) => {
                    if cio.rbuf.is_empty()
                        && cio.fill_body(self.client_timeout, remaining).await? == 0
                    {
                        return Err(eof());
                    }
                    let n = (cio.rbuf.len() as u64).min(remaining) as usize;
                    let piece = cio.rbuf.split_to(n).freeze();
                    let left = remaining - n as u64;
                    let next = match framing {
                        Framing::Length(_) if left == 0 => Framing::Done,
                        Framing::Length(_) => Framing::Length(left),
                        _ if left == 0 => Framing::ChunkEnd,
                        _ => Framing::ChunkData(left),
                    };
                    return Ok((Some(piece), next));
                }
                Framing::ChunkSize => {
                    let line = read_line(cio, self.client_timeout).await?;
                    let size_text = line.split(|b| *b == b';').next().unwrap_or(&[]);
                    let size = std::str::from_utf8(size_text)
                        .ok()
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| bad_chunk("invalid chunk size"))?;
                    framing = if size == 0 {
                        Framing::Trailers
                    } else {
                        Framing::ChunkData(size)
                    };
                }
                Framing::ChunkEnd => {
                    let line = read_line(cio, self.client_timeout).await?;
                    if !line.is_empty() {
                        return Err(bad_chunk("missing CRLF after chunk data"));
                    }
                    framing = Framing::ChunkSize;
                }
                Framing::Trailers => {
                    let line = read_line(cio, self.client_timeout).await?;
                    if line.is_empty() {
                        return Ok((None, Framing::Done));
                    }
                }
            }
        }
    }
}

/// One line from the buffer, without its CRLF (or bare LF).
async fn read_line(cio: &mut ConnIo, timeout: Duration) -> io::Result<Bytes> {
    loop {
        if let Some(pos) = cio.rbuf.iter().position(|b| *b == b'\n') {
            let mut line = cio.rbuf.split_to(pos + 1);
            line.truncate(pos);
            if line.last() == Some(&b'\r') {
                line.truncate(pos - 1);
            }
            return Ok(line.freeze());
        }
        if cio.rbuf.len() > MAX_CHUNK_LINE {
            return Err(bad_chunk("chunk line too long"));
        }
        if cio.fill(timeout).await? == 0 {
            return Err(eof());
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "client disconnected before the end of the request body",
    )
}

fn bad_chunk(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("chunked encoding error: {what}"),
    )
}

/// See [`Body::progress`].
#[derive(Clone)]
pub struct BodyProgress(Option<Rc<ConnShared>>);

impl BodyProgress {
    pub fn bytes_received(&self) -> u64 {
        self.0.as_ref().map_or(0, |s| s.received.get())
    }

    /// Whether the client disconnected or timed out while sending the body.
    pub fn client_disconnected(&self) -> bool {
        self.0.as_ref().is_some_and(|s| s.client_gone.get())
    }
}

/// Where a body's bytes come from.
enum Source {
    /// No body.
    None,
    /// The client connection.
    Conn(Rc<ConnShared>),
    /// Made by the server itself (a subrequest's body): a stream of pieces.
    Stream(Pin<Box<dyn super::message::BodyStream>>),
}

/// A request body.
pub struct Body {
    source: Source,
    /// Declared length (Content-Length), if any.
    length: Option<u64>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("length", &self.length)
            .finish()
    }
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body {
            source: Source::None,
            length: Some(0),
        }
    }

    pub(crate) fn incoming(shared: Rc<ConnShared>, length: Option<u64>) -> Body {
        Body {
            source: Source::Conn(shared),
            length,
        }
    }

    /// A body read from `stream` (a subrequest's body, such as another
    /// response's stream), of `length` bytes when known.
    pub fn from_stream(
        stream: Pin<Box<dyn super::message::BodyStream>>,
        length: Option<u64>,
    ) -> Body {
        Body {
            source: Source::Stream(stream),
            length,
        }
    }

    /// A body of these bytes.
    pub fn from_bytes(bytes: Bytes) -> Body {
        let length = Some(bytes.len() as u64);
        Body {
            source: Source::Stream(Box::pin(OneShot(Some(bytes)))),
            length,
        }
    }

    /// The declared Content-Length (`None` for chunked bodies).
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// Bytes of the body read so far from the client.
    pub fn bytes_received(&self) -> u64 {
        match &self.source {
            Source::Conn(s) => s.received.get(),
            _ => 0,
        }
    }

    /// A handle that keeps reporting progress after the body has been
    /// handed down the pipeline (proxy_logging's `bytes_recvd` and 499).
    pub fn progress(&self) -> BodyProgress {
        match &self.source {
            Source::Conn(s) => BodyProgress(Some(s.clone())),
            _ => BodyProgress(None),
        }
    }

    /// The next piece of the body, or `None` when it is complete. Errors are
    /// a client that went away (`UnexpectedEof`), a timeout (`TimedOut`) or
    /// bad chunked framing (`InvalidData`).
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        match &mut self.source {
            Source::None => Ok(None),
            Source::Conn(s) => s.next_chunk().await,
            Source::Stream(st) => std::future::poll_fn(|cx| st.as_mut().poll_chunk(cx))
                .await
                .transpose(),
        }
    }

    /// Read the whole body, refusing more than `limit` bytes.
    pub async fn to_bytes(&mut self, limit: usize) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        while let Some(piece) = self.chunk().await? {
            if out.len() + piece.remaining() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request body too large",
                ));
            }
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }
}

/// A stream of one piece.
struct OneShot(Option<Bytes>);

impl super::message::BodyStream for OneShot {
    fn poll_chunk(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<io::Result<Bytes>>> {
        std::task::Poll::Ready(self.0.take().filter(|b| !b.is_empty()).map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_with(input: &'static [u8], framing: Framing) -> Rc<ConnShared> {
        let (client, server) = tokio::io::duplex(64);
        // Write the input from a task; the duplex buffer is small so reads
        // really arrive in pieces.
        tokio::task::spawn_local(async move {
            let mut client = client;
            let _ = client.write_all(input).await;
            let _ = client.shutdown().await;
            // Keep the peer open long enough for the reader.
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        });
        Rc::new(ConnShared {
            io: RefCell::new(Some(ConnIo::new(Box::new(server), Duration::from_secs(5)))),
            framing: Cell::new(framing),
            continue_pending: Cell::new(false),
            received: Cell::new(0),
            client_gone: Cell::new(false),
            client_timeout: Duration::from_secs(5),
        })
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn chunked_body_is_decoded_across_reads_with_extensions_and_trailers() {
        run(async {
            let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
            let shared = shared_with(input, Framing::ChunkSize);
            let mut body = Body::incoming(shared.clone(), None);
            let all = body.to_bytes(1024).await.unwrap();
            assert_eq!(&all[..], b"hello world");
            assert_eq!(body.bytes_received(), 11);
            assert_eq!(shared.framing.get(), Framing::Done);
            // The next request's bytes stay in the buffer.
            let cio = shared.io.borrow_mut().take().unwrap();
            assert!(b"NEXT".starts_with(&cio.rbuf[..]));
        });
    }

    #[test]
    fn content_length_body_stops_at_its_length() {
        run(async {
            let shared = shared_with(b"abcdefGET / HTTP/1.1\r\n", Framing::Length(6));
            let mut body = Body::incoming(shared.clone(), Some(6));
            assert_eq!(&body.to_bytes(100).await.unwrap()[..], b"abcdef");
            assert_eq!(body.chunk().await.unwrap(), None);
        });
    }

    #[test]
    fn truncated_and_malformed_bodies_are_errors() {
        run(async {
            let mut body = Body::incoming(shared_with(b"abc", Framing::Length(6)), Some(6));
            let progress = body.progress();
            let err = body.to_bytes(100).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            assert!(progress.client_disconnected());
            assert_eq!(progress.bytes_received(), 3);
            let mut body = Body::incoming(shared_with(b"zz\r\n", Framing::ChunkSize), None);
            assert_eq!(
                body.to_bytes(100).await.unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
            let mut body = Body::incoming(shared_with(b"3\r\nabcX\r\n", Framing::ChunkSize), None);
            assert_eq!(
                body.to_bytes(100).await.unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        });
    }

    #[test]
    fn body_over_the_limit_is_refused() {
        run(async {
            let mut body =
                Body::incoming(shared_with(b"0123456789", Framing::Length(10)), Some(10));
            assert!(body.to_bytes(5).await.is_err());
        });
    }

    #[test]
    fn bodies_made_by_the_server() {
        run(async {
            let mut body = Body::from_bytes(Bytes::from_static(b"abc"));
            assert_eq!(body.content_length(), Some(3));
            assert_eq!(&body.to_bytes(10).await.unwrap()[..], b"abc");
            assert_eq!(body.chunk().await.unwrap(), None);
            let mut empty = Body::from_bytes(Bytes::new());
            assert_eq!(empty.chunk().await.unwrap(), None);
        });
    }
}
