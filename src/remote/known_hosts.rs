//! Which host keys tendhost trusts: OpenSSH `known_hosts` files, read and (tendhost's own file
//! only) appended to.
//!
//! Supports what real files contain: comma-separated names, `[addr]:port` for non-22 ports,
//! hashed names (`|1|salt|hash`, written by `HashKnownHosts yes`), `*`/`?` wildcards, `!`
//! negation, `@revoked` and comments. `@cert-authority` lines are skipped (tendhost does not
//! accept host certificates). Knows nothing about connections; the SSH handler asks it for a
//! [`Verdict`].
//!
//! Fails closed: a file that exists but cannot be read as text (a directory, no permission,
//! bytes that are not UTF-8) is an [`Unreadable`] error naming it, never "no keys known", which
//! `accept-new` would then fill with whatever key a man in the middle presents. Only a missing
//! file means no keys (the first run). Likewise a line naming the host whose key cannot be
//! parsed refuses the host instead of leaving it unknown.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::keys::ssh_key::{HashAlg, PublicKey};
use russh::keys::{Algorithm, parse_public_key_base64};

/// What the known_hosts files say about the key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A matching entry exists.
    Trusted,
    /// No entry names this host.
    Unknown,
    /// Entries name this host, none with this key: possibly a man in the middle.
    Changed {
        /// Fingerprint of the recorded key (`SHA256:…`).
        expected: String,
        /// `file:line` of the recorded entry.
        location: String,
    },
    /// The key is marked `@revoked`.
    Revoked { location: String },
    /// No entry trusts the key, and an entry naming this host cannot be parsed: what it meant
    /// to trust is unknown, so nothing may be learnt in its place.
    Malformed { location: String },
}

/// A known_hosts file that exists but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub path: PathBuf,
    /// What is wrong with it, e.g. `is a directory`.
    pub problem: String,
}

/// The name a host has in known_hosts: `addr` on port 22, `[addr]:port` otherwise.
pub(crate) fn host_name(addr: &str, port: u16) -> String {
    if port == 22 {
        addr.to_string()
    } else {
        format!("[{addr}]:{port}")
    }
}

/// `SHA256:…`, as OpenSSH prints fingerprints.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// One usable line of a known_hosts file.
struct Entry {
    revoked: bool,
    patterns: String,
    key: PublicKey,
    location: String,
}

/// A line naming hosts whose key cannot be parsed (a typo, a truncated paste, an unknown type).
struct Malformed {
    patterns: String,
    location: String,
}

/// What a file holds: its usable entries and the lines it could not parse.
#[derive(Default)]
struct Entries {
    usable: Vec<Entry>,
    malformed: Vec<Malformed>,
}

/// Decides whether `key` is trusted for `addr:port` by the files in `files` (missing files are
/// empty; an unreadable one is an error).
pub(crate) fn check(
    files: &[PathBuf],
    addr: &str,
    port: u16,
    key: &PublicKey,
) -> Result<Verdict, Unreadable> {
    let name = host_name(addr, port);
    let all = read_all(files)?;
    let entries: Vec<&Entry> = all
        .usable
        .iter()
        .filter(|e| matches_host(&e.patterns, &name))
        .collect();
    Ok(verdict(&entries, &all.malformed, &name, key))
}

fn verdict(entries: &[&Entry], malformed: &[Malformed], name: &str, key: &PublicKey) -> Verdict {
    if let Some(e) = entries
        .iter()
        .find(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Verdict::Revoked {
            location: e.location.clone(),
        };
    }
    let recorded: Vec<&Entry> = entries.iter().copied().filter(|e| !e.revoked).collect();
    if recorded.iter().any(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Trusted;
    }
    if let Some(m) = malformed.iter().find(|m| matches_host(&m.patterns, name)) {
        return Verdict::Malformed {
            location: m.location.clone(),
        };
    }
    // Prefer an entry of the same algorithm as the evidence; any recorded key will do otherwise
    // (we asked the server for the known algorithms first, see `known_algorithms`).
    let witness = recorded
        .iter()
        .find(|e| e.key.algorithm() == key.algorithm())
        .or_else(|| recorded.first());
    match witness {
        Some(e) => Verdict::Changed {
            expected: fingerprint(&e.key),
            location: e.location.clone(),
        },
        None => Verdict::Unknown,
    }
}

