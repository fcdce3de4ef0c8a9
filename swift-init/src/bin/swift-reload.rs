//! `swift-reload PID`: reload a Swift WSGI server safely (check its
//! config, SIGUSR1, wait for it to report the reload done). See
//! [`swift_init::reload`].
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let prog = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map_or_else(
            || "swift-reload".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    let code = swift_init::reload::main(&prog, args.get(1..).unwrap_or(&[]));
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
