# tendhost's dnf survey: everything `dnf check-update`, `rpm -qa`, `dnf updateinfo list
# --security` and `dnf needs-restarting -r/-s` would say, from ONE process through dnf's Python
# API. Reads the metadata cache only: the lists policy decides when metadata is fetched, never
# this read. Runs under python3 >= 3.6 (RHEL 8's platform-python) and prints sections that
# src/survey/dnf.rs parses:
#
#   @@dnf-api python
#   @@dnf-pending          NAME<TAB>INSTALLED<TAB>CANDIDATE<TAB>0|1 (security)
#   @@dnf-installed N
#   @@dnf-reboot-py        "required 0|1", then "because NAME" lines
#   @@dnf-services [partial]   one systemd unit per line
#
# or, when dnf fails, `@@dnf-error` with dnf's message and exit status 1. When `import dnf`
# fails (or this is python2) it prints nothing and exits NO_API: the shell tries another
# interpreter, then falls back to dnf's commands.
import os
import sys
import time

NO_API = 90

if sys.version_info[0] < 3:  # CentOS 7's yum runs on python2 (with EPEL's dnf, even)
    sys.exit(NO_API)
try:
    import dnf
    import dnf.exceptions
except Exception:
    sys.exit(NO_API)

# The core packages `dnf needs-restarting -r` asks a reboot for (dnf-plugins-core 4.4's list);
# /etc/dnf/plugins/needs-restarting.d/*.conf adds more, one name a line.
NEED_REBOOT = {
    "kernel", "kernel-core", "kernel-rt", "glibc", "linux-firmware", "systemd", "dbus",
    "dbus-broker", "dbus-daemon", "microcode_ctl", "zlib",
}
REBOOT_NAMES_DIR = "/etc/dnf/plugins/needs-restarting.d"
# The services scan reads /proc: bounded so a host with many processes answers anyway.
SCAN_SECONDS = 5.0
SCAN_FILES = 4000


def main():
    base = dnf.Base()
    conf = base.conf
    conf.read()
    conf.substitutions.update_from_etc(conf.installroot)
    conf.cacheonly = True
    versionlock = load_versionlock(base)
    base.read_all_repos()
    if versionlock:
        base.configure_plugins()
    load_from_cache(base)
    query = base.sack.query()
    installed = query.installed()
    upgrades = query.upgrades()
    secure = set((p.name, p.arch) for p in upgrades.filter(advisory_type="security"))
    pending = []
    for pkg in upgrades.latest():
        pending.append((pkg.name, installed_version(installed, pkg), pkg.evr,
                        (pkg.name, pkg.arch) in secure))
    pending.sort()
    boot = boot_time()
    because = sorted(set(
        p.name for p in installed.filter(name=sorted(reboot_names()))
        if p.installtime > boot
    ))
    services, partial = stale_services(installed)

    out = ["@@dnf-api python", "@@dnf-pending"]
    for name, old, new, security in pending:
        out.append("%s\t%s\t%s\t%d" % (name, old, new, 1 if security else 0))
    out.append("@@dnf-installed %d" % len(installed))
    out.append("@@dnf-reboot-py")
    out.append("required %d" % (1 if because else 0))
    out.extend("because %s" % name for name in because)
    out.append("@@dnf-services partial" if partial else "@@dnf-services")
    out.extend(services)
    sys.stdout.write("\n".join(out) + "\n")


def load_versionlock(base):
    """Loads dnf's versionlock plugin, the only plugin loaded, when the host has it (and its
    config enables it): a locked package is not pending for `dnf check-update` either. Other
    plugins may want dnf's command line or the network (subscription-manager), and cost time.
    Best effort: returns whether it was loaded."""
    if not base.conf.plugins:
        return False
    found = False
    others = set()
    for path in base.conf.pluginpath:
        try:
            names = [f[:-3] for f in os.listdir(path) if f.endswith(".py")]
        except OSError:
            continue
        found = found or "versionlock" in names
        others.update(n for n in names if n != "versionlock")
    if not found:
        return False
    try:
        base.init_plugins(disabled_glob=sorted(others))
        base.pre_configure_plugins()
    except Exception:
        try:  # a plugin left half set up must not run its sack hook
            del base._plugins.plugins[:]
        except Exception:
            pass
        return False
    return True


