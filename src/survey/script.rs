//! Builds the survey script for one host and reads what it printed.
//!
//! The script, in order: pick the manager (`auto` by what the host has); refresh the lists when
//! asked; print when they were last refreshed, the uptime and, for [`ListsPolicy::MaxAge`], stop
//! with `@@stale` if they are too old; print the fingerprint and stop with `@@unchanged` if it is
//! the known one; else the heavy part: inventory, packages, stacks. Every value the script
//! interpolates is either a literal of tendhost's or passed through `quote`.

use std::time::Duration;

use chrono::Utc;

use super::sections::{EXIT, Sections, marker};
use super::{
    Error, Findings, Glance, ListsPolicy, PackageFindings, Survey, SurveyRequest, apt, dnf,
};
use crate::pkg::{ComposeUpdater, ManagerKind, StackReport};
use crate::remote::quote;

/// The first section every survey prints: its absence means the script did not run.
pub(super) const HEADER: &str = "survey";

/// Where a refresh leaves its stamp, under the host's `job_dir`: `apt-get update` that found
/// nothing new changes no file, so the lists' own times cannot say when they were last checked.
const STAMP: &str = "lists-refreshed";

/// The files and directories whose size, time and inode make up the fingerprint, besides the
/// boot id, the stamp and compose's: whatever a package manager's answer is read from.
const FINGERPRINTED: &[&str] = &[
    // apt: installed packages and holds, lists, pins and sources, the reboot marker.
    "/var/lib/dpkg/status",
    "/var/lib/apt/extended_states",
    "/var/lib/apt/lists",
    "/var/lib/apt/lists/*",
    "/etc/apt/preferences",
    "/etc/apt/preferences.d",
    "/etc/apt/preferences.d/*",
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/apt/sources.list.d/*",
    "/var/run/reboot-required",
    "/var/run/reboot-required.pkgs",
    // rpm and dnf/yum: the rpm database, repository metadata, repository configuration. Only
    // the files a write changes: every reader touches sqlite's `-shm` and Berkeley DB's
    // `__db.*` regions, and dnf creates and removes its lock in `/var/cache/dnf`, so the
    // directories and a `*` would change with every read (the survey's own included).
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite-wal",
    "/var/lib/rpm/Packages",
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
    "/usr/lib/sysimage/rpm/Packages",
    "/usr/lib/sysimage/rpm/Packages.db",
    "/var/cache/dnf/*/repodata/repomd.xml",
    "/var/cache/yum",
    "/etc/yum.repos.d",
    "/etc/yum.repos.d/*",
    "/etc/dnf/dnf.conf",
    // Version locks hide upgrades from dnf and yum (and the survey's dnf API read).
    "/etc/dnf/plugins/versionlock.list",
    "/etc/yum/pluginconf.d/versionlock.list",
];

/// A survey of one host, from the request to the parsed answer.
pub(super) struct Plan<'a> {
    request: SurveyRequest<'a>,
    /// `None` for `manager = "none"`; `Some(None)` for `auto`.
    manager: Option<Option<ManagerKind>>,
    composer: ComposeUpdater,
    /// A digest of everything the answer's shape depends on besides the host (this tendhost's
    /// script, the host's compose paths): part of the fingerprint, so a new tendhost or a
    /// changed config never takes an old answer for a current one.
    version: String,
}

impl<'a> Plan<'a> {
    pub(super) fn new(request: SurveyRequest<'a>) -> Self {
        let mut plan = Plan {
            request,
            manager: super::configured_manager(request.host.manager),
            composer: ComposeUpdater::new(&request.host.docker),
            version: String::new(),
        };
        plan.version = digest(&plan.heavy_part());
        plan
    }

    /// The fingerprint the host must print to be "unchanged", if the known one is of this
    /// version.
    fn known_host_part(&self) -> Option<&str> {
        let known = self.request.known?;
        let (version, host) = known.split_once('-')?;
        (version == self.version).then_some(host)
    }

