//! The apt part of a survey: refreshing the lists, and reading pending packages (with their
//! security origin), the reboot marker and, where needrestart is installed, the services that
//! run replaced code. Parsed by `pkg::parse::apt`, as apt's own commands are.

use super::sections::{EXIT, Section, Sections, marker};
use super::{Error, PackageFindings};
use crate::pkg::parse::apt as parse;
use crate::pkg::{self, RebootStatus};

/// How long a refresh waits for another apt's lists lock, in seconds (as `pkg::Apt` does).
const LOCK_WAIT: u64 = 120;

/// Files whose times say when the lists were last refreshed (besides tendhost's own stamp):
/// apt's periodic stamp and the lists directory, which a refresh that fetched anything touches.
pub(super) const LISTS_TIMES: &str =
    "/var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists";

/// `apt-get update`, trying again while another process holds the lists lock (the dpkg lock
/// timeout does not cover it), within [`LOCK_WAIT`].
pub(super) fn refresh() -> String {
    format!(
        "waited=0\nwhile :; do\n  out=$(apt-get -o DPkg::Lock::Timeout={LOCK_WAIT} -q update 2>&1); code=$?\n  \
         printf '%s\\n' \"$out\"\n  [ \"$code\" -eq 0 ] && break\n  \
         case $out in *'Could not get lock'*|*'Unable to lock directory'*) ;; *) break ;; esac\n  \
         [ \"$waited\" -ge {LOCK_WAIT} ] && break\n  sleep 3; waited=$((waited + 3))\ndone\n\
         (exit \"$code\")"
    )
}

/// Pending packages, the reboot marker, needrestart's list.
pub(super) fn read() -> String {
    format!(
        "{}\napt list --upgradable 2>/dev/null; {EXIT}\n\
         {}\nif [ -e /var/run/reboot-required ]; then echo {reboot}; \
         cat /var/run/reboot-required.pkgs 2>/dev/null; fi\n\
         if command -v needrestart >/dev/null 2>&1; then {}; needrestart -r l -b 2>/dev/null; {EXIT}; fi",
        marker("apt-list"),
        marker("reboot"),
        marker("needrestart"),
        reboot = parse::REBOOT_MARKER,
    )
}

pub(super) fn refresh_failed(section: &Section) -> Error {
    const STEP: &str = "apt-get update";
    let source = if parse::is_lock_error(&section.body) {
        pkg::Error::Locked {
            waited: LOCK_WAIT,
            holder: parse::lock_holder(&section.body),
        }
    } else {
        section.failure(STEP)
    };
    Error::Packages {
        what: "refreshing package lists",
        source,
    }
}

pub(super) fn findings(sections: &Sections) -> Result<PackageFindings, Error> {
    let list = sections
        .get("apt-list")
        .ok_or_else(|| missing("apt list --upgradable"))?;
    if !list.succeeded() {
        return Err(Error::Packages {
            what: "listing pending updates",
            source: pkg::Error::CommandFailed {
                step: "apt list --upgradable",
                code: list
                    .exit
                    .map_or_else(|| "unknown".into(), |c| c.to_string()),
                detail: String::new(),
            },
        });
    }
    let (required, packages) = parse::parse_reboot_probe(sections.body("reboot"));
    let services = sections
        .get("needrestart")
        .filter(|s| s.succeeded())
        .map(|s| needrestart_services(&s.body));
    Ok(PackageFindings {
        pending: parse::parse_list_upgradable(&list.body),
        reboot: RebootStatus { required, packages },
        services,
    })
}

fn missing(step: &'static str) -> Error {
    Error::Packages {
        what: "listing pending updates",
        source: pkg::Error::Parse {
            what: step,
            detail: "the survey printed no answer for it".into(),
        },
    }
}

/// `needrestart -b` prints `NEEDRESTART-SVC: name.service` per service to restart.
fn needrestart_services(body: &str) -> Vec<String> {
    let mut services: Vec<String> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDRESTART-SVC:"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    services.sort();
    services.dedup();
    services
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pending_reboot_and_services() {
        let text = "@@apt-list\nListing...\nopenssl/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]\n@@exit 0\n\
                    @@reboot\ntendhost-reboot-required\nlinux-image-amd64\n\
                    @@needrestart\nNEEDRESTART-VER: 3.6\nNEEDRESTART-SVC: ssh.service\nNEEDRESTART-SVC: cron.service\n@@exit 0\n";
        let f = findings(&Sections::parse(text)).unwrap();
        assert_eq!(f.pending.len(), 1);
        assert!(f.pending[0].security);
        assert_eq!(f.pending[0].from, "3.0.14-1~deb12u2");
        assert!(f.reboot.required);
        assert_eq!(f.reboot.packages, vec!["linux-image-amd64"]);
        assert_eq!(
            f.services,
            Some(vec!["cron.service".to_string(), "ssh.service".to_string()])
        );
    }

    #[test]
    fn without_needrestart_services_are_unknown_and_a_held_lock_is_named() {
        let f = findings(&Sections::parse(
            "@@apt-list\nListing...\n@@exit 0\n@@reboot\n",
        ))
        .unwrap();
        assert_eq!(f.services, None);
        assert!(!f.reboot.required);
        let section = Section {
            name: "refresh".into(),
            body: "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77 (apt-get)\n".into(),
            exit: Some(100),
            ..Section::default()
        };
        let err = refresh_failed(&section);
        assert!(
            matches!(
                err,
                Error::Packages {
                    source: pkg::Error::Locked { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
