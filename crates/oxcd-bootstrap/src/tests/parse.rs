use super::*;
use crate::config::{ClusterState, DiscoveryFallback, Logger, ProxyMode};
use crate::urls::join;
use crate::Presentation;

#[test]
fn go_flag_forms_are_equivalent() {
    for args in [
        &["-name", "x"][..],
        &["--name", "x"],
        &["-name=x"],
        &["--name=x"],
    ] {
        assert_eq!(cfg(args).name, "x", "{args:?}");
    }
    // a non-boolean flag takes the next argument whatever it looks like
    assert_eq!(cfg(&["--name", "-x"]).name, "-x");
    // the last occurrence wins
    assert_eq!(cfg(&["--name=a", "--name=b"]).name, "b");
}

#[test]
fn booleans() {
    assert!(cfg(&["--enable-v2"]).enable_v2);
    assert!(cfg(&["-enable-v2=true"]).enable_v2);
    assert!(!cfg(&["--strict-reconfig-check=false"]).strict_reconfig_check);
    assert!(cfg(&["--pre-vote=T"]).pre_vote);
    assert!(!cfg(&["--enable-grpc-gateway=0"]).enable_grpc_gateway);
    // `--flag false` leaves `false` as a positional argument
    let e = err(&["--enable-v2", "false"]);
    assert_eq!(
        e.report(),
        "error verifying flags, 'false' is not a valid flag. See 'etcd --help'."
    );
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn defaults() {
    let c = cfg(&[]);
    assert_eq!(c.name, "default");
    assert_eq!(c.data_dir, "default.etcd");
    assert_eq!(c.snapshot_count, 100_000);
    assert_eq!(c.heartbeat_interval_ms, 100);
    assert_eq!(c.election_timeout_ms, 1000);
    assert_eq!(c.max_request_bytes, 1_572_864);
    assert_eq!(c.max_txn_ops, 128);
    assert_eq!(c.max_concurrent_streams, u32::MAX);
    assert_eq!(c.initial_cluster, "default=http://localhost:2380");
    assert_eq!(
        join(&c.initial_cluster_map["default"]),
        "http://localhost:2380"
    );
    assert_eq!(c.initial_cluster_token, "etcd-cluster");
    assert_eq!(c.initial_cluster_state, ClusterState::New);
    assert_eq!(join(&c.listen_peer_urls), "http://localhost:2380");
    assert_eq!(join(&c.listen_client_urls), "http://localhost:2379");
    assert_eq!(join(&c.advertise_client_urls), "http://localhost:2379");
    assert_eq!(c.proxy, ProxyMode::Off);
    assert_eq!(c.discovery_fallback, DiscoveryFallback::Proxy);
    assert_eq!(c.logger, Logger::Capnslog);
    assert_eq!(c.log_outputs, vec!["default"]);
    assert!(c.strict_reconfig_check && c.enable_grpc_gateway && !c.enable_v2);
    assert_eq!(c.cors, vec!["*"]);
    assert_eq!(c.effective_quota_backend_bytes(), 2 * 1024 * 1024 * 1024);
}

#[test]
fn url_lists_are_normalised_and_sorted() {
    let c = cfg(&[
        "--listen-client-urls",
        "http://127.0.0.2:2379, http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
    ]);
    assert_eq!(
        join(&c.listen_client_urls),
        "http://127.0.0.1:2379,http://127.0.0.2:2379"
    );
    // an empty value keeps the previous list
    let c = cfg(&["--initial-advertise-peer-urls="]);
    assert_eq!(
        join(&c.initial_advertise_peer_urls),
        "http://localhost:2380"
    );
    let c = cfg(&[
        "--cors",
        "http://a.example:80,http://b.example:80",
        "--host-whitelist",
        "b,a,a",
    ]);
    assert_eq!(c.cors, vec!["http://a.example:80", "http://b.example:80"]);
    assert_eq!(c.host_whitelist, vec!["a", "b"]);
}

#[test]
fn flag_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--foo"], "flag provided but not defined: -foo"),
        (&["--self-signed-cert-validity=1"], "flag provided but not defined: -self-signed-cert-validity"),
        (&["--name"], "flag needs an argument: -name"),
        (&["---name=x"], "bad flag syntax: ---name=x"),
        (&["--heartbeat-interval=x"], "invalid value \"x\" for flag -heartbeat-interval: parse error"),
        (&["--enable-v2=x"], "invalid boolean value \"x\" for -enable-v2: parse error"),
        (
            &["--max-concurrent-streams=x"],
            "invalid value \"x\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"x\": invalid syntax",
        ),
        (&["--grpc-keepalive-timeout=x"], "invalid value \"x\" for flag -grpc-keepalive-timeout: parse error"),
        (&["--initial-cluster-state=foo"], "invalid value \"foo\" for flag -initial-cluster-state: invalid value"),
        (&["--proxy=maybe"], "invalid value \"maybe\" for flag -proxy: invalid value"),
        (
            &["--listen-peer-urls=http://a:1/"],
            "invalid value \"http://a:1/\" for flag -listen-peer-urls: URL must not contain a path: http://a:1/",
        ),
        (
            &["--quota-backend-bytes=99999999999999999999"],
            "invalid value \"99999999999999999999\" for flag -quota-backend-bytes: value out of range",
        ),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert_eq!(e.to_string(), *want);
        assert_eq!(e.exit_code(), 2, "{args:?}");
        assert_eq!(e.presentation(), Presentation::Usage);
    }
    // the first bad flag is reported
    assert_eq!(
        err(&["--heartbeat-interval=x", "--foo"]).to_string(),
        "invalid value \"x\" for flag -heartbeat-interval: parse error"
    );
}