def load_from_cache(base):
    """Loads the enabled repositories from the metadata cache, never the network.

    dnf skips a repository without a cache when `skip_if_unavailable` is set (and raises when it
    is not); when EVERY enabled repository was skipped, the lists were never fetched and an
    empty answer would be a lie, so that is an error here.
    """
    wanted = [r.id for r in base.repos.iter_enabled()]
    if hasattr(base, "fill_sack_from_repos_in_cache"):
        base.fill_sack_from_repos_in_cache(load_system_repo=True)
    else:  # dnf before 4.2.21: what `dnf -C` does
        for repo in base.repos.iter_enabled():
            repo._repo.setSyncStrategy(dnf.repo.SYNC_ONLY_CACHE)
        base.fill_sack(load_system_repo=True, load_available_repos=True)
    loaded = set(r.id for r in base.repos.iter_enabled())
    if wanted and not loaded:
        raise dnf.exceptions.RepoError(
            "Cache-only enabled but no cache for %s" % ", ".join("'%s'" % r for r in wanted))


def installed_version(installed, pkg):
    """The installed version a candidate replaces, as dnf shows it (no epoch when it is 0)."""
    same = installed.filter(name=pkg.name, arch=pkg.arch).run()
    if not same:
        same = installed.filter(name=pkg.name).run()
    if not same:
        return ""
    return max(same).evr


def reboot_names():
    names = set(NEED_REBOOT)
    try:
        files = sorted(os.listdir(REBOOT_NAMES_DIR))
    except OSError:
        files = []
    for name in files:
        path = os.path.join(REBOOT_NAMES_DIR, name)
        if not name.endswith(".conf") or os.path.isdir(path):
            continue
        try:
            with open(path) as f:
                names.update(line.strip() for line in f if line.strip())
        except OSError:
            pass
    return names


def boot_time():
    """When the host booted, as dnf-plugins-core 4.4 decides it: the later of /proc/1's time
    and now minus the uptime (either can be wrong alone: no RTC, or a container)."""
    boot = 0
    try:
        boot = int(os.stat("/proc/1").st_mtime)
    except OSError:
        pass
    try:
        with open("/proc/uptime") as f:
            boot = max(boot, int(time.time() - float(f.read().split()[0])))
    except (OSError, ValueError, IndexError):
        pass
    return boot


def kernel_boot_time():
    """The kernel's own boot time (`btime`): processes' start times count from it."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return boot_time()


def stale_services(installed):
    """The systemd units of processes that map a deleted file of a package installed after the
    process started (`dnf needs-restarting -s`, limited to replaced files). Returns (units,
    partial): partial when the scan hit its bounds."""
    deadline = time.time() + SCAN_SECONDS
    btime = kernel_boot_time()
    ticks = os.sysconf(os.sysconf_names["SC_CLK_TCK"])
    owners = {}
    units = set()
    partial = False
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return [], True
    for pid in sorted(pids):
        if time.time() > deadline or len(owners) > SCAN_FILES:
            partial = True
            break
        try:
            with open("/proc/%d/maps" % pid) as f:
                deleted = set(deleted_path(line) for line in f if line.endswith(" (deleted)\n"))
            deleted.discard(None)
            if not deleted:
                continue
            with open("/proc/%d/stat" % pid) as f:
                # The command may hold spaces and parentheses: fields count from the last ')'.
                started = btime + int(f.read().rsplit(")", 1)[1].split()[19]) // ticks
        except (OSError, ValueError, IndexError):
            continue
        for path in deleted:
            if path not in owners:
                owners[path] = max((p.installtime for p in installed.filter(file=path)), default=0)
            if owners[path] > started:
                unit = unit_of(pid)
                if unit:
                    units.add(unit)
                break
    return sorted(units), partial


def deleted_path(line):
    """The file a `/proc/PID/maps` line maps, if it was deleted; rpm's temporary name
    (`PATH;HEX`) counts as PATH."""
    slash = line.find("/")
    if slash < 0:
        return None
    path = line[slash:-len(" (deleted)\n")]
    if path.startswith(("/memfd:", "/dev/", "/SYSV", "/[")):
        return None
    head, sep, tail = path.rpartition(";")
    if sep and len(tail) >= 8 and all(c in "0123456789abcdefABCDEF" for c in tail):
        return head
    return path


def unit_of(pid):
    """The systemd service a process runs in, from its cgroup path: the first `.service`
    component of the unified (`0::`) or `name=systemd` hierarchy, as the system manager's
    GetUnitByPID answers."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[1] in ("", "name=systemd")):
            for component in parts[2].split("/"):
                if component.endswith(".service"):
                    return component
    return None


try:
    main()
except Exception as e:  # dnf's errors, and anything else: the message is the answer
    sys.stdout.write("@@dnf-error\n%s\n" % (str(e) or type(e).__name__))
    sys.exit(1)
