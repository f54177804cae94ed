//! Folds audit records, one at a time, into what history shows: the waves (with each host's
//! part in them) and each host's own timeline.
//!
//! Only aggregates are kept: one entry per wave and per host of a wave, and the newest
//! `timeline_limit` entries per selected host, so memory follows what is shown, not the size
//! of the log.
//!
//! A record names its wave (`wave`, see `store::audit::wave_key`). Records written before that
//! field existed are grouped by time instead: a `wave_start` without a name opens a wave that
//! the next `wave_stop` closes, and the host records between them are its hosts' turns.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::read::Line;

/// How a wave ended, as far as the log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WaveOutcome {
    /// Started, not (yet) stopped: it runs, or tendhost was killed mid-wave.
    Running,
    Finished,
    /// Stopped at its failure threshold (or a batch that proved nothing).
    Halted,
    /// Aborted by the operator.
    Aborted,
    /// Waiting at its threshold for the operator's choice (`--on-threshold pause`).
    Paused,
    /// tendhost stopped mid-wave; the wave can be resumed.
    Interrupted,
}

impl WaveOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaveOutcome::Running => "running",
            WaveOutcome::Finished => "finished",
            WaveOutcome::Halted => "halted",
            WaveOutcome::Aborted => "aborted",
            WaveOutcome::Paused => "paused",
            WaveOutcome::Interrupted => "interrupted",
        }
    }
}

/// How one host's turn in a wave went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HostOutcome {
    Succeeded,
    Failed,
    Skipped,
    Refused,
    /// tendhost stopped during its turn.
    Interrupted,
    /// Its turn started but the log says no end (still running, or killed).
    Running,
    /// Planned for the wave, never started (the wave stopped first).
    NotRun,
}

impl HostOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HostOutcome::Succeeded => "succeeded",
            HostOutcome::Failed => "failed",
            HostOutcome::Skipped => "skipped",
            HostOutcome::Refused => "refused",
            HostOutcome::Interrupted => "interrupted",
            HostOutcome::Running => "running",
            HostOutcome::NotRun => "not_run",
        }
    }

    fn from_result(result: &str) -> Option<HostOutcome> {
        Some(match result {
            "succeeded" => HostOutcome::Succeeded,
            "failed" => HostOutcome::Failed,
            "skipped" => HostOutcome::Skipped,
            "refused" => HostOutcome::Refused,
            "interrupted" => HostOutcome::Interrupted,
            _ => return None,
        })
    }
}

/// One package an update changed (or was about to: the plan of a host that then failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Upgrade {
    pub name: String,
    pub from: String,
    pub to: String,
    pub security: bool,
}

/// A host's part in one wave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WaveHost {
    pub host: String,
    pub outcome: HostOutcome,
    /// Why it failed, was skipped or refused.
    pub reason: Option<String>,
    /// When its turn started (its update began), if it did.
    pub started: Option<DateTime<Utc>>,
    /// When its turn ended.
    pub finished: Option<DateTime<Utc>>,
    /// The upgrades its update planned; `None` when the log does not say (older records, a
    /// host that never got that far).
    pub upgrades: Option<Vec<Upgrade>>,
    /// A `wave_host` record said how it ended (older logs: the outcome is read from its
    /// state moves).
    #[serde(skip)]
    settled: bool,
}

impl WaveHost {
    fn new(host: &str) -> Self {
        WaveHost {
            host: host.to_string(),
            outcome: HostOutcome::NotRun,
            reason: None,
            started: None,
            finished: None,
            upgrades: None,
            settled: false,
        }
    }

    /// Seconds from the start of its turn to its end.
    pub(crate) fn duration_secs(&self) -> Option<f64> {
        secs(self.started?, self.finished?)
    }

    /// Packages its update changed: the planned upgrades of a host that succeeded.
    pub(crate) fn updated(&self) -> Option<usize> {
        match self.outcome {
            HostOutcome::Succeeded => self.upgrades.as_ref().map(Vec::len),
            _ => None,
        }
    }
}

/// One wave, from its start record to its stop record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Wave {
    /// Its name in the log (`<started>#<id>`); for records older than that, the start time.
    pub key: String,
    /// The id the run that started it gave it (`None` for older records).
    pub id: Option<u64>,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub outcome: WaveOutcome,
    /// Why it halted or paused.
    pub reason: Option<String>,
    /// Who started it (the local user).
    pub user: String,
    /// The start record's summary (`2 hosts in 2 batches, rolling`).
    pub plan: Option<String>,
    /// The stop record's totals (`1 succeeded, 1 failed, 0 skipped of 2`).
    pub totals: Option<String>,
    /// The wave's options, when its start record kept them.
    pub options: Option<serde_json::Value>,
    /// How often it was resumed.
    pub resumed: usize,
    /// Its hosts, in the order they were planned (then as they appeared).
    pub hosts: Vec<WaveHost>,
}

