//! The whole configuration pipeline: command line or config file, environment, implicit
//! adjustments and validation, in etcd's order.

use std::collections::BTreeMap;

use crate::config::{Config, DEFAULT_INITIAL_CLUSTER, DEFAULT_NAME};
use crate::error::ConfigError;
use crate::flags::{apply_command_line, env_name, raw_values, tokenize, Value};
use crate::urls::{go_string, host_of, parse_urls_map, port_of};
use crate::validate::validate;
use crate::Diag;

/// Parse state that is not configuration: raw texts validation needs before they become
/// typed fields, and URL items that cannot be held by [`url::Url`].
#[derive(Debug, Clone)]
pub struct Pending {
    /// `--logger` as given.
    pub logger: String,
    /// `--log-output` (the deprecated spelling), sorted and unique.
    pub log_output: Vec<String>,
    /// `--initial-cluster-state` as given.
    pub cluster_state: String,
    /// Per URL flag: the first `scheme://:port` item and the whole list text.
    pub empty_host: BTreeMap<String, (String, String)>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            logger: "capnslog".to_string(),
            log_output: vec!["default".to_string()],
            cluster_state: "new".to_string(),
            empty_host: BTreeMap::new(),
        }
    }
}

impl Pending {
    /// Notes what validation needs to know about a value about to be assigned.
    pub fn record(&mut self, flag: &str, raw: &str, v: &Value) {
        match (flag, v) {
            ("logger", _) => self.logger = raw.to_string(),
            ("initial-cluster-state", _) => self.cluster_state = raw.to_string(),
            ("log-output", Value::List(l)) => self.log_output = l.clone(),
            (_, Value::Urls(Some(list))) => {
                match &list.empty_host {
                    Some(e) => self
                        .empty_host
                        .insert(flag.to_string(), (e.clone(), list.texts.join(","))),
                    None => self.empty_host.remove(flag),
                };
            }
            _ => {}
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// `-h` / `--help`.
    Help,
    /// `--version`.
    Version,
    /// Start the server (or proxy) with this configuration.
    Run(Box<Config>),
}

/// The result of [`load`]: the action or error, plus the log lines etcd would have printed on
/// the way (print them before acting on the result).
#[derive(Debug)]
pub struct Loaded {
    pub result: Result<Action, ConfigError>,
    pub diags: Vec<Diag>,
}

/// The machine's default-route address, used to replace `localhost` in the default advertise
/// URLs when listening on 0.0.0.0. `Err` carries the reason (etcd logs it as a notice).
pub type DefaultHost = Result<String, String>;

/// Parses `args` (without the program name) and `vars` (the process environment, in order)
/// exactly as etcd 3.4 does. Detects the default host from the routing table.
pub fn load(args: &[String], vars: &[(String, String)]) -> Loaded {
    load_with_default_host(args, vars, crate::host::default_host)
}

/// [`load`] with an injected default-host lookup (called only when needed).
pub fn load_with_default_host(
    args: &[String],
    vars: &[(String, String)],
    default_host: impl FnOnce() -> DefaultHost,
) -> Loaded {
    let mut diags = Vec::new();
    let result = run(args, vars, default_host, &mut diags);
    Loaded { result, diags }
}

fn run(
    args: &[String],
    vars: &[(String, String)],
    default_host: impl FnOnce() -> DefaultHost,
    diags: &mut Vec<Diag>,
) -> Result<Action, ConfigError> {
    let tokens = tokenize(args)?;
    diags.extend(tokens.diags.iter().cloned());
    if tokens.help {
        return Ok(Action::Help);
    }
    if let Some(p) = tokens.positional.first() {
        return Err(ConfigError::NotAFlag(p.clone()));
    }
    if raw_values(&tokens, "version")
        .last()
        .is_some_and(|v| crate::values::parse_bool(v) == Some(true))
    {
        return Ok(Action::Version);
    }

    let mut cfg = Config::default();
    let mut pending = Pending::default();
    let mut config_file = raw_values(&tokens, "config-file")
        .last()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if config_file.is_empty() {
        let key = env_name("config-file");
        config_file = vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
    }

    if !config_file.is_empty() {
        let r = crate::file::load_file(&config_file, &mut cfg, &mut pending, diags);
        // URL errors in the file end the process before this line is logged
        if let Err(e @ ConfigError::FileUrls { .. }) = r {
            return Err(e);
        }
        diags.push(Diag::log(
            'I',
            "etcdmain",
            format!(
                "Loading server configuration from {config_file:?}. Other configuration command line flags and environment variables will be ignored if provided."
            ),
        ));
        r?;
        cfg.config_file = config_file;
    } else {
        let cmdline = apply_command_line(&mut cfg, &mut pending, &tokens);
        let from_env = crate::env::apply_env(&mut cfg, &mut pending, vars, &cmdline, diags)?;
        cfg.explicitly_set = cmdline
            .iter()
            .chain(from_env.iter())
            .map(|s| s.to_string())
            .collect();
        // 1. an explicit listen-client-urls without advertise-client-urls drops the default
        if cfg.is_set("listen-client-urls")
            && !cfg.is_set("advertise-client-urls")
            && !cfg.may_be_proxy()
        {
            cfg.advertise_client_urls.clear();
        }
        // 2. discovery replaces the default initial cluster
        if (!cfg.discovery.is_empty()
            || !cfg.discovery_srv.is_empty()
            || !cfg.discovery_srv_name.is_empty())
            && !cfg.is_set("initial-cluster")
        {
            cfg.initial_cluster.clear();
        }
        validate(&mut cfg, &pending, diags)?;
    }
    if cfg.logger == crate::config::Logger::Capnslog {
        for line in crate::usage::version_text().lines() {
            diags.push(Diag::log('I', "etcdmain", line));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        diags.push(Diag::log(
            'I',
            "etcdmain",
            format!("setting maximum number of CPUs to {cpus}, total number of available CPUs is {cpus}"),
        ));
    }
    finish(&mut cfg, default_host, diags);
    Ok(Action::Run(Box::new(cfg)))
}

/// Adjustments etcd makes after validation: default host, initial cluster from the name,
/// default data dir; then the initial cluster is parsed into its map.
fn finish(cfg: &mut Config, default_host: impl FnOnce() -> DefaultHost, diags: &mut Vec<Diag>) {
    let rebuild_cluster = |cfg: &mut Config| {
        if cfg.name != DEFAULT_NAME && cfg.initial_cluster == DEFAULT_INITIAL_CLUSTER {
            cfg.initial_cluster = cfg
                .initial_advertise_peer_urls
                .iter()
                .map(|u| format!("{}={}", cfg.name, go_string(u)))
                .collect::<Vec<_>>()
                .join(",");
        }
    };
    match default_host() {
        Ok(host) if !host.is_empty() => {
            let mut used = false;
            let is_default = |l: &[url::Url], d: &str| l.len() == 1 && go_string(&l[0]) == d;
            if let Some(lp) = cfg.listen_peer_urls.first().cloned() {
                if is_default(
                    &cfg.initial_advertise_peer_urls,
                    crate::config::DEFAULT_INITIAL_ADVERTISE_PEER_URLS,
                ) && host_of(&lp) == "0.0.0.0"
                {
                    replace_host(
                        &mut cfg.initial_advertise_peer_urls[0],
                        &host,
                        &port_of(&lp),
                    );
                    used = true;
                }
            }
            rebuild_cluster(cfg);
            if let Some(lc) = cfg.listen_client_urls.first().cloned() {
                if is_default(
                    &cfg.advertise_client_urls,
                    crate::config::DEFAULT_ADVERTISE_CLIENT_URLS,
                ) && host_of(&lc) == "0.0.0.0"
                {
                    replace_host(&mut cfg.advertise_client_urls[0], &host, &port_of(&lc));
                    used = true;
                }
            }
            if used {
                diags.push(Diag::log(
                    'I',
                    "etcdmain",
                    format!("advertising using detected default host {host:?}"),
                ));
                cfg.default_host_used = Some(host);
            }
        }
        Ok(_) => rebuild_cluster(cfg),
        Err(e) => {
            rebuild_cluster(cfg);
            diags.push(Diag::log(
                'N',
                "etcdmain",
                format!("failed to detect default host ({e})"),
            ));
        }
    }
    if cfg.data_dir.is_empty() {
        cfg.data_dir = format!("{}.etcd", cfg.name);
        diags.push(Diag::log(
            'W',
            "etcdmain",
            format!(
                "no data-dir provided, using default data-dir ./{}",
                cfg.data_dir
            ),
        ));
    }
    cfg.initial_cluster_map = parse_urls_map(&cfg.initial_cluster).unwrap_or_default();
}

fn replace_host(u: &mut url::Url, host: &str, port: &str) {
    let text = format!("{}://{}:{}", u.scheme(), host, port);
    if let Ok(n) = url::Url::parse(&text) {
        *u = n;
    }
}
