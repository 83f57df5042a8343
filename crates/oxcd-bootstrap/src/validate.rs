//! The checks of etcd's `embed.Config.Validate` (with its logging setup), in etcd's order.

use url::Url;

use crate::config::{Config, MAX_ELECTION_TIMEOUT_MS};
use crate::error::ConfigError;
use crate::load::Pending;
use crate::urls::{go_string, go_strings, host_of, ip_of, split_host_port};
use crate::Diag;

/// Log levels etcd accepts for `--log-level`.
pub const LOG_LEVELS: &[&str] = &["debug", "info", "warn", "error", "dpanic", "panic", "fatal"];

/// Runs every check; warnings etcd prints on the way go to `diags`.
pub fn validate(
    cfg: &mut Config,
    pending: &Pending,
    diags: &mut Vec<Diag>,
) -> Result<(), ConfigError> {
    setup_logging(cfg, pending, diags)?;
    let empty = |flag: &str| pending.empty_host.get(flag);
    for (flag, urls) in [
        ("listen-peer-urls", &cfg.listen_peer_urls),
        ("listen-client-urls", &cfg.listen_client_urls),
        ("listen-metrics-urls", &cfg.listen_metrics_urls),
    ] {
        if let Some((bad, _)) = empty(flag) {
            return Err(ConfigError::BindUrlNotIp(bad.clone()));
        }
        check_bind_urls(urls)?;
    }
    let host_check = |flag: &str, urls: &[Url]| -> Result<(), (String, String)> {
        if let Some((bad, all)) = empty(flag) {
            return Err((all.clone(), format!("unexpected empty host ({bad})")));
        }
        check_host_urls(urls).map_err(|reason| (go_strings(urls).join(","), reason))
    };
    if let Err((list, reason)) = host_check(
        "initial-advertise-peer-urls",
        &cfg.initial_advertise_peer_urls,
    ) {
        return Err(ConfigError::AdvertisePeerUrlsHost { list, reason });
    }
    if let Err((list, reason)) = host_check("advertise-client-urls", &cfg.advertise_client_urls) {
        return Err(ConfigError::AdvertiseClientUrlsHost { list, reason });
    }
    let sources = [
        !cfg.discovery.is_empty(),
        !cfg.initial_cluster.is_empty(),
        !cfg.discovery_srv.is_empty(),
    ];
    if pending.cluster_state != "new" && pending.cluster_state != "existing" {
        return Err(ConfigError::UnexpectedClusterState(
            pending.cluster_state.clone(),
        ));
    }
    if sources.iter().filter(|b| **b).count() > 1 {
        return Err(ConfigError::ConflictBootstrapFlags);
    }
    if cfg.heartbeat_interval_ms == 0 {
        return Err(ConfigError::HeartbeatNotPositive(cfg.heartbeat_interval_ms));
    }
    if cfg.election_timeout_ms == 0 {
        return Err(ConfigError::ElectionNotPositive(cfg.election_timeout_ms));
    }
    if cfg.heartbeat_interval_ms.saturating_mul(5) > cfg.election_timeout_ms {
        return Err(ConfigError::ElectionTooShort {
            election: cfg.election_timeout_ms,
            heartbeat: cfg.heartbeat_interval_ms,
        });
    }
    if cfg.election_timeout_ms > MAX_ELECTION_TIMEOUT_MS {
        return Err(ConfigError::ElectionTooLong(cfg.election_timeout_ms));
    }
    if !cfg.listen_client_urls.is_empty()
        && cfg.advertise_client_urls.is_empty()
        && !cfg.may_be_proxy()
    {
        return Err(ConfigError::UnsetAdvertiseClientUrls);
    }
    match cfg.auto_compaction_mode.as_str() {
        "" | "revision" | "periodic" => {}
        m => return Err(ConfigError::UnknownCompactionMode(m.to_string())),
    }
    if cfg.experimental_enable_lease_checkpoint && !cfg.experimental_enable_lease_checkpoint_persist
    {
        diags.push(Diag::log(
            'W',
            "embed",
            "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist",
        ));
    }
    if cfg.experimental_enable_lease_checkpoint_persist && !cfg.experimental_enable_lease_checkpoint
    {
        return Err(ConfigError::LeaseCheckpointPersist);
    }
    Ok(())
}

