//! etcd's command line: parse, print what etcd prints, exit with etcd's status.

use oxcd_bootstrap::usage::{help_text, usage_text, version_text};
use oxcd_bootstrap::{Action, Config, ConfigError, Diag, Logger, Presentation};

use crate::logging;

fn print_diag(cfg: Option<&Config>, d: &Diag) {
    match d {
        Diag::Raw(line) => eprintln!("{line}"),
        // pkg/flags lines are capnslog even in zap mode (as in etcd)
        Diag::Log { level, pkg, msg } => match cfg {
            Some(c) if c.logger == Logger::Zap && *pkg != "pkg/flags" => {
                logging::emit_for(c, *level, pkg, msg)
            }
            _ => logging::emit(*level, pkg, msg),
        },
    }
}

/// Prints `e` the way etcd does and exits with its status.
pub fn exit_with(e: &ConfigError) -> ! {
    match e.presentation() {
        Presentation::Usage => {
            eprintln!("{e}");
            eprint!("{}", usage_text());
        }
        Presentation::Plain | Presentation::Panic => eprintln!("{}", e.report()),
        Presentation::Verify => {
            logging::emit('E', e.pkg(), &e.report());
            for l in e.extra_lines() {
                logging::emit('E', e.pkg(), &l);
            }
        }
        Presentation::Critical => {
            if e.is_bootstrap() {
                fatal(&e.report());
            }
            logging::critical(e.pkg(), &e.report());
        }
    }
    std::process::exit(e.exit_code())
}

/// What the command line asks for.
pub enum Mode {
    Member(Box<Config>),
    GrpcProxy(Box<oxcd_proxy::GrpcProxyConfig>),
}

/// `etcd grpc-proxy ...`: cobra's messages and statuses.
fn grpc_proxy_or_exit(args: &[String]) -> Box<oxcd_proxy::GrpcProxyConfig> {
    match oxcd_proxy::parse(args) {
        oxcd_proxy::ParseOutcome::Start(cfg) => cfg,
        oxcd_proxy::ParseOutcome::Help(text) => {
            print!("{text}");
            std::process::exit(0)
        }
        oxcd_proxy::ParseOutcome::Error(msg) => {
            eprintln!("{msg}");
            std::process::exit(1)
        }
    }
}

/// Reads `std::env::args` and the environment like etcd 3.4. Handles `--help` and
/// `--version` (exit 0) and every flag/validation error (exit 1 or 2, etcd's messages);
/// otherwise prints etcd's startup notices and returns the configuration.
pub fn parse_or_exit() -> Mode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    if args.first().map(String::as_str) == Some("grpc-proxy") {
        return Mode::GrpcProxy(grpc_proxy_or_exit(&args[1..]));
    }
    let loaded = oxcd_bootstrap::load(&args, &vars);
    match loaded.result {
        Ok(Action::Run(cfg)) => {
            for d in &loaded.diags {
                print_diag(Some(&cfg), d);
            }
            Mode::Member(cfg)
        }
        Ok(Action::Help) => {
            eprint!("{}", usage_text());
            print!("{}", help_text());
            std::process::exit(0)
        }
        Ok(Action::Version) => {
            print!("{}", version_text());
            std::process::exit(0)
        }
        Err(e) => {
            for d in &loaded.diags {
                print_diag(None, d);
            }
            exit_with(&e)
        }
    }
}

/// A fatal startup error: a critical log line, then `etcd: <msg>` as the last stderr line
/// (the form the clustering guide shows), exit status 1.
pub fn fatal(msg: &str) -> ! {
    logging::critical("etcdmain", msg);
    eprintln!("etcd: {msg}");
    std::process::exit(1)
}