#[test]
fn positional_arguments() {
    let e = err(&["foo"]);
    assert_eq!(
        e.report(),
        "error verifying flags, 'foo' is not a valid flag. See 'etcd --help'."
    );
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        err(&["--name", "x", "--", "--foo"]).to_string(),
        "'--foo' is not a valid flag"
    );
    assert_eq!(err(&["-"]).to_string(), "'-' is not a valid flag");
}

#[test]
fn help_and_version() {
    for a in ["-h", "--help", "-help"] {
        assert!(matches!(run(&[a], &[]).result, Ok(Action::Help)), "{a}");
    }
    assert!(matches!(
        run(&["--version"], &[]).result,
        Ok(Action::Version)
    ));
    assert!(matches!(
        run(&["-version"], &[]).result,
        Ok(Action::Version)
    ));
    // a positional argument is checked before --version
    assert!(run(&["--version", "x"], &[]).result.is_err());
    let v = crate::usage::version_text();
    assert!(v.starts_with("etcd Version: 3.4.23\nGit SHA: oxcd-"));
    assert!(v.contains("\nRust Version: ") && v.contains("\nOS/Arch: linux/"));
    assert!(crate::usage::help_text().contains("--initial-cluster-token"));
}

#[test]
fn legacy_flags_warn() {
    let l = run(&["-v", "--peer-heartbeat-interval=5", "--name=x"], &[]);
    assert!(matches!(l.result, Ok(Action::Run(_))));
    assert!(has_diag(
        &l,
        'W',
        "flag \"-v\" is no longer supported - ignoring."
    ));
    assert!(has_diag(
        &l,
        'W',
        "flag \"-peer-heartbeat-interval\" is no longer supported - ignoring."
    ));
}

#[test]
fn environment() {
    let c = cfg_env(
        &[],
        &[
            ("ETCD_NAME", "infra0"),
            ("ETCD_INITIAL_CLUSTER_TOKEN", "t1"),
        ],
    );
    assert_eq!(
        (c.name.as_str(), c.initial_cluster_token.as_str()),
        ("infra0", "t1")
    );
    assert!(c.is_set("name"));
    // empty means unset
    assert_eq!(cfg_env(&[], &[("ETCD_NAME", "")]).name, "default");
    // the command line must not be shadowed
    let e = err_env(&["--name", "y"], &[("ETCD_NAME", "x")]);
    assert_eq!(
        e.to_string(),
        "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
    );
    assert_eq!(
        (e.exit_code(), e.level(), e.pkg()),
        (1, Some('C'), "pkg/flags")
    );
    // even an empty variable conflicts (as in etcd)
    assert!(matches!(
        err_env(&["--name", "y"], &[("ETCD_NAME", "")]),
        ConfigError::ConflictingEnv(_)
    ));
    // unknown ETCD_* only warns; used ones are logged
    let l = run(&[], &[("ETCD_FOO", "1"), ("ETCD_HEARTBEAT_INTERVAL", "50")]);
    assert!(has_diag(
        &l,
        'W',
        "unrecognized environment variable ETCD_FOO=1"
    ));
    assert!(has_diag(
        &l,
        'I',
        "recognized and used environment variable ETCD_HEARTBEAT_INTERVAL=50"
    ));
    // bad value
    let e = err_env(&[], &[("ETCD_HEARTBEAT_INTERVAL", "x")]);
    assert_eq!(
        e.report(),
        "error verifying flags, invalid value \"x\" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'etcd --help'."
    );
    assert_eq!(e.exit_code(), 1);
    // booleans and URL lists from the environment
    let c = cfg_env(
        &[],
        &[
            ("ETCD_ENABLE_V2", "true"),
            ("ETCD_LISTEN_PEER_URLS", "http://127.0.0.1:2390"),
        ],
    );
    assert!(c.enable_v2);
    assert_eq!(join(&c.listen_peer_urls), "http://127.0.0.1:2390");
}

