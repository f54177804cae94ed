//! The shell side of detached jobs: what tendhost runs on a host to start a job, ask about it,
//! follow its log and read its tail. POSIX `sh` plus coreutils/util-linux (`setsid`, `flock`,
//! `tail`, `head`, `wc`), which every apt and dnf host has; `systemd-run` where systemd is PID 1.
//!
//! A job lives in `<job_dir>/jobs/<id>/` (root only; `job_dir` defaults to `/var/lib/tendhost`):
//!
//! | file      | written by | when |
//! |-----------|------------|------|
//! | `script`  | launcher   | before the job starts: what it runs |
//! | `holder`  | launcher   | who started it, shown to anyone refused by the host lock |
//! | `run`     | launcher   | the wrapper below |
//! | `runner`  | launcher   | `systemd` or `setsid` |
//! | `refused` | wrapper    | the host lock was held: who held it |
//! | `alive`   | wrapper    | flock'd while the wrapper runs: "running" is "this lock is held" |
//! | `started` | wrapper    | the lock is ours and the script is about to run |
//! | `log`     | the script | its stdout and stderr, in the order written |
//! | `exit`    | wrapper    | last, by rename: the script's exit status |
//!
//! The host lock is `flock` on `<job_dir>/lock`, held by the wrapper for the job's life,
//! so two tendhost instances (two state dirs, two operators) never change one host at once. The
//! script itself gets neither lock descriptor: a daemon a postinst starts must not hold them.
//! Directories older than [`KEEP_DAYS`] are pruned when the next job starts.

use super::JobId;
use crate::remote::quote;

/// Where every job and the host lock live on a host, unless its `job_dir` says otherwise.
pub(crate) const DEFAULT_DIR: &str = "/var/lib/tendhost";
/// How long finished jobs' directories are kept on the host.
pub(crate) const KEEP_DAYS: u32 = 14;
/// What the follow script prints on stderr when the job is over: `tendhost-job: exit 0`,
/// `tendhost-job: vanished`, `tendhost-job: gone`.
pub(super) const END_MARKER: &str = "tendhost-job:";
/// How long the launcher waits for the wrapper to take the lock, in tenths of a second.
const START_WAIT_TENTHS: u32 = 300;

/// The wrapper, run detached with the job directory's `run` path as `$0`.
const WRAPPER: &str = r#"d=$(dirname "$0")
base=$(dirname "$(dirname "$d")")
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
if ! command -v flock >/dev/null 2>&1; then
  echo "flock is missing on the host (util-linux): no job runs without the host lock" > "$d/refused.tmp"
  mv "$d/refused.tmp" "$d/refused"
  exit 0
fi
exec 9>>"$base/lock"
if ! flock -n 9; then
  { cat "$base/lock.holder" 2>/dev/null || echo "another job"; } > "$d/refused.tmp"
  mv "$d/refused.tmp" "$d/refused"
  exit 0
fi
cp "$d/holder" "$base/lock.holder"
exec 8>"$d/alive"
flock 8
echo $$ > "$d/pid"
: > "$d/log"
: > "$d/started"
/bin/sh "$d/script" </dev/null >>"$d/log" 2>&1 8>&- 9>&-
code=$?
echo "$code" > "$d/exit.tmp"
mv "$d/exit.tmp" "$d/exit"
rm -f "$base/lock.holder"
"#;

fn dir(base: &str, id: &JobId) -> String {
    format!("{base}/jobs/{}", id.as_str())
}

