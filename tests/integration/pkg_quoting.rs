//! Package names are data from the host: a hostile one must reach the next command as one
//! inert word. Here a host's `dnf check-update` reports names built to break out of a shell
//! line; tendhost passes them to a real `rpm -q` through a real `sh`, and nothing else runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use tendhost::pkg::Dnf;
use tendhost::pkg::PackageManager;
use tendhost::remote::LocalExecutor;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn hostile_package_names_run_nothing_extra() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("pwned");
    let m = marker.display().to_string();
    let names = [
        format!("a;touch${{IFS}}{m};b"),
        format!("$(touch${{IFS}}{m})"),
        format!("`touch${{IFS}}{m}`"),
        format!("it's\"q\"&&touch${{IFS}}{m}"),
        format!("x|touch${{IFS}}{m}>"),
    ];
    let listing: String = names
        .iter()
        .map(|n| format!("{n}.noarch 2.0-1 updates\n"))
        .collect();
    fs::write(work.path().join("listing"), &listing).unwrap();

    // The host: its dnf reports the hostile names (exit 100, "updates exist"); rpm is the real
    // one over an empty database, logging each argument it receives.
    let shim = work.path().join("shim");
    fs::create_dir_all(&shim).unwrap();
    let db = work.path().join("rpmroot");
    fs::create_dir_all(&db).unwrap();
    assert!(
        std::process::Command::new("rpm")
            .arg("--root")
            .arg(&db)
            .arg("--initdb")
            .status()
            .unwrap()
            .success()
    );
    let scripts = [
        (
            "dnf",
            format!(
                "#!/bin/sh\ncase \"$*\" in *check-update*) cat {}; exit 100;; esac\nexit 0\n",
                work.path().join("listing").display()
            ),
        ),
        (
            "rpm",
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> {}; done\n\
                 exec /usr/bin/rpm --root={} \"$@\"\n",
                work.path().join("rpm-args").display(),
                db.display()
            ),
        ),
    ];
    for (name, text) in scripts {
        let path = shim.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let exec = LocalExecutor::with_wrapper(vec![
        "env".into(),
        format!("PATH={}:/usr/bin:/bin", shim.display()),
        "sh".into(),
        "-c".into(),
    ]);

    let pending = Dnf::using_dnf()
        .pending(&exec, &CancellationToken::new())
        .await
        .unwrap();
    let got: Vec<&str> = pending.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!marker.exists(), "a package name ran a command");
    let args = fs::read_to_string(work.path().join("rpm-args")).unwrap();
    for name in &names {
        assert!(
            args.lines().any(|a| a == name),
            "rpm got {name:?} as one argument: {args}"
        );
    }
}