#[test]
fn implicit_adjustments() {
    // 1. explicit listen-client-urls without advertise-client-urls
    let e = err(&["--listen-client-urls", "http://127.0.0.1:2379"]);
    assert_eq!(
        e.report(),
        "error verifying flags, --advertise-client-urls is required when --listen-client-urls is set explicitly. See 'etcd --help'."
    );
    assert_eq!(
        e.extra_lines(),
        vec!["When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client."]
    );
    let c = cfg(&[
        "--listen-client-urls",
        "http://127.0.0.1:2379",
        "--proxy",
        "on",
    ]);
    assert_eq!(join(&c.advertise_client_urls), "http://localhost:2379");
    let c = cfg_env(
        &["--listen-client-urls", "http://127.0.0.1:2379"],
        &[("ETCD_ADVERTISE_CLIENT_URLS", "http://127.0.0.1:2379")],
    );
    assert_eq!(join(&c.advertise_client_urls), "http://127.0.0.1:2379");
    // 2. discovery clears the default initial cluster
    let c = cfg(&["--discovery", "http://127.0.0.1:8087/abc"]);
    assert_eq!(c.initial_cluster, "");
    assert!(c.initial_cluster_map.is_empty());
    let c = cfg(&["--discovery-srv", "example.com"]);
    assert_eq!(c.initial_cluster, "");
    // 3. the name rebuilds the default initial cluster
    let c = cfg(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://127.0.0.10:2380",
    ]);
    assert_eq!(c.initial_cluster, "infra0=http://127.0.0.10:2380");
    assert_eq!(c.data_dir, "infra0.etcd");
    let c = cfg(&[
        "--name",
        "x",
        "--initial-cluster",
        "x=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
    ]);
    assert_eq!(c.initial_cluster, "x=http://127.0.0.1:2380");
    // 4. default host replaces localhost when listening on 0.0.0.0
    let args: Vec<String> = [
        "--listen-peer-urls",
        "http://0.0.0.0:2390",
        "--listen-client-urls",
        "http://0.0.0.0:2391",
        "--advertise-client-urls",
        "http://localhost:2379",
        "--name",
        "n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let l = load_with_default_host(&args, &[], || Ok("10.1.2.3".to_string()));
    let Ok(Action::Run(c)) = l.result else {
        panic!()
    };
    assert_eq!(join(&c.initial_advertise_peer_urls), "http://10.1.2.3:2390");
    assert_eq!(join(&c.advertise_client_urls), "http://10.1.2.3:2391");
    assert_eq!(c.initial_cluster, "n=http://10.1.2.3:2390");
    assert_eq!(c.default_host_used.as_deref(), Some("10.1.2.3"));
    // 5. data-dir default
    let l = run(&["--name", "a"], &[]);
    assert!(has_diag(
        &l,
        'W',
        "no data-dir provided, using default data-dir ./a.etcd"
    ));
    assert_eq!(cfg(&["--data-dir", "/d"]).data_dir, "/d");
}