    pub(super) fn script(&self) -> String {
        let job_dir = quote(&self.request.host.job_dir);
        let mut s = String::from("LC_ALL=C; export LC_ALL\n");
        s.push_str(&marker(HEADER));
        s.push('\n');
        s.push_str(&self.pick_manager());
        s.push_str(&format!("stamp={job_dir}/{STAMP}\n"));
        if self.request.lists == ListsPolicy::Refresh && self.manager.is_some() {
            s.push_str(&format!(
                "{}\ncase $mgr in\napt) {{\n{}\n}} 2>&1 ;;\ndnf|yum) {{\n{}\n}} 2>&1 ;;\nesac\n\
                 code=$?\n[ \"$code\" -eq 0 ] && mkdir -p {job_dir} && touch \"$stamp\"\n\
                 (exit \"$code\"); {EXIT}\n",
                marker("refresh"),
                apt::refresh(),
                dnf::refresh("$mgr"),
            ));
        }
        s.push_str(&format!(
            "{}\nnow=$(date +%s)\nlists=$(case $mgr in apt) stat -L -c %Y \"$stamp\" {apt} ;; \
             dnf|yum) stat -L -c %Y \"$stamp\" {dnf} ;; esac 2>/dev/null | sort -n | tail -n 1)\n\
             echo \"$now $lists\"\n{}\ncat /proc/uptime 2>/dev/null\n",
            marker("lists"),
            marker("uptime"),
            apt = apt::LISTS_TIMES,
            dnf = dnf::LISTS_TIMES,
        ));
        if let ListsPolicy::MaxAge(max) = self.request.lists
            && self.manager.is_some()
        {
            s.push_str(&format!(
                "if [ \"$mgr\" != none ] && {{ [ -z \"$lists\" ] || [ $((now - lists)) -gt {} ]; }}; then \
                 echo \"@@stale $((now - ${{lists:-0}}))\"; exit 0; fi\n",
                max.as_secs()
            ));
        }
        s.push_str(&self.fingerprint_part());
        if let Some(known) = self.known_host_part() {
            s.push_str(&format!(
                "if [ \"$fp\" = {} ]; then {}; exit 0; fi\n",
                quote(known),
                marker("unchanged")
            ));
        }
        s.push_str(&self.heavy_part());
        s
    }

    /// Sets `$mgr` to `apt`, `dnf`, `yum` or `none`.
    fn pick_manager(&self) -> String {
        match self.manager {
            None => "mgr=none\n".into(),
            Some(Some(kind)) => format!("mgr={}\n", name(kind)),
            Some(None) => "if command -v apt-get >/dev/null 2>&1; then mgr=apt\n\
                 elif command -v dnf >/dev/null 2>&1; then mgr=dnf\n\
                 elif command -v yum >/dev/null 2>&1; then mgr=yum\nelse mgr=none\nfi\n"
                .into(),
        }
    }

    fn fingerprint_part(&self) -> String {
        let mut inputs = format!(
            "stat -L -c '%n %s %.9Y %i' {}\ncat {}\n",
            FINGERPRINTED.join(" "),
            quote(self.request.boot_id_path),
        );
        let paths = &self.request.host.compose_paths;
        if !paths.is_empty() {
            let quoted: Vec<String> = paths.iter().map(|p| quote(p)).collect();
            inputs.push_str(&format!(
                "for p in {}; do stat -L -c '%n %s %.9Y %i' \"$p\" \"$p\"/*.yml \"$p\"/*.yaml; done\n\
                 docker ps -aq --no-trunc\ndocker images -q --no-trunc\n",
                quoted.join(" ")
            ));
        }
        format!(
            "{}\nif command -v sha256sum >/dev/null 2>&1; then hash=sha256sum; else hash=cksum; fi\n\
             fp=$( {{\n{inputs}}} 2>/dev/null | $hash | tr ' ' '_')\nfp=${{fp%%_*}}\necho \"$fp\"\n",
            marker("fingerprint")
        )
    }

