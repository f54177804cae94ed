//! The dnf/yum part of a survey: refreshing the metadata (`makecache`), and reading pending
//! packages with installed versions and security flags, whether a reboot is needed and why,
//! and the services that run replaced code.
//!
//! Reads the cache only (`-C`): the lists policy decides when metadata is fetched, not dnf's own
//! expiry. Parsed by `pkg::parse::dnf`, as dnf's own commands are.

use super::sections::{EXIT, Section, Sections, marker};
use super::{Error, PackageFindings};
use crate::pkg::parse::dnf as parse;
use crate::pkg::{self, ManagerKind, RebootStatus};

/// How long a refresh waits for another dnf's lock, in seconds (as `pkg::Dnf` does).
const LOCK_WAIT: u64 = 120;
/// The exit status dnf and yum give when `exit_on_lock` found the lock held.
const LOCKED_EXIT: i32 = 200;

/// Files whose times say when the metadata was last fetched (besides tendhost's own stamp).
pub(super) const LISTS_TIMES: &str = "/var/cache/dnf/*/repodata/repomd.xml /var/cache/yum/*/*/repomd.xml /var/cache/dnf/last_makecache";

/// `makecache`, trying again while another process holds dnf's lock, within [`LOCK_WAIT`].
/// `bin` is a shell word naming `dnf` or `yum`.
pub(super) fn refresh(bin: &str) -> String {
    format!(
        "waited=0\nwhile :; do\n  {bin} -q --setopt=exit_on_lock=True makecache; code=$?\n  \
         [ \"$code\" -ne {LOCKED_EXIT} ] && break\n  [ \"$waited\" -ge {LOCK_WAIT} ] && break\n  \
         sleep 3; waited=$((waited + 3))\ndone\n(exit \"$code\")"
    )
}

/// Candidates, installed versions (all of them: it also counts them), advisories, the reboot
/// probe. `bin` is a shell word naming `dnf` or `yum`.
pub(super) fn read(bin: &str) -> String {
    let (rc, running) = (parse::RC_MARKER, parse::RUNNING_MARKER);
    format!(
        "{check}\n{bin} -q -C check-update 2>&1; {EXIT}\n\
         {installed}\nrpm -qa --qf '%{{NAME}}.%{{ARCH}} %{{EPOCHNUM}}:%{{VERSION}}-%{{RELEASE}}\\n' 2>/dev/null\n\
         {updateinfo}\nif [ \"{bin}\" = yum ]; then f=security; else f=--security; fi\n\
         {bin} -q -C updateinfo list $f 2>/dev/null; {EXIT}\n\
         {reboot}\n\
         if command -v needs-restarting >/dev/null 2>&1; then needs-restarting -r; echo \"{rc} $?\"; \
         elif {bin} needs-restarting --help >/dev/null 2>&1; then {bin} -C needs-restarting -r; echo \"{rc} $?\"; fi\n\
         echo \"{running} $(uname -r)\"\n\
         rpm -q --qf '%{{INSTALLTIME}} %{{NAME}} %{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n' kernel kernel-core 2>/dev/null\n\
         true",
        check = marker("dnf-check-update"),
        installed = marker("rpm-installed"),
        updateinfo = marker("dnf-updateinfo"),
        reboot = marker("dnf-reboot"),
    )
}

pub(super) fn refresh_failed(_kind: ManagerKind, section: &Section) -> Error {
    let source = if section.exit == Some(LOCKED_EXIT) {
        pkg::Error::Locked {
            waited: LOCK_WAIT,
            holder: parse::lock_holder(&section.body),
        }
    } else {
        pkg::Error::CommandFailed {
            step: "makecache",
            code: section
                .exit
                .map_or_else(|| "unknown".into(), |c| c.to_string()),
            detail: crate::errors::last_lines(&section.body, 3),
        }
    };
    Error::Packages {
        what: "refreshing package lists",
        source,
    }
}

pub(super) fn findings(_kind: ManagerKind, sections: &Sections) -> Result<PackageFindings, Error> {
    let check = sections
        .get("dnf-check-update")
        .ok_or_else(|| Error::Packages {
            what: "listing pending updates",
            source: pkg::Error::Parse {
                what: "check-update",
                detail: "the survey printed no answer for it".into(),
            },
        })?;
    // Exit 100 means "updates exist"; 0 means none (DESIGN §9).
    let candidates = match check.exit {
        Some(0) => Vec::new(),
        Some(100) => parse::parse_check_update(&check.body),
        code => {
            return Err(Error::Packages {
                what: "listing pending updates",
                source: pkg::Error::CommandFailed {
                    step: "check-update",
                    code: code.map_or_else(|| "unknown".into(), |c| c.to_string()),
                    detail: crate::errors::last_lines(&check.body, 3),
                },
            });
        }
    };
    let installed = parse::parse_rpm_versions(sections.body("rpm-installed"));
    // Missing advisories must not block listing updates.
    let security = sections
        .get("dnf-updateinfo")
        .filter(|s| s.succeeded())
        .map(|s| parse::parse_updateinfo_security(&s.body))
        .unwrap_or_default();
    let (required, packages) = parse::parse_reboot_probe(sections.body("dnf-reboot"));
    Ok(PackageFindings {
        pending: parse::pending_from(&candidates, &installed, &security),
        reboot: RebootStatus { required, packages },
        services: None,
    })
}