/// Host key algorithms already recorded for `addr:port`, so the client can ask the server for
/// a key it can verify (as OpenSSH does) instead of failing on a second key type.
pub(crate) fn known_algorithms(
    files: &[PathBuf],
    addr: &str,
    port: u16,
) -> Result<Vec<Algorithm>, Unreadable> {
    let name = host_name(addr, port);
    let mut algorithms = Vec::new();
    for entry in read_all(files)?.usable {
        if !entry.revoked && matches_host(&entry.patterns, &name) {
            let algorithm = entry.key.algorithm();
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
    }
    Ok(algorithms)
}

/// Appends `key` for `addr:port` to `path`, creating it 0600 (and its directory 0700).
pub(crate) fn learn(path: &Path, addr: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let existing = fs::read(path).unwrap_or_default();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let openssh = key.to_openssh().map_err(io::Error::other)?;
    // Drop the key's comment: known_hosts lines carry none of their own.
    let mut parts = openssh.split_whitespace();
    let (algorithm, blob) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut line = String::new();
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        line.push('\n');
    }
    line.push_str(&format!("{} {algorithm} {blob}\n", host_name(addr, port)));
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

fn read_all(files: &[PathBuf]) -> Result<Entries, Unreadable> {
    let mut all = Entries::default();
    for file in files {
        let Some(text) = read_text(file)? else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let location = format!("{}:{}", file.display(), i + 1);
            match parse_line(line, location) {
                Line::Entry(entry) => all.usable.push(entry),
                Line::Malformed(line) => all.malformed.push(line),
                Line::Skipped => {}
            }
        }
    }
    Ok(all)
}

/// The file's text; `None` when it does not exist (no keys known yet).
fn read_text(path: &Path) -> Result<Option<String>, Unreadable> {
    let unreadable = |problem: String| Unreadable {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            return Err(unreadable("is a directory".into()));
        }
        Err(e) => return Err(unreadable(format!("cannot be read: {e}"))),
    };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        unreadable(format!("is not UTF-8 text (line {line})"))
    })
}

enum Line {
    Entry(Entry),
    Malformed(Malformed),
    /// Blank, a comment, `@cert-authority` or another marker tendhost does not use.
    Skipped,
}

fn parse_line(line: &str, location: String) -> Line {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Skipped;
    }
    let mut fields = line.split_whitespace();
    let Some(mut first) = fields.next() else {
        return Line::Skipped;
    };
    let mut revoked = false;
    if first.starts_with('@') {
        match first {
            "@revoked" => revoked = true,
            _ => return Line::Skipped, // @cert-authority and unknown markers
        }
        match fields.next() {
            Some(patterns) => first = patterns,
            None => return Line::Skipped,
        }
    }
    let _algorithm = fields.next();
    match fields.next().map(parse_public_key_base64) {
        Some(Ok(key)) => Line::Entry(Entry {
            revoked,
            patterns: first.to_string(),
            key,
            location,
        }),
        _ => Line::Malformed(Malformed {
            patterns: first.to_string(),
            location,
        }),
    }
}

