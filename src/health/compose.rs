//! The post-reboot compose check: every service of every stack in the host's `compose_paths`
//! runs again, and is `healthy` where it has a healthcheck. Containers come back by their
//! restart policy (or not at all), so a reboot is exactly when a stack silently stays down.
//!
//! The shell comes from the compose updater's own command builder
//! (`pkg::compose_health_probe`, paths quoted there), one section per stack (`@@compose N`,
//! N its index in `compose_paths`); this module only reads the answer.

use std::collections::BTreeMap;

use super::probe::{Part, ProbeRequest, name_list, one_line};
use super::{CheckName, CheckResult, HealthReport};
use crate::pkg::{COMPOSE_HEALTH_CONTAINER, COMPOSE_HEALTH_SERVICE, compose_health_probe};
use crate::survey::sections::{EXIT, Sections, marker};

const SECTION: &str = "compose";

pub(super) struct Compose;

impl Part for Compose {
    fn name(&self) -> CheckName {
        CheckName::Compose
    }

    fn script(&self, request: &ProbeRequest<'_>) -> String {
        let mut script = String::from(":\n");
        for (i, path) in request.compose_paths.iter().enumerate() {
            script.push_str(&format!(
                "{}\n(\n{}\n) 2>&1; {EXIT}\n",
                marker(&format!("{SECTION} {i}")),
                compose_health_probe(request.compose_version, path)
            ));
        }
        script
    }

    fn read(
        &self,
        request: &ProbeRequest<'_>,
        sections: &Sections,
        _report: &mut HealthReport,
    ) -> CheckResult {
        let (name, phase) = (self.name(), request.phase);
        if request.compose_paths.is_empty() {
            return CheckResult::pass(name, phase, "no compose stacks");
        }
        let mut problems = Vec::new();
        let mut running = 0;
        for (i, path) in request.compose_paths.iter().enumerate() {
            let index = i.to_string();
            let Some(section) = sections.all(SECTION).find(|s| s.args == index) else {
                problems.push(format!("{path}: could not tell (no answer)"));
                continue;
            };
            if !section.succeeded() {
                let code = section.exit.unwrap_or(-1);
                problems.push(format!(
                    "{path}: compose failed (exit {code}): {}",
                    one_line(&crate::errors::last_lines(&section.body, 2))
                ));
                continue;
            }
            let stack = Stack::parse(&section.body);
            running += stack.services.len();
            let down = stack.problems();
            if !down.is_empty() {
                problems.push(format!("{path}: {}", name_list(&down, 6)));
            }
        }
        if problems.is_empty() {
            let stacks = request.compose_paths.len();
            return CheckResult::pass(
                name,
                phase,
                format!(
                    "{running} service{} of {stacks} stack{} running",
                    plural(running),
                    plural(stacks)
                ),
            );
        }
        CheckResult::fail(name, phase, one_line(&problems.join("; ")))
    }

    #[cfg(any(test, feature = "testkit"))]
    fn healthy(&self) -> String {
        // The simulated fleet has no stacks: with none configured nothing is read.
        String::new()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One container's state, as docker inspect printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Container {
    status: String,
    /// Empty without a healthcheck.
    health: String,
}

/// What one stack's section says: its services, in the compose file's order, and the
/// containers of each.
#[derive(Debug, Default)]
struct Stack {
    services: Vec<String>,
    containers: BTreeMap<String, Vec<Container>>,
}

impl Stack {
    fn parse(body: &str) -> Stack {
        let mut stack = Stack::default();
        for line in body.lines() {
            let mut fields = line.split('\t');
            match fields.next() {
                Some(COMPOSE_HEALTH_SERVICE) => {
                    if let Some(service) = fields.next().filter(|s| !s.is_empty()) {
                        stack.services.push(one_line(service));
                    }
                }
                Some(COMPOSE_HEALTH_CONTAINER) => {
                    let service = one_line(fields.next().unwrap_or_default());
                    let status = one_line(fields.next().unwrap_or_default());
                    let health = one_line(fields.next().unwrap_or_default());
                    stack
                        .containers
                        .entry(service)
                        .or_default()
                        .push(Container { status, health });
                }
                _ => {}
            }
        }
        stack
    }

