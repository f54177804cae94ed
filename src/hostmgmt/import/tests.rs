use std::fs;
use std::path::PathBuf;

use super::*;

fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn host<'a>(imported: &'a Imported, name: &str) -> &'a NewHost {
    imported
        .hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no host {name} in {imported:?}"))
}

const INI: &str = "\
# the lab
solo.lan ansible_user=pi

[web]
web[01:03].lan
edge ansible_host=203.0.113.7 ansible_port=2222 ansible_ssh_common_args='-o ProxyJump=admin@bastion:2200'

[db]
pg-[a:b] ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -q jump.lan\"'

[prod:children]
web
db

[prod:vars]
ansible_user=deploy

[web:vars]
ansible_user=www

[all:vars]
ansible_user=root
ansible_ssh_private_key_file=/keys/lab

[local]
me ansible_connection=local
";

#[test]
fn an_ini_inventory_gives_hosts_groups_tags_and_connection_variables() {
    let (_d, path) = file("hosts", INI);
    let imported = read_inventory(&path).unwrap();
    let names: Vec<&str> = imported.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "solo.lan",
            "web01.lan",
            "web02.lan",
            "web03.lan",
            "edge",
            "pg-a",
            "pg-b",
            "me"
        ]
    );
    // Host vars beat group vars beat parent vars beat all.
    assert_eq!(host(&imported, "solo.lan").user.as_deref(), Some("pi"));
    assert_eq!(host(&imported, "web02.lan").user.as_deref(), Some("www"));
    assert_eq!(host(&imported, "pg-a").user.as_deref(), Some("deploy"));
    assert_eq!(host(&imported, "me").user.as_deref(), Some("root"));
    let edge = host(&imported, "edge");
    assert_eq!(
        (edge.addr.as_str(), edge.port, edge.proxy_jump.as_deref()),
        ("203.0.113.7", Some(2222), Some("admin@bastion:2200"))
    );
    assert_eq!(
        host(&imported, "pg-b").proxy_jump.as_deref(),
        Some("jump.lan")
    );
    assert_eq!(
        host(&imported, "web01.lan").ssh_key.as_deref(),
        Some("/keys/lab")
    );
    assert_eq!(host(&imported, "web01.lan").tags, ["web"]);
    assert!(host(&imported, "me").local);
    assert_eq!(imported.groups["prod"].len(), 6, "{:?}", imported.groups);
    assert_eq!(imported.groups["db"], ["pg-a", "pg-b"]);
    assert!(!imported.groups.contains_key("ungrouped"));
}

const YAML: &str = "\
all:
  vars:
    ansible_user: root
  hosts:
    mail.example.com:
  children:
    webservers:
      hosts:
        www[1:2].example.com:
          ansible_port: 2201
      vars:
        ansible_user: web
    dbservers:
      hosts:
        one.example.com:
          ansible_host: 192.0.2.50
          ansible_ssh_common_args: -J ops@bastion.example.com
      children:
        replicas:
          hosts:
            two.example.com:
";

#[test]
fn a_yaml_inventory_reads_like_the_ini_one() {
    let (_d, path) = file("inventory.yml", YAML);
    let imported = read_inventory(&path).unwrap();
    let names: Vec<&str> = imported.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mail.example.com",
            "www1.example.com",
            "www2.example.com",
            "one.example.com",
            "two.example.com"
        ]
    );
    let www = host(&imported, "www2.example.com");
    assert_eq!((www.user.as_deref(), www.port), (Some("web"), Some(2201)));
    let one = host(&imported, "one.example.com");
    assert_eq!(one.addr, "192.0.2.50");
    assert_eq!(one.proxy_jump.as_deref(), Some("ops@bastion.example.com"));
    assert_eq!(one.tags, ["dbservers"]);
    assert_eq!(host(&imported, "two.example.com").tags, ["replicas"]);
    assert_eq!(
        imported.groups["dbservers"],
        ["one.example.com", "two.example.com"]
    );
    assert_eq!(
        host(&imported, "mail.example.com").user.as_deref(),
        Some("root")
    );
}

#[test]
fn bad_inventories_name_the_line() {
    let (_d, path) = file("hosts", "[web]\nweb1 ansible_user\n");
    let err = read_inventory(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("not key=value"),
        "{err}"
    );
    let (_d, path) = file("hosts", "[web:weird]\n");
    assert!(
        read_inventory(&path)
            .unwrap_err()
            .to_string()
            .contains("unknown section")
    );
    let (_d, path) = file("hosts", "[web]\nweb[1:x]\n");
    assert!(
        read_inventory(&path)
            .unwrap_err()
            .to_string()
            .contains("range")
    );
    let (_d, path) = file("hosts.yml", "all: [1, 2\n");
    assert!(
        read_inventory(&path)
            .unwrap_err()
            .to_string()
            .contains("not a YAML inventory")
    );
}

