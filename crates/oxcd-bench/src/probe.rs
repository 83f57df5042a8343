//! Baselines for single-client latency: what one fdatasync costs on a filesystem, and what one
//! loopback TCP round trip costs. A member cannot acknowledge a write faster than one sync
//! plus one client round trip, so these bound the single-client put latency from below.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::Report;

/// Appends `size`-byte records to a preallocated file in `dir` and fdatasyncs after each, like
/// a WAL append (the preallocation keeps the file size, and so the metadata, unchanged).
pub fn disk_sync(dir: &Path, count: usize, size: usize) -> anyhow::Result<Report> {
    let path = dir.join(format!(".oxcd-bench-sync-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let result = (|| {
        let len = (count * size.max(1)) as u64 + 4096;
        file.set_len(len)?;
        file.sync_all()?;
        let record = vec![0x5au8; size.max(1)];
        let mut lat = Vec::with_capacity(count);
        let started = Instant::now();
        for i in 0..count {
            let t = Instant::now();
            std::os::unix::fs::FileExt::write_all_at(&file, &record, (i * record.len()) as u64)?;
            file.sync_data()?;
            lat.push(t.elapsed());
        }
        Ok(Report::new(lat, 0, started.elapsed()))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Ping-pongs `size`-byte messages over one TCP connection on `addr` (port 0: any), one
/// message in flight, and reports the round-trip times.
pub fn loopback_rtt(addr: &str, count: usize, size: usize) -> anyhow::Result<Report> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let size = size.max(1);
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    });
    let mut c = TcpStream::connect(local)?;
    c.set_nodelay(true)?;
    let mut buf = vec![0u8; size];
    let mut lat = Vec::with_capacity(count);
    let started = Instant::now();
    // A few unmeasured round trips first: the first ones pay for connection setup.
    for i in 0..count + 10 {
        let t = Instant::now();
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
        if i >= 10 {
            lat.push(t.elapsed());
        }
    }
    drop(c);
    let _ = server.join();
    Ok(Report::new(
        lat,
        0,
        started.elapsed().max(Duration::from_nanos(1)),
    ))
}
