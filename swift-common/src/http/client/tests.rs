//! Tests of the backend client against small servers on the loopback.

use super::*;
use tokio::net::TcpListener;

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// A server that reads one request head and answers `reply`.
async fn one_shot(reply: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::task::spawn_local(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while find_head_end(&got).is_none() {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(reply).await.unwrap();
        got
    });
    (port, h)
}

#[test]
fn get_with_chunked_response_and_latin1_headers() {
    run(async {
        let (port, srv) = one_shot(
            b"HTTP/1.1 200 OK\r\nX-Object-Meta-A: \xe9t\xe9\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .await;
        let mut h = Headers::new();
        h.append("X-Trans-Id", "tx1");
        h.append("X-Object-Meta-B", "\u{e9}");
        let mut c = Connection::open(
            "127.0.0.1",
            port,
            "GET",
            "/d1/1/a/c/o",
            &h,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        let head = c.read_head(Duration::from_secs(1)).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.headers.get("x-object-meta-a"), Some("\u{e9}t\u{e9}"));
        let mut body = c.into_body(&head, Duration::from_secs(1));
        assert_eq!(&body.to_bytes(100).await.unwrap()[..], b"abcde");
        let req = srv.await.unwrap();
        assert!(req.starts_with(b"GET /d1/1/a/c/o HTTP/1.1\r\nHost: 127.0.0.1:"));
        assert!(memchr::memmem::find(&req, b"X-Object-Meta-B: \xe9\r\n").is_some());
    });
}

#[test]
fn short_body_is_an_error_and_silence_times_out() {
    run(async {
        let (port, _srv) = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
        let mut c = Connection::open(
            "127.0.0.1",
            port,
            "GET",
            "/x",
            &Headers::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        let head = c.read_head(Duration::from_secs(1)).await.unwrap();
        let mut body = c.into_body(&head, Duration::from_millis(300));
        assert_eq!(&body.chunk().await.unwrap().unwrap()[..], b"abc");
        // The server task keeps the socket open without sending: timeout.
        let err = body.chunk().await.unwrap_err();
        assert!(
            err.is_timeout() || matches!(err, ClientError::Protocol { .. }),
            "{err}"
        );
        assert!(body.is_done());
    });
}

#[test]
fn refused_connection_is_reported() {
    run(async {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let err = Connection::open(
            "127.0.0.1",
            port,
            "HEAD",
            "/x",
            &Headers::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    });
}

#[test]
fn expect_continue_then_chunked_body() {
    run(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = tokio::task::spawn_local(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while find_head_end(&got).is_none() {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
            while !got.ends_with(b"0\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            got
        });
        let mut h = Headers::new();
        h.append("Transfer-Encoding", "chunked");
        h.append("Expect", "100-continue");
        let t = Duration::from_secs(1);
        let mut c = Connection::open("127.0.0.1", port, "PUT", "/o", &h, t)
            .await
            .unwrap();
        assert_eq!(c.read_head(t).await.unwrap().status, 100);
        c.send(b"hello", t).await.unwrap();
        c.finish(t).await.unwrap();
        let head = c.read_head(t).await.unwrap();
        assert_eq!(head.status, 201);
        let mut body = c.into_body(&head, t);
        assert_eq!(body.chunk().await.unwrap(), None);
        let got = srv.await.unwrap();
        assert!(got.ends_with(b"5\r\nhello\r\n0\r\n\r\n"));
    });
}

/// A server answering each request head it reads with the next of
/// `replies` (a reply of `None` closes the connection instead), on
/// whichever connection it came; returns how many connections it
/// accepted and the request heads.
async fn keepalive_server(
    replies: Vec<Option<&'static [u8]>>,
) -> (u16, tokio::task::JoinHandle<(usize, Vec<Vec<u8>>)>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::task::spawn_local(async move {
        let mut accepted = 0;
        let mut heads = Vec::new();
        let mut replies = replies.into_iter();
        'conns: loop {
            let (mut s, _) = l.accept().await.unwrap();
            accepted += 1;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                while find_head_end(&got).is_none() {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        continue 'conns;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let end = find_head_end(&got).unwrap();
                heads.push(got.drain(..end).collect());
                match replies.next() {
                    Some(Some(r)) => s.write_all(r).await.unwrap(),
                    Some(None) => continue 'conns,
                    None => return (accepted, heads),
                }
                if replies.len() == 0 {
                    return (accepted, heads);
                }
            }
        }
    });
    (port, h)
}

async fn get(pool: &Arc<Pool>, port: u16) -> (u16, Bytes) {
    let t = Duration::from_secs(2);
    let mut h = Headers::new();
    h.append("Connection", "close");
    let mut c = Connection::open_with(Some(pool), "127.0.0.1", port, "GET", "/o", &h, t)
        .await
        .unwrap();
    let head = c.read_head(t).await.unwrap();
    let mut body = c.into_body(&head, t);
    (head.status, body.to_bytes(100).await.unwrap())
}

#[test]
fn pooled_connection_is_reused_and_says_no_close() {
    run(async {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let (port, srv) = keepalive_server(vec![Some(ok), Some(ok), Some(ok)]).await;
        let pool = Pool::new(4, Duration::from_secs(5));
        for _ in 0..3 {
            // (`get` passes a client's `Connection: close` on.)
            assert_eq!(get(&pool, port).await, (200, Bytes::from_static(b"hi")));
            assert_eq!(pool.idle_count(), 1);
        }
        let (accepted, heads) = srv.await.unwrap();
        assert_eq!(accepted, 1, "one connection for three requests");
        for h in heads {
            assert!(memchr::memmem::find(&h, b"Connection").is_none());
        }
    });
}

#[test]
fn a_body_sent_before_the_answer_goes_on_a_new_connection() {
    run(async {
        // One GET on a first connection, then the next request is awaited
        // on a second one (the first stays open and idle).
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = tokio::task::spawn_local(async move {
            let mut first = None;
            for reply in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..],
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            ] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while find_head_end(&got).is_none() {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(reply).await.unwrap();
                first.get_or_insert(s);
            }
        });
        let pool = Pool::new(4, Duration::from_secs(5));
        assert_eq!(get(&pool, port).await.0, 200);
        assert_eq!(pool.idle_count(), 1);
        let t = Duration::from_secs(2);
        let mut h = Headers::new();
        h.append("Content-Length", "2");
        let mut c = Connection::open_with(Some(&pool), "127.0.0.1", port, "POST", "/o", &h, t)
            .await
            .unwrap();
        assert_eq!(pool.idle_count(), 1, "the idle connection was not taken");
        c.send(b"ok", t).await.unwrap();
        assert_eq!(c.read_head(t).await.unwrap().status, 201);
        srv.await.unwrap();
    });
}