impl Wave {
    fn new(key: String, line: &Line) -> Self {
        let (started, id) = parse_key(&key).unwrap_or((line.at, None));
        Wave {
            key,
            id,
            started,
            finished: None,
            outcome: WaveOutcome::Running,
            reason: None,
            user: line.user.clone(),
            plan: None,
            totals: None,
            options: None,
            resumed: 0,
            hosts: Vec::new(),
        }
    }

    pub(crate) fn duration_secs(&self) -> Option<f64> {
        secs(self.started, self.finished?)
    }

    /// How many of its hosts ended with `outcome`.
    pub(crate) fn count(&self, outcome: HostOutcome) -> usize {
        self.hosts.iter().filter(|h| h.outcome == outcome).count()
    }

    fn host(&mut self, name: &str) -> &mut WaveHost {
        let at = match self.hosts.iter().position(|h| h.host == name) {
            Some(at) => at,
            None => {
                self.hosts.push(WaveHost::new(name));
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[at]
    }
}

/// One entry of a host's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Entry {
    pub at: DateTime<Utc>,
    pub host: String,
    pub action: String,
    pub result: String,
    pub detail: Option<String>,
    pub user: String,
    /// The wave it was part of.
    pub wave: Option<String>,
}

/// Which hosts history is about: every one, or these names (hosts no longer configured
/// included), minus the excluded ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostFilter {
    /// `None`: every host.
    pub only: Option<BTreeSet<String>>,
    pub exclude: BTreeSet<String>,
}

impl HostFilter {
    pub(crate) fn matches(&self, host: &str) -> bool {
        !self.exclude.contains(host) && self.only.as_ref().is_none_or(|only| only.contains(host))
    }

    /// Whether the operator narrowed the hosts at all.
    pub(crate) fn is_everyone(&self) -> bool {
        self.only.is_none() && self.exclude.is_empty()
    }
}

/// What history is asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub hosts: HostFilter,
    /// Only waves started, and timeline entries written, at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Keep a timeline of each selected host, at most this many newest entries each.
    pub timeline_limit: Option<usize>,
}

/// Everything history found.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    /// Oldest first.
    pub waves: Vec<Wave>,
    /// Per host, oldest first.
    pub timelines: BTreeMap<String, Vec<Entry>>,
}

/// Builds a [`History`] from records fed in the order they were written.
#[derive(Debug)]
pub(crate) struct Builder {
    query: Query,
    waves: Vec<Wave>,
    /// Where each wave is in `waves`, by key.
    index: HashMap<String, usize>,
    /// The wave an unnamed `wave_start` opened (older records), until its `wave_stop`.
    legacy: Option<usize>,
    timelines: BTreeMap<String, VecDeque<Entry>>,
}

