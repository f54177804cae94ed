//! The dnf/yum part of a survey: refreshing the metadata (`makecache`), and reading pending
//! packages with installed versions and security flags, whether a reboot is needed and why,
//! and the services that run replaced code.
//!
//! One process where it can: `dnf_survey.py` asks dnf's Python API for everything
//! `check-update`, `rpm -qa`, `updateinfo` and `needs-restarting -r/-s` would print, from one
//! loaded sack. Where `import dnf` fails (no python3-dnf; CentOS 7's yum is python2) it exits
//! with [`NO_API_EXIT`] before printing anything and the same script falls back to dnf's own
//! commands, cache-only (`-C`), parsed by `pkg::parse::dnf`. Either way the cache only: the
//! lists policy decides when metadata is fetched, not dnf's own expiry.

use super::sections::{EXIT, Section, Sections, marker};
use super::{Error, PackageFindings};
use crate::pkg::parse::dnf as parse;
use crate::pkg::{self, ManagerKind, PendingPackage, RebootStatus};

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

/// The exit status `dnf_survey.py` gives when `import dnf` failed: nothing was printed and
/// the script falls back to dnf's commands. Chosen outside what python (1, 2) and a shell
/// (126, 127, 128+N) use.
pub(super) const NO_API_EXIT: i32 = 90;

/// The Python program asking dnf's API; see its header for what it prints.
const PROGRAM: &str = include_str!("dnf_survey.py");

/// Ends the heredoc that hands [`PROGRAM`] to python (a line the program never holds: tested).
const PROGRAM_END: &str = "TENDHOST_DNF_SURVEY_END";

/// Sections the Python path prints (see `dnf_survey.py`).
const API: &str = "dnf-api";
const API_EXIT: &str = "dnf-api-exit";
const API_ERROR: &str = "dnf-error";
const API_PENDING: &str = "dnf-pending";
const API_REBOOT: &str = "dnf-reboot-py";
const API_SERVICES: &str = "dnf-services";

/// One python process reading dnf's API; where `import dnf` fails, the cache-only commands.
/// `bin` is a shell word naming `dnf` or `yum`.
///
/// The interpreters tried, until one can `import dnf`: the one `bin` itself runs on (its `#!`
/// line; the `python3` first on `PATH` may be another one, without the module), RHEL 8's
/// `platform-python`, `python3`. Each costs a process only when the one before could not
/// import dnf, which is also the only case with more than one. Python's stderr is dropped: dnf
/// logs warnings there ("Ignoring repositories") that are not part of the answer, and its
/// errors come back in `@@dnf-error`.
pub(super) fn read(bin: &str) -> String {
    format!(
        "dnfpy=\nif p=$(command -v {bin} 2>/dev/null) && read -r first rest < \"$p\" 2>/dev/null; then\n\
         case $first in '#!/'*python*) dnfpy=${{first#'#!'}} ;; esac\nfi\n\
         api={NO_API_EXIT}\nfor py in $dnfpy /usr/libexec/platform-python python3; do\n\
         [ \"$api\" -eq {NO_API_EXIT} ] || break\n\
         command -v \"$py\" >/dev/null 2>&1 || continue\n\
         \"$py\" - 2>/dev/null <<'{PROGRAM_END}'\n{PROGRAM}{PROGRAM_END}\napi=$?\ndone\n\
         if [ \"$api\" -eq {NO_API_EXIT} ]; then\n{fallback}\nelse\necho \"@@{API_EXIT} $api\"\nfi",
        fallback = cache_only_read(bin),
    )
}

/// Candidates, installed versions (all of them: it also counts them), advisories, the reboot
/// probe, from dnf's (or yum's) own commands.
fn cache_only_read(bin: &str) -> String {
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
        section.failure("makecache")
    };
    Error::Packages {
        what: "refreshing package lists",
        source,
    }
}

/// What the host's dnf said: the Python path's sections when it ran, else the commands'.
pub(super) fn findings(kind: ManagerKind, sections: &Sections) -> Result<PackageFindings, Error> {
    match sections.get(API_EXIT) {
        Some(exit) => api_findings(exit, sections),
        None => cache_only_findings(kind, sections),
    }
}

/// Reads `dnf_survey.py`'s answer; `exit` is the section the shell printed after it.
fn api_findings(exit: &Section, sections: &Sections) -> Result<PackageFindings, Error> {
    let failed = |detail: String| Error::Packages {
        what: "listing pending updates",
        source: pkg::Error::CommandFailed {
            step: "dnf's python API",
            code: exit.args.clone(),
            detail,
        },
    };
    if let Some(error) = sections.get(API_ERROR) {
        return Err(failed(crate::errors::last_lines(&error.body, 3)));
    }
    if exit.args != "0" || !sections.has(API) {
        return Err(failed("python3 ended without an answer".into()));
    }
    let pending = sections.get(API_PENDING).ok_or_else(|| Error::Packages {
        what: "listing pending updates",
        source: pkg::Error::Parse {
            what: "dnf's python API",
            detail: "the survey printed no pending list".into(),
        },
    })?;
    Ok(PackageFindings {
        pending: parse_api_pending(&pending.body),
        reboot: parse_api_reboot(sections.body(API_REBOOT)),
        services: sections.get(API_SERVICES).map(|s| {
            s.body
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        }),
    })
}

