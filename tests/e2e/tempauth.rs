//! tempauth in the running proxy: built from `[filter:tempauth]`, handing
//! out (Fernet) tokens, listed in `/info`, and denying what it should.
//! Its behaviour case by case is compared with Python's in
//! swift-proxy-server/tests/tempauth_diff.rs.

use std::io::Write as _;
use std::time::Duration;

use nix::sys::signal::Signal;
use swift_tests::server::{Server, make_rings, proxy_conf};
use swift_tests::{Response, free_port, raw_request, scratch};

fn get(server: &Server, path: &str, headers: &str) -> Response {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}\r\n",
        server.addr
    );
    raw_request(server.addr, req.as_bytes(), Duration::from_secs(10)).expect("response")
}

#[test]
fn tokens_info_and_denials_in_the_running_proxy() {
    let dir = scratch();
    make_rings(dir.path());
    let port = free_port();
    let conf = proxy_conf(
        dir.path(),
        port,
        "user =\nworkers = 1",
        Some("catch_errors gatekeeper healthcheck proxy-logging tempauth proxy-server"),
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap()
        .write_all(
            b"\n[filter:tempauth]\nuse = egg:swift#tempauth\n\
              user_test_tester = testing .admin\n\
              fernet_key_1 = esipv1wC03xLGPb3cydid0uPINl6g8sydhlPh6iwJxk=\n\
              active_fernet_key_id = 1\n",
        )
        .unwrap();
    let mut server = Server::start("swift-proxy-server", &conf, port);

    let r = get(
        &server,
        "/auth/v1.0",
        "X-Auth-User: test:tester\r\nX-Auth-Key: testing\r\n",
    );
    assert_eq!(r.status, 200, "{:?}", r.body_str());
    let token = r.header("X-Auth-Token").unwrap().to_owned();
    assert!(token.starts_with("AUTH_ftk"), "{token}");
    assert_eq!(r.header("X-Storage-Token"), Some(token.as_str()));
    assert_eq!(
        r.header("X-Storage-Url"),
        Some(format!("http://{}/v1/AUTH_test", server.addr).as_str())
    );
    assert!(r.header("X-Trans-Id").is_some(), "through catch_errors");

    let r = get(
        &server,
        "/auth/v1.0",
        "X-Auth-User: test:tester\r\nX-Auth-Key: wrong\r\n",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Www-Authenticate"), Some("Swift realm=\"test\""));

    let r = get(&server, "/info", "");
    assert!(
        r.body_str()
            .contains("\"tempauth\": {\"account_acls\": true}"),
        "{}",
        r.body_str()
    );

    let r = get(&server, "/v1/AUTH_test", "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("Www-Authenticate"),
        Some("Swift realm=\"AUTH_test\"")
    );
    let r = get(
        &server,
        "/v1/AUTH_other",
        &format!("X-Auth-Token: {token}\r\n"),
    );
    assert_eq!(r.status, 403);
    // The owner gets past tempauth (to the storage servers, absent here).
    let r = get(
        &server,
        "/v1/AUTH_test",
        &format!("X-Auth-Token: {token}\r\n"),
    );
    assert!(![401, 403].contains(&r.status), "{}", r.status);
    // A memcache token without a cache filter: 503, not a hang.
    let r = get(&server, "/v1/AUTH_test", "X-Auth-Token: AUTH_tk0123\r\n");
    assert_eq!(r.status, 503);

    server.signal(Signal::SIGTERM);
    assert!(
        server
            .wait_exit(Duration::from_secs(5))
            .expect("exits")
            .0
            .success()
    );
}