impl Builder {
    pub(crate) fn new(query: Query) -> Self {
        Builder {
            query,
            waves: Vec::new(),
            index: HashMap::new(),
            legacy: None,
            timelines: BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, line: Line) {
        let wave = self.wave_of(&line);
        if let Some(at) = wave {
            fold(&mut self.waves[at], &line);
        }
        self.timeline(line, wave.map(|at| self.waves[at].key.clone()));
    }

    /// The wave `line` belongs to, opening one for a start record.
    fn wave_of(&mut self, line: &Line) -> Option<usize> {
        if let Some(key) = &line.wave {
            // A named record is written by a tendhost that names its waves: an unnamed wave
            // left open (its tendhost was killed before `wave_stop`) is over.
            self.legacy = None;
            if let Some(at) = self.index.get(key) {
                return Some(*at);
            }
            return Some(self.open(key.clone(), line));
        }
        match line.action.as_str() {
            "wave_start" => {
                let key = line.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let at = self.open(key, line);
                self.legacy = Some(at);
                Some(at)
            }
            "wave_stop" | "wave_threshold" | "wave_decision" => {
                let at = self.legacy?;
                if line.action == "wave_stop" {
                    self.legacy = None;
                }
                Some(at)
            }
            _ if line.host.is_some() && is_turn_action(&line.action) => self.legacy,
            _ => None,
        }
    }

    fn open(&mut self, key: String, line: &Line) -> usize {
        self.waves.push(Wave::new(key.clone(), line));
        let at = self.waves.len() - 1;
        self.index.insert(key, at);
        at
    }

    fn timeline(&mut self, line: Line, wave: Option<String>) {
        let Some(limit) = self.query.timeline_limit else {
            return;
        };
        let Some(host) = line.host else { return };
        if !self.query.hosts.matches(&host) || self.query.since.is_some_and(|s| line.at < s) {
            return;
        }
        let entries = self.timelines.entry(host.clone()).or_default();
        if entries.len() >= limit {
            entries.pop_front();
        }
        entries.push_back(Entry {
            at: line.at,
            host,
            action: line.action,
            result: line.result,
            detail: line.detail,
            user: line.user,
            wave,
        });
    }

    /// The history the query asked for: waves started since `since` that touched a selected
    /// host, each with only its selected hosts.
    pub(crate) fn finish(self) -> History {
        let query = self.query;
        let waves = self
            .waves
            .into_iter()
            .filter(|w| query.since.is_none_or(|since| w.started >= since))
            .filter_map(|mut wave| {
                if query.hosts.is_everyone() {
                    return Some(wave);
                }
                wave.hosts.retain(|h| query.hosts.matches(&h.host));
                (!wave.hosts.is_empty()).then_some(wave)
            })
            .collect();
        let timelines = self
            .timelines
            .into_iter()
            .map(|(host, entries)| (host, entries.into_iter().collect()))
            .collect();
        History { waves, timelines }
    }
}

/// Host actions that are part of a wave's turn, for grouping older records by time.
fn is_turn_action(action: &str) -> bool {
    matches!(
        action,
        "update" | "reboot" | "state" | "job_start" | "job_end" | "checks" | "plan" | "retry"
    )
}

/// What `line` says about its wave.
fn fold(wave: &mut Wave, line: &Line) {
    if let Some(host) = &line.host {
        fold_host(wave.host(host), line);
        return;
    }
    match line.action.as_str() {
        "wave_start" => {
            if line.result == "resumed" {
                wave.resumed += 1;
            }
            wave.outcome = WaveOutcome::Running;
            wave.finished = None;
            wave.reason = None;
            if wave.plan.is_none() {
                wave.plan = line.detail.clone();
            }
            if line.options.is_some() {
                wave.options = line.options.clone();
            }
            for host in line.hosts.iter().flatten() {
                wave.host(host);
            }
        }
        "wave_threshold" => {
            wave.outcome = WaveOutcome::Paused;
            wave.reason = line.detail.clone();
        }
        "wave_decision" => wave.outcome = WaveOutcome::Running,
        "wave_stop" => {
            wave.finished = Some(line.at);
            wave.totals = line.detail.clone();
            let result = line.result.as_str();
            wave.outcome = if result == "finished" {
                WaveOutcome::Finished
            } else if result == "aborted" {
                WaveOutcome::Aborted
            } else if let Some(reason) = result.strip_prefix("halted: ") {
                wave.reason = Some(reason.to_string());
                WaveOutcome::Halted
            } else if wave.outcome == WaveOutcome::Paused {
                // Stopped while waiting at its threshold: it stays paused, to be resumed.
                WaveOutcome::Paused
            } else {
                WaveOutcome::Interrupted
            };
        }
        _ => {}
    }
}

/// What a host record says about that host's turn.
fn fold_host(host: &mut WaveHost, line: &Line) {
    match line.action.as_str() {
        "wave_host" => {
            if let Some(outcome) = HostOutcome::from_result(&line.result) {
                host.outcome = outcome;
                host.reason = line.detail.clone();
                host.finished = Some(line.at);
                host.settled = true;
            }
        }
        "plan" => {
            host.upgrades = line.upgrades.as_ref().map(|upgrades| {
                upgrades
                    .iter()
                    .map(|p| Upgrade {
                        name: p.name.clone(),
                        from: p.from.clone(),
                        to: p.to.clone(),
                        security: p.security,
                    })
                    .collect()
            });
        }
        "update" if line.result.ends_with("-> updating") => {
            if host.started.is_none() || host.outcome != HostOutcome::Running {
                host.started = Some(line.at);
            }
            if !host.settled {
                host.outcome = HostOutcome::Running;
                host.finished = None;
            }
        }
        // Older logs say no `wave_host`: where the host's state went tells the outcome.
        _ if !host.settled => {
            if let Some((from, to)) = line.result.split_once(" -> ") {
                let outcome = match (from, to) {
                    (_, "failed") => Some(HostOutcome::Failed),
                    ("updating" | "rebooting", "idle" | "waiting_reboot" | "rebooting") => {
                        Some(HostOutcome::Succeeded)
                    }
                    _ => None,
                };
                if let Some(outcome) = outcome {
                    host.outcome = outcome;
                    host.reason = (outcome == HostOutcome::Failed)
                        .then(|| line.detail.clone())
                        .flatten();
                    host.finished = Some(line.at);
                }
            }
        }
        _ => {}
    }
}

/// `<RFC3339>#<id>` as its parts.
fn parse_key(key: &str) -> Option<(DateTime<Utc>, Option<u64>)> {
    let (at, id) = key.rsplit_once('#')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((at, id.parse().ok()))
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    let ms = to.signed_duration_since(from).num_milliseconds();
    (ms >= 0).then(|| ms as f64 / 1000.0)
}