/// `NAME\tINSTALLED\tCANDIDATE\t0|1` lines; others are skipped.
fn parse_api_pending(body: &str) -> Vec<PendingPackage> {
    body.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (name, from, to, security) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            if fields.next().is_some() || name.is_empty() || to.is_empty() {
                return None;
            }
            Some(PendingPackage {
                name: name.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                security: security.trim() == "1",
            })
        })
        .collect()
}

/// `required 0|1` and `because NAME` lines.
fn parse_api_reboot(body: &str) -> RebootStatus {
    let mut status = RebootStatus::default();
    for line in body.lines().map(str::trim) {
        if let Some(flag) = line.strip_prefix("required ") {
            status.required = flag.trim() == "1";
        } else if let Some(name) = line.strip_prefix("because ") {
            status.packages.push(name.trim().to_string());
        }
    }
    status
}

fn cache_only_findings(_kind: ManagerKind, sections: &Sections) -> Result<PackageFindings, Error> {
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
        _ => {
            return Err(Error::Packages {
                what: "listing pending updates",
                source: check.failure("check-update"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Sections {
        Sections::parse(text)
    }

    #[test]
    fn reads_the_python_answer() {
        let s = sections(
            "@@manager dnf\n@@dnf-api python\n@@dnf-pending\n\
             kernel-core\t6.0.0-1\t6.1.0-1\t0\ntendhost-sec\t1:1.0-1\t1:1.1-1\t1\nnoise line\n\
             @@dnf-installed 412\n@@dnf-reboot-py\nrequired 1\nbecause glibc\nbecause kernel-core\n\
             @@dnf-services\nsshd.service\n\n@@dnf-api-exit 0\n@@end\n",
        );
        let found = findings(ManagerKind::Dnf, &s).unwrap();
        let rows: Vec<_> = found
            .pending
            .iter()
            .map(|p| (p.name.as_str(), p.from.as_str(), p.to.as_str(), p.security))
            .collect();
        assert_eq!(
            rows,
            [
                ("kernel-core", "6.0.0-1", "6.1.0-1", false),
                ("tendhost-sec", "1:1.0-1", "1:1.1-1", true),
            ]
        );
        assert_eq!(
            found.reboot,
            RebootStatus {
                required: true,
                packages: vec!["glibc".into(), "kernel-core".into()],
            }
        );
        assert_eq!(found.services, Some(vec!["sshd.service".to_string()]));
    }

    #[test]
    fn an_empty_python_answer_is_nothing_pending() {
        let s = sections(
            "@@dnf-api python\n@@dnf-pending\n@@dnf-installed 3\n@@dnf-reboot-py\nrequired 0\n\
             @@dnf-services partial\n@@dnf-api-exit 0\n",
        );
        assert_eq!(
            findings(ManagerKind::Dnf, &s).unwrap(),
            PackageFindings {
                pending: Vec::new(),
                reboot: RebootStatus::default(),
                services: Some(Vec::new()),
            }
        );
    }

    #[test]
    fn a_python_error_carries_dnfs_message() {
        let s = sections(
            "@@dnf-error\nCache-only enabled but no cache for 'fedora'\n@@dnf-api-exit 1\n",
        );
        let err = findings(ManagerKind::Dnf, &s).unwrap_err();
        let text = crate::errors::chain(&err);
        assert!(text.contains("no cache for 'fedora'"), "{text}");
        assert!(text.contains("exit 1"), "{text}");
    }

    #[test]
    fn a_python_crash_is_an_error_even_with_partial_output() {
        let s = sections("@@dnf-api python\n@@dnf-pending\nx\t1\t2\t0\n@@dnf-api-exit 139\n");
        let text = crate::errors::chain(&findings(ManagerKind::Dnf, &s).unwrap_err());
        assert!(text.contains("exit 139"), "{text}");
    }

    #[test]
    fn without_the_api_reads_dnfs_commands() {
        let s = sections(
            "@@dnf-check-update\n\ntendhost-sec.noarch   1.1-1   tendhost\n@@exit 100\n\
             @@rpm-installed\ntendhost-sec.noarch 0:1.0-1\n\
             @@dnf-updateinfo\nTENDHOST-1 Important/Sec. tendhost-sec-1.1-1.noarch\n@@exit 0\n\
             @@dnf-reboot\ntendhost-rc 0\n",
        );
        let found = findings(ManagerKind::Dnf, &s).unwrap();
        assert_eq!(found.pending.len(), 1);
        let p = &found.pending[0];
        assert_eq!(
            (p.name.as_str(), p.from.as_str(), p.to.as_str(), p.security),
            ("tendhost-sec", "1.0-1", "1.1-1", true)
        );
        assert_eq!(found.services, None);
    }

    #[test]
    fn the_program_fits_its_heredoc_and_its_fallback_code() {
        assert!(!PROGRAM.lines().any(|l| l.trim() == PROGRAM_END));
        assert!(PROGRAM.ends_with('\n'), "the heredoc end must start a line");
        assert!(PROGRAM.contains(&format!("NO_API = {NO_API_EXIT}\n")));
        let script = read("dnf");
        assert!(script.contains(&format!("<<'{PROGRAM_END}'\n")));
        assert!(
            script.contains("dnf -q -C check-update"),
            "the fallback is there"
        );
        // The survey travels as one `sh -c` argument (or one environment string behind a
        // ForceCommand): Linux refuses either past 128 KiB.
        assert!(script.len() < 32 * 1024, "{} bytes", script.len());
    }
}
