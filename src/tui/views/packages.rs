//! The fleet-wide package view: every pending package, grouped by name, with the hosts needing it.
//! Selecting one marks those hosts, so "patch openssl everywhere" is P, Enter, u. Picking some
//! (space) and pressing the update key updates only those packages, on the hosts that need them.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Widget};

use super::{Ctx, fit, name_list};
use crate::tui::keys::Action;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let theme = ctx.theme;
    let Overlay::Packages(dialog) = &mut view.overlay else {
        return;
    };
    Clear.render(area, buf);
    let hosts_with = ctx
        .model
        .hosts()
        .iter()
        .filter(|h| h.model.pending.as_ref().is_some_and(|p| !p.is_empty()))
        .count();
    let title = Line::from(vec![
        Span::styled(" Packages ", theme.title()),
        Span::raw(format!(
            " {} pending across {} hosts ",
            dialog.groups.len(),
            hosts_with
        )),
        Span::styled(
            format!(
                " {} marks · {} picks · {} updates ",
                ctx.keys.keys_label(Action::Zoom),
                ctx.keys.first_key(Action::Mark),
                ctx.keys.first_key(Action::Update)
            ),
            theme.dim(),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let list_height = inner.height.saturating_sub(5).max(3);
    let [list, hosts] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(inner);
    if dialog.groups.is_empty() {
        Paragraph::new(Span::styled(
            "nothing pending anywhere (or not checked yet: r refreshes)",
            theme.dim(),
        ))
        .render(inner, buf);
        return;
    }
    let height = usize::from(list.height.saturating_sub(1)).max(1);
    if dialog.cursor < dialog.offset {
        dialog.offset = dialog.cursor;
    } else if dialog.cursor >= dialog.offset + height {
        dialog.offset = dialog.cursor + 1 - height;
    }
    let end = (dialog.offset + height).min(dialog.groups.len());
    let rows: Vec<Row> = dialog.groups[dialog.offset..end]
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let cursor = dialog.offset + i == dialog.cursor;
            let picked = dialog.picked.contains(&group.name);
            let sec = if group.security {
                Span::styled("sec", theme.warn())
            } else {
                Span::raw("")
            };
            let row = Row::new(vec![
                Cell::from(match (cursor, picked) {
                    (true, true) => "›*",
                    (true, false) => "› ",
                    (false, true) => " *",
                    (false, false) => "  ",
                }),
                Cell::from(fit(&group.name, 24)),
                Cell::from(Line::from(group.hosts.len().to_string()).right_aligned()),
                Cell::from(sec),
                Cell::from(Span::styled(group.versions.clone(), theme.dim())),
            ]);
            if cursor {
                row.style(theme.cursor())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(2),
        Constraint::Length(24),
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Fill(1),
    ];
    Table::new(rows, widths)
        .header(Row::new(["", "PACKAGE", "HOSTS", "SEC", "VERSIONS"]).style(theme.title()))
        .column_spacing(1)
        .render(list, buf);
    if let Some(group) = dialog.selected() {
        let mut lines = vec![Line::from(Span::styled(
            format!("{} is pending on:", group.name),
            theme.title(),
        ))];
        lines.extend(name_list(
            &group.hosts,
            usize::from(hosts.width),
            usize::from(hosts.height.saturating_sub(1)),
        ));
        Paragraph::new(lines).render(hosts, buf);
    }
}
