//! Picks a host's package manager from `/etc/os-release`, unless the config names one.
//!
//! Only `ID`, `ID_LIKE` and `VERSION_ID` decide; an OS that matches none of the known families
//! is reported as unsupported rather than guessed at.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::apt::Apt;
use super::dnf::Dnf;
use super::parse::os_release::{OsInfo, parse_os_release};
use super::step::Step;
use super::{Error, ManagerKind, SharedManager};
use crate::config::ManagerChoice;
use crate::remote::Executor;

const APT_FAMILY: &[&str] = &["debian", "ubuntu", "raspbian", "linuxmint", "pop"];
const RPM_FAMILY: &[&str] = &[
    "fedora",
    "rhel",
    "centos",
    "rocky",
    "almalinux",
    "ol",
    "amzn",
];

/// Which manager an OS uses; `Err(UnsupportedOs)` when it is none of apt, dnf or yum.
///
/// Proxmox VE ships Debian's os-release, so `ID=debian` covers it. RHEL-family releases before
/// 8 (CentOS 7, RHEL 7) and Amazon Linux 2 only have yum.
pub fn manager_for(os: &OsInfo) -> Result<ManagerKind, Error> {
    let ids = std::iter::once(os.id.as_str()).chain(os.id_like.iter().map(String::as_str));
    for id in ids {
        if APT_FAMILY.contains(&id) {
            return Ok(ManagerKind::Apt);
        }
        if RPM_FAMILY.contains(&id) {
            return Ok(if uses_yum(os) {
                ManagerKind::Yum
            } else {
                ManagerKind::Dnf
            });
        }
    }
    let name = if os.pretty_name.is_empty() {
        os.id.clone()
    } else {
        os.pretty_name.clone()
    };
    Err(Error::UnsupportedOs(name))
}

fn uses_yum(os: &OsInfo) -> bool {
    let major: u32 = os
        .version_id
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    match os.id.as_str() {
        "fedora" => false,
        "amzn" => major == 2,
        // rhel, centos, ol, and rebuilds that only say ID_LIKE="rhel": yum before release 8.
        _ => major > 0 && major < 8,
    }
}

/// The manager for `kind`.
pub fn manager(kind: ManagerKind) -> SharedManager {
    match kind {
        ManagerKind::Apt => Arc::new(Apt::new()),
        ManagerKind::Dnf => Arc::new(Dnf::using_dnf()),
        ManagerKind::Yum => Arc::new(Dnf::using_yum()),
    }
}

/// Reads the host's os-release.
pub(super) async fn os_release(
    exec: &dyn Executor,
    cancel: &CancellationToken,
) -> Result<OsInfo, Error> {
    const STEP: &str = "reading /etc/os-release";
    let script = "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release";
    let out = Step::query(STEP, script).run_ok(exec, cancel).await?;
    Ok(parse_os_release(&out.stdout))
}

/// The manager the config asks for, or the one os-release implies for `auto`. `Ok(None)` for
/// `manager = "none"`: tendhost only inventories that host.
pub async fn detect(
    exec: &dyn Executor,
    choice: ManagerChoice,
    cancel: &CancellationToken,
) -> Result<Option<SharedManager>, Error> {
    let kind = match choice {
        ManagerChoice::None => return Ok(None),
        ManagerChoice::Apt => ManagerKind::Apt,
        ManagerChoice::Dnf => ManagerKind::Dnf,
        ManagerChoice::Yum => ManagerKind::Yum,
        ManagerChoice::Auto => manager_for(&os_release(exec, cancel).await?)?,
    };
    Ok(Some(manager(kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, like: &str, version: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            id_like: like.split_whitespace().map(String::from).collect(),
            version_id: version.into(),
            pretty_name: format!("{id} {version}"),
        }
    }

    #[test]
    fn maps_every_supported_family() {
        let cases = [
            (os("debian", "", "12"), ManagerKind::Apt),
            (os("ubuntu", "debian", "24.04"), ManagerKind::Apt),
            (os("raspbian", "debian", "11"), ManagerKind::Apt),
            (os("fedora", "", "40"), ManagerKind::Dnf),
            (os("rhel", "fedora", "9.4"), ManagerKind::Dnf),
            (os("centos", "rhel fedora", "9"), ManagerKind::Dnf),
            (os("centos", "rhel fedora", "7"), ManagerKind::Yum),
            (os("rocky", "rhel centos fedora", "9.3"), ManagerKind::Dnf),
            (
                os("almalinux", "rhel centos fedora", "8.10"),
                ManagerKind::Dnf,
            ),
            (os("amzn", "centos rhel fedora", "2"), ManagerKind::Yum),
            (os("amzn", "fedora", "2023"), ManagerKind::Dnf),
            (os("someclone", "rhel", "7.9"), ManagerKind::Yum),
        ];
        for (info, expected) in cases {
            assert_eq!(manager_for(&info).unwrap(), expected, "{info:?}");
        }
    }

    #[test]
    fn proxmox_os_release_is_debian() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        assert_eq!(
            manager_for(&parse_os_release(text)).unwrap(),
            ManagerKind::Apt
        );
    }

    #[test]
    fn unknown_os_is_unsupported_not_guessed() {
        let err = manager_for(&os("alpine", "", "3.20")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported OS 'alpine 3.20': tendhost knows apt, dnf and yum systems"
        );
        assert!(manager_for(&OsInfo::default()).is_err());
    }
}