    /// "web not running", "db exited", "api unhealthy": one per service that is not well.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for service in &self.services {
            let containers = self.containers.get(service).map_or(&[][..], Vec::as_slice);
            if containers.is_empty() {
                problems.push(format!("{service} not running"));
                continue;
            }
            if let Some(c) = containers.iter().find(|c| c.status != "running") {
                problems.push(format!("{service} {}", c.status));
                continue;
            }
            if let Some(c) = containers
                .iter()
                .find(|c| !c.health.is_empty() && c.health != "healthy")
            {
                let health = match c.health.as_str() {
                    "starting" => "health still starting",
                    other => other,
                };
                problems.push(format!("{service} {health}"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::CheckPhase;
    use super::super::probe::tests::request;
    use super::*;
    use crate::config::ComposeVersion;

    fn check(paths: &[String], answer: &str) -> CheckResult {
        let skip = BTreeSet::new();
        let mut request = request(CheckPhase::PostReboot, &skip, None);
        request.compose_paths = paths;
        request
            .read(&format!("@@health\n{answer}"))
            .unwrap()
            .get(CheckName::Compose)
            .unwrap()
            .clone()
    }

    const STACK: &str = "@@compose 0\ntendhost-want\tweb\ntendhost-want\tdb\ntendhost-want\tcache\n\
        tendhost-state\tweb\trunning\thealthy\ntendhost-state\tdb\trunning\t\n@@exit 0\n";

    #[test]
    fn every_service_must_run_and_be_healthy_where_it_has_a_healthcheck() {
        let paths = vec!["/srv/app".to_string()];
        let missing = check(&paths, STACK);
        assert!(!missing.ok);
        assert_eq!(&*missing.detail, "/srv/app: cache not running");
        let all = STACK.replace("@@exit 0", "tendhost-state\tcache\trunning\t\n@@exit 0");
        let fine = check(&paths, &all);
        assert!(fine.ok, "{fine:?}");
        assert_eq!(&*fine.detail, "3 services of 1 stack running");
        let sick = all
            .replace("web\trunning\thealthy", "web\trunning\tunhealthy")
            .replace("db\trunning", "db\texited");
        let sick = check(&paths, &sick);
        assert_eq!(&*sick.detail, "/srv/app: web unhealthy, db exited");
    }

    #[test]
    fn stacks_that_fail_or_do_not_answer_fail_and_none_configured_passes() {
        let paths = vec!["/srv/a".to_string(), "/srv/b".to_string()];
        let answer = "@@compose 0\nERROR: no such file\n@@exit 14\n";
        let check = check(&paths, answer);
        assert!(!check.ok);
        assert_eq!(
            &*check.detail,
            "/srv/a: compose failed (exit 14): ERROR: no such file; /srv/b: could not tell (no answer)"
        );
        let none = super::tests::check(&[], "");
        assert!(none.ok && &*none.detail == "no compose stacks", "{none:?}");
    }

    #[test]
    fn the_script_has_one_quoted_section_per_stack() {
        let skip = BTreeSet::new();
        let paths = vec![
            "/srv/my app".to_string(),
            "/srv/$(reboot)/c.yml".to_string(),
        ];
        let mut request = request(CheckPhase::PostReboot, &skip, None);
        request.compose_paths = &paths;
        request.compose_version = ComposeVersion::V1;
        let script = Compose.script(&request);
        assert!(script.contains("echo '@@compose 0'") && script.contains("echo '@@compose 1'"));
        assert!(
            script.contains("cd -- '/srv/my app'") && script.contains("cd -- '/srv/$(reboot)'")
        );
        assert!(!script.contains("cd -- /srv/$(reboot)"));
    }
}
