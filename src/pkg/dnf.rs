//! dnf and yum hosts (Fedora, RHEL, CentOS Stream, Rocky, Alma; yum on CentOS 7): the same
//! operations as apt, through `check-update` (exit 100 = updates exist), `--assumeno`
//! simulations, `-y upgrade`, `updateinfo` for security flags and `needs-restarting -r`.
//!
//! Builds shell commands and reads their output through `parse::dnf`; never opens a connection.
//! Package names read from one command and passed to the next go through [`quote`].

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::parse::dnf as parse;
use super::parse::plan as facts;
use super::step::{self, Step};
use super::{
    Error, ManagerKind, PackageManager, PendingPackage, RebootStatus, UpgradeOptions, UpgradePlan,
    UpgradeReport, UpgradeScope,
};
use crate::remote::{Executor, OutputLine, quote};
use crate::survey::sections::MARKER;

/// Where dnf writes: its package cache (downloads) and the root filesystem (installs).
const SPACE_PATHS: [&str; 2] = ["/var/cache/dnf", "/"];

/// dnf or yum on one host. Both speak the same commands; they differ in the binary and in how
/// `updateinfo` spells its security filter.
#[derive(Debug, Clone, Copy)]
pub struct Dnf {
    kind: ManagerKind,
    /// How long an upgrade waits for another process's dnf/rpm lock before it is reported.
    lock_wait: Duration,
}

/// The exit status dnf and yum give when `exit_on_lock` found the lock held.
const LOCKED_EXIT: u32 = 200;

impl Dnf {
    pub fn using_dnf() -> Self {
        Self {
            kind: ManagerKind::Dnf,
            lock_wait: super::apt::DEFAULT_LOCK_WAIT,
        }
    }

    pub fn using_yum() -> Self {
        Self {
            kind: ManagerKind::Yum,
            lock_wait: super::apt::DEFAULT_LOCK_WAIT,
        }
    }

