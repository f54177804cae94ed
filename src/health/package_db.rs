//! The package database check: is what the manager believes installed whole, so that an
//! upgrade (or the next one) can be trusted to run?
//!
//! - apt: `dpkg --audit` (any package it lists is half-configured, unpacked, half-installed or
//!   waiting for triggers: the host needs `dpkg --configure -a`), then `apt-get check` (broken
//!   dependencies, "dpkg was interrupted"). `apt-get check` runs with `Debug::NoLocking`: it
//!   only reads, and a lock another process holds is the locks check's finding, not a broken
//!   database.
//! - dnf: `dnf check` (dependency problems, duplicate packages, obsoleted ones). dnf 4 keeps no
//!   transaction it could finish later: an rpm transaction cut short shows as the duplicates
//!   (old and new version both installed) and missing requirements `dnf check` reports, which
//!   is what is checked.
//! - yum: `yum check`, and an unfinished transaction (`/var/lib/yum/transaction-all.*`, what
//!   `yum-complete-transaction` finishes).
//!
//! A host without a package manager (`manager = "none"`) passes, saying so.

use super::probe::{Part, ProbeRequest, one_line, unknown};
use super::{CheckName, CheckResult, HealthReport};
use crate::pkg::ManagerKind;
use crate::survey::sections::{EXIT, Section, Sections, marker};

/// The section names this part prints.
const SECTION: &str = "package_db";
const AUDIT: &str = "package_db.audit";
const CHECK: &str = "package_db.check";
const UNFINISHED: &str = "package_db.unfinished";
/// The body of [`SECTION`] when the manager's tool is missing on the host.
const NO_TOOL: &str = "no-tool";

/// `dpkg --audit` + `apt-get check`; `dnf check` / `yum check` and yum's unfinished
/// transactions.
pub(super) struct PackageDb;

impl Part for PackageDb {
    fn name(&self) -> CheckName {
        CheckName::PackageDb
    }

    fn script(&self, request: &ProbeRequest<'_>) -> String {
        let head = marker(SECTION);
        match request.manager {
            None => head,
            Some(ManagerKind::Apt) => format!(
                "{head}\n\
                 if ! command -v dpkg >/dev/null 2>&1; then echo {NO_TOOL}; exit 0; fi\n\
                 {}; dpkg --audit; {EXIT}\n\
                 {}; apt-get -q -o Debug::NoLocking=1 check; {EXIT}",
                marker(AUDIT),
                marker(CHECK),
            ),
            Some(kind) => {
                let tool = match kind {
                    ManagerKind::Yum => "yum",
                    _ => "dnf",
                };
                // `-C`: the rpm database is what is checked; no repository is fetched for it.
                format!(
                    "{head}\n\
                     if ! command -v {tool} >/dev/null 2>&1; then echo {NO_TOOL}; exit 0; fi\n\
                     {}; {tool} -q -C check; {EXIT}\n\
                     {}; ls /var/lib/yum/transaction-all.* 2>/dev/null; true",
                    marker(CHECK),
                    marker(UNFINISHED),
                )
            }
        }
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        let phase = request.phase;
        let Some(manager) = request.manager else {
            return CheckResult::pass(
                self.name(),
                phase,
                "not applicable: the host has no package manager",
            );
        };
        let Some(head) = sections.get(SECTION) else {
            return unknown(self.name(), phase);
        };
        if head.body.trim() == NO_TOOL {
            return CheckResult::pass(
                self.name(),
                phase,
                format!("not applicable: no {} on the host", tool_of(manager)),
            );
        }
        let verdict = match manager {
            ManagerKind::Apt => read_apt(sections),
            ManagerKind::Dnf | ManagerKind::Yum => read_rpm(manager, sections),
        };
        match verdict {
            Some(Ok(detail)) => CheckResult::pass(self.name(), phase, detail),
            Some(Err(detail)) => CheckResult::fail(self.name(), phase, one_line(&detail)),
            None => unknown(self.name(), phase),
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        format!("@@{SECTION}\n@@{AUDIT}\n@@exit 0\n@@{CHECK}\n@@exit 0\n@@{UNFINISHED}\n")
    }
}

fn tool_of(manager: ManagerKind) -> &'static str {
    match manager {
        ManagerKind::Apt => "dpkg",
        ManagerKind::Dnf => "dnf",
        ManagerKind::Yum => "yum",
    }
}

/// `Ok(detail)` when whole, `Err(detail)` naming what is broken, `None` when a section is
/// missing (could not tell).
type Verdict = Option<Result<String, String>>;

fn read_apt(sections: &Sections) -> Verdict {
    let audit = sections.get(AUDIT)?;
    let broken = audited_packages(&audit.body);
    if !broken.is_empty() {
        let named: Vec<String> = broken
            .iter()
            .map(|(name, state)| format!("{name} {state}"))
            .collect();
        return Some(Err(format!(
            "dpkg --audit: {}",
            super::probe::name_list(&named, 6)
        )));
    }
    if !audit.body.trim().is_empty() || !audit.succeeded() {
        // dpkg said something it does not usually say about a whole database.
        return Some(Err(format!("dpkg --audit: {}", audit.body.trim())));
    }
    let check = sections.get(CHECK)?;
    if check.succeeded() {
        return Some(Ok("dpkg --audit and apt-get check found nothing".into()));
    }
    if is_lock_error(&check.body) {
        // Not a broken database: someone is using it (the locks check says who).
        return Some(Ok(
            "dpkg --audit found nothing; apt-get check did not run: the package lock is held"
                .into(),
        ));
    }
    Some(Err(format!("apt-get check: {}", apt_errors(check))))
}

