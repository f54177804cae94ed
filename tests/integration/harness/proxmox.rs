//! A Proxmox VE stand-in inside a harness root: `pveversion`, `pct list` and `qm list` print
//! the samples in `tests/fixtures/proxmox` (Proxmox VE 8's formats, a Lock column and a
//! snapshot section included), `qm guest cmd VMID network-get-interfaces` and `pvesh get
//! /nodes/NODE/lxc/VMID/interfaces` the guest agent's and the containers' address lists (VM
//! 100's agent hangs, as a dead agent does, until `timeout` ends it), and `/etc/pve` holds the
//! guests' configs as Proxmox keeps them.
//! Everything else about the host is the real Debian root it is installed in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::debroot::DebRoot;

const LXC: [u32; 3] = [101, 102, 105];
const VMS: [u32; 3] = [100, 103, 104];

/// Makes `root` answer like a Proxmox VE host with the fixtures' guests.
pub(crate) fn make_hypervisor(root: &DebRoot) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxmox");
    let share = root.path("usr/share/tendhost-pve");
    fs::create_dir_all(&share).expect("creating the stand-in's share dir");
    for sample in [
        "pveversion.txt",
        "pct-list.txt",
        "qm-list.txt",
        "qm-agent-104.json",
        "lxc-101-interfaces.json",
        "lxc-105-interfaces.json",
    ] {
        fs::copy(fixtures.join(sample), share.join(sample)).expect("copying a sample");
    }
    let tool = |name: &str, body: &str| {
        let path = root.path(&format!("usr/bin/{name}"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stand-in");
    };
    tool("pveversion", "cat /usr/share/tendhost-pve/pveversion.txt");
    tool(
        "pct",
        "case \"$1\" in\n  list) cat /usr/share/tendhost-pve/pct-list.txt ;;\n  \
         *) echo \"pct: the stand-in knows only 'list'\" >&2; exit 2 ;;\nesac",
    );
    tool(
        "qm",
        "case \"$1 $2 $4\" in\n  \
         'list  ') cat /usr/share/tendhost-pve/qm-list.txt ;;\n  \
         'guest cmd network-get-interfaces')\n    \
         if [ \"$3\" = 100 ]; then exec sleep 600; fi\n    \
         cat \"/usr/share/tendhost-pve/qm-agent-$3.json\" ;;\n  \
         *) echo \"qm: the stand-in knows only 'list' and the agent's interfaces\" >&2; exit 2 ;;\nesac",
    );
    tool(
        "pvesh",
        "case \"$1 $2 $3 $4\" in\n  \
         \"get /nodes/$(uname -n | cut -d. -f1)/lxc/\"*\"/interfaces --output-format json\")\n    \
         id=${2#/nodes/*/lxc/}; id=${id%/interfaces}\n    \
         cat \"/usr/share/tendhost-pve/lxc-$id-interfaces.json\" ;;\n  \
         *) echo \"pvesh: the stand-in knows only the LXC interfaces\" >&2; exit 2 ;;\nesac",
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