#[test]
fn validation_messages() {
    let v = |args: &[&str]| {
        let e = err(args);
        assert_eq!(e.exit_code(), 1, "{args:?}");
        assert_eq!(e.presentation(), Presentation::Verify, "{args:?}");
        e.to_string()
    };
    assert_eq!(
        v(&["--listen-peer-urls", "http://foo:2380"]),
        "expected IP in URL for binding (http://foo:2380)"
    );
    assert_eq!(
        v(&[
            "--listen-client-urls",
            "http://:2379",
            "--advertise-client-urls",
            "http://127.0.0.1:2379"
        ]),
        "expected IP in URL for binding (http://:2379)"
    );
    assert_eq!(
        v(&["--listen-metrics-urls", "http://foo:9"]),
        "expected IP in URL for binding (http://foo:9)"
    );
    assert_eq!(
        v(&["--initial-advertise-peer-urls", "http://:2380"]),
        "--initial-advertise-peer-urls \"http://:2380\" must be \"host:port\" (unexpected empty host (http://:2380))"
    );
    assert_eq!(
        v(&["--advertise-client-urls", "http://:2379"]),
        "--advertise-client-urls \"http://:2379\" must be \"host:port\" (unexpected empty host (http://:2379))"
    );
    let multi = "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"";
    assert_eq!(
        v(&[
            "--discovery",
            "http://127.0.0.1:1/x",
            "--initial-cluster",
            "a=http://127.0.0.1:2380"
        ]),
        multi
    );
    assert_eq!(
        v(&[
            "--discovery-srv",
            "example.com",
            "--initial-cluster",
            "a=http://127.0.0.1:2380"
        ]),
        multi
    );
    assert_eq!(
        v(&[
            "--discovery-srv",
            "example.com",
            "--discovery",
            "http://127.0.0.1:1/x"
        ]),
        multi
    );
    assert_eq!(
        v(&["--heartbeat-interval", "0"]),
        "--heartbeat-interval must be >0 (set to 0ms)"
    );
    assert_eq!(
        v(&["--election-timeout", "0"]),
        "--election-timeout must be >0 (set to 0ms)"
    );
    assert_eq!(
        v(&["--election-timeout", "400"]),
        "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    );
    assert_eq!(
        v(&["--election-timeout", "60000"]),
        "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
    );
    assert_eq!(
        v(&["--auto-compaction-mode", "foo"]),
        "unknown auto-compaction-mode \"foo\""
    );
    assert_eq!(
        v(&["--experimental-enable-lease-checkpoint-persist"]),
        "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint"
    );
    assert_eq!(v(&["--logger", "foo"]), "unknown logger option \"foo\"");
    assert_eq!(
        v(&["--log-outputs", "a,b"]),
        "--logger=capnslog supports only 1 value in '--log-outputs', got [\"a\" \"b\"]"
    );
    assert_eq!(
        v(&["--log-outputs", "foo"]),
        "unknown log-output \"foo\" (only supports \"default\", \"stderr\", \"stdout\")"
    );
    assert_eq!(
        v(&["--logger", "zap", "--log-outputs", "default,stderr"]),
        "multi logoutput for \"default\" is not supported yet"
    );
    assert_eq!(
        v(&["--log-output", "stdout", "--log-outputs", "stdout"]),
        "'--log-output=[\"stdout\"]' and '--log-outputs=[\"stdout\"]' are incompatible; only set --log-outputs"
    );
    let e = err(&["--log-level", "foo"]);
    assert_eq!(
        (e.report().as_str(), e.exit_code()),
        ("panic: unknown level \"foo\"", 2)
    );
    // fine
    let c = cfg(&[
        "--logger",
        "zap",
        "--log-outputs",
        "stderr,/tmp/x.log",
        "--log-level",
        "debug",
    ]);
    assert_eq!(c.logger, Logger::Zap);
    assert_eq!(c.log_outputs, vec!["/tmp/x.log", "stderr"]);
    let c = cfg(&[
        "--initial-cluster-state",
        "existing",
        "--proxy",
        "readonly",
        "--discovery-fallback",
        "exit",
    ]);
    assert_eq!(
        (c.initial_cluster_state, c.proxy, c.discovery_fallback),
        (
            ClusterState::Existing,
            ProxyMode::Readonly,
            DiscoveryFallback::Exit
        )
    );
}

#[test]
fn tls_checks() {
    let c = cfg(&[
        "--peer-cert-allowed-cn",
        "x",
        "--peer-cert-allowed-hostname",
        "y",
    ]);
    assert_eq!(
        crate::tls::check_tls(&c).unwrap_err().to_string(),
        "AllowedCN and AllowedHostname are mutually exclusive (cn=\"x\", hostname=\"y\")"
    );
    let c = cfg(&[
        "--cipher-suites",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    ]);
    assert_eq!(
        crate::tls::cipher_suite_ids(&c.cipher_suites).unwrap(),
        vec![0xc02f, 0xcca8]
    );
    let c = cfg(&["--cipher-suites", "FOO"]);
    assert_eq!(
        crate::tls::check_tls(&c).unwrap_err().to_string(),
        "unexpected TLS cipher suite \"FOO\""
    );
    let c = cfg(&[
        "--cert-file=c",
        "--key-file=k",
        "--client-cert-auth",
        "--trusted-ca-file=ca",
        "--peer-auto-tls",
        "--client-crl-file=crl",
    ]);
    assert_eq!(
        (
            c.cert_file.as_str(),
            c.key_file.as_str(),
            c.trusted_ca_file.as_str(),
            c.client_crl_file.as_str()
        ),
        ("c", "k", "ca", "crl")
    );
    assert!(c.client_cert_auth && c.peer_auto_tls && !c.auto_tls);
}