#[test]
fn a_pooled_connection_the_backend_closed_is_replaced_unseen() {
    run(async {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        // The second request arrives on the kept connection, which the
        // server then closes unanswered (its keep-alive timeout).
        let (port, srv) = keepalive_server(vec![Some(ok), None, Some(ok)]).await;
        let pool = Pool::new(4, Duration::from_secs(5));
        assert_eq!(get(&pool, port).await.0, 200);
        assert_eq!(get(&pool, port).await, (200, Bytes::from_static(b"hi")));
        let (accepted, heads) = srv.await.unwrap();
        assert_eq!(accepted, 2);
        assert_eq!(heads.len(), 3, "the request was sent again");
    });
}

#[test]
fn only_clean_complete_exchanges_are_pooled() {
    run(async {
        let t = Duration::from_secs(2);
        for reply in [
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"[..],
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\n\r\nhi",
        ] {
            let (port, _srv) = one_shot(reply).await;
            let pool = Pool::new(4, Duration::from_secs(5));
            let (status, _) = get(&pool, port).await;
            assert_eq!((status, pool.idle_count()), (200, 0));
        }
        // A body not read to its end: the connection is closed.
        let (port, _srv) = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhi").await;
        let pool = Pool::new(4, Duration::from_secs(5));
        let mut c = Connection::open_with(
            Some(&pool),
            "127.0.0.1",
            port,
            "GET",
            "/o",
            &Headers::new(),
            t,
        )
        .await
        .unwrap();
        let head = c.read_head(t).await.unwrap();
        let mut body = c.into_body(&head, t);
        assert_eq!(&body.chunk().await.unwrap().unwrap()[..], b"hi");
        drop(body);
        assert_eq!(pool.idle_count(), 0);
        // A request body not sent: closed, whatever the answer.
        let (port, _srv) =
            one_shot(b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n").await;
        let mut h = Headers::new();
        h.append("Content-Length", "5");
        h.append("Expect", "100-continue");
        let mut c = Connection::open_with(Some(&pool), "127.0.0.1", port, "PUT", "/o", &h, t)
            .await
            .unwrap();
        let head = c.read_head(t).await.unwrap();
        assert_eq!(head.status, 412);
        c.finish_with(&head);
        assert_eq!(pool.idle_count(), 0);
    });
}

#[test]
fn without_a_pool_every_request_says_close() {
    run(async {
        let (port, srv) = one_shot(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let t = Duration::from_secs(1);
        let mut c = Connection::open("127.0.0.1", port, "DELETE", "/o", &Headers::new(), t)
            .await
            .unwrap();
        assert_eq!(c.read_head(t).await.unwrap().status, 204);
        let req = srv.await.unwrap();
        assert!(memchr::memmem::find(&req, b"\r\nConnection: close\r\n").is_some());
    });
}
