//! The command line every Swift server shares (Swift's `parse_options`):
//! `swift-<name> CONFIG [-v|--verbose] [-t|--test-config] [-o|--once]`, with
//! optparse's help and error messages, and bare words (`verbose`, `once`,
//! `test_config`) accepted as options, since swift-init passes them that way.

use std::path::PathBuf;

/// What a server was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// The config file or `.conf.d` directory, made absolute.
    pub conf_path: PathBuf,
    pub verbose: bool,
    pub test_config: bool,
    pub once: bool,
    /// Other bare words (Swift collects and ignores them).
    pub extra_args: Vec<String>,
}

/// Which options a server accepts.
#[derive(Clone, Copy, Debug)]
pub struct CliSpec {
    /// `swift-proxy-server`.
    pub prog: &'static str,
    /// WSGI servers take `-t`.
    pub test_config: bool,
    /// Daemons take `-o`.
    pub once: bool,
    pub version: &'static str,
}

/// The outcome of parsing when it is not a plain run.
#[derive(Debug, PartialEq, Eq)]
pub enum CliExit {
    /// Print to stdout, exit 0 (`--help`, `--version`).
    Info(String),
    /// Print to stdout, exit 1 (Swift prints these two errors on stdout).
    UsageError(String),
    /// Print to stderr, exit 2 (optparse's own errors).
    OptionError(String),
}

impl CliSpec {
    fn usage(&self) -> String {
        format!("Usage: {} CONFIG [options]\n", self.prog)
    }

    /// optparse's `--help` output.
    pub fn help(&self) -> String {
        let mut out = self.usage();
        out.push_str("\nOptions:\n");
        out.push_str("  -h, --help         show this help message and exit\n");
        out.push_str("  --version          show program's version number and exit\n");
        out.push_str("  -v, --verbose      log to console\n");
        if self.once {
            out.push_str("  -o, --once         only run one pass of daemon\n");
        }
        if self.test_config {
            out.push_str(
                "  -t, --test-config  exit after loading and validating config; do not run the\n",
            );
            out.push_str("                     daemon\n");
        }
        out
    }

    /// Parse `args` (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(&self, args: I) -> Result<ServerOptions, CliExit> {
        let mut verbose = false;
        let mut test_config = false;
        let mut once = false;
        let mut positional = Vec::new();
        let mut only_positional = false;
        for arg in args {
            if only_positional || arg == "-" || !arg.starts_with('-') {
                positional.push(arg);
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            if let Some(long) = arg.strip_prefix("--") {
                match long {
                    "help" => return Err(CliExit::Info(self.help())),
                    "version" => {
                        return Err(CliExit::Info(format!("{} {}\n", self.prog, self.version)));
                    }
                    "verbose" => verbose = true,
                    "test-config" if self.test_config => test_config = true,
                    "once" if self.once => once = true,
                    _ => {
                        return Err(CliExit::OptionError(format!(
                            "{}\n{}: error: no such option: {arg}\n",
                            self.usage(),
                            self.prog
                        )));
                    }
                }
                continue;
            }
            // Bundled short options, as optparse allows (-vt).
            for c in arg.chars().skip(1) {
                match c {
                    'h' => return Err(CliExit::Info(self.help())),
                    'v' => verbose = true,
                    't' if self.test_config => test_config = true,
                    'o' if self.once => once = true,
                    _ => {
                        return Err(CliExit::OptionError(format!(
                            "{}\n{}: error: no such option: -{c}\n",
                            self.usage(),
                            self.prog
                        )));
                    }
                }
            }
        }
        let mut positional = positional.into_iter();
        let Some(conf) = positional.next() else {
            return Err(CliExit::UsageError(format!(
                "{}\nError: missing config path argument\n",
                self.usage()
            )));
        };
        let conf_path = std::path::absolute(&conf).unwrap_or_else(|_| PathBuf::from(&conf));
        if !conf_path.exists() {
            return Err(CliExit::UsageError(format!(
                "{}\nError: unable to locate {}\n",
                self.usage(),
                conf_path.display()
            )));
        }
        let mut extra_args = Vec::new();
        for word in positional {
            match word.as_str() {
                "verbose" => verbose = true,
                "test_config" if self.test_config => test_config = true,
                "once" if self.once => once = true,
                _ => extra_args.push(word),
            }
        }
        Ok(ServerOptions {
            conf_path,
            verbose,
            test_config,
            once,
            extra_args,
        })
    }
}

/// Parse the process's arguments, printing and exiting for help, version
/// and errors exactly as Swift's servers do.
pub fn parse_or_exit(spec: &CliSpec) -> ServerOptions {
    use std::io::Write;
    match spec.parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(CliExit::Info(text)) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            std::process::exit(0)
        }
        Err(CliExit::UsageError(text)) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            std::process::exit(1)
        }
        Err(CliExit::OptionError(text)) => {
            let _ = std::io::stderr().write_all(text.as_bytes());
            std::process::exit(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: CliSpec = CliSpec {
        prog: "swift-proxy-server",
        test_config: true,
        once: false,
        version: "1.2.3",
    };

    fn parse(args: &[&str]) -> Result<ServerOptions, CliExit> {
        SPEC.parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn missing_and_unlocatable_configs_give_swifts_messages() {
        assert_eq!(
            parse(&[]),
            Err(CliExit::UsageError(
                "Usage: swift-proxy-server CONFIG [options]\n\nError: missing config path argument\n".into()
            ))
        );
        assert_eq!(
            parse(&["/nonexistent/x.conf"]),
            Err(CliExit::UsageError(
                "Usage: swift-proxy-server CONFIG [options]\n\nError: unable to locate /nonexistent/x.conf\n".into()
            ))
        );
    }

    #[test]
    fn options_and_bare_words_both_set_flags() {
        let o = parse(&["/", "verbose", "test_config", "junk"]).unwrap();
        assert!(o.verbose && o.test_config);
        assert_eq!(o.extra_args, vec!["junk".to_string()]);
        let o = parse(&["-vt", "/"]).unwrap();
        assert!(o.verbose && o.test_config);
        assert_eq!(o.conf_path, PathBuf::from("/"));
        // `once` is not an option of a WSGI server: it stays an extra word.
        assert_eq!(
            parse(&["/", "once"]).unwrap().extra_args,
            vec!["once".to_string()]
        );
    }

    #[test]
    fn unknown_options_are_optparse_errors() {
        assert_eq!(
            parse(&["--bogus"]),
            Err(CliExit::OptionError(
                "Usage: swift-proxy-server CONFIG [options]\n\nswift-proxy-server: error: no such option: --bogus\n"
                    .into()
            ))
        );
        assert!(matches!(parse(&["-o", "/"]), Err(CliExit::OptionError(_))));
        assert!(
            matches!(parse(&["--help"]), Err(CliExit::Info(t)) if t.contains("-t, --test-config"))
        );
        assert_eq!(
            parse(&["--version"]),
            Err(CliExit::Info("swift-proxy-server 1.2.3\n".into()))
        );
    }
}
