//! The wave dialog: which hosts, how they split into batches, delay, failure limit, dry run and
//! consent to removals; and how the last wave ended: why it halted, which hosts it skipped and why.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Ctx, fit, name_list, popup};
use crate::config::{BatchSize, FailureLimit, HostId, WaveMode, format_duration};
use crate::engine::bus::WaveStatus;
use crate::plan::HostStatus;
use crate::tui::dialogs::{WaveDialog, WaveField};
use crate::tui::keys::Action;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::Wave(dialog) = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let last_wave = last_wave_lines(ctx, 70);
    let mut preview = preview_lines(ctx, dialog, 76);
    let extra = last_wave.len() + preview.len();
    let height = 16 + u16::try_from(extra).unwrap_or(0);
    let inner = popup(area, buf, 78, height, Line::styled(" Wave ", theme.title()));
    let n = dialog.hosts.len();
    let mut lines = vec![Line::from(Span::styled(
        format!("{n} {}:", dialog.source),
        theme.title(),
    ))];
    lines.extend(name_list(&dialog.hosts, usize::from(inner.width), 2));
    lines.push(Line::raw(""));
    let plan = dialog.plan();
    let plan_text = {
        let sizes: Vec<String> = plan.iter().take(8).map(ToString::to_string).collect();
        let more = if plan.len() > 8 { ", …" } else { "" };
        format!("{} batches: {}{more}", plan.len(), sizes.join(", "))
    };
    let values = [
        (
            WaveField::BatchSizes,
            "batch sizes",
            sizes_text(dialog.batch_sizes()),
            plan_text,
        ),
        (
            WaveField::Delay,
            "delay",
            format_duration(dialog.delay()),
            match dialog.mode {
                WaveMode::Rolling => "before each batch opens",
                WaveMode::Batches => "between batches",
            }
            .to_string(),
        ),
        (
            WaveField::MaxFailures,
            "max failures",
            failures_text(dialog.max_failures()),
            format!(
                "halts after {} failed",
                dialog.max_failures().resolve(n) + 1
            ),
        ),
        (
            WaveField::Mode,
            "pacing",
            match dialog.mode {
                WaveMode::Rolling => "rolling",
                WaveMode::Batches => "batches",
            }
            .to_string(),
            match dialog.mode {
                WaveMode::Rolling => "after the canary, one ends, one starts",
                WaveMode::Batches => "each batch waits for the last one",
            }
            .to_string(),
        ),
        (
            WaveField::DryRun,
            "dry run",
            if dialog.dry_run { "yes" } else { "no" }.to_string(),
            if dialog.dry_run {
                "report only, change nothing".to_string()
            } else {
                "REAL: hosts are updated and may reboot".to_string()
            },
        ),
        (
            WaveField::AllowRemovals,
            "removals",
            if dialog.allow_removals {
                "⚠ allowed"
            } else {
                "refused"
            }
            .to_string(),
            removals_note(ctx, &dialog.hosts, dialog.allow_removals),
        ),
        (
            WaveField::Overruns,
            "overruns",
            if dialog.defer_overruns {
                "deferred"
            } else {
                "start late"
            }
            .to_string(),
            if dialog.defer_overruns {
                "would-be overruns wait for the next window"
            } else {
                "hosts start even if they would overrun"
            }
            .to_string(),
        ),
    ];
    for (field, name, value, note) in values {
        let current = field == dialog.current_field();
        let value_style = if current {
            theme.cursor()
        } else {
            theme.accent()
        };
        let note_style = match field {
            WaveField::DryRun if !dialog.dry_run => theme.error(),
            WaveField::Overruns if !dialog.defer_overruns => theme.warn(),
            WaveField::AllowRemovals if dialog.allow_removals || note.starts_with('⚠') => {
                theme.warn()
            }
            _ => theme.dim(),
        };
        lines.push(Line::from(vec![
            Span::raw(if current { " › " } else { "   " }),
            Span::raw(format!("{name:<13}")),
            Span::styled(format!("‹ {value} ›"), value_style),
            Span::styled(format!("  {note}"), note_style),
        ]));
    }
    let key = |action| keys.first_key(action);
    // Not a field (j/k skip it): one key toggles it, as in the update dialog.
    let (scope, scope_style) = match dialog.security_only {
        true => ("security only", theme.warn()),
        false => ("all updates", theme.accent()),
    };
    lines.push(Line::from(vec![
        Span::raw(format!("   {:<13}", "updates")),
        Span::styled(format!("‹ {scope} ›"), scope_style),
        Span::styled(
            format!(
                "  {} toggles security only",
                key(Action::ToggleSecurityOnly)
            ),
            theme.dim(),
        ),
    ]));

    // The preview yields to the last wave's story when the screen is short.
    let after = last_wave.len() + 2;
    let room = usize::from(inner.height).saturating_sub(lines.len() + after);
    preview.truncate(room);
    lines.extend(preview);
    lines.extend(last_wave);
    let hints: [(String, &'static str); 7] = [
        (format!("{}/Enter", key(Action::Confirm)), " start  "),
        (
            format!("{}/{}", key(Action::MoveDown), key(Action::MoveUp)),
            " field  ",
        ),
        (
            format!("{}/{}", key(Action::Decrease), key(Action::Increase)),
            " change  ",
        ),
        (key(Action::ToggleDryRun), " dry run  "),
        (key(Action::ToggleRemovals), " removals  "),
        (key(Action::PlanView), " plan  "),
        (key(Action::Quit), " back"),
    ];
    lines.push(Line::from(
        hints
            .into_iter()
            .flat_map(|(keys, what)| [Span::styled(keys, theme.title()), Span::raw(what)])
            .collect::<Vec<_>>(),
    ));
    Paragraph::new(lines).render(inner, buf);
}

