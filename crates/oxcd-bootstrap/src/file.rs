//! `--config-file`: a YAML file whose keys are the flag names.
//!
//! Rules (etcd 3.4): URL lists are comma-separated strings (an empty string keeps the default);
//! a bad URL list prints `unexpected error setting up <key>: <err>` and exits 1; TLS settings
//! sit under `client-transport-security` / `peer-transport-security` (`cert-file`, `key-file`,
//! `client-cert-auth`, `trusted-ca-file`, `auto-tls`); `discovery` or `discovery-srv` clears
//! an `initial-cluster` left at its default; an empty `initial-cluster-state` means `new`;
//! the proxy keys and `discovery-fallback` come from the same file. Unknown keys are ignored.
//! Durations are integers of nanoseconds (as Go's JSON decoding of `time.Duration`); a Go
//! duration string is accepted too.

use std::time::Duration;

use serde_json::Value as J;

use crate::config::{Config, DEFAULT_INITIAL_CLUSTER};
use crate::error::ConfigError;
use crate::flags::{assign, lookup, parse_value, Value};
use crate::load::Pending;
use crate::urls::parse_url_list;
use crate::validate::validate;
use crate::values::parse_duration;
use crate::Diag;

fn type_error(what: &str, key: &str, go_type: &str) -> ConfigError {
    ConfigError::ConfigFile(format!(
        "error unmarshaling JSON: json: cannot unmarshal {what} into Go struct field configYAML.{key} of type {go_type}"
    ))
}

fn json_kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "bool",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn as_text(key: &str, v: &J) -> Result<Option<String>, ConfigError> {
    Ok(match v {
        J::Null => None,
        J::String(s) => Some(s.clone()),
        J::Bool(b) => Some(b.to_string()),
        J::Number(n) => Some(n.to_string()),
        other => return Err(type_error(json_kind(other), key, "string")),
    })
}

fn as_bool(key: &str, v: &J) -> Result<Option<bool>, ConfigError> {
    match v {
        J::Null => Ok(None),
        J::Bool(b) => Ok(Some(*b)),
        other => Err(type_error(json_kind(other), key, "bool")),
    }
}

fn as_u64(key: &str, v: &J, go_type: &str) -> Result<Option<u64>, ConfigError> {
    match v {
        J::Null => Ok(None),
        J::Number(n) => match n.as_u64() {
            Some(x) if go_type != "uint32" || x <= u32::MAX as u64 => Ok(Some(x)),
            _ => Err(type_error(&format!("number {n}"), key, go_type)),
        },
        other => Err(type_error(json_kind(other), key, go_type)),
    }
}

fn as_i64(key: &str, v: &J, go_type: &str) -> Result<Option<i64>, ConfigError> {
    match v {
        J::Null => Ok(None),
        J::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(&format!("number {n}"), key, go_type)),
        other => Err(type_error(json_kind(other), key, go_type)),
    }
}

fn as_duration(key: &str, v: &J) -> Result<Option<Duration>, ConfigError> {
    match v {
        J::Null => Ok(None),
        J::Number(n) => match n.as_u64() {
            Some(ns) => Ok(Some(Duration::from_nanos(ns))),
            None => Err(type_error(&format!("number {n}"), key, "time.Duration")),
        },
        J::String(s) => parse_duration(s)
            .map(Some)
            .ok_or_else(|| type_error("string", key, "time.Duration")),
        other => Err(type_error(json_kind(other), key, "time.Duration")),
    }
}

fn as_list(key: &str, v: &J) -> Result<Option<Vec<String>>, ConfigError> {
    match v {
        J::Null => Ok(None),
        J::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                match as_text(key, i)? {
                    Some(s) => out.push(s),
                    None => out.push(String::new()),
                }
            }
            Ok(Some(out))
        }
        other => Err(type_error(json_kind(other), key, "[]string")),
    }
}

fn read_error(path: &str, e: &std::io::Error) -> ConfigError {
    use std::io::ErrorKind::*;
    let reason = match e.kind() {
        NotFound => "no such file or directory".to_string(),
        PermissionDenied => "permission denied".to_string(),
        IsADirectory => return ConfigError::ConfigFile(format!("read {path}: is a directory")),
        _ => e.to_string(),
    };
    ConfigError::ConfigFile(format!("open {path}: {reason}"))
}

