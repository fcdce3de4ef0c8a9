//! `swift-proxy-server CONFIG [-v] [-t]`: Swift's proxy server. Everything
//! but the pipeline lives in `swift-common`'s `run_wsgi`.
#![forbid(unsafe_code)]

use swift_common::cli::{CliSpec, parse_or_exit};

fn main() {
    let spec = CliSpec {
        prog: "swift-proxy-server",
        test_config: true,
        once: false,
        version: env!("CARGO_PKG_VERSION"),
    };
    let options = parse_or_exit(&spec);
    let code = swift_common::wsgi::run_wsgi(&options, &swift_proxy_server::ProxyServer);
    std::process::exit(code)
}
