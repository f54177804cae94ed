//! Pure readers for the facts a rich dry-run plan adds to the package lists, shared by apt and
//! dnf: which packages make a host need a reboot, free space from `df -Pk`, and the sizes and
//! conffile lines the apt plan script prints, and the one df command both print them with. Text in, values out, never a panic.

use super::super::{ConffilePrompt, FreeSpace};

/// Packages whose upgrade leaves the host needing a reboot to take effect: kernels and their
/// modules, CPU microcode and firmware, the C library, the init system and the system bus.
/// Debian and rpm names side by side; [`expects_reboot`] is the one rule that reads them.
const REBOOT_EXACT: &[&str] = &[
    "libc6",
    "glibc",
    "systemd",
    "dbus",
    "dbus-broker",
    "dbus-daemon",
    "linux-firmware",
    "microcode_ctl",
];

/// Name prefixes with the same effect (`linux-image-6.1.0-27-amd64`, `firmware-misc-nonfree`).
const REBOOT_PREFIXES: &[&str] = &["linux-image", "linux-modules", "firmware-"];

/// Name suffixes with the same effect (`intel-microcode`, `amd64-microcode`).
const REBOOT_SUFFIXES: &[&str] = &["-microcode", "-firmware"];

/// Whether upgrading or installing `name` makes a reboot expected. Anything whose name contains
/// `kernel` counts too: `kernel`, `kernel-core`, `kernel-modules` on rpm systems, and the test
/// repositories' `tendhost-kernel`, whose postinst asks for a reboot as a kernel's does.
pub(crate) fn expects_reboot(name: &str) -> bool {
    REBOOT_EXACT.contains(&name)
        || REBOOT_PREFIXES.iter().any(|p| name.starts_with(p))
        || REBOOT_SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.contains("kernel")
}

/// The names among `names` that make a reboot expected, each once, in order.
pub(crate) fn reboot_packages<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if expects_reboot(name) && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Shell that prints `PATH AVAILABLE_KIB` for each of `paths` df can read (`df -Pk`, one path
/// at a time so a missing one cannot shift the others), for [`parse_df`].
pub(crate) fn df_script(paths: &[&str]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| crate::remote::quote(p)).collect();
    format!(
        "for p in {}; do df -Pk \"$p\" 2>/dev/null | awk -v p=\"$p\" 'NR==2 {{print p, $4}}'; done",
        quoted.join(" ")
    )
}

/// Reads [`df_script`]'s lines into free space by path; lines that do not parse are skipped,
/// so a path df could not read is simply absent.
pub(crate) fn parse_df(text: &str) -> Vec<FreeSpace> {
    text.lines()
        .filter_map(|line| {
            let (path, available) = line.trim().rsplit_once(' ')?;
            let available: u64 = available.parse().ok()?;
            Some(FreeSpace {
                path: path.to_string(),
                free_bytes: available.saturating_mul(1024),
            })
        })
        .collect()
}

/// Sums the sizes of `apt-get --print-uris -qq` lines: `'URI' FILE SIZE HASH`. `None` when a
/// line's size is unreadable (then the total would be a guess).
pub(crate) fn parse_uri_sizes(text: &str) -> Option<u64> {
    let mut total = 0u64;
    for line in text.lines().filter(|l| l.starts_with('\'')) {
        let after_uri = line.get(1..)?.split_once('\'')?.1;
        let size: u64 = after_uri.split_whitespace().nth(1)?.parse().ok()?;
        total = total.saturating_add(size);
    }
    Some(total)
}

/// Installed sizes in KiB by package, from `apt-cache show` stanzas (`Package:` then
/// `Installed-Size:`) or `dpkg-query -f '${Package} ${Installed-Size}\n'` lines.
pub(crate) fn parse_installed_sizes(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut package: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Package:") {
            package = Some(name.trim().to_string());
        } else if let Some(size) = line.strip_prefix("Installed-Size:") {
            if let (Some(name), Ok(size)) = (package.take(), size.trim().parse()) {
                out.push((name, size));
            }
        } else if let [name, size] = line.split_whitespace().collect::<Vec<_>>().as_slice()
            && let Ok(size) = size.parse()
        {
            out.push(((*name).to_string(), size));
        }
    }
    out
}

/// The change in installed size, in bytes: new sizes (upgrades and installs) minus old sizes
/// (upgrades and removals), each given in KiB as dpkg keeps them.
pub(crate) fn install_delta(new: &[(String, u64)], old: &[(String, u64)]) -> i64 {
    let sum = |sizes: &[(String, u64)]| -> i64 {
        sizes
            .iter()
            .map(|(_, kib)| i64::try_from(*kib).unwrap_or(i64::MAX / 4096))
            .fold(0i64, i64::saturating_add)
    };
    sum(new).saturating_sub(sum(old)).saturating_mul(1024)
}

