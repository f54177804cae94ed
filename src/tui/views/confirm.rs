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
    let host_lines = dialog.hosts.len().clamp(1, 6) as u16;
    let height = (host_lines + 6).min(area.height);
    let inner = popup(
        area,
        buf,
        width,
        height,
        Line::styled(" Confirm ", theme.title()),
    );
    let mut lines = vec![Line::from(Span::styled(dialog.question(), theme.title()))];
    if !dialog.hosts.is_empty() {
        lines.extend(name_list(
            &dialog.hosts,
            usize::from(inner.width),
            usize::from(inner.height.saturating_sub(3)),
        ));
    }
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
