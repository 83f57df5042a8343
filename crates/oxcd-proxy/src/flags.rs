//! `grpc-proxy start`'s flags, with pflag's syntax (`--name value`, `--name=value`, `-name`).

/// What `grpc-proxy start` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcProxyConfig {
    pub listen_addr: String,
    pub endpoints: Vec<String>,
    pub data_dir: String,
    pub cert: String,
    pub key: String,
    pub cacert: String,
    pub insecure_skip_tls_verify: bool,
    pub cert_file: String,
    pub key_file: String,
    pub trusted_ca_file: String,
    pub listen_cipher_suites: Vec<String>,
    pub auto_tls: bool,
    pub client_crl_file: String,
    pub resolver_prefix: String,
    pub resolver_ttl: i64,
}

impl Default for GrpcProxyConfig {
    fn default() -> Self {
        GrpcProxyConfig {
            listen_addr: "127.0.0.1:23790".into(),
            endpoints: vec!["127.0.0.1:2379".into()],
            data_dir: "default.proxy".into(),
            cert: String::new(),
            key: String::new(),
            cacert: String::new(),
            insecure_skip_tls_verify: false,
            cert_file: String::new(),
            key_file: String::new(),
            trusted_ca_file: String::new(),
            listen_cipher_suites: Vec::new(),
            auto_tls: false,
            client_crl_file: String::new(),
            resolver_prefix: String::new(),
            resolver_ttl: 0,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseOutcome {
    Start(Box<GrpcProxyConfig>),
    /// Text for stdout, exit status 0 (`grpc-proxy`, `grpc-proxy start --help`).
    Help(String),
    /// Text for stderr, exit status 1.
    Error(String),
}

const START_USAGE: &str = "start the grpc proxy

Usage:
  etcd grpc-proxy start [flags]

Flags:
      --advertise-client-url string          advertise address to register (must be reachable by client) (default \"127.0.0.1:23790\")
      --auto-tls                             proxy TLS using generated certificates
      --cacert string                        verify certificates of TLS-enabled secure etcd servers using this CA bundle
      --cert string                          identify secure connections with etcd servers using this TLS certificate file
      --cert-file string                     identify secure connections to the proxy using this TLS certificate file
      --client-crl-file string               proxy client certificate revocation list file.
      --data-dir string                      Data directory for persistent data (default \"default.proxy\")
      --endpoints strings                    comma separated etcd cluster endpoints (default [127.0.0.1:2379])
      --insecure-skip-tls-verify             skip authentication of etcd server TLS certificates
      --key string                           identify secure connections with etcd servers using this TLS key file
      --key-file string                      identify secure connections to the proxy using this TLS key file
      --listen-addr string                   listen address (default \"127.0.0.1:23790\")
      --listen-cipher-suites strings         Comma-separated list of supported TLS cipher suites between client/proxy
      --trusted-ca-file string               verify certificates of TLS-enabled secure proxy using this CA bundle
";

const GROUP_USAGE: &str = "grpc-proxy related command

Usage:
  etcd grpc-proxy [command]

Available Commands:
  start       start the grpc proxy
";

/// Flags etcd accepts that this proxy takes and ignores (metrics, discovery by SRV, leasing,
/// namespaces and limits are not implemented yet); `true` for those that take a value.
const ACCEPTED_UNUSED: &[(&str, bool)] = &[
    ("discovery-srv", true),
    ("discovery-srv-name", true),
    ("metrics-addr", true),
    ("insecure-discovery", false),
    ("advertise-client-url", true),
    ("namespace", true),
    ("enable-pprof", false),
    ("max-send-bytes", true),
    ("max-recv-bytes", true),
    ("experimental-serializable-ordering", false),
    ("experimental-leasing-prefix", true),
    ("debug", false),
    ("max-concurrent-streams", true),
];

/// Parses the arguments after `grpc-proxy`.
pub fn parse(args: &[String]) -> ParseOutcome {
    match args.first().map(String::as_str) {
        Some("start") => {}
        None | Some("-h") | Some("--help") | Some("help") => {
            return ParseOutcome::Help(GROUP_USAGE.into())
        }
        Some(other) => {
            return ParseOutcome::Error(format!(
                "Error: unknown command {other:?} for \"etcd grpc-proxy\""
            ))
        }
    }
    let mut cfg = GrpcProxyConfig::default();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue; // cobra ignores positional arguments of a command that takes none
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "h" || name == "help" {
            return ParseOutcome::Help(START_USAGE.into());
        }
        let takes_value = match name {
            "insecure-skip-tls-verify" | "auto-tls" => false,
            "listen-addr"
            | "endpoints"
            | "data-dir"
            | "cert"
            | "key"
            | "cacert"
            | "cert-file"
            | "key-file"
            | "trusted-ca-file"
            | "listen-cipher-suites"
            | "client-crl-file"
            | "resolver-prefix"
            | "resolver-ttl" => true,
            _ => match ACCEPTED_UNUSED.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => *v,
                None => return ParseOutcome::Error(format!("Error: unknown flag: --{name}")),
            },
        };
        let value = if takes_value {
            match inline.or_else(|| rest.next().cloned()) {
                Some(v) => v,
                None => {
                    return ParseOutcome::Error(format!("Error: flag needs an argument: --{name}"))
                }
            }
        } else {
            let v = inline.unwrap_or_else(|| "true".into());
            match v.as_str() {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => "true".into(),
                "false" | "0" | "f" | "F" | "FALSE" | "False" => "false".into(),
                _ => {
                    return ParseOutcome::Error(format!(
                        "Error: invalid argument {v:?} for \"--{name}\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax"
                    ))
                }
            }
        };
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        match name {
            "listen-addr" => cfg.listen_addr = value,
            "endpoints" => cfg.endpoints = list(&value),
            "data-dir" => cfg.data_dir = value,
            "cert" => cfg.cert = value,
            "key" => cfg.key = value,
            "cacert" => cfg.cacert = value,
            "cert-file" => cfg.cert_file = value,
            "key-file" => cfg.key_file = value,
            "trusted-ca-file" => cfg.trusted_ca_file = value,
            "listen-cipher-suites" => cfg.listen_cipher_suites = list(&value),
            "client-crl-file" => cfg.client_crl_file = value,
            "insecure-skip-tls-verify" => cfg.insecure_skip_tls_verify = value == "true",
            "auto-tls" => cfg.auto_tls = value == "true",
            "resolver-prefix" => cfg.resolver_prefix = value,
            "resolver-ttl" => match value.parse() {
                Ok(n) => cfg.resolver_ttl = n,
                Err(_) => {
                    return ParseOutcome::Error(format!(
                        "Error: invalid argument {value:?} for \"--resolver-ttl\" flag: strconv.ParseInt: parsing {value:?}: invalid syntax"
                    ))
                }
            },
            _ => {}
        }
    }
    if !cfg.resolver_prefix.is_empty() && cfg.resolver_ttl < 1 {
        return ParseOutcome::Error(format!("invalid resolver-ttl {}", cfg.resolver_ttl));
    }
    if cfg.resolver_prefix.is_empty() && cfg.resolver_ttl > 0 {
        return ParseOutcome::Error(format!("invalid resolver-prefix {:?}", cfg.resolver_prefix));
    }
    ParseOutcome::Start(Box::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_etcds() {
        let ParseOutcome::Start(cfg) = parse(&args(&["start"])) else {
            panic!("not started");
        };
        assert_eq!(cfg.listen_addr, "127.0.0.1:23790");
        assert_eq!(cfg.endpoints, vec!["127.0.0.1:2379".to_string()]);
    }

    #[test]
    fn both_value_forms_and_lists() {
        let ParseOutcome::Start(cfg) = parse(&args(&[
            "start",
            "--listen-addr=127.0.0.1:1",
            "--endpoints",
            "a:1,b:2",
            "--listen-cipher-suites",
            "",
            "--insecure-skip-tls-verify",
        ])) else {
            panic!("not started");
        };
        assert_eq!(cfg.listen_addr, "127.0.0.1:1");
        assert_eq!(cfg.endpoints, vec!["a:1".to_string(), "b:2".to_string()]);
        assert!(cfg.listen_cipher_suites.is_empty());
        assert!(cfg.insecure_skip_tls_verify);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        assert_eq!(
            parse(&args(&["start", "--bogus"])),
            ParseOutcome::Error("Error: unknown flag: --bogus".into())
        );
        assert_eq!(
            parse(&args(&["start", "--cert"])),
            ParseOutcome::Error("Error: flag needs an argument: --cert".into())
        );
        assert_eq!(
            parse(&args(&["start", "--resolver-ttl", "5"])),
            ParseOutcome::Error("invalid resolver-prefix \"\"".into())
        );
    }
}
