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