/// Creates the job's directory, starts the wrapper detached (a transient systemd unit named
/// `tendhost-job-<id>`, else a new session with `setsid`) and waits, bounded, until the wrapper
/// holds the host lock or was refused. Prints one line: `tendhost-job: started`,
/// `tendhost-job: locked` followed by the holder, or `tendhost-job: no-start`.
pub(super) fn launch(base: &str, id: &JobId, script: &str, holder: &str) -> String {
    let d = quote(&dir(base, id));
    let unit = quote(&format!("tendhost-job-{}", id.as_str()));
    format!(
        r#"set -e
umask 077
base={base}
d={d}
mkdir -p "$base/jobs"
chmod 700 "$base" "$base/jobs"
find "$base/jobs" -mindepth 1 -maxdepth 1 -type d -mtime +{KEEP_DAYS} -exec rm -rf {{}} + 2>/dev/null || true
mkdir "$d"
printf '%s\n' {script} > "$d/script"
printf '%s\n' {holder} > "$d/holder"
printf '%s' {wrapper} > "$d/run"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
  echo systemd > "$d/runner"
  systemd-run --quiet --collect --unit={unit} /bin/sh "$d/run" >/dev/null
else
  echo setsid > "$d/runner"
  setsid /bin/sh "$d/run" </dev/null >/dev/null 2>&1 &
fi
i=0
while [ ! -e "$d/started" ] && [ ! -e "$d/refused" ]; do
  i=$((i+1))
  if [ "$i" -gt {START_WAIT_TENTHS} ]; then echo "{END_MARKER} no-start"; exit 0; fi
  sleep 0.1
done
if [ -e "$d/refused" ]; then echo "{END_MARKER} locked"; cat "$d/refused"; exit 0; fi
echo "{END_MARKER} started"
"#,
        base = quote(base),
        script = quote(script),
        holder = quote(holder),
        wrapper = quote(WRAPPER),
    )
}

/// The shell expression that sets `end` to `exit N` or `vanished` once the job is over, and
/// leaves it empty while it runs. "Running" is "the wrapper holds `alive`"; `exit` is checked
/// again after the lock is seen free because the wrapper writes it just before it lets go.
const END_CHECK: &str = r#"end=""
if [ -e "$d/exit" ]; then end="exit $(cat "$d/exit")"
elif [ ! -e "$d/started" ] || flock -n "$d/alive" true 2>/dev/null; then
  if [ -e "$d/exit" ]; then end="exit $(cat "$d/exit")"; else end=vanished; fi
fi"#;

/// Prints one line about the job: `running SIZE`, `exit N SIZE`, `vanished SIZE`, `refused`,
/// or `gone` (no directory: pruned, or the host lost its disk).
pub(super) fn status(base: &str, id: &JobId) -> String {
    format!(
        r#"d={d}
if [ ! -d "$d" ]; then echo gone; exit 0; fi
if [ -e "$d/refused" ]; then echo refused; exit 0; fi
{END_CHECK}
size=$(wc -c < "$d/log" 2>/dev/null || echo 0)
echo "${{end:-running}} $size"
"#,
        d = quote(&dir(base, id)),
    )
}

/// Streams the job's log from byte `offset` on stdout as it grows, and ends once the job is
/// over with [`END_MARKER`] and how it ended on stderr (stdout carries only the log's bytes, so
/// their count is the next offset). Polls twice a second: cheap on the host, prompt enough on
/// screen.
pub(super) fn follow(base: &str, id: &JobId, offset: u64) -> String {
    format!(
        r#"d={d}
off={offset}
if [ ! -d "$d" ]; then echo "{END_MARKER} gone" >&2; exit 0; fi
while :; do
  {END_CHECK}
  size=$(wc -c < "$d/log" 2>/dev/null || echo 0)
  if [ "$size" -gt "$off" ]; then
    tail -c +$((off + 1)) "$d/log" | head -c $((size - off))
    off=$size
  fi
  if [ -n "$end" ]; then echo "{END_MARKER} $end" >&2; exit 0; fi
  sleep 0.5
done
"#,
        d = quote(&dir(base, id)),
    )
}

/// The last `bytes` bytes of the job's log (nothing when it has none).
pub(super) fn tail(base: &str, id: &JobId, bytes: u64) -> String {
    format!(
        "tail -c {bytes} {}/log 2>/dev/null; true",
        quote(&dir(base, id))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // `sh -n` parses; it runs nothing and sees no secret
    fn every_script_is_valid_sh() {
        let id = JobId::from_string("20261201T000000Z-abc123".into());
        for script in [
            launch(
                "/var/lib/tend host",
                &id,
                "echo 'it''s' $HOME",
                "tendhost on box",
            ),
            status(DEFAULT_DIR, &id),
            follow(DEFAULT_DIR, &id, 42),
            tail(DEFAULT_DIR, &id, 4096),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}\n{out:?}");
        }
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", WRAPPER])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