/// What `apt-get check` complained about: its `E:` lines, else its last lines.
fn apt_errors(check: &Section) -> String {
    let errors: Vec<&str> = check
        .body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("E:"))
        .map(|l| l.trim_start_matches("E:").trim())
        .collect();
    match errors.is_empty() {
        true => crate::errors::last_lines(&check.body, 3),
        false => errors.join("; "),
    }
}

fn is_lock_error(text: &str) -> bool {
    text.contains("Could not get lock") || text.contains("Unable to acquire the dpkg")
}

/// The packages `dpkg --audit` lists, each with the state of the paragraph it is listed in
/// (`half-configured`, `unpacked`…). dpkg prints a paragraph per state: an English sentence
/// (never indented), then one indented line per package, `name  description`.
pub(super) fn audited_packages(body: &str) -> Vec<(String, &'static str)> {
    let mut state = "broken";
    let mut found = Vec::new();
    for line in body.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some(named) = audit_state(line) {
                state = named;
            }
            continue;
        }
        if let Some(name) = line.split_whitespace().next() {
            found.push((name.to_string(), state));
        }
    }
    found
}

/// The state a `dpkg --audit` paragraph's first sentence describes.
fn audit_state(sentence: &str) -> Option<&'static str> {
    const STATES: &[(&str, &str)] = &[
        ("unpacked but not yet configured", "unpacked"),
        ("only half configured", "half-configured"),
        ("only half installed", "half-installed"),
        ("awaiting processing of triggers", "triggers-awaited"),
        ("have been triggered", "triggers-pending"),
        ("missing the list control file", "missing its file list"),
        ("missing the md5sums control file", "missing its md5sums"),
        ("in a really insane inconsistent state", "inconsistent"),
    ];
    STATES
        .iter()
        .find(|(words, _)| sentence.contains(words))
        .map(|(_, state)| *state)
}

fn read_rpm(manager: ManagerKind, sections: &Sections) -> Verdict {
    let check = sections.get(CHECK)?;
    let tool = tool_of(manager);
    let problems = rpm_problems(&check.body);
    if !problems.is_empty() {
        return Some(Err(format!(
            "{tool} check: {}",
            super::probe::name_list(&problems, 4)
        )));
    }
    if !check.succeeded() {
        let why = crate::errors::last_lines(&check.body, 3);
        return Some(Err(format!(
            "{tool} check failed (exit {}): {why}",
            check.exit.unwrap_or(-1)
        )));
    }
    let unfinished: Vec<String> = sections
        .body(UNFINISHED)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.rsplit('/').next().unwrap_or(l).to_string())
        .collect();
    if !unfinished.is_empty() {
        return Some(Err(format!(
            "unfinished yum transaction ({}): yum-complete-transaction finishes it",
            super::probe::name_list(&unfinished, 3)
        )));
    }
    Some(Ok(format!("{tool} check found nothing")))
}

