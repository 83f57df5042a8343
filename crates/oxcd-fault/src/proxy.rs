//! A TCP proxy on every member's peer URL, so faults can be set per directed link.
//!
//! Member m advertises `http://10.77.0.254:{23800+m}` as its peer URL and listens on
//! `10.77.0.{m+1}:2380`. Every peer connection to m therefore passes through here, and the
//! dialler's namespace address says which member it is. Bytes flowing from member a to member b
//! (requests on connections a dialled to b, responses on connections b dialled to a) can be held
//! back (a blackhole that TCP outlasts: nothing is lost, it arrives when the link heals, as
//! retransmission would deliver it) or delayed.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::netns::{member_ip, HOST_IP};

pub const MAX_MEMBERS: usize = 8;

pub fn proxy_port(member: usize) -> u16 {
    23800 + member as u16
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct LinkFault {
    /// Bytes from `from` to `to` wait until the link heals.
    pub blocked: bool,
    pub delay: Duration,
}

/// Faults per directed link `[from][to]`.
#[derive(Default)]
pub struct Links {
    faults: Mutex<[[LinkFault; MAX_MEMBERS]; MAX_MEMBERS]>,
}

impl Links {
    pub fn get(&self, from: usize, to: usize) -> LinkFault {
        self.faults.lock().map(|f| f[from][to]).unwrap_or_default()
    }

    pub fn set(&self, from: usize, to: usize, fault: LinkFault) {
        if let Ok(mut f) = self.faults.lock() {
            f[from][to] = fault;
        }
    }

    pub fn heal_all(&self) {
        if let Ok(mut f) = self.faults.lock() {
            *f = Default::default();
        }
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                let blocked = LinkFault {
                    blocked: true,
                    ..Default::default()
                };
                self.set(x, y, blocked);
                self.set(y, x, blocked);
            }
        }
    }
}

/// Starts the proxies for `members` members; they run until the runtime ends.
pub async fn start(members: usize, links: Arc<Links>) -> Result<()> {
    for m in 0..members {
        let listener = TcpListener::bind(SocketAddr::new(HOST_IP.into(), proxy_port(m))).await?;
        let links = links.clone();
        tokio::spawn(async move {
            while let Ok((conn, from)) = listener.accept().await {
                let links = links.clone();
                tokio::spawn(async move {
                    let _ = forward(conn, from, m, links).await;
                });
            }
        });
    }
    Ok(())
}

fn member_of(addr: SocketAddr) -> Option<usize> {
    (0..MAX_MEMBERS).find(|&m| addr.ip() == IpAddr::V4(member_ip(m)))
}

async fn forward(client: TcpStream, from: SocketAddr, to: usize, links: Arc<Links>) -> Result<()> {
    let upstream = TcpStream::connect(SocketAddr::new(member_ip(to).into(), 2380)).await?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let Some(from) = member_of(from) else {
        // Not a member (a probe from the harness): no faults apply.
        let (mut c, mut u) = (client, upstream);
        tokio::io::copy_bidirectional(&mut c, &mut u).await?;
        return Ok(());
    };
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let up = pump(cr, uw, from, to, links.clone());
    let down = pump(ur, cw, to, from, links);
    // When either side closes, the whole connection goes, as a real one would.
    tokio::select! { _ = up => {}, _ = down => {} }
    Ok(())
}

/// Copies bytes travelling from member `src` to member `dst`, applying that link's faults.
async fn pump(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    src: usize,
    dst: usize,
    links: Arc<Links>,
) {
    // Bounded, so a held-back link pushes back on the sender the way a full TCP window does.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let write = async move {
        while let Some((read_at, chunk)) = rx.recv().await {
            loop {
                let fault = links.get(src, dst);
                if fault.blocked {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                if !fault.delay.is_zero() {
                    tokio::time::sleep_until(read_at + fault.delay).await;
                }
                break;
            }
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    // Joined, not raced: after the sender's EOF, what is queued is still delivered.
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_blocks_both_ways_between_groups_only() {
        let links = Links::default();
        links.partition(&[0], &[1, 2]);
        assert!(links.get(0, 1).blocked && links.get(1, 0).blocked);
        assert!(links.get(0, 2).blocked && links.get(2, 0).blocked);
        assert!(!links.get(1, 2).blocked && !links.get(2, 1).blocked);
        links.heal_all();
        assert_eq!(links.get(0, 1), LinkFault::default());
    }

    #[test]
    fn members_are_known_by_their_namespace_address() {
        assert_eq!(
            member_of(SocketAddr::new(member_ip(2).into(), 40000)),
            Some(2)
        );
        assert_eq!(member_of(SocketAddr::new(HOST_IP.into(), 40000)), None);
    }
}