/// The plan in at most two lines: the batches with their host counts, what changes, the
/// estimated finish; then who is deferred and who has no plan yet (and the key that dry-runs
/// them). The Plan view has the rest.
fn preview_lines(ctx: Ctx<'_>, dialog: &WaveDialog, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let Some(plan) = &dialog.preview else {
        return Vec::new();
    };
    let counts: Vec<String> = plan
        .batches
        .iter()
        .take(6)
        .map(|b| b.hosts.len().to_string())
        .collect();
    let more = if plan.batches.len() > 6 { "·…" } else { "" };
    let c = &plan.totals.counts;
    let finish = if c.unknown_duration == c.hosts {
        "duration unknown".to_string()
    } else {
        let mut text = format!("finish {}", plan.totals.estimated_finish.format("%a %H:%M"));
        if c.unknown_duration > 0 {
            text.push_str(&format!(" (+{} unknown)", c.unknown_duration));
        }
        text
    };
    let summary = format!(
        "plan {}{more} · upgrades {} · removals {} · reboots {} · {finish}",
        counts.join("·"),
        c.upgrades,
        c.removals,
        c.reboots,
    );
    let mut lines = vec![Line::styled(fit(&summary, width), theme.title())];
    let mut notes = Vec::new();
    let deferred: Vec<String> = plan
        .hosts
        .iter()
        .filter_map(|h| match &h.status {
            HostStatus::Deferred { next_window, .. } => Some(match next_window {
                Some(at) => format!("{} ({})", h.host, at.format("%a %H:%M")),
                None => h.host.to_string(),
            }),
            _ => None,
        })
        .collect();
    if !deferred.is_empty() {
        notes.push(format!("deferred: {}", deferred.join(", ")));
    }
    if plan.totals.outside_window > 0 {
        notes.push(format!(
            "{} outside their window",
            plan.totals.outside_window
        ));
    }
    if c.without_plan > 0 {
        let key = ctx.keys.first_key(Action::DryRunMissing);
        notes.push(format!(
            "{} without a plan: press {key} to dry-run them",
            c.without_plan
        ));
    }
    if !notes.is_empty() {
        lines.push(Line::styled(
            fit(&format!("  {}", notes.join(" · ")), width),
            theme.warn(),
        ));
    }
    lines
}

/// How many lines the halt reason may take.
const REASON_LINES: usize = 2;
/// How many skipped hosts the dialog names; the rest are counted (each host's detail says why).
const SKIPPED_SHOWN: usize = 3;

