//! Inventory through `osqueryi --json`: the seed's queries (os_version, deb_packages /
//! rpm_packages, docker_containers, docker_images) plus kernel, hostname and uptime, each
//! printed behind a `@@name` marker, and the pure parser for that output.
//!
//! os-release is read alongside: it has the exact `ID`/`VERSION_ID` that package-manager
//! detection needs, which `os_version`'s major/minor columns cannot rebuild (Ubuntu's `24.04`).

use serde_json::{Map, Value};

use super::probe::{parse_uptime, sections};
use super::{Container, Image, Inventory, InventorySource, OsInfo};
use crate::pkg::parse::os_release::parse_os_release;

/// The osquery script. A query that fails prints `[]`, so one missing table (docker on a host
/// without it) does not lose the rest.
pub(super) const SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
q() { echo "@@$1"; osqueryi --json "$2" 2>/dev/null || echo '[]'; }
q os_version 'SELECT name, version, platform, platform_like FROM os_version;'
q kernel 'SELECT version FROM kernel_info;'
q system 'SELECT hostname FROM system_info;'
q uptime 'SELECT total_seconds FROM uptime;'
q deb_packages 'SELECT COUNT(*) AS count FROM deb_packages;'
q rpm_packages 'SELECT COUNT(*) AS count FROM rpm_packages;'
q docker_containers 'SELECT id, name, image, state FROM docker_containers;'
q docker_images 'SELECT id, tags FROM docker_images;'
"#;

type Row = Map<String, Value>;

/// osquery prints every column as a string; numbers are accepted too.
fn text(row: &Row, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn rows(body: &str) -> Option<Vec<Row>> {
    serde_json::from_str(body.trim()).ok()
}

/// Parses the osquery script's output. `None` when no query section held valid JSON, i.e.
/// osquery did not really answer and the fallback probe should run instead.
pub(super) fn parse(output: &str) -> Option<Inventory> {
    let mut facts = Inventory::reading(InventorySource::Osquery);
    let mut answered = false;
    let mut os_version: Option<Row> = None;
    for (name, body) in sections(output) {
        if name == "os-release" {
            facts.os = parse_os_release(&body);
            continue;
        }
        let Some(rows) = rows(&body) else {
            continue;
        };
        answered = true;
        let first = rows.first();
        match name {
            "os_version" => os_version = first.cloned(),
            "kernel" => facts.kernel = first.map(|r| text(r, "version")).unwrap_or_default(),
            "system" => facts.hostname = first.map(|r| text(r, "hostname")).unwrap_or_default(),
            "uptime" => {
                facts.uptime_secs = first
                    .and_then(|r| parse_uptime(&text(r, "total_seconds")))
                    .unwrap_or(0);
            }
            "deb_packages" | "rpm_packages" => {
                facts.installed_packages += first
                    .and_then(|r| text(r, "count").parse::<usize>().ok())
                    .unwrap_or(0);
            }
            "docker_containers" => facts.containers = rows.iter().map(container).collect(),
            "docker_images" => facts.images = rows.iter().map(image).collect(),
            _ => {}
        }
    }
    if facts.os.id.is_empty()
        && let Some(row) = &os_version
    {
        facts.os = os_from_osquery(row);
    }
    answered.then_some(facts)
}

fn os_from_osquery(row: &Row) -> OsInfo {
    let name = text(row, "name");
    let version = text(row, "version");
    OsInfo {
        id: text(row, "platform").to_ascii_lowercase(),
        id_like: text(row, "platform_like")
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect(),
        version_id: version.split_whitespace().next().unwrap_or("").to_string(),
        pretty_name: format!("{name} {version}").trim().to_string(),
    }
}

fn container(row: &Row) -> Container {
    Container {
        id: text(row, "id"),
        name: text(row, "name").trim_start_matches('/').to_string(),
        image: text(row, "image"),
        state: text(row, "state"),
    }
}

fn image(row: &Row) -> Image {
    Image {
        id: text(row, "id"),
        tags: text(row, "tags")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/inventory/osquery-sample.txt");

    #[test]
    fn reads_every_query_of_a_sample() {
        let facts = parse(SAMPLE).unwrap();
        assert_eq!(facts.os.id, "ubuntu");
        assert_eq!(
            facts.os.version_id, "24.04",
            "os-release wins over os_version"
        );
        assert_eq!(facts.kernel, "6.8.0-45-generic");
        assert_eq!(facts.hostname, "web-1");
        assert_eq!(facts.uptime_secs, 86_523);
        assert_eq!(facts.installed_packages, 612);
        assert_eq!(facts.containers.len(), 2);
        assert_eq!(facts.containers[0].name, "media-jellyfin-1");
        assert_eq!(facts.containers[1].state, "exited");
        assert_eq!(
            facts.images[0].tags,
            ["jellyfin/jellyfin:latest", "jellyfin/jellyfin:10.9"]
        );
    }

    #[test]
    fn falls_back_to_os_version_without_os_release() {
        let text = "@@os_version\n[{\"name\":\"Rocky Linux\",\"version\":\"9.3 (Blue Onyx)\",\
                    \"platform\":\"rocky\",\"platform_like\":\"rhel centos fedora\"}]\n";
        let facts = parse(text).unwrap();
        assert_eq!(facts.os.id, "rocky");
        assert_eq!(facts.os.version_id, "9.3");
        assert_eq!(facts.os.id_like, ["rhel", "centos", "fedora"]);
    }

    #[test]
    fn no_valid_json_means_no_answer() {
        assert!(parse("@@kernel\nosqueryi: command not found\n").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*", body in "\\[(\\{(\"[a-z_]{1,8}\":(\"[^\"]{0,6}\"|[0-9]{1,3}|null),?){0,3}\\},?){0,3}\\]") {
            let _ = parse(&text);
            for name in ["os_version", "kernel", "system", "uptime", "deb_packages", "docker_containers", "docker_images"] {
                let _ = parse(&format!("@@{name}\n{body}\n"));
            }
        }
    }
}
