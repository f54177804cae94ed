//! Pure parsers for apt's output: `apt list --upgradable`, `apt-get -s` simulations and the
//! reboot-required probe. They take text and return values; they never run anything and never
//! panic, whatever the input (see the property tests below).

use super::super::{PendingPackage, UpgradePlan};

/// Parses `apt list --upgradable` output (run with `LC_ALL=C`).
///
/// A line looks like `openssl/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from:
/// 3.0.14-1~deb12u1]`. The part after `/` lists every suite offering the candidate; any suite
/// ending in `-security` (Debian and Ubuntu name them so) marks the update as a security one.
/// Lines that do not fit (the `Listing...` banner, warnings, blank lines) are skipped.
pub(crate) fn parse_list_upgradable(text: &str) -> Vec<PendingPackage> {
    text.lines().filter_map(parse_upgradable_line).collect()
}

fn parse_upgradable_line(line: &str) -> Option<PendingPackage> {
    let (head, from) = line.split_once(" [upgradable from: ")?;
    let from = from.strip_suffix(']')?.trim();
    let mut fields = head.split_whitespace();
    let name_suites = fields.next()?;
    let to = fields.next()?;
    let (name, suites) = name_suites.split_once('/')?;
    if name.is_empty() || to.is_empty() || from.is_empty() {
        return None;
    }
    Some(PendingPackage {
        name: name.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        security: suites.split(',').any(is_security_suite),
    })
}

/// `bookworm-security`, `oldstable-security`, `jammy-security`: apt's security pockets.
fn is_security_suite(suite: &str) -> bool {
    suite.trim().ends_with("-security")
}

/// Parses the output of `apt-get -s dist-upgrade` / `apt-get -s upgrade` (run with `LC_ALL=C`).
///
/// `Inst NAME [OLD] (NEW ORIGINS [ARCH])` is an upgrade; an `Inst` without `[OLD]` is a new
/// install; `Remv NAME [OLD]` a removal. Kept-back packages appear only in the prose block
/// "The following packages have been kept back:", whose names are indented on the next lines;
/// they go to `kept_back`, operator holds included (apt lists both there: [`split_holds`]
/// tells them apart).
pub(crate) fn parse_simulation(text: &str) -> UpgradePlan {
    let mut plan = UpgradePlan::default();
    let mut in_kept_back = false;
    for line in text.lines() {
        if in_kept_back {
            if line.starts_with(' ') {
                plan.kept_back
                    .extend(line.split_whitespace().map(str::to_string));
                continue;
            }
            in_kept_back = false;
        }
        if line.starts_with("The following packages have been kept back") {
            in_kept_back = true;
        } else if let Some(rest) = line.strip_prefix("Inst ") {
            parse_inst(rest, &mut plan);
        } else if let Some(rest) = line.strip_prefix("Remv ")
            && let Some(name) = rest.split_whitespace().next()
        {
            plan.removals.push(name.to_string());
        }
    }
    plan
}

fn parse_inst(rest: &str, plan: &mut UpgradePlan) {
    let mut words = rest.splitn(2, ' ');
    let Some(name) = words.next().filter(|n| !n.is_empty()) else {
        return;
    };
    let rest = words.next().unwrap_or("").trim_start();
    let (old, rest) = match rest.strip_prefix('[') {
        Some(after) => match after.split_once(']') {
            Some((old, tail)) => (Some(old.trim()), tail.trim_start()),
            None => return,
        },
        None => (None, rest),
    };
    let Some(candidate) = rest.strip_prefix('(') else {
        return;
    };
    let candidate = candidate
        .split_once(')')
        .map_or(candidate, |(inner, _)| inner);
    let mut parts = candidate.splitn(2, ' ');
    let to = parts.next().unwrap_or("");
    let origins = parts.next().unwrap_or("");
    match old {
        Some(from) if !to.is_empty() => plan.upgrades.push(PendingPackage {
            name: name.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            security: origins_are_security(origins),
        }),
        Some(_) => {}
        None => plan.installs.push(name.to_string()),
    }
}

