//! Whether another socket already listens on a TCP address.
//!
//! The shards bind their listeners with `SO_REUSEPORT`, which lets a second engine (or
//! any process of the same user that sets it too) bind the same port and silently take
//! a share of the connections. So before any shard binds, the runtime refuses an
//! address that a socket listens on already. A plain trial bind would not do: the
//! connections of an engine killed a moment ago linger bound to the port (FIN-WAIT,
//! TIME-WAIT) and make it fail although nobody listens, so a restart after a crash
//! would be refused. Instead this reads the kernel's socket tables (`/proc/net/tcp`,
//! `/proc/net/tcp6`) for a socket in the LISTEN state on the same port whose address
//! is the same or a wildcard (or the asked address is one), and counts it only while a
//! process holds it open. A listener of an engine killed a moment ago can outlive its
//! process for a while (io_uring tears down its pending `accept` after the process has
//! gone): no process holds it, it takes no new work, and it must not stop the restart.
//! Where a process's open files cannot be read (another user's, without root), its
//! sockets are assumed held.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The state number of LISTEN in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Whether a socket of this network namespace listens on `addr` (or on a wildcard
/// address of its port, or, when `addr` is a wildcard, on any address of its port).
pub fn someone_listens(addr: SocketAddr) -> std::io::Result<bool> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            // No IPv6 in this kernel: nothing listens there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        inodes.extend(
            listeners(&text)
                .filter(|(l, _)| clashes(*l, addr))
                .map(|(_, inode)| inode),
        );
    }
    if inodes.is_empty() {
        return Ok(false);
    }
    Ok(held_by_a_process(&inodes))
}

/// Whether a process has one of these socket inodes open (or might: a process whose
/// open files cannot be read counts as holding them).
fn held_by_a_process(inodes: &[u64]) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in procs.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            // The process ended meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return true,
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| target.as_os_str() == w.as_str())
            {
                return true;
            }
        }
    }
    false
}

fn clashes(listener: SocketAddr, addr: SocketAddr) -> bool {
    listener.port() == addr.port()
        && (listener.ip() == addr.ip()
            || listener.ip().is_unspecified()
            || addr.ip().is_unspecified())
}

/// The local addresses and inodes of the LISTEN sockets of one table.
fn listeners(text: &str) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        if *state != LISTEN {
            return None;
        }
        Some((parse_local(local)?, inode.parse().ok()?))
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word of the
/// address in the host's byte order, the port in hex.
fn parse_local(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [a] => IpAddr::V4(Ipv4Addr::from(a.to_ne_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, w) in bytes.chunks_exact_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_found_and_a_free_port_is_not() -> std::io::Result<()> {
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = taken.local_addr()?;
        assert!(someone_listens(addr)?);
        let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
        assert!(someone_listens(wildcard)?, "a wildcard bind clashes too");
        drop(taken);
        assert!(!someone_listens(addr)?);
        Ok(())
    }

    #[test]
    fn connections_left_on_a_port_are_not_listeners() -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let client = std::net::TcpStream::connect(addr)?;
        let (served, _) = listener.accept()?;
        drop(listener);
        // The accepted connection is still bound to the port; nobody listens.
        assert!(!someone_listens(addr)?);
        drop((client, served));
        Ok(())
    }

    #[test]
    fn table_addresses_parse() {
        assert_eq!(
            parse_local("0100007F:1F90"),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(
            parse_local("00000000000000000000000000000000:0050"),
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80))
        );
    }
}
