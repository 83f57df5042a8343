//! The fault scenarios: what each breaks, and how it is healed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use crate::cluster::{Cluster, MemberState};
use crate::proxy::{LinkFault, Links};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// SIGKILL a follower, restart it.
    KillFollower,
    /// SIGKILL the leader, restart it.
    KillLeader,
    /// SIGKILL a majority at once, restart them.
    KillMajority,
    /// SIGKILL every member at once, restart them.
    KillAll,
    /// SIGSTOP a follower, SIGCONT it.
    PauseFollower,
    /// SIGSTOP the leader, SIGCONT it.
    PauseLeader,
    /// Cut the leader off from every other member.
    PartitionLeader,
    /// Split the members into a minority and a majority at random.
    PartitionMinority,
    /// One-way: one member's messages to another are held back.
    Blackhole,
    /// Drop a share of every member's peer packets.
    PacketLoss,
    /// Delay every peer link.
    Delay,
    /// Remove a member during load, then add it back with an empty data dir.
    Membership,
    /// One member's data dir is a small tmpfs that the load fills.
    DiskFull,
    /// Hand leadership to a random follower with Maintenance.MoveLeader.
    MoveLeader,
    /// One or two of the kill, pause, network and move-leader faults at once, chosen at random.
    Mixed,
}

/// The faults `Mixed` draws from: those that can overlap without leaving the cluster unable to
/// heal (membership needs a quorum to undo, the full disk is a run-long setting).
const MIXABLE: [Scenario; 10] = [
    Scenario::KillFollower,
    Scenario::KillLeader,
    Scenario::PauseFollower,
    Scenario::PauseLeader,
    Scenario::PartitionLeader,
    Scenario::PartitionMinority,
    Scenario::Blackhole,
    Scenario::PacketLoss,
    Scenario::Delay,
    Scenario::MoveLeader,
];

impl Scenario {
    pub fn all() -> Vec<Scenario> {
        Scenario::value_variants().to_vec()
    }

