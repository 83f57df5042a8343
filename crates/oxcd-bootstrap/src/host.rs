//! The machine's default host: the local address used for the default IPv4 route.

use std::net::{Ipv4Addr, UdpSocket};

/// Reads the default IPv4 route from `/proc/net/route` and returns the local address the
/// kernel would use for it. Connecting a UDP socket sends nothing.
pub fn default_host() -> Result<String, String> {
    let table = std::fs::read_to_string("/proc/net/route").map_err(|e| e.to_string())?;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 3 || cols[1] != "00000000" {
            continue;
        }
        let gw = u32::from_str_radix(cols[2], 16).map_err(|e| e.to_string())?;
        let gw = Ipv4Addr::from(gw.swap_bytes());
        let target = if gw.is_unspecified() {
            Ipv4Addr::new(192, 0, 2, 1)
        } else {
            gw
        };
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        sock.connect((target, 9)).map_err(|e| e.to_string())?;
        let ip = sock.local_addr().map_err(|e| e.to_string())?.ip();
        return Ok(ip.to_string());
    }
    Err("could not find default route".to_string())
}
