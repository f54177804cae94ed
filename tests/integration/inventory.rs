//! Inventory from real hosts: the fallback probe inside a Debian root (no osquery there), and
//! docker facts from this machine's daemon.

use tendhost::inventory::{self, InventorySource};
use tokio_util::sync::CancellationToken;

use crate::harness::debroot::DebRoot;

#[tokio::test]
async fn probes_a_debian_root_without_osquery() {
    let host = DebRoot::new("inventory");
    let inv = inventory::collect(&host.executor(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(inv.source, InventorySource::Probe);
    assert_eq!(inv.os.id, "debian");
    assert_eq!(inv.os.version_id, "12");
    assert_eq!(inv.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(inv.kernel, host.sh("uname -r").trim());
    assert_eq!(inv.hostname, host.sh("uname -n").trim());
    assert!(inv.uptime_secs > 0);
    let dpkg: usize = host
        .sh("dpkg-query -W -f '${db:Status-Abbrev}\\n' | grep -c '^ii'")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(inv.installed_packages, dpkg);
    assert!(inv.containers.is_empty(), "no docker inside the root");
}

/// osquery is not packaged for Debian, so this host gets a stand-in `osqueryi` that answers the
/// queries from the root's real state (and fails the docker ones, as osquery does without a
/// docker socket). It proves the script plumbing (detection, one query per section, a failing
/// table becoming `[]`) on a real shell; the JSON parsing itself is tested on samples.
#[tokio::test]
async fn uses_osqueryi_when_the_host_has_it() {
    use std::os::unix::fs::PermissionsExt;
    let host = DebRoot::new("inventory-osquery");
    let stand_in = host.path("usr/local/bin/osqueryi");
    std::fs::write(
        &stand_in,
        r#"#!/bin/sh
[ "$1" = --json ] || exit 2
case "$2" in
  *os_version*) echo '[{"name":"Debian GNU/Linux","version":"12 (bookworm)","platform":"debian","platform_like":""}]' ;;
  *kernel_info*) printf '[{"version":"%s"}]\n' "$(uname -r)" ;;
  *system_info*) printf '[{"hostname":"%s"}]\n' "$(uname -n)" ;;
  *uptime*) printf '[{"total_seconds":"%s"}]\n' "$(cut -d. -f1 /proc/uptime)" ;;
  *deb_packages*) printf '[{"count":"%s"}]\n' "$(dpkg-query -W | wc -l)" ;;
  *rpm_packages*) echo '[{"count":"0"}]' ;;
  *) echo "Error: no such table" >&2; exit 1 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();

    let inv = inventory::collect(&host.executor(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(inv.source, InventorySource::Osquery);
    assert_eq!(inv.os.id, "debian");
    assert_eq!(inv.os.version_id, "12");
    assert_eq!(inv.kernel, host.sh("uname -r").trim());
    assert_eq!(
        inv.installed_packages,
        host.sh("dpkg-query -W | wc -l")
            .trim()
            .parse::<usize>()
            .unwrap()
    );
    assert!(inv.uptime_secs > 0);
    assert!(inv.containers.is_empty() && inv.images.is_empty());
}