/// Reads the apt plan's conffile lines: `PACKAGE PATH RECORDED NOW NEW`, one per conffile that
/// differs from what dpkg recorded (changed locally). `NOW` is `?` when the file could not be
/// read; `NEW` is the md5 of the file in the new `.deb`, or `-` when that `.deb` is not in the
/// cache yet. dpkg prompts when both sides changed it: a new package that ships what dpkg
/// recorded changes nothing (dropped); an unreadable file or an uncached `.deb` is unknown.
pub(crate) fn parse_conffiles(text: &str) -> Vec<ConffilePrompt> {
    text.lines()
        .filter_map(|line| {
            let [package, path, recorded, now, new] =
                line.split_whitespace().collect::<Vec<_>>()[..]
            else {
                return None;
            };
            let changed_upstream = match (now, new) {
                ("?", _) | (_, "-") => None,
                (_, new) if new == recorded => return None,
                _ => Some(true),
            };
            Some(ConffilePrompt {
                package: package.to_string(),
                path: path.to_string(),
                changed_upstream,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn kernels_libc_and_init_expect_a_reboot_and_ordinary_packages_do_not() {
        for name in [
            "linux-image-6.1.0-27-amd64",
            "linux-modules-extra-6.8.0-45-generic",
            "intel-microcode",
            "libc6",
            "systemd",
            "dbus",
            "firmware-misc-nonfree",
            "kernel-core",
            "glibc",
            "tendhost-kernel",
        ] {
            assert!(expects_reboot(name), "{name}");
        }
        for name in [
            "openssl",
            "libssl3",
            "tendhost-app",
            "bash",
            "systemd-timesyncd",
        ] {
            assert!(!expects_reboot(name), "{name}");
        }
        assert_eq!(
            reboot_packages(["bash", "libc6", "tendhost-kernel", "libc6"]),
            ["libc6", "tendhost-kernel"]
        );
    }

    #[test]
    fn df_lines_are_named_by_the_path_asked_about() {
        let text = "/var/cache/apt/archives 30000000\n/ 30000000\n";
        let free = parse_df(text);
        assert_eq!(free.len(), 2);
        assert_eq!(free[0].path, "/var/cache/apt/archives");
        assert_eq!(free[1].free_bytes, 30_000_000 * 1024);
        assert!(parse_df("df: /nope: No such file\n").is_empty());
        assert!(df_script(&["/"]).contains("df -Pk"));
    }

    #[test]
    fn uri_sizes_add_up_and_an_unreadable_size_is_unknown() {
        let text = "'file:/repo/./a_1.1_all.deb' a_1.1_all.deb 812 MD5Sum:0f\n\
                    'http://deb.example/pool/b.deb' b_2_amd64.deb 1000 SHA256:aa\n";
        assert_eq!(parse_uri_sizes(text), Some(1812));
        assert_eq!(parse_uri_sizes(""), Some(0));
        assert_eq!(parse_uri_sizes("'x' f nope h\n"), None);
    }

    #[test]
    fn installed_sizes_from_apt_cache_and_dpkg_query() {
        let cache = "Package: tendhost-app\nVersion: 1.1\nInstalled-Size: 12\n\n\
                     Package: tendhost-newdep\nInstalled-Size: 9\n";
        let new = parse_installed_sizes(cache);
        assert_eq!(
            new,
            [("tendhost-app".into(), 12), ("tendhost-newdep".into(), 9)]
        );
        let old = parse_installed_sizes("tendhost-app 10\ntendhost-legacy 4\n");
        assert_eq!(install_delta(&new, &old), (12 + 9 - 10 - 4) * 1024);
        assert_eq!(install_delta(&[], &old), -14 * 1024);
    }

    #[test]
    fn a_conffile_prompts_when_both_sides_changed_it() {
        let text = "app /etc/app.conf aaa bbb ccc\n\
                    app /etc/same.conf aaa bbb aaa\n\
                    app /etc/later.conf aaa bbb -\n\
                    app /etc/secret.conf aaa ? ccc\n";
        let prompts = parse_conffiles(text);
        let seen: Vec<(&str, Option<bool>)> = prompts
            .iter()
            .map(|p| (p.path.as_str(), p.changed_upstream))
            .collect();
        assert_eq!(
            seen,
            [
                ("/etc/app.conf", Some(true)),
                ("/etc/later.conf", None),
                ("/etc/secret.conf", None)
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC*") {
            let _ = parse_df(&text);
            let _ = parse_uri_sizes(&text);
            let _ = parse_installed_sizes(&text);
            let _ = parse_conffiles(&text);
        }
    }
}