#[test]
fn an_ssh_config_gives_its_concrete_aliases_resolved() {
    let (dir, path) = file(
        "config",
        "Host web web-alt\n  HostName 10.0.0.5\n  User admin\n  Port 2222\n\
         Host db\n  ProxyJump web\n  IdentityFile ~/nowhere\n\
         Host multi\n  ProxyJump a,b\n\
         Host *.lan !x.lan\n  User lan\nHost *\n  IdentityFile KEY\n",
    );
    let key = dir.path().join("id_test");
    fs::write(&key, "key").unwrap();
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("KEY", &key.display().to_string());
    fs::write(&path, text).unwrap();
    let imported = read_ssh_config(&path).unwrap();
    let names: Vec<&str> = imported.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["web", "web-alt", "db"]);
    let web = host(&imported, "web");
    assert_eq!(
        (web.addr.as_str(), web.user.as_deref(), web.port),
        ("10.0.0.5", Some("admin"), Some(2222))
    );
    let db = host(&imported, "db");
    assert_eq!(
        (db.addr.as_str(), db.proxy_jump.as_deref()),
        ("db", Some("web"))
    );
    assert_eq!(
        db.ssh_key.as_deref(),
        Some(key.to_str().unwrap()),
        "the first key that exists"
    );
    assert!(
        imported.warnings[0].contains("'multi' jumps through several hosts"),
        "{:?}",
        imported.warnings
    );
    assert!(read_ssh_config(&dir.path().join("missing")).is_err());
}

#[test]
fn the_plan_skips_what_the_config_has_and_keeps_only_known_group_members() {
    let config = Config::from_str(
        "t.toml",
        "[groups]\nweb = [\"old\"]\n\n[[host]]\nname = \"old\"\naddr = \"10.0.0.1\"\n\n\
         [[host]]\nname = \"other\"\naddr = \"10.0.0.2\"\nport = 2222\n",
    )
    .unwrap();
    let new = |name: &str, addr: &str, port: Option<u16>| NewHost {
        name: name.into(),
        addr: addr.into(),
        user: None,
        port,
        tags: vec!["web".into()],
        proxy_jump: None,
        ssh_key: None,
        local: false,
    };
    let imported = Imported {
        hosts: vec![
            new("old", "10.0.0.9", None),
            new("copy", "10.0.0.2", Some(2222)),
            new("fresh", "10.0.0.3", None),
            new("fresh", "10.0.0.4", None),
            new("bad name", "10.0.0.5", None),
        ],
        groups: BTreeMap::from([
            (
                "web".to_string(),
                vec!["old".into(), "fresh".into(), "copy".into()],
            ),
            ("bad group!".to_string(), vec!["fresh".into()]),
        ]),
        warnings: vec![],
    };
    let plan = plan(&config, imported, &["imported".to_string()]);
    let added: Vec<&str> = plan.add.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(added, ["fresh"]);
    assert_eq!(plan.add[0].tags, ["web", "imported"]);
    let skipped: Vec<(&str, &str)> = plan
        .skipped
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    assert_eq!(skipped[0], ("old", "already configured"));
    assert_eq!(skipped[1], ("copy", "already configured as 'other'"));
    assert_eq!(skipped[2], ("fresh", "listed twice"));
    assert!(skipped[3].1.contains("not a tendhost name"));
    assert_eq!(
        plan.groups["web"],
        ["fresh"],
        "old is already listed, copy is not added"
    );
    assert!(plan.warnings[0].contains("bad group!"));
    let text = describe(&plan, Path::new("t.toml"), true).join("\n");
    assert!(text.contains("would add 1 host to t.toml"), "{text}");
    assert!(text.contains("fresh"), "{text}");
    assert!(text.contains("skipped 4:"), "{text}");
}

#[test]
fn jumps_are_read_from_ssh_options() {
    assert_eq!(
        jump_in_ssh_args("-o ProxyJump=a@b:22").as_deref(),
        Some("a@b:22")
    );
    assert_eq!(jump_in_ssh_args("-o 'ProxyJump b'").as_deref(), Some("b"));
    assert_eq!(jump_in_ssh_args("-C -J ops@b").as_deref(), Some("ops@b"));
    assert_eq!(
        jump_in_ssh_args("-o ProxyCommand=\"ssh -W %h:%p -q u@jump\"").as_deref(),
        Some("u@jump")
    );
    assert_eq!(jump_in_ssh_args("-o StrictHostKeyChecking=no"), None);
    assert_eq!(jump_target("none").unwrap(), None);
    assert!(jump_target("a,b").is_err());
}