    pub fn name(&self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// The member whose data dir is a small tmpfs, for the disk-full scenario.
    pub fn small_disk_member(&self, members: usize) -> Option<usize> {
        (*self == Scenario::DiskFull).then_some(members - 1)
    }
}

/// What an injected fault left broken, so it can be undone.
pub enum Injected {
    Nothing,
    Killed(Vec<usize>),
    Paused(Vec<usize>),
    Links,
    PacketLoss,
    Removed(usize),
    Many(Vec<Injected>),
}

async fn leader_or_any(cluster: &Cluster) -> Option<usize> {
    match cluster.leader().await {
        Some(l) => Some(l),
        None => cluster.running().first().copied(),
    }
}

async fn follower(cluster: &Cluster, rng: &mut impl Rng) -> Option<usize> {
    let leader = cluster.leader().await;
    let followers: Vec<usize> = cluster
        .running()
        .into_iter()
        .filter(|&m| Some(m) != leader)
        .collect();
    followers.choose(rng).copied()
}

/// The leader (or any member when there is none), or else a random follower.
async fn one_member(cluster: &Cluster, leader: bool, rng: &mut impl Rng) -> Option<usize> {
    if leader {
        leader_or_any(cluster).await
    } else {
        follower(cluster, rng).await
    }
}

/// Injects one fault of `scenario`; returns what to undo and a description.
pub async fn inject(
    scenario: Scenario,
    cluster: &mut Cluster,
    links: &Arc<Links>,
    rng: &mut (impl Rng + Send),
) -> Result<(Injected, String)> {
    let n = cluster.members();
    let all: Vec<usize> = (0..n).collect();
    Ok(match scenario {
        Scenario::KillFollower | Scenario::KillLeader => {
            let leader = scenario == Scenario::KillLeader;
            let Some(m) = one_member(cluster, leader, rng).await else {
                return Ok((Injected::Nothing, "no target".into()));
            };
            cluster.kill(m);
            (Injected::Killed(vec![m]), format!("kill m{m}"))
        }
        Scenario::KillMajority | Scenario::KillAll => {
            let mut victims = all.clone();
            victims.shuffle(rng);
            if scenario == Scenario::KillMajority {
                victims.truncate(n / 2 + 1);
            }
            for &m in &victims {
                cluster.kill(m);
            }
            let desc = format!("kill {victims:?}");
            (Injected::Killed(victims), desc)
        }
        Scenario::PauseFollower | Scenario::PauseLeader => {
            let leader = scenario == Scenario::PauseLeader;
            let Some(m) = one_member(cluster, leader, rng).await else {
                return Ok((Injected::Nothing, "no target".into()));
            };
            cluster.pause(m);
            (Injected::Paused(vec![m]), format!("pause m{m}"))
        }
        Scenario::PartitionLeader => {
            let Some(l) = leader_or_any(cluster).await else {
                return Ok((Injected::Nothing, "no target".into()));
            };
            let rest: Vec<usize> = all.iter().copied().filter(|&m| m != l).collect();
            links.partition(&[l], &rest);
            (Injected::Links, format!("isolate leader m{l}"))
        }
        Scenario::PartitionMinority => {
            let mut order = all.clone();
            order.shuffle(rng);
            let (minority, majority) = order.split_at((n - 1) / 2);
            links.partition(minority, majority);
            (
                Injected::Links,
                format!("partition {minority:?} | {majority:?}"),
            )
        }
        Scenario::Blackhole => {
            // Half the time from the leader, whose heartbeats then stop reaching one follower.
            let from = if rng.random_bool(0.5) {
                leader_or_any(cluster).await.unwrap_or(0)
            } else {
                rng.random_range(0..n)
            };
            let to = (from + rng.random_range(1..n)) % n;
            links.set(
                from,
                to,
                LinkFault {
                    blocked: true,
                    ..Default::default()
                },
            );
            (Injected::Links, format!("blackhole m{from} -> m{to}"))
        }
        Scenario::PacketLoss => {
            let p = rng.random_range(0.1..0.4);
            for m in 0..n {
                cluster.net.set_packet_loss(m, p)?;
            }
            (
                Injected::PacketLoss,
                format!("drop {:.0}% of peer packets", p * 100.0),
            )
        }
        Scenario::Delay => {
            let base = rng.random_range(20..150);
            for from in 0..n {
                for to in 0..n {
                    if from != to {
                        let jitter = rng.random_range(0..base / 2 + 1);
                        links.set(
                            from,
                            to,
                            LinkFault {
                                blocked: false,
                                delay: Duration::from_millis(base + jitter),
                            },
                        );
                    }
                }
            }
            (Injected::Links, format!("delay peer links ~{base}ms"))
        }
        Scenario::Membership => {
            let Some(m) = follower(cluster, rng).await else {
                return Ok((Injected::Nothing, "no target".into()));
            };
            cluster.remove(m).await?;
            (Injected::Removed(m), format!("remove m{m}"))
        }
        Scenario::Mixed => {
            let count = rng.random_range(1..=2);
            let picks: Vec<Scenario> = MIXABLE.choose_multiple(rng, count).copied().collect();
            let mut injected = Vec::new();
            let mut descs = Vec::new();
            for pick in picks {
                let (i, d) = Box::pin(inject(pick, cluster, links, rng)).await?;
                injected.push(i);
                if !d.starts_with("no target") {
                    descs.push(d);
                }
            }
            (Injected::Many(injected), descs.join(" + "))
        }
        Scenario::MoveLeader => {
            let (Some(l), Some(f)) = (cluster.leader().await, follower(cluster, rng).await) else {
                return Ok((Injected::Nothing, "no target".into()));
            };
            match cluster.move_leader(l, f).await {
                Ok(()) => (Injected::Nothing, format!("move leader m{l} -> m{f}")),
                // Leadership may have moved on by itself since it was looked up.
                Err(e) => (
                    Injected::Nothing,
                    format!("no target: move leader failed: {e:#}"),
                ),
            }
        }
        Scenario::DiskFull => {
            // The load fills the disk by itself; this fault only notices the member it stopped.
            let stopped: Vec<usize> = (0..n)
                .filter(|&m| cluster.states[m] == MemberState::Stopped)
                .collect();
            if stopped.is_empty() {
                (Injected::Nothing, String::new())
            } else {
                (
                    Injected::Killed(stopped.clone()),
                    format!("disk full stopped {stopped:?}"),
                )
            }
        }
    })
}

/// Undoes one injected fault.
pub async fn undo(injected: Injected, cluster: &mut Cluster, links: &Arc<Links>) -> Result<()> {
    match injected {
        Injected::Nothing => {}
        Injected::Killed(ms) => {
            for m in ms {
                cluster.grow_disk(m)?;
                cluster.restart(m)?;
            }
        }
        Injected::Paused(ms) => {
            for m in ms {
                cluster.resume(m);
            }
        }
        Injected::Links => links.heal_all(),
        Injected::PacketLoss => {
            for m in 0..cluster.members() {
                cluster.net.clear_packet_loss(m)?;
            }
        }
        Injected::Removed(m) => cluster.add_back(m).await?,
        Injected::Many(all) => {
            for injected in all.into_iter().rev() {
                Box::pin(undo(injected, cluster, links)).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[test]
    fn every_scenario_has_a_distinct_command_line_name() {
        let names: std::collections::BTreeSet<String> =
            Scenario::all().iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Scenario::all().len());
        assert!(names.contains("kill-leader") && names.contains("disk-full"));
        assert_eq!(Scenario::DiskFull.small_disk_member(3), Some(2));
        assert_eq!(Scenario::KillAll.small_disk_member(3), None);
    }
}
