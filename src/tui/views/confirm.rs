//! The confirmation dialog: names the action and every host it touches (or as many as fit).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Ctx, name_list, popup};
use crate::tui::dialogs::Confirmable;
use crate::tui::keys::Action;
use crate::tui::request::HostAction;
use crate::tui::view::{Overlay, ViewState};

pub fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::Confirm(dialog) = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let width = area.width.min(72);
    let inner_width = usize::from(width.saturating_sub(2));
    let warnings = match dialog.what {
        Confirmable::Host(HostAction::Update { .. }) => plan_warnings(ctx, &dialog.hosts),
        _ => Vec::new(),
    };
    // Question, host names (at most 6 lines), warnings, a blank line and the key hint.
    let max_name_lines = 6.min(usize::from(area.height).saturating_sub(warnings.len() + 5));
    let names = if dialog.hosts.is_empty() {
        Vec::new()
    } else {
        name_list(&dialog.hosts, inner_width, max_name_lines.max(1))
    };
    let needed = 1 + names.len() + warnings.len() + 2;
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
    let mut hint = vec![Span::styled(
        format!("{}/Enter", keys.keys_label(Action::Confirm)),
        theme.title(),
    )];
    hint.push(Span::raw(" go  "));
    if let Confirmable::Host(HostAction::Update { dry_run }) = dialog.what {
        hint.push(Span::styled(
            keys.keys_label(Action::ToggleDryRun),
            theme.title(),
        ));
        let state = if dry_run { "on" } else { "off" };
        hint.push(Span::raw(format!(" dry run: {state}  ")));
    }
    hint.push(Span::styled(
        format!(
            "{}/{}",
            keys.keys_label(Action::Back),
            keys.keys_label(Action::Quit)
        ),
        theme.title(),
    ));
    hint.push(Span::raw(" cancel"));
    lines.push(Line::from(hint));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// What the last plan said an update would do beyond upgrading (apt-dater and
/// unattended-upgrades hide this; tendhost shows it before it runs): removals and held packages.
fn plan_warnings(ctx: Ctx<'_>, hosts: &[crate::config::HostId]) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for name in hosts {
        let Some((plan, _)) = ctx
            .model
            .position(name)
            .and_then(|i| ctx.model.host(i))
            .and_then(|h| h.plan.as_ref())
        else {
            continue;
        };
        if !plan.removals.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("{name} would remove: {}", plan.removals.join(", ")),
                ctx.theme.error(),
            )));
        }
        if !plan.held.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("{name} holds back: {}", plan.held.join(", ")),
                ctx.theme.warn(),
            )));
        }
        if lines.len() >= 3 {
            lines.push(Line::raw("… (see each host's Pending tab)"));
            break;
        }
    }
    lines
}
