//! The confirmation dialog: names the action and every host it touches (or as many as fit).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Ctx, name_list, popup};
use crate::config::HostId;
use crate::engine::JobKind;
use crate::pkg::UpgradePlan;
use crate::tui::dialogs::{ConfirmDialog, Confirmable};
use crate::tui::keys::Action;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::Confirm(dialog) = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let width = area.width.min(72);
    let inner_width = usize::from(width.saturating_sub(2));
    let warnings = match dialog.what {
        Confirmable::Host(JobKind::Update {
            dry_run,
            allow_removals,
        }) => plan_warnings(ctx, &dialog.hosts, dry_run, allow_removals),
        Confirmable::Host(JobKind::Rollback { dry_run }) => rollback_lines(ctx, dialog, dry_run),
        _ => jump_host_warnings(ctx, &dialog.jump_hosts),
    };
    // Question, host names (at most 6 lines), warnings, a blank line and the key hint.
    let warning_rows: usize = warnings.iter().map(|l| rows(l, inner_width)).sum();
    let max_name_lines = 6.min(usize::from(area.height).saturating_sub(warning_rows + 5));
    let names = if dialog.hosts.is_empty() {
        Vec::new()
    } else {
        name_list(&dialog.hosts, inner_width, max_name_lines.max(1))
    };
    // Each hint is a key (in the title style) and what it does.
    let mut hint: Vec<Span<'static>> = Vec::new();
    let mut key = |label: String, what: String| {
        hint.push(Span::styled(label, theme.title()));
        hint.push(Span::raw(what));
    };
    key(
        format!("{}/Enter", keys.keys_label(Action::Confirm)),
        " go  ".into(),
    );
    match dialog.what {
        Confirmable::Host(JobKind::Update {
            dry_run,
            allow_removals,
        }) => {
            let security_only = dialog.scope.security_only;
            key(
                keys.keys_label(Action::ToggleDryRun),
                format!(" dry run: {}  ", on_off(dry_run)),
            );
            key(
                keys.keys_label(Action::ToggleRemovals),
                format!(" removals: {}  ", on_off(allow_removals)),
            );
            key(
                keys.keys_label(Action::ToggleSecurityOnly),
                format!(" security only: {}  ", on_off(security_only)),
            );
        }
        Confirmable::Host(JobKind::Rollback { dry_run }) => {
            key(
                keys.keys_label(Action::ToggleDryRun),
                format!(" only ask: {}  ", on_off(dry_run)),
            );
            if !dialog.stacks.is_empty() {
                let (left, right) = (
                    keys.first_key(Action::Decrease),
                    keys.first_key(Action::Increase),
                );
                key(format!("{left}/{right}"), " stack  ".into());
            }
        }
        _ => {}
    }
    let (back, quit) = (keys.first_key(Action::Back), keys.first_key(Action::Quit));
    key(format!("{back}/{quit}"), " cancel".into());
    let hint = Line::from(hint);
    let needed = 1 + names.len() + warning_rows + 1 + rows(&hint, inner_width);
    let height = u16::try_from(needed + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let inner = popup(
        area,
        buf,
        width,
        height,
        Line::styled(" Confirm ", theme.title()),
    );
    let mut lines = vec![Line::from(Span::styled(dialog.question(), theme.title()))];
    lines.extend(names);
    lines.extend(warnings);
    lines.push(Line::raw(""));
    lines.push(hint);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// How many rows `line` takes when wrapped at `width` (an estimate: wrapping at words can
/// take more; the popup is then one row short, never wrong about what it says).
fn rows(line: &Line<'_>, width: usize) -> usize {
    line.width().div_ceil(width.max(1)).max(1)
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Hosts shown by name in a warning before the rest are counted.
const NAMED_HOSTS: usize = 3;

/// What the last plan said an update would do beyond upgrading (apt-dater and
/// unattended-upgrades hide this; tendhost shows it before it runs): removals, and whether the
/// operator consented to them, then held packages.
///
/// Without consent the engine refuses a real update whose plan removes packages, so the dialog
/// says so and names the key that gives consent. With consent it names what will go, in the
/// warning colour and behind a symbol so it still reads under NO_COLOR.
fn plan_warnings(
    ctx: Ctx<'_>,
    hosts: &[HostId],
    dry_run: bool,
    allow_removals: bool,
) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let plans: Vec<(&HostId, &UpgradePlan)> = hosts
        .iter()
        .filter_map(|name| {
            let host = ctx.model.position(name).and_then(|i| ctx.model.host(i))?;
            host.model.plan.as_ref().map(|p| (name, &*p.plan))
        })
        .collect();
    let by_policy = |name: &HostId| {
        ctx.model
            .position(name)
            .and_then(|i| ctx.model.host(i))
            .is_some_and(|h| h.removals_allowed_by_policy)
    };
    let removing: Vec<&(&HostId, &UpgradePlan)> = plans
        .iter()
        .filter(|(_, plan)| !plan.removals.is_empty())
        .collect();
    let mut lines = Vec::new();
    let more = removing.len().saturating_sub(NAMED_HOSTS);
    if allow_removals {
        if removing.is_empty() {
            lines.push(Line::styled(
                "⚠ removals ALLOWED (none in the last known plans)",
                theme.warn(),
            ));
        }
        for (name, plan) in removing.iter().take(NAMED_HOSTS) {
            lines.push(Line::styled(
                format!("⚠ removals ALLOWED: {} on {name}", plan.removals.join(", ")),
                theme.warn(),
            ));
        }
        if more > 0 {
            lines.push(Line::styled(
                format!("⚠ removals ALLOWED on {more} more host{}", plural(more)),
                theme.warn(),
            ));
        }
    } else if !removing.is_empty() {
        for (name, plan) in removing.iter().take(NAMED_HOSTS) {
            lines.push(if by_policy(name) {
                Line::styled(
                    format!(
                        "⚠ {name} will remove: {} (allowed by its policy)",
                        plan.removals.join(", ")
                    ),
                    theme.warn(),
                )
            } else {
                Line::styled(
                    format!("{name} would remove: {}", plan.removals.join(", ")),
                    theme.error(),
                )
            });
        }
        if more > 0 {
            lines.push(Line::raw(format!(
                "… and {more} more host{} (see each host's Pending tab)",
                plural(more)
            )));
        }
        let refused: Vec<&&(&HostId, &UpgradePlan)> = removing
            .iter()
            .filter(|(name, _)| !by_policy(name))
            .collect();
        if !dry_run && !refused.is_empty() {
            let n = refused.len();
            lines.push(Line::styled(
                format!(
                    "⚠ REFUSED on {} unless removals are allowed: press {}",
                    if n == 1 {
                        refused[0].0.to_string()
                    } else {
                        format!("these {n} hosts")
                    },
                    ctx.keys.first_key(Action::ToggleRemovals)
                ),
                theme.warn(),
            ));
        }
    }
    let held: Vec<&(&HostId, &UpgradePlan)> = plans
        .iter()
        .filter(|(_, plan)| !plan.held.is_empty())
        .collect();
    for (name, plan) in held.iter().take(NAMED_HOSTS) {
        lines.push(Line::styled(
            format!("{name} holds back: {}", plan.held.join(", ")),
            theme.warn(),
        ));
    }
    if held.len() > NAMED_HOSTS {
        lines.push(Line::raw("… (see each host's Pending tab)"));
    }
    lines
}

/// For a rollback: per host and service, the image it runs and the one it goes back to, as
/// tendhost last saw them (the host is asked again before anything runs), at most
/// [`ROLLBACK_LINES`] of them.
fn rollback_lines(ctx: Ctx<'_>, dialog: &ConfirmDialog, dry_run: bool) -> Vec<Line<'static>> {
    let mut previews = Vec::new();
    for name in &dialog.hosts {
        let Some(host) = ctx.model.position(name).and_then(|i| ctx.model.host(i)) else {
            continue;
        };
        for preview in host.rollback_preview(dialog.stack.as_deref()) {
            if !preview.done() {
                previews.push(format!("↺ {name} {}: {}", preview.path, preview.describe()));
            }
        }
    }
    let more = previews.len().saturating_sub(ROLLBACK_LINES);
    let mut lines: Vec<Line<'static>> = previews
        .into_iter()
        .take(ROLLBACK_LINES)
        .map(|text| Line::styled(text, ctx.theme.accent()))
        .collect();
    if more > 0 {
        lines.push(Line::raw(format!(
            "… and {more} more service{}",
            plural(more)
        )));
    }
    lines.push(Line::styled(
        match dry_run {
            true => "only asks each host what it would do; changes nothing",
            false => "the images rolled back from are left out of later updates",
        },
        ctx.theme.dim(),
    ));
    lines
}

/// Services a rollback confirmation names before the rest are counted.
const ROLLBACK_LINES: usize = 6;

/// For a reboot: each jump host or hypervisor and whom it cuts off or takes down, in the
/// warning colour behind a symbol.
fn jump_host_warnings(ctx: Ctx<'_>, jump_hosts: &[(HostId, String)]) -> Vec<Line<'static>> {
    jump_hosts
        .iter()
        .map(|(host, what)| Line::styled(format!("⚠ {host} {what}"), ctx.theme.warn()))
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