    /// Inventory, packages, stacks: what an "unchanged" answer saves.
    fn heavy_part(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            marker("inventory"),
            crate::inventory::survey_script(),
            "echo \"@@manager $mgr\"",
        );
        if self.manager.is_some() {
            s.push_str(&format!(
                "case $mgr in\napt)\n{}\n;;\ndnf|yum)\n{}\n;;\nesac\n",
                apt::read(),
                dnf::read("$mgr"),
            ));
        }
        for (i, path) in self.request.host.compose_paths.iter().enumerate() {
            s.push_str(&format!(
                "{}\n( {} ) 2>&1; {EXIT}\n",
                marker(&format!("stack {i}")),
                self.composer.inspect_script(path)
            ));
        }
        s.push_str(&marker("end"));
        s.push('\n');
        s
    }

    /// Reads the script's answer.
    pub(super) fn read(&self, sections: &Sections) -> Result<Survey, Error> {
        let refreshed_lists = match sections.get("refresh") {
            Some(section) if !section.succeeded() => {
                return Err(match self.ran_manager(sections) {
                    Some(ManagerKind::Apt) | None => apt::refresh_failed(section),
                    Some(kind) => dnf::refresh_failed(kind, section),
                });
            }
            Some(_) => true,
            None => false,
        };
        let (now, lists) = lists_times(sections.body("lists"));
        if let Some(stale) = sections.get("stale") {
            let age = stale.args.trim().parse::<u64>().unwrap_or(u64::MAX);
            return Ok(Survey::Stale {
                age: Duration::from_secs(age),
            });
        }
        let host_fp = sections.body("fingerprint").trim().to_string();
        let glance = Glance {
            fingerprint: format!("{}-{host_fp}", self.version),
            uptime_secs: sections
                .body("uptime")
                .split_whitespace()
                .next()
                .and_then(|s| s.split('.').next()?.parse().ok()),
            lists_refreshed: lists.and_then(|stamp| {
                // The host's clock may be off; only the age it gives is trusted.
                let age = now?.saturating_sub(stamp).max(0);
                Some(Utc::now() - chrono::Duration::seconds(age))
            }),
            refreshed_lists,
        };
        if sections.has("unchanged") {
            return Ok(Survey::Unchanged(glance));
        }
        if !sections.has("end") {
            return Err(Error::NotRun {
                code: "0".into(),
                detail: "the survey's output ended early".into(),
            });
        }
        let inventory =
            crate::inventory::from_survey(&sections.text_between("inventory", "manager"))
                .map_err(Error::Inventory)?;
        let packages = self.packages(sections, &inventory)?;
        let stacks = self.stacks(sections)?;
        Ok(Survey::Read(Box::new(Findings {
            glance,
            inventory,
            packages,
            stacks,
        })))
    }

    /// The manager whose part ran, from `@@manager`.
    fn ran_manager(&self, sections: &Sections) -> Option<ManagerKind> {
        let ran = sections.get("manager").map(|s| s.args.as_str());
        match ran.or(match self.manager {
            Some(Some(kind)) => Some(name(kind)),
            _ => None,
        })? {
            "apt" => Some(ManagerKind::Apt),
            "dnf" => Some(ManagerKind::Dnf),
            "yum" => Some(ManagerKind::Yum),
            _ => None,
        }
    }

    fn packages(
        &self,
        sections: &Sections,
        inventory: &crate::inventory::Inventory,
    ) -> Result<Option<(ManagerKind, PackageFindings)>, Error> {
        let Some(configured) = self.manager else {
            return Ok(None);
        };
        // `auto` is decided by os-release, as `pkg::detect` does; the host's guess by the tools
        // it has must agree, or the answer is not the one asked for.
        let kind = match configured {
            Some(kind) => kind,
            None => crate::pkg::manager_for(&inventory.os).map_err(|source| Error::Packages {
                what: "detecting the package manager",
                source,
            })?,
        };
        let ran = self.ran_manager(sections);
        let agrees = matches!(
            (kind, ran),
            (ManagerKind::Apt, Some(ManagerKind::Apt))
                | (
                    ManagerKind::Dnf | ManagerKind::Yum,
                    Some(ManagerKind::Dnf | ManagerKind::Yum)
                )
        );
        if !agrees {
            return Err(Error::Packages {
                what: "detecting the package manager",
                source: crate::pkg::Error::UnsupportedOs(format!(
                    "{} (os-release says {}, but the host has {})",
                    inventory.os_label(),
                    name(kind),
                    ran.map_or("no package manager", name)
                )),
            });
        }
        let mut findings = match kind {
            ManagerKind::Apt => apt::findings(sections)?,
            _ => dnf::findings(kind, sections)?,
        };
        // Managers list in their own order; every consumer wants one stable order by name.
        findings.pending.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some((kind, findings)))
    }

    fn stacks(&self, sections: &Sections) -> Result<Vec<StackReport>, Error> {
        let paths = &self.request.host.compose_paths;
        let mut stacks = Vec::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            let index = i.to_string();
            let section = sections
                .all("stack")
                .find(|s| s.args == index)
                .ok_or_else(|| Error::NotRun {
                    code: "0".into(),
                    detail: format!("no answer for compose stack '{path}'"),
                })?;
            let report = self
                .composer
                .inspected(path, &section.body, section.exit)
                .map_err(Error::Compose)?;
            stacks.push(report);
        }
        Ok(stacks)
    }
}

fn name(kind: ManagerKind) -> &'static str {
    match kind {
        ManagerKind::Apt => "apt",
        ManagerKind::Dnf => "dnf",
        ManagerKind::Yum => "yum",
    }
}

