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
//! is the same or a wildcard (or the asked address is one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The state number of LISTEN in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Whether a socket of this network namespace listens on `addr` (or on a wildcard
/// address of its port, or, when `addr` is a wildcard, on any address of its port).
pub fn someone_listens(addr: SocketAddr) -> std::io::Result<bool> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            // No IPv6 in this kernel: nothing listens there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if listeners(&text).any(|l| clashes(l, addr)) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn clashes(listener: SocketAddr, addr: SocketAddr) -> bool {
    listener.port() == addr.port()
        && (listener.ip() == addr.ip()
            || listener.ip().is_unspecified()
            || addr.ip().is_unspecified())
}

/// The local addresses of the LISTEN sockets of one table.
fn listeners(text: &str) -> impl Iterator<Item = SocketAddr> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        (state == LISTEN).then(|| parse_local(local)).flatten()
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
