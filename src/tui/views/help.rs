//! The `?` overlay, generated from the keymap table dispatch uses: it cannot drift.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Ctx, fit, popup};
use crate::tui::keys::{BINDINGS, Section};
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let theme = ctx.theme;
    let note = if view.read_only {
        " (ro): disabled by --read-only "
    } else {
        " [keys] in tendhost.toml rebinds them "
    };
    let title = Line::from(vec![
        Span::styled(" Keys ", theme.title()),
        Span::styled(note, theme.dim()),
    ]);
    let inner = popup(area, buf, 84, 30, title);
    let mut lines: Vec<Line> = Vec::new();
    let key_w = 14;
    for section in [
        Section::Move,
        Section::Select,
        Section::Act,
        Section::Dialog,
    ] {
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::from(Span::styled(section.title(), theme.accent())));
        for binding in BINDINGS.iter().filter(|b| b.section == section) {
            let disabled = view.read_only && binding.mutating;
            let help = if disabled {
                format!("{} (ro)", binding.help)
            } else {
                binding.help.to_string()
            };
            let style = if disabled { theme.dim() } else { theme.title() };
            lines.push(Line::from(vec![
                Span::styled(
                    format!(
                        "{:<key_w$} ",
                        fit(&ctx.keys.keys_label(binding.action), key_w)
                    ),
                    style,
                ),
                Span::styled(
                    help,
                    if disabled {
                        theme.dim()
                    } else {
                        Default::default()
                    },
                ),
            ]));
        }
    }
    let columns = if inner.width >= 70 { 2 } else { 1 };
    let per_column = lines.len().div_ceil(columns);
    let height = usize::from(inner.height);
    let Overlay::Help { scroll } = &mut view.overlay else {
        return;
    };
    *scroll = (*scroll).min(per_column.saturating_sub(height));
    let scroll = *scroll;
    let areas = Layout::horizontal(vec![Constraint::Fill(1); columns])
        .spacing(2)
        .split(inner);
    for (i, column) in areas.iter().enumerate() {
        let chunk: Vec<Line> = lines
            .iter()
            .skip(i * per_column + scroll)
            .take(per_column.saturating_sub(scroll).min(height))
            .cloned()
            .collect();
        Paragraph::new(chunk).render(*column, buf);
    }
}