/// Origins look like `Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]`
/// (`LABEL:VERSION/SUITE`), or `Debian-Security:bookworm-security` (`LABEL:SUITE`) when the
/// release has no version; either way the suite is the word's tail.
fn origins_are_security(origins: &str) -> bool {
    origins
        .split([',', ' '])
        .filter(|o| o.contains(':'))
        .any(is_security_suite)
}

/// Moves the packages of `holds` (`apt-mark showhold`, one per line) from the plan's kept-back
/// list to `held`: apt keeps both back, but only a hold is the operator's choice.
pub(crate) fn split_holds(plan: &mut UpgradePlan, holds: &str) {
    let holds: Vec<&str> = holds.split_whitespace().collect();
    let (held, kept): (Vec<String>, Vec<String>) = std::mem::take(&mut plan.kept_back)
        .into_iter()
        .partition(|name| holds.contains(&name.as_str()));
    plan.held.extend(held);
    plan.kept_back = kept;
}

/// Marker line the reboot probe prints when `/var/run/reboot-required` exists.
pub(crate) const REBOOT_MARKER: &str = "tendhost-reboot-required";

/// Parses the reboot probe: [`REBOOT_MARKER`] on the first line when a reboot is needed, then
/// the contents of `reboot-required.pkgs` (one package per line, possibly repeated).
pub(crate) fn parse_reboot_probe(text: &str) -> (bool, Vec<String>) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let required = lines.clone().next() == Some(REBOOT_MARKER);
    let mut packages: Vec<String> = Vec::new();
    for line in lines.by_ref() {
        if line == REBOOT_MARKER {
            continue;
        }
        if !packages.iter().any(|p| p == line) {
            packages.push(line.to_string());
        }
    }
    (required, packages)
}

/// True when apt or dpkg reports that another process holds its lock.
pub(crate) fn is_lock_error(stderr: &str) -> bool {
    stderr.contains("Could not get lock")
        || stderr.contains("Unable to acquire the dpkg frontend lock")
        || stderr.contains("Unable to lock directory")
        || stderr.contains("is another process using it?")
}