/// Go's `%q` of a string list: `["a" "b"]`.
fn quote_list(l: &[String]) -> String {
    let items: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// The checks and warnings of etcd's logging setup.
fn setup_logging(
    cfg: &mut Config,
    pending: &Pending,
    diags: &mut Vec<Diag>,
) -> Result<(), ConfigError> {
    let old = &pending.log_output;
    let (l1, l2) = (old.len(), cfg.log_outputs.len());
    if l1 != l2 {
        if l1 > l2 {
            diags.push(Diag::raw(
                "'--log-output' flag has been deprecated! Please use '--log-outputs'!",
            ));
            cfg.log_outputs = old.clone();
        }
    } else {
        if l1 > 1 {
            return Err(ConfigError::BothLogOutputFlags);
        }
        if l1 < 1 {
            return Err(ConfigError::NoLogOutput);
        }
        if *old == cfg.log_outputs && old[0] != "default" {
            return Err(ConfigError::IncompatibleLogOutputs(quote_list(old)));
        }
        if old.len() != 1 || old[0] != "default" {
            diags.push(Diag::raw(format!(
                "[WARNING] Deprecated '--log-output' flag is set to {}",
                quote_list(old)
            )));
            diags.push(Diag::raw("Please use '--log-outputs' flag"));
        }
    }
    if cfg.debug {
        diags.push(Diag::raw(format!(
            "[WARNING] Deprecated '--debug' flag is set to {} (use '--log-level=debug' instead",
            cfg.debug
        )));
        if cfg.log_level != "debug" {
            diags.push(Diag::raw(format!(
                "[WARNING] Deprecated '--debug' flag is set to {} with inconsistent '--log-level={}' flag",
                cfg.debug, cfg.log_level
            )));
        }
    }
    if pending.logger == "capnslog" {
        diags.push(Diag::raw(
            "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead",
        ));
    }
    if !cfg.log_package_levels.is_empty() {
        diags.push(Diag::raw(format!(
            "[WARNING] Deprecated '--log-package-levels={}' flag is set; use '--logger=zap' flag instead",
            cfg.log_package_levels
        )));
    }
    match pending.logger.as_str() {
        "capnslog" => {
            if !cfg.debug && !LOG_LEVELS.contains(&cfg.log_level.as_str()) {
                return Err(ConfigError::UnknownLogLevel(cfg.log_level.clone()));
            }
            if cfg.log_outputs.len() != 1 {
                return Err(ConfigError::CapnslogSingleOutput(quote_list(
                    &cfg.log_outputs,
                )));
            }
            match cfg.log_outputs[0].as_str() {
                "stderr" | "stdout" | "default" => {}
                o => return Err(ConfigError::UnknownLogOutput(o.to_string())),
            }
        }
        "zap" => {
            if cfg.log_outputs.is_empty() {
                cfg.log_outputs = vec!["default".to_string()];
            }
            if cfg.log_outputs.len() > 1 && cfg.log_outputs.iter().any(|o| o == "default") {
                return Err(ConfigError::ZapMultiDefault);
            }
            if !LOG_LEVELS.contains(&cfg.log_level.as_str()) {
                return Err(ConfigError::UnknownLogLevel(cfg.log_level.clone()));
            }
        }
        other => return Err(ConfigError::UnknownLogger(other.to_string())),
    }
    Ok(())
}

/// Listen URLs must name an IP address or `localhost` (unix sockets excepted).
fn check_bind_urls(urls: &[Url]) -> Result<(), ConfigError> {
    for u in urls {
        if u.scheme() == "unix" || u.scheme() == "unixs" {
            continue;
        }
        if host_of(u) == "localhost" {
            continue;
        }
        if ip_of(u).is_none() {
            return Err(ConfigError::BindUrlNotIp(go_string(u)));
        }
    }
    Ok(())
}

/// Advertised URLs must have a non-empty host.
fn check_host_urls(urls: &[Url]) -> Result<(), String> {
    for u in urls {
        let s = go_string(u);
        let hostport = s.split_once("://").map_or("", |(_, r)| r);
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        match split_host_port(hostport) {
            Some((h, _)) if !h.is_empty() => {}
            Some(_) => return Err(format!("unexpected empty host ({s})")),
            None => return Err(format!("address {hostport}: missing port in address")),
        }
    }
    Ok(())
}
