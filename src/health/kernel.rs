//! The post-reboot kernel check: the host runs the newest kernel it has installed. A reboot
//! that came back on an older one (a grub default pinned to it, a new kernel that failed and
//! fell back) looks like success by its boot id alone; this is the finding that tells.
//!
//! The installed kernels are the `/boot/vmlinuz-*` files, on Debian and Fedora alike (their
//! suffix is what `uname -r` prints; Fedora's rescue image is left out), ordered by the host's
//! own `sort -V`, so no version ordering is guessed here. A host with no kernel in `/boot`
//! (a container, a chroot) passes as not applicable; one whose running kernel is not among the
//! installed ones but sorts at or above all of them (booted by a hypervisor's `-kernel`, or the
//! old kernel's files already removed) passes saying so.

use super::probe::{Part, ProbeRequest, one_line, unknown};
use super::{CheckName, CheckPhase, CheckResult, HealthReport};
use crate::survey::sections::{Sections, marker};

/// The section, its lines `running V`, `installed V` (oldest first) and `newest V` (the
/// highest of all of them by `sort -V`).
const SECTION: &str = "kernel";

pub(super) struct Kernel;

impl Part for Kernel {
    fn name(&self) -> CheckName {
        CheckName::Kernel
    }

    fn script(&self, _request: &ProbeRequest<'_>) -> String {
        // busybox sort has no -V: plain sort then, which still orders equal-length versions.
        format!(
            "{}\n\
             vsort() {{ sort -V 2>/dev/null || sort; }}\n\
             running=$(uname -r)\n\
             echo \"running $running\"\n\
             installed=$(for f in /boot/vmlinuz-*; do [ -e \"$f\" ] || continue; \
             v=${{f#/boot/vmlinuz-}}; case $v in *rescue*) continue;; esac; echo \"$v\"; done | vsort)\n\
             [ -z \"$installed\" ] || printf 'installed %s\\n' $installed\n\
             [ -z \"$installed\" ] || printf '%s\\n' \"$running\" $installed | vsort | tail -n 1 \
             | sed 's/^/newest /'",
            marker(SECTION)
        )
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        match sections.get(SECTION) {
            Some(section) => judge(request.phase, &section.body),
            None => unknown(self.name(), request.phase),
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        "@@kernel\nrunning 6.1.0-10-amd64\ninstalled 6.1.0-9-amd64\ninstalled 6.1.0-10-amd64\n\
         newest 6.1.0-10-amd64\n"
            .to_string()
    }
}

/// The verdict on one `kernel` section.
fn judge(phase: CheckPhase, body: &str) -> CheckResult {
    let name = CheckName::Kernel;
    let field = |key: &str| {
        body.lines()
            .filter_map(|l| l.strip_prefix(key))
            .map(|v| one_line(v.trim()))
            .collect::<Vec<_>>()
    };
    let Some(running) = field("running ").pop().filter(|r| !r.is_empty()) else {
        return CheckResult::fail(
            name,
            phase,
            format!("could not tell the running kernel: {}", one_line(body)),
        );
    };
    let installed = field("installed ");
    if installed.is_empty() {
        return CheckResult::pass(
            name,
            phase,
            format!(
                "not applicable: running {running}, no kernel installed in /boot (a container or a chroot)"
            ),
        );
    }
    let Some(newest) = field("newest ").pop() else {
        return CheckResult::fail(
            name,
            phase,
            format!("could not tell the newest kernel: {}", one_line(body)),
        );
    };
    let newest_installed = installed.last().map(String::as_str).unwrap_or_default();
    if newest == running && installed.contains(&running) {
        return CheckResult::pass(
            name,
            phase,
            format!("running {running}, the newest installed"),
        );
    }
    if newest == running {
        return CheckResult::pass(
            name,
            phase,
            format!(
                "running {running}, not in /boot but not older than the newest there \
                 ({newest_installed}): booted from outside /boot"
            ),
        );
    }
    CheckResult::fail(
        name,
        phase,
        format!("running {running}, newest installed {newest}: booted an old kernel"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASE: CheckPhase = CheckPhase::PostReboot;

    #[test]
    fn an_old_running_kernel_fails_naming_both() {
        let check = judge(
            PHASE,
            "running 6.1.0-9-amd64\ninstalled 6.1.0-9-amd64\ninstalled 6.1.0-10-amd64\n\
             newest 6.1.0-10-amd64\n",
        );
        assert!(!check.ok);
        assert_eq!(
            &*check.detail,
            "running 6.1.0-9-amd64, newest installed 6.1.0-10-amd64: booted an old kernel"
        );
    }

    #[test]
    fn the_newest_passes_and_hosts_without_boot_kernels_are_not_applicable() {
        let check = judge(PHASE, &Kernel.healthy().replace("@@kernel\n", ""));
        assert!(
            check.ok && check.detail.contains("the newest installed"),
            "{check:?}"
        );
        let chroot = judge(PHASE, "running 6.12.0-1-amd64\n");
        assert!(
            chroot.ok && chroot.detail.starts_with("not applicable"),
            "{chroot:?}"
        );
        let outside = judge(
            PHASE,
            "running 6.2.0\ninstalled 6.1.0-10-amd64\nnewest 6.2.0\n",
        );
        assert!(
            outside.ok && outside.detail.contains("outside /boot"),
            "{outside:?}"
        );
        assert!(!judge(PHASE, "uname: not found\n").ok);
        assert!(!judge(PHASE, "running 6.1\ninstalled 6.1\n").ok);
    }

    #[test]
    fn the_script_leaves_rescue_images_out_and_orders_on_the_host() {
        let skip = Default::default();
        let request = super::super::probe::tests::request(PHASE, &skip, None);
        let script = Kernel.script(&request);
        assert!(
            script.contains("*rescue*") && script.contains("sort -V"),
            "{script}"
        );
    }
}
