//! How far a running upgrade has got, read from its own output, so the console's fleet table can
//! say `▲ updating 61%` instead of just "updating" and batch mode can report progress too.
//!
//! apt prints one `Setting up NAME (VERSION) ...` line per package it configures; the plan tells
//! how many that will be. dnf and yum number their transaction steps themselves
//! (`  Upgrading : openssl-3.0.15-1.fc40.x86_64   3/12`). Anything else leaves the figure alone.

/// Progress of one host's upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateProgress {
    done: usize,
    total: usize,
}

impl UpdateProgress {
    /// Starts counting towards `planned` packages (upgrades plus new installs).
    pub fn new(planned: usize) -> Self {
        Self {
            done: 0,
            total: planned,
        }
    }

    /// Takes one output line into account.
    pub fn observe(&mut self, line: &str) {
        if line.starts_with("Setting up ") {
            self.done = (self.done + 1).min(self.total);
        } else if let Some((done, total)) = dnf_step(line) {
            self.done = done.min(total);
            self.total = total;
        }
    }

    /// Whole percent done, when there is anything to count.
    pub fn percent(&self) -> Option<u8> {
        (self.total > 0).then(|| (self.done * 100 / self.total) as u8)
    }
}

/// `  Upgrading        : name-1.1-1.noarch        3/12` → `(3, 12)`.
fn dnf_step(line: &str) -> Option<(usize, usize)> {
    let (action, rest) = line.split_once(" : ")?;
    if !line.starts_with(' ') || action.trim().contains(' ') {
        return None;
    }
    let (done, total) = rest.split_whitespace().last()?.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_counts_configured_packages_against_the_plan() {
        let mut progress = UpdateProgress::new(4);
        assert_eq!(progress.percent(), Some(0));
        progress.observe("Unpacking openssl (3.0.15-1~deb12u1) over (3.0.14-1~deb12u1) ...");
        progress.observe("Setting up openssl (3.0.15-1~deb12u1) ...");
        assert_eq!(progress.percent(), Some(25));
        for _ in 0..10 {
            progress.observe("Setting up libssl3 (3.0.15-1~deb12u1) ...");
        }
        assert_eq!(progress.percent(), Some(100), "never past 100%");
    }

    #[test]
    fn dnf_numbers_its_own_steps() {
        let mut progress = UpdateProgress::new(2);
        progress.observe("  Upgrading        : tendhost-core-1.1-1.noarch          3/12");
        assert_eq!(progress.percent(), Some(25));
        progress.observe("  Running scriptlet: tendhost-core-1.1-1.noarch          3/12");
        assert_eq!(progress.percent(), Some(25));
    }

    #[test]
    fn unrelated_lines_and_empty_plans_say_nothing() {
        let mut progress = UpdateProgress::new(0);
        progress.observe("Reading package lists... Done");
        progress.observe("ratio: 3/4");
        assert_eq!(progress.percent(), None);
    }
}