/// OpenSSH's rule: some pattern matches and no negated pattern does.
fn matches_host(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, name) {
                return false;
            }
        } else if pattern.starts_with("|1|") {
            matched |= hashed_matches(pattern, name);
        } else {
            matched |= wildcard(pattern, name);
        }
    }
    matched
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
fn hashed_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('|').skip(2);
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// Case-insensitive glob with `*` and `?`.
pub(crate) fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        parse_public_key_base64(b64).unwrap()
    }

    fn file(text: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(&path, text).unwrap();
        (dir, vec![path])
    }

    #[test]
    fn plain_and_bracketed_names() {
        let (_d, files) = file(&format!(
            "# comment\nweb,10.0.0.5 ssh-ed25519 {KEY_A}\n[10.0.0.6]:2222 ssh-ed25519 {KEY_B}\n"
        ));
        assert_eq!(
            check(&files, "10.0.0.5", 22, &key(KEY_A)).unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            check(&files, "10.0.0.6", 2222, &key(KEY_B)).unwrap(),
            Verdict::Trusted
        );
        // Same address, other port: a different host as far as known_hosts is concerned.
        assert_eq!(
            check(&files, "10.0.0.6", 22, &key(KEY_B)).unwrap(),
            Verdict::Unknown
        );
        assert_eq!(
            check(&files, "10.0.0.7", 22, &key(KEY_A)).unwrap(),
            Verdict::Unknown
        );
    }

    #[test]
    fn a_different_key_is_a_change_with_the_recorded_fingerprint() {
        let (_d, files) = file(&format!("10.0.0.5 ssh-ed25519 {KEY_A}\n"));
        match check(&files, "10.0.0.5", 22, &key(KEY_B)).unwrap() {
            Verdict::Changed { expected, location } => {
                assert_eq!(expected, fingerprint(&key(KEY_A)));
                assert!(location.ends_with("known_hosts:1"), "{location}");
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn hashed_names_match() {
        // The format `ssh-keygen -H` writes (the integration suite checks a real one).
        let salt = [7u8; 20];
        let key_ = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let hash = ring::hmac::sign(&key_, b"[10.0.0.5]:2222");
        let line = format!(
            "|1|{}|{} ssh-ed25519 {KEY_A}\n",
            STANDARD.encode(salt),
            STANDARD.encode(hash.as_ref())
        );
        let (_d, files) = file(&line);
        assert_eq!(
            check(&files, "10.0.0.5", 2222, &key(KEY_A)).unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            check(&files, "10.0.0.5", 22, &key(KEY_A)).unwrap(),
            Verdict::Unknown
        );
        assert!(matches!(
            check(&files, "10.0.0.5", 2222, &key(KEY_B)).unwrap(),
            Verdict::Changed { .. }
        ));
    }

    #[test]
    fn wildcards_negation_and_revocation() {
        let (_d, files) = file(&format!(
            "*.lan,!bad.lan ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_B}\n"
        ));
        assert_eq!(
            check(&files, "web.lan", 22, &key(KEY_A)).unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            check(&files, "bad.lan", 22, &key(KEY_A)).unwrap(),
            Verdict::Unknown
        );
        assert!(matches!(
            check(&files, "web.lan", 22, &key(KEY_B)).unwrap(),
            Verdict::Revoked { .. }
        ));
    }

    #[test]
    fn learning_appends_a_private_file_that_then_trusts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("known_hosts");
        learn(&path, "10.0.0.9", 2200, &key(KEY_A)).unwrap();
        learn(&path, "10.0.0.10", 22, &key(KEY_B)).unwrap();
        let files = vec![path.clone()];
        assert_eq!(
            check(&files, "10.0.0.9", 2200, &key(KEY_A)).unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            check(&files, "10.0.0.10", 22, &key(KEY_B)).unwrap(),
            Verdict::Trusted
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("[10.0.0.9]:2200 ssh-ed25519 "), "{text}");
    }

    #[test]
    fn a_missing_file_knows_no_keys_but_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = vec![dir.path().join("none")];
        assert_eq!(
            check(&missing, "10.0.0.5", 22, &key(KEY_A)).unwrap(),
            Verdict::Unknown
        );

        let not_text = dir.path().join("binary");
        fs::write(&not_text, b"# ok\n10.0.0.5 ssh-ed25519 \xff\xfe\n").unwrap();
        let err = check(std::slice::from_ref(&not_text), "10.0.0.5", 22, &key(KEY_A)).unwrap_err();
        assert_eq!(err.path, not_text);
        assert_eq!(err.problem, "is not UTF-8 text (line 2)");

        let directory = dir.path().join("dir");
        fs::create_dir(&directory).unwrap();
        // A readable file first does not hide an unreadable one after it.
        let (_d, mut files) = file(&format!("10.0.0.5 ssh-ed25519 {KEY_A}\n"));
        files.push(directory.clone());
        let err = check(&files, "10.0.0.6", 22, &key(KEY_A)).unwrap_err();
        assert_eq!(
            (err.path, err.problem.as_str()),
            (directory, "is a directory")
        );
        assert!(known_algorithms(&files, "10.0.0.5", 22).is_err());
    }

    #[test]
    fn a_malformed_entry_for_the_host_refuses_it_instead_of_leaving_it_unknown() {
        let (_d, files) = file(&format!(
            "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq45\n\
             10.0.0.6 ssh-ed25519 {KEY_B}\n10.0.0.7 ssh-ed25519\n"
        ));
        match check(&files, "10.0.0.5", 22, &key(KEY_A)).unwrap() {
            Verdict::Malformed { location } => {
                assert!(location.ends_with("known_hosts:1"), "{location}")
            }
            other => panic!("expected a malformed entry, got {other:?}"),
        }
        assert!(matches!(
            check(&files, "10.0.0.7", 22, &key(KEY_A)).unwrap(),
            Verdict::Malformed { .. }
        ));
        // Other hosts are not affected by it, and a good entry of the same host still trusts.
        assert_eq!(
            check(&files, "10.0.0.6", 22, &key(KEY_B)).unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            check(&files, "10.0.0.8", 22, &key(KEY_A)).unwrap(),
            Verdict::Unknown
        );
    }
}
