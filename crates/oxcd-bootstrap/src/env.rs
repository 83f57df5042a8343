//! `ETCD_*` environment variables (used only when no config file is given).

use std::collections::BTreeSet;

use crate::config::Config;
use crate::error::ConfigError;
use crate::flags::{assign, env_name, ignored_warning, parse_value, Kind, FLAGS};
use crate::load::Pending;
use crate::Diag;

/// Applies the variables of every flag not given on the command line (`cmdline`), then checks
/// the environment for conflicts and unknown `ETCD_*` names, as etcd does. Returns the flags
/// set from the environment.
///
/// * an empty value counts as unset;
/// * a variable whose flag is also on the command line is a critical error, even when empty;
/// * an unknown `ETCD_*` variable is a warning;
/// * a bad value is reported after the checks above (the last one, in flag-name order).
pub fn apply_env(
    cfg: &mut Config,
    pending: &mut Pending,
    vars: &[(String, String)],
    cmdline: &BTreeSet<&'static str>,
    diags: &mut Vec<Diag>,
) -> Result<BTreeSet<&'static str>, ConfigError> {
    let getenv = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let already: BTreeSet<String> = cmdline.iter().map(|n| env_name(n)).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut from_env = BTreeSet::new();
    let mut bad: Option<ConfigError> = None;

    let mut specs: Vec<_> = FLAGS.iter().collect();
    specs.sort_by_key(|s| s.name);
    for spec in specs {
        let key = env_name(spec.name);
        if already.contains(&key) {
            continue;
        }
        let Some(val) = getenv(&key).filter(|v| !v.is_empty()) else {
            continue;
        };
        used.insert(key.clone());
        match parse_value(spec, val) {
            Ok(v) => {
                if spec.kind == Kind::Ignored {
                    diags.push(ignored_warning(spec.name));
                }
                pending.record(spec.name, val, &v);
                assign(cfg, spec.name, v);
                from_env.insert(spec.name);
                diags.push(Diag::log(
                    'I',
                    "pkg/flags",
                    format!("recognized and used environment variable {key}={val}"),
                ));
            }
            Err(reason) => {
                bad = Some(ConfigError::InvalidEnvValue {
                    value: val.to_string(),
                    key,
                    reason,
                });
            }
        }
    }

    for (k, v) in vars {
        if used.contains(k) {
            continue;
        }
        if already.contains(k) {
            return Err(ConfigError::ConflictingEnv(k.clone()));
        }
        if k.starts_with("ETCD_") {
            diags.push(Diag::log(
                'W',
                "pkg/flags",
                format!("unrecognized environment variable {k}={v}"),
            ));
        }
    }
    match bad {
        Some(e) => Err(e),
        None => Ok(from_env),
    }
}
