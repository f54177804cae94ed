//! Syntax checks for host addresses and `proxy_jump` targets. No DNS lookups: a config must load
//! the same on a plane as in the datacenter.

use std::net::IpAddr;

/// An address is an IP (v4 or v6) or a DNS name; never a URL, a port or a user.
pub(super) fn check_address(addr: &str) -> Result<(), String> {
    if addr.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("'{addr}' is not an IP address or host name");
    if addr.contains('@') {
        return Err(format!("{}; put the user in 'user'", bad()));
    }
    if addr.contains(':') && !addr.contains("::") && addr.matches(':').count() == 1 {
        return Err(format!("{}; put the port in 'port'", bad()));
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let all_numeric = addr
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()));
    if addr.len() > 253 || all_numeric || !addr.split('.').all(valid_label) {
        return Err(bad());
    }
    Ok(())
}

/// `proxy_jump`: `[user@]host[:port]`, where host is an address or a configured host's name.
pub(super) fn check_jump(jump: &str) -> Result<(), String> {
    let rest = match jump.split_once('@') {
        Some((user, rest)) if !user.is_empty() => rest,
        Some(_) => return Err(format!("'{jump}' has an empty user")),
        None => jump,
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        // `[v6]:port` or `[v6]`
        match inner.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => return Err(format!("'{jump}' has an unclosed '['")),
        }
    } else if rest.matches(':').count() == 1 {
        let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
        (host, Some(port))
    } else {
        (rest, None)
    };
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("'{jump}' has an invalid port '{port}'"));
    }
    check_address(host).map_err(|_| format!("'{jump}' is not [user@]host[:port]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in [
            "192.168.1.10",
            "::1",
            "fe80::1",
            "host-1.example.com",
            "localhost",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "999.1.1.1",
            "host name",
            "root@host",
            "host:22",
            "-bad.com",
            "a..b",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jumps() {
        for ok in ["bastion", "admin@bastion:2222", "10.0.0.1", "u@[::1]:22"] {
            assert!(check_jump(ok).is_ok(), "{ok}");
        }
        for bad in ["@host", "host:0", "host:x", "a b"] {
            assert!(check_jump(bad).is_err(), "{bad}");
        }
    }
}