/// The problems `dnf check` / `yum check` print, one per line ("x-1.0-1.noarch is a duplicate
/// with x-1.1-1.noarch", "y has missing requires of z"), without dnf's closing summary.
pub(super) fn rpm_problems(body: &str) -> Vec<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("Error:") && !l.starts_with("Loaded plugins"))
        .filter(|l| {
            l.contains(" is a duplicate with ")
                || l.contains(" has missing requires ")
                || l.contains(" is obsoleted by ")
                || l.contains(" has installed conflicts ")
                || l.contains(" has missing provides")
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::health::CheckPhase;

    /// The phases that run this check (see `probe::parts`).
    const PHASES: [CheckPhase; 3] = [CheckPhase::Pre, CheckPhase::PostUpdate, CheckPhase::Repair];

    fn request(manager: Option<ManagerKind>, skip: &BTreeSet<CheckName>) -> ProbeRequest<'_> {
        ProbeRequest {
            phase: CheckPhase::Repair,
            manager,
            skip,
            space: None,
            disk_margin: 0,
            baseline: None,
            system_running_timeout: Duration::from_secs(1),
            compose_paths: &[],
            compose_version: crate::config::ComposeVersion::V2,
        }
    }

    fn check(manager: Option<ManagerKind>, answer: &str) -> CheckResult {
        let skip = BTreeSet::new();
        let req = request(manager, &skip);
        let mut report = HealthReport::new(CheckPhase::Repair);
        PackageDb.read(&req, &Sections::parse(answer), &mut report)
    }

    /// What dpkg 1.21 prints for one unpacked and one half-configured package.
    const AUDIT_OUT: &str = "\
The following packages have been unpacked but not yet configured.
They must be configured using dpkg --configure or the configure
menu option in dselect for them to work:
 tendhost-kernel      tendhost test package

The following packages are only half configured, probably due to problems
configuring them the first time.  The configuration should be retried using
dpkg --configure <package> or the configure menu option in dselect:
 tendhost-app         tendhost test package
";

    #[test]
    fn dpkg_audit_names_each_package_with_its_state() {
        assert_eq!(
            audited_packages(AUDIT_OUT),
            vec![
                ("tendhost-kernel".to_string(), "unpacked"),
                ("tendhost-app".to_string(), "half-configured"),
            ]
        );
        let answer = format!(
            "@@package_db\n@@package_db.audit\n{AUDIT_OUT}@@exit 0\n@@package_db.check\n\
             E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n@@exit 100\n"
        );
        let result = check(Some(ManagerKind::Apt), &answer);
        assert!(!result.ok);
        assert_eq!(
            &*result.detail,
            "dpkg --audit: tendhost-kernel unpacked, tendhost-app half-configured"
        );
    }

    #[test]
    fn apt_get_check_fails_on_its_errors_but_not_on_a_held_lock() {
        let broken = "@@package_db\n@@package_db.audit\n@@exit 0\n@@package_db.check\n\
            Reading package lists...\nYou might want to run 'apt --fix-broken install' to correct these.\n\
            E: Unmet dependencies. Try 'apt --fix-broken install' with no packages (or specify a solution).\n@@exit 100\n";
        let result = check(Some(ManagerKind::Apt), broken);
        assert!(!result.ok);
        assert!(
            result
                .detail
                .starts_with("apt-get check: Unmet dependencies"),
            "{}",
            result.detail
        );
        let locked = "@@package_db\n@@package_db.audit\n@@exit 0\n@@package_db.check\n\
            E: Could not get lock /var/lib/dpkg/lock. It is held by process 7 (apt-get)\n@@exit 100\n";
        let result = check(Some(ManagerKind::Apt), locked);
        assert!(result.ok, "{}", result.detail);
        assert!(result.detail.contains("lock is held"));
        let whole = "@@package_db\n@@package_db.audit\n@@exit 0\n@@package_db.check\n\
            Reading package lists...\n@@exit 0\n";
        assert!(check(Some(ManagerKind::Apt), whole).ok);
        // The audit printed, the check never ran: could not tell.
        let cut = "@@package_db\n@@package_db.audit\n@@exit 0\n";
        let result = check(Some(ManagerKind::Apt), cut);
        assert!(!result.ok && result.detail.starts_with("could not tell"));
    }

    #[test]
    fn dnf_check_names_duplicates_and_yum_an_unfinished_transaction() {
        let dup = "@@package_db\n@@package_db.check\n\
            tendhost-app-1.0-1.noarch is a duplicate with tendhost-app-1.1-1.noarch\n\
            Error: Check discovered 1 problem(s)\n@@exit 1\n@@package_db.unfinished\n";
        let result = check(Some(ManagerKind::Dnf), dup);
        assert!(!result.ok);
        assert_eq!(
            &*result.detail,
            "dnf check: tendhost-app-1.0-1.noarch is a duplicate with tendhost-app-1.1-1.noarch"
        );
        let unfinished = "@@package_db\n@@package_db.check\n@@exit 0\n@@package_db.unfinished\n\
            /var/lib/yum/transaction-all.2026-12-01.03:02.11\n";
        let result = check(Some(ManagerKind::Yum), unfinished);
        assert!(!result.ok);
        assert!(
            result
                .detail
                .starts_with("unfinished yum transaction (transaction-all.2026-12-01"),
            "{}",
            result.detail
        );
        let failed = "@@package_db\n@@package_db.check\nrpmdb open failed\n@@exit 1\n";
        let result = check(Some(ManagerKind::Dnf), failed);
        assert!(!result.ok && result.detail.contains("rpmdb open failed"));
        let whole = "@@package_db\n@@package_db.check\n@@exit 0\n@@package_db.unfinished\n";
        assert!(check(Some(ManagerKind::Dnf), whole).ok);
    }

    #[test]
    fn no_manager_or_no_tool_is_not_applicable_and_a_missing_answer_fails() {
        let result = check(None, "");
        assert!(result.ok && result.detail.starts_with("not applicable"));
        let result = check(Some(ManagerKind::Dnf), "@@package_db\nno-tool\n");
        assert!(result.ok && result.detail.contains("no dnf"));
        assert!(!check(Some(ManagerKind::Apt), "").ok);
        let skip = BTreeSet::new();
        for phase in PHASES {
            let req = ProbeRequest {
                phase,
                ..request(Some(ManagerKind::Apt), &skip)
            };
            let script = req.script();
            assert!(
                script.contains("dpkg --audit") && script.contains("Debug::NoLocking=1"),
                "{phase:?}"
            );
        }
        let skipped: BTreeSet<_> = [CheckName::PackageDb].into();
        let req = request(Some(ManagerKind::Apt), &skipped);
        assert!(req.is_empty(), "repair runs only the package check");
    }
}
