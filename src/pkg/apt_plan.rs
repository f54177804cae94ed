//! The apt plan in one round trip: one script simulates the upgrade and, for a dry run, reads on
//! the host what the plan will cost and ask (holds, download and installed sizes, locally changed
//! conffiles the new packages also change, free space), printing survey-style sections that
//! [`read`] turns into an [`UpgradePlan`].
//!
//! Knows nothing of connections; the package names in the script come from apt's own simulation
//! output on the host, never from tendhost (the action is built, and quoted, by `apt.rs`).

use super::parse::{apt as parse, plan as facts};
use super::{Error, UpgradePlan};
use crate::survey::sections::{Sections, marker};

/// Where apt writes: its archive cache (downloads) and the root filesystem (installs).
const SPACE_PATHS: [&str; 2] = ["/var/cache/apt/archives", "/"];

/// The script: `@@sim` (the simulation, with its exit) and `@@holds` always; with `rich`, also
/// `@@uris`, `@@new-sizes`, `@@old-sizes`, `@@conffiles` and `@@df`. `action` is apt-get's verb
/// and arguments (`dist-upgrade`, `install --only-upgrade 'openssl'`), already quoted.
pub(super) fn script(action: &str, rich: bool) -> String {
    let mut script = format!(
        "export LC_ALL=C\n\
         sim=$(apt-get -s -o Debug::NoLocking=1 {action} 2>&1); code=$?\n\
         {sim}; printf '%s\\n' \"$sim\"; echo \"@@exit $code\"\n\
         {holds}; apt-mark showhold 2>/dev/null\n",
        sim = marker("sim"),
        holds = marker("holds"),
    );
    if !rich {
        // The simulation's exit is in its section; the script itself always succeeds.
        script.push_str("true\n");
        return script;
    }
    // Every name below comes from the simulation's `Inst NAME [OLD] (NEW …)` and `Remv NAME`
    // lines; `set -f` keeps a name from being read as a glob where it is split into words (and
    // `set +f` lets the cache lookup glob for the `.deb`).
    script.push_str(&format!(
        "[ \"$code\" -eq 0 ] || exit 0\n\
         {uris}; apt-get -qq --print-uris -o Debug::NoLocking=1 {action} 2>/dev/null\n\
         ups=$(printf '%s\\n' \"$sim\" | awk '$1==\"Inst\" && $3 ~ /^\\[/ {{v=$4; sub(/^\\(/,\"\",v); print $2, v}}')\n\
         ins=$(printf '%s\\n' \"$sim\" | awk '$1==\"Inst\" && $3 !~ /^\\[/ {{v=$3; sub(/^\\(/,\"\",v); print $2, v}}')\n\
         rms=$(printf '%s\\n' \"$sim\" | awk '$1==\"Remv\" {{print $2}}')\n\
         set -f\n\
         {new}\n\
         args=$(printf '%s\\n%s\\n' \"$ups\" \"$ins\" | awk 'NF==2 {{print $1 \"=\" $2}}')\n\
         [ -n \"$args\" ] && apt-cache show --no-all-versions $args 2>/dev/null | grep -E '^(Package|Installed-Size):'\n\
         {old}\n\
         olds=$(printf '%s\\n%s\\n' \"$ups\" \"$rms\" | awk 'NF {{print $1}}')\n\
         [ -n \"$olds\" ] && dpkg-query -W -f='${{Package}} ${{Installed-Size}}\\n' $olds 2>/dev/null\n\
         set +f\n\
         {conffiles}\n\
         printf '%s\\n' \"$ups\" | while read -r name ver; do\n  \
           [ -n \"$name\" ] || continue\n  \
           file=\"${{name}}_$(printf '%s' \"$ver\" | sed 's/:/%3a/')\"\n  \
           deb=''\n  \
           for f in /var/cache/apt/archives/\"$file\"_*.deb; do [ -f \"$f\" ] && deb=$f; done\n  \
           dpkg-query -W -f='${{Conffiles}}\\n' \"$name\" 2>/dev/null | while read -r path sum flag; do\n    \
             [ -n \"$path\" ] && [ \"$flag\" != obsolete ] && [ -e \"$path\" ] || continue\n    \
             if [ -r \"$path\" ]; then now=$(md5sum < \"$path\" | cut -d' ' -f1); else now='?'; fi\n    \
             [ \"$now\" = \"$sum\" ] && continue\n    \
             new=-\n    \
             [ -n \"$deb\" ] && new=$(dpkg-deb --fsys-tarfile \"$deb\" 2>/dev/null | tar -xOf - \".$path\" 2>/dev/null | md5sum | cut -d' ' -f1)\n    \
             echo \"$name $path $sum $now $new\"\n  \
           done\n\
         done\n\
         {df}; {df_script}\n\
         true\n",
        uris = marker("uris"),
        new = marker("new-sizes"),
        old = marker("old-sizes"),
        conffiles = marker("conffiles"),
        df = marker("df"),
        df_script = facts::df_script(&SPACE_PATHS),
    ));
    script
}