/// Who holds the lock, from apt's "It is held by process 1234 (unattended-upgr)": `unattended-upgr
/// (pid 1234)`. Names are what the kernel keeps (15 characters).
pub(crate) fn lock_holder(stderr: &str) -> Option<String> {
    let rest = stderr.split("It is held by process ").nth(1)?;
    let (pid, rest) = rest.split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let name = rest.strip_prefix('(')?.split(')').next()?.trim();
    Some(if name.is_empty() {
        format!("process {pid}")
    } else {
        format!("{name} (pid {pid})")
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOST_LIST: &str = include_str!("../../../tests/fixtures/apt/list-upgradable-host.stdout");
    const HOST_SIM: &str = include_str!("../../../tests/fixtures/apt/sim-dist-upgrade-host.txt");

    #[test]
    fn parses_every_line_of_a_real_upgradable_list() {
        let pending = parse_list_upgradable(HOST_LIST);
        let expected = HOST_LIST
            .lines()
            .filter(|l| l.contains("[upgradable from:"))
            .count();
        assert_eq!(pending.len(), expected);
        let apt = pending.iter().find(|p| p.name == "apt").unwrap();
        assert_eq!((apt.from.as_str(), apt.to.as_str()), ("2.6.1", "2.6.2"));
        assert!(apt.security, "apt comes from oldstable-security");
        let bash = pending.iter().find(|p| p.name == "bash").unwrap();
        assert!(!bash.security);
        let krb = pending.iter().find(|p| p.name == "krb5-locales").unwrap();
        assert!(
            krb.security,
            "second suite of 'oldstable,oldstable-security' counts"
        );
    }

    #[test]
    fn keeps_epochs_in_versions() {
        let pending = parse_list_upgradable(HOST_LIST);
        let cap = pending.iter().find(|p| p.name == "libcap2-bin").unwrap();
        assert_eq!(cap.to, "1:2.66-4+deb12u3+b1");
        assert_eq!(cap.from, "1:2.66-4+deb12u2+b2");
    }

    #[test]
    fn simulation_matches_the_list_on_a_real_host() {
        let plan = parse_simulation(HOST_SIM);
        assert_eq!(
            plan.upgrades.len(),
            HOST_SIM.lines().filter(|l| l.starts_with("Inst ")).count()
        );
        assert!(plan.installs.is_empty() && plan.removals.is_empty() && plan.kept_back.is_empty());
        let base = plan
            .upgrades
            .iter()
            .find(|p| p.name == "base-files")
            .unwrap();
        assert_eq!(
            (base.from.as_str(), base.to.as_str()),
            ("12.4+deb12u11", "12.4+deb12u15")
        );
        assert!(!base.security);
        let gcrypt = plan
            .upgrades
            .iter()
            .find(|p| p.name == "libgcrypt20-dev")
            .unwrap();
        assert!(gcrypt.security);
    }

    #[test]
    fn reads_a_real_full_plan_with_removal_and_new_install() {
        let text = include_str!("../../../tests/fixtures/apt/sim-dist-upgrade-localrepo.txt");
        let plan = parse_simulation(text);
        let names: Vec<&str> = plan.upgrades.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["tendhost-app", "tendhost-core"]);
        assert_eq!(plan.installs, ["tendhost-newdep"]);
        assert_eq!(plan.removals, ["tendhost-legacy"]);
        assert!(plan.kept_back.is_empty());
    }

    #[test]
    fn reads_a_real_safe_plan_with_kept_back() {
        let plan = parse_simulation(include_str!(
            "../../../tests/fixtures/apt/sim-upgrade-localrepo.txt"
        ));
        assert_eq!(plan.upgrades.len(), 1);
        assert_eq!(plan.kept_back, ["tendhost-core"]);
        let list = include_str!("../../../tests/fixtures/apt/list-upgradable-localrepo.stdout");
        assert_eq!(parse_list_upgradable(list).len(), 2);
    }

    #[test]
    fn reads_installs_removals_and_kept_back() {
        let text = "\
The following packages have been kept back:
  app-core extra
The following packages will be REMOVED:
  oldlib
Inst newdep (1.0 local [all])
Remv oldlib [0.9]
Inst app-core [1.0] (1.1 local [all]) []
Inst tendhost-kernel [1.0] (1.1 Debian-Security:bookworm-security [all])
Conf newdep (1.0 local [all])
";
        let plan = parse_simulation(text);
        assert_eq!(plan.installs, ["newdep"]);
        assert_eq!(plan.removals, ["oldlib"]);
        assert_eq!(plan.kept_back, ["app-core", "extra"]);
        let mut split = plan.clone();
        split_holds(&mut split, "extra\nother\n");
        assert_eq!(
            (split.held, split.kept_back),
            (vec!["extra".to_string()], vec!["app-core".to_string()])
        );
        assert_eq!(plan.upgrades[0].to, "1.1");
        assert!(!plan.upgrades[0].security);
        assert!(plan.upgrades[1].security, "LABEL:SUITE without a version");
    }

    #[test]
    fn reboot_probe_lists_each_package_once() {
        let text = format!("{REBOOT_MARKER}\nlinux-image\nlinux-image\nlibc6\n");
        assert_eq!(
            parse_reboot_probe(&text),
            (true, vec!["linux-image".to_string(), "libc6".to_string()])
        );
        assert_eq!(parse_reboot_probe(""), (false, vec![]));
    }

    #[test]
    fn recognises_lock_messages() {
        assert!(is_lock_error(
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (apt-get)"
        ));
        assert!(!is_lock_error("E: Unable to locate package foo"));
        assert_eq!(
            lock_holder(
                "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (apt-get)\nN: Be aware"
            )
            .as_deref(),
            Some("apt-get (pid 7)")
        );
        assert_eq!(
            lock_holder("E: Could not get lock /var/lib/apt/lists/lock"),
            None
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC*") {
            let _ = parse_list_upgradable(&text);
            let _ = parse_simulation(&text);
            let _ = parse_reboot_probe(&text);
        }

        #[test]
        fn never_panics_on_apt_shaped_lines(
            name in "[a-z0-9.+-]{0,12}",
            junk in "[\\[\\]() /,:a-z0-9-]{0,40}",
        ) {
            let text = format!(
                "Inst {name} {junk}\nRemv {junk}\n{name}/{junk} [upgradable from: {junk}\n{name}/{junk}"
            );
            let _ = parse_simulation(&text);
            let _ = parse_list_upgradable(&text);
        }
    }
}
