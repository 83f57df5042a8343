//! `--help`, the short usage shown after flag errors, and `--version`.

use crate::flags::{Kind, FLAGS};

/// The etcd release whose behaviour oxcd reproduces.
pub const ETCD_VERSION: &str = "3.4.23";
/// The cluster version a 3.4 member reports.
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

/// The short usage text printed (to stderr) after a flag error and before `--help` output.
pub fn usage_text() -> String {
    "\
Usage:

  etcd [flags]
    Run an etcd-compatible (oxcd) server.

  etcd --version
    Print the version and exit.

  etcd -h | --help
    Print this help and exit.

  etcd --config-file <path>
    Take every setting from a YAML file; other flags and ETCD_* variables are then ignored.
"
    .to_string()
}

/// The flag reference printed (to stdout) by `--help`.
pub fn help_text() -> String {
    let mut out = String::new();
    out.push_str("Flags (any flag may also be given as ETCD_<NAME> in the environment, e.g.\n");
    out.push_str(
        "--initial-cluster-token as ETCD_INITIAL_CLUSTER_TOKEN; the command line wins):\n",
    );
    let mut section = "";
    for spec in FLAGS
        .iter()
        .filter(|s| !s.help.is_empty() && !s.section.is_empty())
    {
        if spec.section != section {
            section = spec.section;
            out.push_str(&format!("\n{section}:\n"));
        }
        let arg = match spec.kind {
            Kind::Bool => String::new(),
            _ => format!(" '{}'", spec.default),
        };
        let default = if spec.kind == Kind::Bool {
            format!(" (default {})", spec.default)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  --{}{arg}\n      {}{default}\n",
            spec.name, spec.help
        ));
    }
    out
}

/// Go-style architecture name of this build.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `--version` output: etcd's four lines, with the Go-specific ones replaced:
/// `Git SHA: oxcd-<crate version>`, `Rust Version: <rustc version>`, `OS/Arch: <os>/<arch>`.
pub fn version_text() -> String {
    format!(
        "etcd Version: {ETCD_VERSION}\nGit SHA: oxcd-{}\nRust Version: {}\nOS/Arch: {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("OXCD_RUSTC_VERSION").unwrap_or("unknown"),
        std::env::consts::OS,
        go_arch()
    )
}
