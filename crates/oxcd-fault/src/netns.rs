//! One network namespace per member, joined by a bridge in the root namespace.
//!
//! Namespaces give every member its own address, so the peer proxy can tell who dialled it and
//! iptables can drop a member's packets without touching anyone else's. The harness itself
//! stays in the root namespace and reaches members over the bridge.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const BRIDGE: &str = "oxfbr0";
/// The bridge's own address: where the harness (clients and peer proxy) lives.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);

pub fn member_ip(member: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, member as u8 + 1)
}

pub fn namespace(member: usize) -> String {
    format!("oxf{member}")
}

/// Runs a command and fails with its stderr when it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn run_in(member: usize, program: &str, args: &[&str]) -> Result<()> {
    let ns = namespace(member);
    let mut full = vec!["netns", "exec", ns.as_str(), program];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// The namespaces and bridge; removed again on drop.
pub struct Network {
    members: usize,
}

impl Network {
    pub fn setup(members: usize) -> Result<Network> {
        teardown();
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])
            .context("creating the bridge (the harness needs root)")?;
        run(
            "ip",
            &["addr", "add", &format!("{HOST_IP}/24"), "dev", BRIDGE],
        )?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        for m in 0..members {
            let ns = namespace(m);
            let host_end = format!("oxfv{m}");
            run("ip", &["netns", "add", &ns])?;
            run_in(m, "ip", &["link", "set", "lo", "up"])?;
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &host_end, "master", BRIDGE])?;
            run("ip", &["link", "set", &host_end, "up"])?;
            let addr = format!("{}/24", member_ip(m));
            run_in(m, "ip", &["addr", "add", &addr, "dev", "eth0"])?;
            run_in(m, "ip", &["link", "set", "eth0", "up"])?;
        }
        Ok(Network { members })
    }

    /// Drops a random share of the member's peer packets, both ways (real loss: TCP retransmits).
    pub fn set_packet_loss(&self, member: usize, probability: f64) -> Result<()> {
        self.clear_packet_loss(member)?;
        let p = format!("{probability:.3}");
        for (chain, dir, port) in [
            ("INPUT", "--dport", "2380"),
            ("OUTPUT", "--sport", "2380"),
            ("INPUT", "--sport", "23800:23899"),
            ("OUTPUT", "--dport", "23800:23899"),
        ] {
            run_in(
                member,
                "iptables",
                &[
                    "-A",
                    chain,
                    "-p",
                    "tcp",
                    dir,
                    port,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    pub fn clear_packet_loss(&self, member: usize) -> Result<()> {
        run_in(member, "iptables", &["-F", "INPUT"])?;
        run_in(member, "iptables", &["-F", "OUTPUT"])
    }

    /// The command that runs `program` inside the member's namespace.
    pub fn command_in(&self, member: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &namespace(member), program]);
        cmd
    }

    pub fn members(&self) -> usize {
        self.members
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        teardown();
    }
}

/// Best effort, and over every possible member: leftovers of an earlier run that was killed
/// (perhaps with more members) must not break this one.
fn teardown() {
    for m in 0..crate::proxy::MAX_MEMBERS {
        let _ = run("ip", &["link", "del", &format!("oxfv{m}")]);
        let _ = run("ip", &["netns", "del", &namespace(m)]);
    }
    let _ = run("ip", &["link", "del", BRIDGE]);
}