/// How the last wave ended, when one did: its counts, why it halted, the hosts it skipped and
/// why. Lines of at most `width` columns, led by a blank one; none before the first wave.
fn last_wave_lines(ctx: Ctx<'_>, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let Some(wave) = ctx.model.wave() else {
        return Vec::new();
    };
    let (status, style) = match wave.status {
        WaveStatus::Finished => ("finished", theme.dim()),
        WaveStatus::Halted => ("halted", theme.error()),
        WaveStatus::Aborted => ("aborted", theme.warn()),
        // The dialog does not open while a wave runs.
        _ => return Vec::new(),
    };
    let mut counts = format!("last wave {status}: {}/{} ok", wave.succeeded, wave.total);
    if wave.failed > 0 {
        counts.push_str(&format!(", {} failed", wave.failed));
    }
    if wave.skipped > 0 {
        counts.push_str(&format!(", {} skipped", wave.skipped));
    }
    let mut lines = vec![Line::raw(""), Line::styled(fit(&counts, width), style)];
    if let Some(reason) = &wave.reason {
        let reason = wrap(reason, width.saturating_sub(2), REASON_LINES);
        lines.extend(
            reason
                .into_iter()
                .map(|line| Line::styled(format!("  {line}"), theme.error())),
        );
    }
    for skipped in wave.skipped_hosts.iter().take(SKIPPED_SHOWN) {
        let host = format!("  skipped {}: ", skipped.host);
        let reason = fit(&skipped.reason, width.saturating_sub(host.chars().count()));
        lines.push(Line::from(vec![
            Span::styled(host, theme.warn()),
            Span::styled(reason, theme.dim()),
        ]));
    }
    if wave.skipped_hosts.len() > SKIPPED_SHOWN {
        let more = wave.skipped_hosts.len() - SKIPPED_SHOWN;
        lines.push(Line::styled(
            format!("  … and {more} more skipped"),
            theme.dim(),
        ));
    }
    lines
}

/// `text` broken at spaces into at most `lines` lines of `width` columns; the last is cut short
/// with an ellipsis when the text does not fit.
pub(super) fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text.trim();
    while out.len() + 1 < lines && rest.chars().count() > width {
        // The last space that keeps the line within `width`, else a hard cut at `width`.
        let hard = rest
            .char_indices()
            .nth(width)
            .map_or(rest.len(), |(i, _)| i);
        let cut = if rest[hard..].starts_with(' ') {
            hard
        } else {
            rest[..hard].rfind(' ').filter(|&i| i > 0).unwrap_or(hard)
        };
        out.push(rest[..cut].to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(fit(rest, width));
    }
    out
}

/// What consent to removals means for these hosts, from their last known plans. Hosts whose
/// own policy allows removals are never refused, so they do not count as such.
fn removals_note(ctx: Ctx<'_>, hosts: &[HostId], allowed: bool) -> String {
    let removing: Vec<(&HostId, &[String])> = hosts
        .iter()
        .filter_map(|name| {
            let host = ctx.model.position(name).and_then(|i| ctx.model.host(i))?;
            let plan = &host.model.plan.as_ref()?.plan;
            let counts = !plan.removals.is_empty() && (allowed || !host.removals_allowed_by_policy);
            counts.then_some((name, plan.removals.as_slice()))
        })
        .collect();
    match (allowed, removing.as_slice()) {
        (false, []) => "an upgrade that removes packages fails".to_string(),
        (false, [(name, _)]) => format!("⚠ '{name}' would remove: REFUSED"),
        (false, many) => format!("⚠ {} hosts would remove: REFUSED", many.len()),
        (true, []) => "⚠ ALLOWED (none in the last plans)".to_string(),
        (true, [(name, pkgs)]) => format!("⚠ ALLOWED: {} on {name}", pkgs.join(", ")),
        (true, many) => format!("⚠ ALLOWED on {} hosts", many.len()),
    }
}

fn sizes_text(sizes: &[BatchSize]) -> String {
    let parts: Vec<String> = sizes
        .iter()
        .map(|s| match s {
            BatchSize::Count(n) => n.to_string(),
            BatchSize::Percent(p) => format!("{p}%"),
        })
        .collect();
    parts.join(",")
}

fn failures_text(limit: FailureLimit) -> String {
    match limit {
        FailureLimit::Count(n) => n.to_string(),
        FailureLimit::Percent(p) => format!("{p}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_a_long_reason_at_spaces_and_cuts_the_last_line() {
        assert_eq!(wrap("short", 10, 2), ["short"]);
        assert_eq!(
            wrap("canary batch 1 had no host", 12, 2),
            ["canary batch", "1 had no ho…"]
        );
        assert_eq!(wrap("abcdefghijkl mno", 5, 2), ["abcde", "fghi…"]);
        assert_eq!(wrap("one two three", 7, 3), ["one two", "three"]);
    }
}