/// The plan the script's sections describe; the simulation's failure is the step's error.
pub(super) fn read(text: &str, step: &'static str) -> Result<UpgradePlan, Error> {
    let sections = Sections::parse(text);
    let Some(sim) = sections.get("sim") else {
        return Err(Error::Parse {
            what: step,
            detail: "the plan script printed no simulation".into(),
        });
    };
    if !sim.succeeded() {
        return Err(sim.failure(step));
    }
    let mut plan = parse::parse_simulation(&sim.body);
    parse::split_holds(&mut plan, sections.body("holds"));
    if !sections.has("df") {
        // The lean plan (the consent check): what it reads is all it knows.
        return Ok(plan);
    }
    plan.reboot_packages = facts::reboot_packages(
        plan.upgrades
            .iter()
            .map(|p| p.name.as_str())
            .chain(plan.installs.iter().map(String::as_str)),
    );
    plan.conffiles = Some(facts::parse_conffiles(sections.body("conffiles")));
    plan.download_bytes = facts::parse_uri_sizes(sections.body("uris"));
    let new = facts::parse_installed_sizes(sections.body("new-sizes"));
    let old = facts::parse_installed_sizes(sections.body("old-sizes"));
    plan.install_bytes = Some(facts::install_delta(&new, &old));
    plan.free_space = facts::parse_df(sections.body("df"));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rich_plan_reads_every_section() {
        let text = "@@sim\n\
The following packages have been kept back:\n  tendhost-core tendhost-app\n\
Inst tendhost-kernel [1.0] (1.1 Debian-Security:bookworm-security [all])\n\
Conf tendhost-kernel (1.1 Debian-Security:bookworm-security [all])\n\
@@exit 0\n@@holds\ntendhost-app\n\
@@uris\n'copy:/security/./tendhost-kernel_1.1_all.deb' tendhost-kernel_1.1_all.deb 700 MD5Sum:aa\n\
@@new-sizes\nPackage: tendhost-kernel\nInstalled-Size: 9\n\
@@old-sizes\ntendhost-kernel 8\n\
@@conffiles\n\
@@df\n/var/cache/apt/archives 40\n/ 40\n";
        let plan = read(text, "plan").unwrap();
        assert_eq!(plan.held, ["tendhost-app"]);
        assert_eq!(plan.kept_back, ["tendhost-core"]);
        assert_eq!(plan.reboot_packages, ["tendhost-kernel"]);
        assert_eq!(plan.conffiles, Some(vec![]));
        assert_eq!(plan.download_bytes, Some(700));
        assert_eq!(plan.install_bytes, Some(1024));
        assert_eq!(plan.free_space.len(), 2);
        assert_eq!(plan.free_space[1].free_bytes, 40 * 1024);
    }

    #[test]
    fn a_lean_plan_splits_holds_and_knows_nothing_more() {
        let text = "@@sim\nInst a [1] (2 local [all])\n@@exit 0\n@@holds\n";
        let plan = read(text, "plan").unwrap();
        assert_eq!(plan.upgrades.len(), 1);
        assert_eq!((plan.conffiles, plan.download_bytes), (None, None));
    }

    #[test]
    fn a_failed_simulation_is_the_steps_error() {
        let text = "@@sim\nE: Unable to locate package nope\n@@exit 100\n@@holds\n";
        let err = read(text, "apt-get -s (dry run)").unwrap_err();
        assert_eq!(
            err.to_string(),
            "apt-get -s (dry run) failed (exit 100): E: Unable to locate package nope"
        );
        assert!(read("", "plan").is_err());
    }
}
