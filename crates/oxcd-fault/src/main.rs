//! `oxcd-fault`: runs a cluster under recorded client load while injecting faults, then checks
//! that what the clients saw is linearizable, that every watcher saw the store's history without
//! gaps or duplicates, that no acknowledged write was lost, and that the members converge.
//!
//! Needs root: every member runs in its own network namespace (see `netns`).

mod cluster;
mod faults;
mod lease;
mod netns;
mod proxy;
mod run;
mod watchers;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::faults::Scenario;

#[derive(Parser, Clone)]
#[command(
    name = "oxcd-fault",
    about = "Fault injection with linearizability checking"
)]
pub struct Args {
    /// The server binary (oxcd, or etcd to check the reference the same way).
    #[arg(long, default_value = "target/release/oxcd")]
    pub bin: PathBuf,
    /// Members in the cluster (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Scenarios to run; all of them when none is given.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,
    /// Runs of each scenario.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// How long the load and faults last in each run, in seconds.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Concurrent KV clients.
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Keys the KV clients share (fewer keys, more contention).
    #[arg(long, default_value_t = 6)]
    pub keys: usize,
    /// Recorded watchers.
    #[arg(long, default_value_t = 3)]
    pub watchers: u32,
    /// Where runs keep their data, logs, and the histories of failed runs.
    #[arg(long, default_value = "target/fault-runs")]
    pub out: PathBuf,
    /// Seed for the first run; later runs add their index.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Read with serializable gets, which a partitioned member answers from its stale state.
    /// Not a test of the server: a check that the checker catches what it should.
    #[arg(long)]
    pub stale_reads: bool,
    /// Extra flags for every member, space-separated. The default snapshots often, so members
    /// that rejoin also catch up from snapshots.
    #[arg(
        long,
        allow_hyphen_values = true,
        value_delimiter = ' ',
        default_value = "--snapshot-count=1000"
    )]
    pub member_flags: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(1..=proxy::MAX_MEMBERS).contains(&args.members) {
        eprintln!("--members must be between 1 and {}", proxy::MAX_MEMBERS);
        return ExitCode::from(2);
    }
    let scenarios = if args.scenario.is_empty() {
        Scenario::all()
    } else {
        args.scenario.clone()
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut failed = 0;
    let mut total = 0;
    for scenario in &scenarios {
        for run_index in 0..args.runs {
            total += 1;
            let run_seed = seed.wrapping_add(total as u64);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("tokio: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // A runtime per run, so its proxies and clients are all gone before the next one.
            let result = runtime.block_on(run::run(&args, *scenario, run_index, run_seed));
            runtime.shutdown_timeout(Duration::from_secs(2));
            match result {
                Ok(summary) => {
                    println!("{summary}");
                    if !summary.passed() {
                        failed += 1;
                    }
                }
                Err(e) => {
                    println!(
                        "scenario={} run={run_index} seed={run_seed} error: {e:#}",
                        scenario.name()
                    );
                    failed += 1;
                }
            }
        }
    }
    println!("{total} runs, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
