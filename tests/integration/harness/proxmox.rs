//! A Proxmox VE stand-in inside a harness root: `pveversion`, `pct list` and `qm list` print
//! the samples in `tests/fixtures/proxmox` (Proxmox VE 8's formats, a Lock column and a
//! snapshot section included), and `/etc/pve` holds the guests' configs as Proxmox keeps them.
//! Everything else about the host is the real Debian root it is installed in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::debroot::DebRoot;

const LXC: [u32; 3] = [101, 102, 105];
const VMS: [u32; 2] = [100, 103];

/// Makes `root` answer like a Proxmox VE host with the fixtures' guests.
pub(crate) fn make_hypervisor(root: &DebRoot) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxmox");
    let share = root.path("usr/share/tendhost-pve");
    fs::create_dir_all(&share).expect("creating the stand-in's share dir");
    for sample in ["pveversion.txt", "pct-list.txt", "qm-list.txt"] {
        fs::copy(fixtures.join(sample), share.join(sample)).expect("copying a sample");
    }
    let tool = |name: &str, body: &str| {
        let path = root.path(&format!("usr/bin/{name}"));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stand-in");
    };
    tool("pveversion", "cat /usr/share/tendhost-pve/pveversion.txt");
    for name in ["pct", "qm"] {
        tool(
            name,
            &format!(
                "case \"$1\" in\n  list) cat /usr/share/tendhost-pve/{name}-list.txt ;;\n  \
                 *) echo \"{name}: the stand-in knows only 'list'\" >&2; exit 2 ;;\nesac"
            ),
        );
    }
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