/// Reads the YAML text into a key → value map.
pub fn parse_yaml(text: &str) -> Result<serde_json::Map<String, J>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    let v: J = serde_saphyr::from_str(text).map_err(|e| {
        ConfigError::ConfigFile(format!("error converting YAML to JSON: yaml: {e}"))
    })?;
    match v {
        J::Object(m) => Ok(m),
        J::Null => Ok(serde_json::Map::new()),
        other => Err(ConfigError::ConfigFile(format!(
            "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type embed.configYAML",
            json_kind(&other)
        ))),
    }
}

/// Loads `path` over the defaults in `cfg` and validates the result.
pub fn load_file(
    path: &str,
    cfg: &mut Config,
    pending: &mut Pending,
    diags: &mut Vec<Diag>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| read_error(path, &e))?;
    let map = parse_yaml(&text)?;
    apply_map(&map, cfg, pending)?;
    validate(cfg, pending, diags)?;
    // etcdmain reads these after validation
    for key in ["discovery-fallback", "proxy"] {
        if let Some(raw) = map.get(key).map(|v| as_text(key, v)).transpose()?.flatten() {
            if raw.is_empty() {
                continue;
            }
            let spec = lookup(key).expect("known flag");
            match parse_value(spec, &raw) {
                Ok(v) => assign(cfg, key, v),
                Err(reason) => {
                    let what = if key == "proxy" {
                        "proxyFlag"
                    } else {
                        "discovery-fallback flag"
                    };
                    return Err(ConfigError::FileUrls {
                        key: what.to_string(),
                        reason,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Applies the keys of a parsed config file (no validation).
pub fn apply_map(
    map: &serde_json::Map<String, J>,
    cfg: &mut Config,
    pending: &mut Pending,
) -> Result<(), ConfigError> {
    let initial_cluster_before = cfg.initial_cluster.clone();
    for (key, v) in map {
        apply_key(key, v, cfg, pending)?;
    }
    // URL lists, in etcd's order; the key printed for advertise-client-urls is etcd's own
    for (key, printed) in [
        ("listen-peer-urls", "listen-peer-urls"),
        ("listen-client-urls", "listen-client-urls"),
        ("initial-advertise-peer-urls", "initial-advertise-peer-urls"),
        ("advertise-client-urls", "advertise-peer-urls"),
        ("listen-metrics-urls", "listen-metrics-urls"),
    ] {
        let Some(raw) = map.get(key).map(|v| as_text(key, v)).transpose()?.flatten() else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let list = parse_url_list(&raw).map_err(|reason| ConfigError::FileUrls {
            key: printed.to_string(),
            reason,
        })?;
        let v = Value::Urls(Some(list));
        pending.record(key, &raw, &v);
        assign(cfg, key, v);
    }
    for key in ["cors", "host-whitelist"] {
        let Some(raw) = map.get(key).map(|v| as_text(key, v)).transpose()?.flatten() else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let spec = lookup(key).expect("known flag");
        let v = parse_value(spec, &raw).map_err(|reason| ConfigError::FileUrls {
            key: key.to_string(),
            reason,
        })?;
        assign(cfg, key, v);
    }
    if (!cfg.discovery.is_empty() || !cfg.discovery_srv.is_empty())
        && cfg.initial_cluster == initial_cluster_before
        && initial_cluster_before == DEFAULT_INITIAL_CLUSTER
    {
        cfg.initial_cluster.clear();
    }
    if pending.cluster_state.is_empty() {
        pending.cluster_state = "new".to_string();
    }
    assign(
        cfg,
        "initial-cluster-state",
        Value::Str(pending.cluster_state.clone()),
    );
    Ok(())
}

fn apply_security(prefix: &str, v: &J, cfg: &mut Config) -> Result<(), ConfigError> {
    let J::Object(m) = v else {
        if v.is_null() {
            return Ok(());
        }
        return Err(type_error(json_kind(v), prefix, "embed.securityConfig"));
    };
    let peer = prefix.starts_with("peer");
    for (k, v) in m {
        let flag = match (k.as_str(), peer) {
            ("cert-file", false) => "cert-file",
            ("key-file", false) => "key-file",
            ("client-cert-auth", false) => "client-cert-auth",
            ("trusted-ca-file", false) => "trusted-ca-file",
            ("auto-tls", false) => "auto-tls",
            ("cert-file", true) => "peer-cert-file",
            ("key-file", true) => "peer-key-file",
            ("client-cert-auth", true) => "peer-client-cert-auth",
            ("trusted-ca-file", true) => "peer-trusted-ca-file",
            ("auto-tls", true) => "peer-auto-tls",
            _ => continue,
        };
        let key = format!("{prefix}.{k}");
        if k == "client-cert-auth" || k == "auto-tls" {
            if let Some(b) = as_bool(&key, v)? {
                assign(cfg, flag, Value::Bool(b));
            }
        } else if let Some(s) = as_text(&key, v)? {
            assign(cfg, flag, Value::Str(s));
        }
    }
    Ok(())
}

fn apply_key(key: &str, v: &J, cfg: &mut Config, pending: &mut Pending) -> Result<(), ConfigError> {
    match key {
        "client-transport-security" | "peer-transport-security" => {
            return apply_security(key, v, cfg)
        }
        // handled after the other keys, or after validation
        "listen-peer-urls"
        | "listen-client-urls"
        | "initial-advertise-peer-urls"
        | "advertise-client-urls"
        | "listen-metrics-urls"
        | "cors"
        | "host-whitelist"
        | "proxy"
        | "discovery-fallback" => return Ok(()),
        "initial-cluster-state" => {
            if let Some(s) = as_text(key, v)? {
                pending.cluster_state = s;
            }
            return Ok(());
        }
        "logger" => {
            if let Some(s) = as_text(key, v)? {
                pending.logger = s.clone();
                assign(cfg, key, Value::Str(s));
            }
            return Ok(());
        }
        "log-output" => {
            if let Some(l) = as_list(key, v)? {
                pending.log_output = l;
            }
            return Ok(());
        }
        "log-outputs" | "cipher-suites" => {
            if let Some(l) = as_list(key, v)? {
                assign(cfg, key, Value::List(l));
            }
            return Ok(());
        }
        _ => {}
    }
    let value = match key {
        "name"
        | "data-dir"
        | "wal-dir"
        | "discovery-srv"
        | "discovery-srv-name"
        | "discovery-proxy"
        | "discovery"
        | "initial-cluster"
        | "initial-cluster-token"
        | "auto-compaction-mode"
        | "auto-compaction-retention"
        | "auth-token"
        | "experimental-enable-v2v3"
        | "experimental-backend-bbolt-freelist-type"
        | "metrics"
        | "log-level"
        | "log-package-levels" => as_text(key, v)?.map(Value::Str),
        "snapshot-count" => as_u64(key, v, "uint64")?.map(Value::U64),
        "max-snapshots"
        | "max-wals"
        | "heartbeat-interval"
        | "election-timeout"
        | "max-txn-ops"
        | "max-request-bytes"
        | "bcrypt-cost"
        | "auth-token-ttl"
        | "proxy-failure-wait"
        | "proxy-refresh-interval"
        | "proxy-dial-timeout"
        | "proxy-write-timeout"
        | "proxy-read-timeout" => as_u64(key, v, "uint")?.map(Value::U64),
        "max-concurrent-streams" => as_u64(key, v, "uint32")?.map(Value::U64),
        "quota-backend-bytes" => as_i64(key, v, "int64")?.map(Value::I64),
        "backend-batch-limit" | "experimental-compaction-batch-limit" => {
            as_i64(key, v, "int")?.map(Value::I64)
        }
        "initial-election-tick-advance"
        | "strict-reconfig-check"
        | "enable-v2"
        | "pre-vote"
        | "experimental-initial-corrupt-check"
        | "experimental-enable-lease-checkpoint"
        | "experimental-enable-lease-checkpoint-persist"
        | "force-new-cluster"
        | "enable-pprof"
        | "enable-grpc-gateway"
        | "debug"
        | "unsafe-no-fsync" => as_bool(key, v)?.map(Value::Bool),
        "backend-batch-interval"
        | "grpc-keepalive-min-time"
        | "grpc-keepalive-interval"
        | "grpc-keepalive-timeout"
        | "experimental-corrupt-check-time"
        | "experimental-watch-progress-notify-interval"
        | "experimental-warning-apply-duration" => as_duration(key, v)?.map(Value::Dur),
        _ => None, // not a config-file key: ignored, as etcd does
    };
    if let Some(value) = value {
        assign(cfg, key, value);
    }
    Ok(())
}
