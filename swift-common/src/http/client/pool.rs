//! Idle backend connections kept for the next request to the same backend
//! (HTTP/1.1 keep-alive): bounded per backend and in time. It only keeps
//! and hands out sockets; whether a connection may be kept, and starting
//! over when a kept one turns out closed, is the client's business.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle connections to backends, kept for the next request to the same
/// backend (`ip:port`): at most `max_idle` per backend, each for at most
/// `idle_timeout`. One per worker; connections never cross processes.
#[derive(Debug)]
pub struct Pool {
    max_idle: usize,
    idle_timeout: Duration,
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    by_addr: HashMap<String, Vec<(TcpStream, Instant)>>,
    last_sweep: Option<Instant>,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle connections per backend, each
    /// for at most `idle_timeout`.
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            max_idle,
            idle_timeout,
            idle: Mutex::new(Idle::default()),
        })
    }

    /// How many idle connections the pool holds (for tests).
    pub fn idle_count(&self) -> usize {
        self.lock().by_addr.values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        // A panic elsewhere cannot leave the map inconsistent: use it anyway.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently parked idle connection to `addr` that is still
    /// open; expired ones are closed on the way.
    pub(super) fn take(&self, addr: &str) -> Option<TcpStream> {
        let mut idle = self.lock();
        let conns = idle.by_addr.get_mut(addr)?;
        while let Some((stream, since)) = conns.pop() {
            if since.elapsed() >= self.idle_timeout {
                // The rest were parked earlier still.
                conns.clear();
                break;
            }
            // No syscall unless the reactor saw the socket readable: an idle
            // connection that is readable was closed by the backend (or
            // sent something unasked for); either way it is not reused.
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    /// Park `stream` (its exchange complete) for the next request to `addr`.
    pub(super) fn put(&self, addr: &str, stream: TcpStream) {
        let now = Instant::now();
        let mut idle = self.lock();
        if idle
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= self.idle_timeout)
        {
            // Now and then, close what expired for backends no longer asked.
            idle.last_sweep = Some(now);
            let timeout = self.idle_timeout;
            idle.by_addr.retain(|_, conns| {
                conns.retain(|(_, since)| now.duration_since(*since) < timeout);
                !conns.is_empty()
            });
        }
        let conns = match idle.by_addr.get_mut(addr) {
            Some(c) => c,
            None => idle.by_addr.entry(addr.to_owned()).or_default(),
        };
        if conns.len() < self.max_idle {
            conns.push((stream, now));
        }
    }
}