    /// Sets how long an upgrade waits for a lock held by another process (whole seconds).
    pub fn with_lock_wait(mut self, lock_wait: Duration) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    fn binary(&self) -> &'static str {
        match self.kind {
            ManagerKind::Yum => "yum",
            _ => "dnf",
        }
    }

    /// Installed versions of `names`, as `(name, arch, version)`.
    async fn installed(
        &self,
        exec: &dyn Executor,
        names: &[String],
        cancel: &CancellationToken,
    ) -> Result<Vec<(String, String, String)>, Error> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let quoted: Vec<String> = names.iter().map(|n| quote(n)).collect();
        let script = format!(
            "rpm -q --qf '%{{NAME}}.%{{ARCH}} %{{EPOCHNUM}}:%{{VERSION}}-%{{RELEASE}}\\n' -- {}",
            quoted.join(" ")
        );
        // rpm exits non-zero when one name is not installed; the other lines are still good.
        let out = Step::query("rpm -q", script).run(exec, cancel).await?;
        Ok(parse::parse_rpm_versions(&out.stdout))
    }

    /// Names with a security advisory; empty when updateinfo is unavailable (no metadata, or an
    /// old yum without the plugin): missing advisories must not block listing updates.
    async fn security(&self, exec: &dyn Executor, cancel: &CancellationToken) -> BTreeSet<String> {
        let filter = match self.kind {
            ManagerKind::Yum => "security",
            _ => "--security",
        };
        let script = format!("LC_ALL=C {} -q updateinfo list {filter}", self.binary());
        match Step::query("updateinfo", script)
            .privileged()
            .run(exec, cancel)
            .await
        {
            Ok(out) if out.success() => parse::parse_updateinfo_security(&out.stdout),
            _ => BTreeSet::new(),
        }
    }

    /// Fills `from` (and, with `security`, the security flag) of packages parsed from a table
    /// that shows neither. The flag costs a dnf process of its own (`updateinfo`).
    async fn complete(
        &self,
        exec: &dyn Executor,
        packages: &mut [PendingPackage],
        with_security: bool,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let names: Vec<String> = packages.iter().map(|p| p.name.clone()).collect();
        let installed = self.installed(exec, &names, cancel).await?;
        let security = match with_security {
            true => self.security(exec, cancel).await,
            false => BTreeSet::new(),
        };
        for p in packages.iter_mut() {
            if let Some((_, _, v)) = installed.iter().find(|(n, _, _)| *n == p.name)
                && p.from.is_empty()
            {
                p.from = v.clone();
            }
            p.security = security.contains(&p.name);
        }
        Ok(())
    }

    /// `upgrade`'s arguments for `scope`: `--security` for security-only, then the named
    /// packages that are installed (`dnf upgrade NAME` of one that is not fails, or would
    /// install it under yum); `None` when the scope names packages and none is installed.
    async fn scope_args(
        &self,
        exec: &dyn Executor,
        scope: &UpgradeScope,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, Error> {
        let mut args = String::new();
        if scope.security_only {
            args.push_str(" --security");
        }
        if scope.packages.is_empty() {
            return Ok(Some(args));
        }
        let installed = self.installed(exec, &scope.packages, cancel).await?;
        let mut names: Vec<&str> = Vec::new();
        for (name, _, _) in &installed {
            if scope.packages.contains(name) && !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        for name in names {
            args.push(' ');
            args.push_str(&quote(name));
        }
        Ok(Some(args))
    }

    /// The upgrade as `--assumeno` shows it (what a plan and the consent check read), of
    /// `args` (see [`scope_args`](Self::scope_args)), with the security flags when
    /// `with_security`. `rich` (a dry run) adds, in the same round trip, the free space where
    /// dnf writes, and fills what the table tells: sizes, reboot packages, no conffile prompts
    /// (rpm never asks: it writes `.rpmnew`).
    async fn transaction(
        &self,
        exec: &dyn Executor,
        args: &str,
        with_security: bool,
        rich: bool,
        cancel: &CancellationToken,
    ) -> Result<UpgradePlan, Error> {
        const STEP: &str = "upgrade --assumeno (dry run)";
        let mut script = format!("LC_ALL=C {} --assumeno upgrade{args}", self.binary());
        if rich {
            script = format!(
                "{script}\ncode=$?\necho '{MARKER}df'\n{}\nexit $code",
                facts::df_script(&SPACE_PATHS)
            );
        }
        let mut out = Step::query(STEP, script)
            .privileged()
            .run(exec, cancel)
            .await?;
        let df = match out.stdout.split_once(&format!("\n{MARKER}df\n")) {
            Some((table, df)) => {
                let df = df.to_string();
                out.stdout.truncate(table.len() + 1);
                Some(df)
            }
            None => None,
        };
        // `--assumeno` answers "no" and exits 1 after printing the plan; "Nothing to do." exits 0.
        let understood = out.stdout.contains("Dependencies resolved")
            || out.stdout.contains("Transaction Summary")
            || out.stdout.contains("Nothing to do")
            || out.stdout.contains("No packages marked for update");
        if !understood || !matches!(out.exit_code, Some(0 | 1)) {
            return Err(step::failed(STEP, &out));
        }
        let mut plan = parse::parse_transaction(&out.stdout);
        self.complete(exec, &mut plan.upgrades, with_security, cancel)
            .await?;
        if rich {
            plan.reboot_packages = facts::reboot_packages(
                plan.upgrades
                    .iter()
                    .map(|p| p.name.as_str())
                    .chain(plan.installs.iter().map(String::as_str)),
            );
            plan.conffiles = Some(Vec::new());
            let (download, installed) = parse::parse_transaction_sizes(&out.stdout);
            plan.download_bytes = download;
            plan.install_bytes = installed;
            plan.free_space = facts::parse_df(df.as_deref().unwrap_or(""));
        }
        Ok(plan)
    }
}

#[async_trait]
impl PackageManager for Dnf {
    fn kind(&self) -> ManagerKind {
        self.kind
    }

    async fn refresh(&self, exec: &dyn Executor, cancel: &CancellationToken) -> Result<(), Error> {
        const STEP: &str = "makecache";
        let script = format!("LC_ALL=C {} -q makecache", self.binary());
        Step::refresh(STEP, script)
            .privileged()
            .run_ok(exec, cancel)
            .await?;
        Ok(())
    }

    async fn pending(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<Vec<PendingPackage>, Error> {
        const STEP: &str = "check-update";
        let script = format!("LC_ALL=C {} -q check-update", self.binary());
        let out = Step::query(STEP, script)
            .privileged()
            .run(exec, cancel)
            .await?;
        // Exit 100 means "updates exist" and is success (DESIGN §9); 0 means none.
        let candidates = match out.exit_code {
            Some(0) => return Ok(Vec::new()),
            Some(100) => parse::parse_check_update(&out.stdout),
            _ => return Err(step::failed(STEP, &out)),
        };
        let names: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
        let installed = self.installed(exec, &names, cancel).await?;
        let security = self.security(exec, cancel).await;
        Ok(parse::pending_from(&candidates, &installed, &security))
    }

    async fn plan(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<UpgradePlan, Error> {
        match self.scope_args(exec, &options.scope, cancel).await? {
            Some(args) => self.transaction(exec, &args, true, true, cancel).await,
            None => Ok(UpgradePlan::default()),
        }
    }

    async fn download(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        const STEP: &str = "upgrade --downloadonly";
        self.refresh(exec, cancel).await?;
        let Some(args) = self.scope_args(exec, &options.scope, cancel).await? else {
            return Ok(());
        };
        // Into dnf's cache, where the upgrade finds them. A lock held by another dnf fails the
        // download at once (exit 200) instead of waiting: the upgrade would download anyway.
        let script = format!(
            "LC_ALL=C {} -y -q --setopt=exit_on_lock=True upgrade --downloadonly{args}",
            self.binary()
        );
        Step::refresh(STEP, script)
            .privileged()
            .run_ok(exec, cancel)
            .await?;
        Ok(())
    }

    async fn repair(
        &self,
        exec: &dyn Executor,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (step, script) = match self.kind {
            // yum-utils finishes an unfinished transaction and removes the older half of each
            // duplicate; without them yum can do neither, and the re-check says what is left.
            ManagerKind::Yum => (
                "yum-complete-transaction && package-cleanup --cleandupes",
                "export LC_ALL=C\n\
                 if ls /var/lib/yum/transaction-all.* >/dev/null 2>&1; then\n\
                 command -v yum-complete-transaction >/dev/null 2>&1 || \
                 { echo 'tendhost: yum-complete-transaction (yum-utils) is not installed' >&2; exit 1; }\n\
                 yum-complete-transaction -y || exit $?\nfi\n\
                 if command -v package-cleanup >/dev/null 2>&1; then package-cleanup -y --cleandupes; fi"
                    .to_string(),
            ),
            // dnf 4 cannot resume a transaction: what one cut short leaves are duplicates
            // (both versions installed), which `remove --duplicates` removes, reinstalling the
            // newest. Missing requirements it cannot guess; the re-check names them.
            _ => (
                "dnf remove --duplicates",
                "LC_ALL=C dnf --setopt=exit_on_lock=True -y remove --duplicates".to_string(),
            ),
        };
        Step::upgrade(step, script)
            .privileged()
            .streaming(lines)
            .run_ok(exec, cancel)
            .await?;
        Ok(())
    }

    async fn upgrade(
        &self,
        exec: &dyn Executor,
        options: UpgradeOptions,
        lines: Option<&mpsc::Sender<OutputLine>>,
        cancel: &CancellationToken,
    ) -> Result<UpgradeReport, Error> {
        const STEP: &str = "upgrade";
        // dnf waits for another dnf's lock forever; with `exit_on_lock` it says who holds it and
        // exits 200, so the wait is bounded here (like apt's `DPkg::Lock::Timeout`), on the host,
        // inside the job.
        let wait = self.lock_wait.as_secs();
        let Some(args) = self.scope_args(exec, &options.scope, cancel).await? else {
            // None of the scope's packages is installed here: nothing changes.
            let reboot = self.reboot_status(exec, cancel).await?;
            return Ok(UpgradeReport {
                plan: UpgradePlan::default(),
                reboot,
            });
        };
        let script = format!(
            "waited=0\nwhile :; do\n  LC_ALL=C {} --setopt=exit_on_lock=True -y upgrade{args}\n  \
             code=$?\n  [ \"$code\" -ne {LOCKED_EXIT} ] && exit \"$code\"\n  \
             [ \"$waited\" -ge {wait} ] && exit {LOCKED_EXIT}\n  sleep 3\n  \
             waited=$((waited + 3))\ndone",
            self.binary()
        );
        let install = Step::upgrade(STEP, script)
            .privileged()
            .streaming(lines)
            .run_ok_or(exec, cancel, |step, out| {
                if out.exit_code == Some(LOCKED_EXIT) {
                    Error::Locked {
                        waited: wait,
                        holder: parse::lock_holder(&format!("{}\n{}", out.stdout, out.stderr)),
                    }
                } else {
                    step::failed(step, out)
                }
            });
        // The consent check needs the transaction, not the advisories (a dnf process saved).
        let plan = self.transaction(exec, &args, false, false, cancel);
        super::planned_upgrade(self, exec, options, cancel, plan, install).await
    }

    async fn reboot_status(
        &self,
        exec: &dyn Executor,
        cancel: &CancellationToken,
    ) -> Result<RebootStatus, Error> {
        const STEP: &str = "reboot-required check";
        let (rc, running) = (parse::RC_MARKER, parse::RUNNING_MARKER);
        let script = format!(
            "LC_ALL=C; export LC_ALL\n\
             if command -v needs-restarting >/dev/null 2>&1; then \
             needs-restarting -r; echo \"{rc} $?\"; \
             else out=$({bin} needs-restarting -r 2>&1); code=$?; \
             case $out in *'No such command'*) ;; \
             *) printf '%s\\n' \"$out\"; echo \"{rc} $code\" ;; esac; fi\n\
             echo \"{running} $(uname -r)\"\n\
             rpm -q --qf '%{{INSTALLTIME}} %{{NAME}} %{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n' \
             kernel kernel-core 2>/dev/null\n\
             true",
            bin = self.binary()
        );
        let out = Step::query(STEP, script)
            .privileged()
            .run_ok(exec, cancel)
            .await?;
        let (required, packages) = parse::parse_reboot_probe(&out.stdout);
        Ok(RebootStatus { required, packages })
    }
}
