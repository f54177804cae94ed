//! The fallback probe: one POSIX `sh` script that prints sections behind `@@name` marker lines
//! (os-release, `uname`, `/proc/uptime`, dpkg-query / rpm counts, `docker ps`, `docker images`),
//! and the pure parser that turns its output into facts. Runs on any Linux host; needs nothing
//! but coreutils, and docker only when present and reachable.

use super::{Container, Image, Inventory, InventorySource};
use crate::pkg::parse::os_release::parse_os_release;

/// The probe script. Every section is best effort: a missing tool leaves its section empty.
pub(super) const SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
echo @@probe
echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo @@kernel; uname -r
echo @@hostname; uname -n
echo @@uptime; cat /proc/uptime 2>/dev/null
echo @@packages
if command -v dpkg-query >/dev/null 2>&1; then
  echo "dpkg $(dpkg-query -W -f '${db:Status-Abbrev}\n' 2>/dev/null | grep -c '^ii')"
fi
if command -v rpm >/dev/null 2>&1; then echo "rpm $(rpm -qa 2>/dev/null | wc -l)"; fi
if command -v docker >/dev/null 2>&1; then
  echo @@containers
  docker ps -a --no-trunc --format '{{.ID}}	{{.Names}}	{{.Image}}	{{.State}}	{{.Status}}' 2>/dev/null
  echo @@images
  docker images --no-trunc --format '{{.ID}}	{{.Repository}}:{{.Tag}}' 2>/dev/null
fi
true
"#;

/// True when `output` came from [`SCRIPT`] (and not from the osquery script).
pub(super) fn is_probe_output(output: &str) -> bool {
    output.lines().any(|l| l.trim() == "@@probe")
}

/// Splits `@@name` sections; text before the first marker is ignored.
pub(super) fn sections(text: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            out.push((name.trim(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Parses the probe's output. Missing or garbled sections leave defaults; `None` only when the
/// output has no os-release at all, which means the probe did not run as expected.
pub(super) fn parse(text: &str) -> Option<Inventory> {
    let mut facts = Inventory::reading(InventorySource::Probe);
    let mut saw_os = false;
    for (name, body) in sections(text) {
        let first = body.lines().next().unwrap_or("").trim().to_string();
        match name {
            "os-release" => {
                facts.os = parse_os_release(&body);
                saw_os = !facts.os.id.is_empty();
            }
            "kernel" => facts.kernel = first,
            "hostname" => facts.hostname = first,
            "uptime" => facts.uptime_secs = parse_uptime(&first).unwrap_or(0),
            "packages" => facts.installed_packages = parse_package_counts(&body),
            "containers" => facts.containers = parse_containers(&body),
            "images" => facts.images = parse_images(&body),
            _ => {}
        }
    }
    saw_os.then_some(facts)
}

/// `/proc/uptime` is `SECONDS.FRACTION IDLE`.
pub(super) fn parse_uptime(line: &str) -> Option<u64> {
    let secs = line.split_whitespace().next()?;
    let whole = secs.split('.').next()?;
    whole.parse().ok()
}

/// Lines `dpkg N` / `rpm N`; a host with both (a Debian box with rpm installed) counts both.
fn parse_package_counts(body: &str) -> usize {
    body.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .sum()
}

/// `ID<TAB>NAMES<TAB>IMAGE<TAB>STATE<TAB>STATUS`; old dockers print no State, so the first word
/// of Status ("Up", "Exited") stands in, lowercased.
pub(super) fn parse_containers(body: &str) -> Vec<Container> {
    body.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [id, name, image, state, rest @ ..] = f.as_slice() else {
                return None;
            };
            let state = if state.trim().is_empty() {
                rest.first()?
                    .split_whitespace()
                    .next()?
                    .to_ascii_lowercase()
            } else {
                state.trim().to_string()
            };
            (!id.trim().is_empty()).then(|| Container {
                id: id.trim().to_string(),
                name: name.trim().trim_start_matches('/').to_string(),
                image: image.trim().to_string(),
                state,
            })
        })
        .collect()
}

/// `ID<TAB>REPO:TAG`, one line per tag; lines of one id are merged, `<none>` tags dropped.
pub(super) fn parse_images(body: &str) -> Vec<Image> {
    let mut images: Vec<Image> = Vec::new();
    for line in body.lines() {
        let Some((id, tag)) = line.split_once('\t') else {
            continue;
        };
        let (id, tag) = (id.trim(), tag.trim());
        if id.is_empty() {
            continue;
        }
        let index = match images.iter().position(|i| i.id == id) {
            Some(index) => index,
            None => {
                images.push(Image {
                    id: id.to_string(),
                    tags: Vec::new(),
                });
                images.len() - 1
            }
        };
        if !tag.contains("<none>") && !tag.is_empty() {
            images[index].tags.push(tag.to_string());
        }
    }
    images
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_a_real_probe_of_this_machine() {
        let text = include_str!("../../tests/fixtures/inventory/probe-host.txt");
        let facts = parse(text).unwrap();
        assert_eq!(facts.os.id, "debian");
        assert_eq!(facts.os.version_id, "12");
        assert!(!facts.kernel.is_empty());
        assert!(!facts.hostname.is_empty());
        assert!(facts.uptime_secs > 0);
        assert!(
            facts.installed_packages > 100,
            "{}",
            facts.installed_packages
        );
    }

    #[test]
    fn reads_containers_and_merges_image_tags() {
        let c = parse_containers(
            "abc\t/web\tnginx:1\trunning\tUp 2 hours\nd\tdb\tpg\t\tExited (0) 1h\n",
        );
        assert_eq!(c[0].name, "web");
        assert_eq!(c[0].state, "running");
        assert_eq!(c[1].state, "exited");
        let i = parse_images("sha256:1\ta:1\nsha256:1\ta:latest\nsha256:2\t<none>:<none>\n");
        assert_eq!(i.len(), 2);
        assert_eq!(i[0].tags, ["a:1", "a:latest"]);
        assert!(i[1].tags.is_empty());
    }

    #[test]
    fn needs_an_os_release() {
        assert!(parse("@@kernel\n6.1\n").is_none());
        assert!(parse("garbage").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*", lines in proptest::collection::vec("(@@[a-z-]{0,10}|[a-z0-9\t :.]{0,20})", 0..20)) {
            let _ = parse(&text);
            let _ = parse(&lines.join("\n"));
            let _ = parse_uptime(&text);
        }
    }
}
