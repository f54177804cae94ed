//! A Proxmox VE stand-in inside a harness root: `pveversion`, `pct list`, `qm list`,
//! `qm guest cmd VMID network-get-interfaces` and `pvesh get /nodes/NODE/lxc/VMID/interfaces`
//! print the samples in `tests/fixtures/proxmox` (Proxmox VE 8's formats, a Lock column and a
//! snapshot section included), and `/etc/pve` holds the guests' configs as Proxmox keeps them.
//! VM 100's agent hangs. Everything else about the host is the real Debian root it is installed
//! in (its coreutils `timeout` bounds the guest calls, as on a real node).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::debroot::DebRoot;

const LXC: [u32; 3] = [101, 102, 105];
const VMS: [u32; 3] = [100, 103, 104];
/// The running VMs with the guest agent on, and the running LXCs, in the samples.
const AGENTS: [u32; 2] = [100, 104];
const RUNNING_LXC: [u32; 2] = [101, 105];
/// What VM 104's agent reports on `ens18` in the sample (a DHCP lease).
pub(crate) const DHCP_VM_ADDRESS: &str = "192.168.1.104";

/// Makes `root` answer like a Proxmox VE host with the fixtures' guests.
pub(crate) fn make_hypervisor(root: &DebRoot) {
    make_hypervisor_with(root, DHCP_VM_ADDRESS);
}

/// Like [`make_hypervisor`], with VM 104's guest agent reporting `dhcp_vm_address` instead of
/// the sample's lease: a test's own reachable address for "a DHCP VM".
pub(crate) fn make_hypervisor_with(root: &DebRoot, dhcp_vm_address: &str) {
    assert!(
        root.path("usr/bin/timeout").exists(),
        "the Proxmox stand-in needs coreutils' timeout in its root"
    );
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxmox");
    let share = root.path("usr/share/tendhost-pve");
    fs::create_dir_all(&share).expect("creating the stand-in's share dir");
    let mut samples: Vec<String> = ["pveversion.txt", "pct-list.txt", "qm-list.txt"]
        .map(String::from)
        .to_vec();
    samples.extend(AGENTS.map(|id| format!("qm-agent-{id}.json")));
    samples.extend(RUNNING_LXC.map(|id| format!("lxc-{id}-interfaces.json")));
    for sample in &samples {
        let text = fs::read_to_string(fixtures.join(sample)).expect("reading a sample");
        let text = text.replace(
            &format!("\"{DHCP_VM_ADDRESS}\""),
            &format!("\"{dhcp_vm_address}\""),
        );
        fs::write(share.join(sample), text).expect("copying a sample");
    }
    let tool = |name: &str, body: &str| {
        let path = root.path(&format!("usr/bin/{name}"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stand-in");
    };
    let share = "/usr/share/tendhost-pve";
    tool("pveversion", &format!("cat {share}/pveversion.txt"));
    tool(
        "pct",
        &format!(
            "case \"$1\" in\n  list) cat {share}/pct-list.txt ;;\n  \
             *) echo \"pct: the stand-in knows only 'list'\" >&2; exit 2 ;;\nesac"
        ),
    );
    // Proxmox's own answer for a VM whose agent is off or not running; VM 100's agent hangs,
    // as a dead one does, until the script's `timeout` ends the call.
    tool(
        "qm",
        &format!(
            "case \"$1 $2 $4\" in\n  \"list  \") cat {share}/qm-list.txt ;;\n  \
             \"guest cmd network-get-interfaces\")\n    \
             if [ \"$3\" = 100 ]; then exec sleep 600; fi\n    \
             [ -r {share}/qm-agent-$3.json ] && exec cat {share}/qm-agent-$3.json\n    \
             echo 'QEMU guest agent is not running' >&2; exit 255 ;;\n  \
             *) echo \"qm: the stand-in knows only 'list' and 'guest cmd'\" >&2; exit 2 ;;\nesac"
        ),
    );
    tool(
        "pvesh",
        &format!(
            "node=$(uname -n); node=${{node%%.*}}\n\
             id=${{2#/nodes/$node/lxc/}}; id=${{id%/interfaces}}\n\
             if [ \"$1 $3 $4\" = 'get --output-format json' ] && [ -r {share}/lxc-$id-interfaces.json ]; then\n  \
             exec cat {share}/lxc-$id-interfaces.json\nfi\n\
             echo \"pvesh: the stand-in knows only 'get /nodes/$node/lxc/VMID/interfaces' (got: $*)\" >&2; exit 2"
        ),
    );
    for (dir, prefix, ids) in [("lxc", "lxc", &LXC[..]), ("qemu-server", "qemu", &VMS[..])] {
        let target = root.path(&format!("etc/pve/{dir}"));
        fs::create_dir_all(&target).expect("creating /etc/pve");
        for id in ids {
            fs::copy(
                fixtures.join(format!("{prefix}-{id}.conf")),
                target.join(format!("{id}.conf")),
            )
            .expect("copying a guest config");
        }
    }
}

/// An IPv4 address of this machine that is neither loopback nor link-local (what a guest agent
/// would report for a VM), from `ip -4 -o addr show scope global`.
pub(crate) fn routable_local_ipv4() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("running 'ip' (iproute2) to find a non-loopback address");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace().skip_while(|w| *w != "inet");
            words.nth(1)?.split('/').next().map(str::to_string)
        })
        .expect("this test needs a non-loopback IPv4 address on this machine (none in 'ip addr')")
}
