//! The wave dialog: which hosts, how they split into batches, delay, failure limit, dry run and
//! consent to removals.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Ctx, name_list, popup};
use crate::config::{BatchSize, FailureLimit, HostId, format_duration};
use crate::tui::dialogs::WaveField;
use crate::tui::keys::Action;
use crate::tui::view::{Overlay, ViewState};

pub fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::Wave(dialog) = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let inner = popup(area, buf, 72, 14, Line::styled(" Wave ", theme.title()));
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
            "between batches".to_string(),
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
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(
            format!("{}/Enter", keys.first_key(Action::Confirm)),
            theme.title(),
        ),
        Span::raw(" start  "),
        Span::styled(
            format!(
                "{}/{}",
                keys.first_key(Action::MoveDown),
                keys.first_key(Action::MoveUp)
            ),
            theme.title(),
        ),
        Span::raw(" field  "),
        Span::styled(
            format!(
                "{}/{}",
                keys.first_key(Action::Decrease),
                keys.first_key(Action::Increase)
            ),
            theme.title(),
        ),
        Span::raw(" change  "),
        Span::styled(keys.first_key(Action::ToggleDryRun), theme.title()),
        Span::raw(" dry run  "),
        Span::styled(keys.first_key(Action::ToggleRemovals), theme.title()),
        Span::raw(" removals  "),
        Span::styled(keys.first_key(Action::Quit), theme.title()),
        Span::raw(" back"),
    ]));
    Paragraph::new(lines).render(inner, buf);
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
