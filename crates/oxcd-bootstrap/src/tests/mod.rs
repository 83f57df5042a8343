//! Behaviour tests of the configuration pipeline and the bootstrap checks.

mod cluster;
mod file;
mod parse;

use crate::load::{load_with_default_host, Action, Loaded};
use crate::{Config, ConfigError, Diag};

pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> Loaded {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with_default_host(&args, &env, || Err("no default route".to_string()))
}

pub(crate) fn cfg(args: &[&str]) -> Config {
    cfg_env(args, &[])
}

pub(crate) fn cfg_env(args: &[&str], env: &[(&str, &str)]) -> Config {
    match run(args, env).result {
        Ok(Action::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    }
}

pub(crate) fn err(args: &[&str]) -> ConfigError {
    err_env(args, &[])
}

pub(crate) fn err_env(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
    match run(args, env).result {
        Err(e) => e,
        other => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

pub(crate) fn has_diag(l: &Loaded, level: char, text: &str) -> bool {
    l.diags
        .iter()
        .any(|d| matches!(d, Diag::Log { level: lv, msg, .. } if *lv == level && msg == text))
}