/// `NOW [LISTS]` in the host's epoch seconds.
fn lists_times(body: &str) -> (Option<i64>, Option<i64>) {
    let mut words = body.split_whitespace().map(|w| w.parse::<i64>().ok());
    (words.next().flatten(), words.next().flatten())
}

/// A short stable digest of `text` (SHA-256, first 12 hex digits).
fn digest(text: &str) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    hash.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, HostConfig};

    fn host(extra: &str) -> HostConfig {
        let text = format!("[[host]]\nname = \"h\"\naddr = \"10.0.0.1\"\n{extra}\n");
        Config::from_str("t.toml", &text).unwrap().hosts[0].clone()
    }

    fn plan<'a>(host: &'a HostConfig, known: Option<&'a str>, lists: ListsPolicy) -> Plan<'a> {
        Plan::new(SurveyRequest {
            host,
            known,
            lists,
            boot_id_path: "/proc/sys/kernel/random/boot_id",
        })
    }

    #[test]
    fn a_known_fingerprint_of_this_version_is_compared_quoted_others_are_ignored() {
        let h = host("");
        let version = plan(&h, None, ListsPolicy::Keep).version.clone();
        let known = format!("{version}-abc'; rm -rf /; '");
        let script = plan(&h, Some(&known), ListsPolicy::Keep).script();
        assert!(script.contains(&quote("abc'; rm -rf /; '")), "{script}");
        assert!(script.contains("@@unchanged"));
        // A fingerprint another tendhost (or another config) wrote is never compared.
        let script = plan(&h, Some("0123456789ab-abc"), ListsPolicy::Keep).script();
        assert!(!script.contains("@@unchanged"));
    }

    #[test]
    fn compose_paths_are_quoted_and_change_the_version() {
        let plain = host("");
        let with_stack = host("compose_paths = [\"/srv/my app; reboot\"]");
        let a = plan(&plain, None, ListsPolicy::Keep);
        let b = plan(&with_stack, None, ListsPolicy::Keep);
        assert_ne!(a.version, b.version);
        let script = b.script();
        assert!(script.contains(&quote("/srv/my app; reboot")), "{script}");
        assert!(script.contains("@@stack 0"));
    }

    #[test]
    fn only_max_age_can_answer_stale_and_only_refresh_refreshes() {
        let h = host("");
        let hour = ListsPolicy::MaxAge(Duration::from_secs(3600));
        assert!(plan(&h, None, hour).script().contains("@@stale"));
        assert!(plan(&h, None, hour).script().contains("-gt 3600"));
        assert!(
            !plan(&h, None, ListsPolicy::Keep)
                .script()
                .contains("@@stale")
        );
        assert!(
            !plan(&h, None, ListsPolicy::Keep)
                .script()
                .contains("@@refresh")
        );
        assert!(
            plan(&h, None, ListsPolicy::Refresh)
                .script()
                .contains("@@refresh")
        );
        // A host without a manager has no lists to refresh or age.
        let none = host("manager = \"none\"");
        assert!(
            !plan(&none, None, ListsPolicy::Refresh)
                .script()
                .contains("@@refresh")
        );
        assert!(!plan(&none, None, hour).script().contains("@@stale"));
    }

    #[test]
    fn reads_unchanged_stale_and_a_cut_answer() {
        let h = host("manager = \"apt\"");
        let p = plan(&h, None, ListsPolicy::Keep);
        let unchanged = Sections::parse(
            "@@survey\n@@lists\n1000 400\n@@uptime\n77.5 1\n@@fingerprint\nabc\n@@unchanged\n",
        );
        let Ok(Survey::Unchanged(glance)) = p.read(&unchanged) else {
            panic!("unchanged");
        };
        assert_eq!(glance.fingerprint, format!("{}-abc", p.version));
        assert_eq!(glance.uptime_secs, Some(77));
        let age = Utc::now() - glance.lists_refreshed.unwrap();
        assert!((599..=605).contains(&age.num_seconds()), "{age:?}");

        let stale = Sections::parse("@@survey\n@@lists\n1000\n@@stale 1000\n");
        assert!(matches!(p.read(&stale), Ok(Survey::Stale { age }) if age.as_secs() == 1000));

        // Output that stops before the end is not taken for an empty answer.
        let cut = Sections::parse("@@survey\n@@fingerprint\nabc\n@@inventory\n");
        assert!(matches!(p.read(&cut), Err(Error::NotRun { .. })));
    }
}
