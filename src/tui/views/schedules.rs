//! The Schedules view: every `[[schedule]]` with its next run, its last run and that run's
//! result; the mark key pauses or resumes the one under the cursor.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Widget};

use super::fleet::until;
use super::{Ctx, ago, fit};
use crate::tui::keys::Action;
use crate::tui::schedules::local_time;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let theme = ctx.theme;
    let Overlay::Schedules { cursor } = &mut view.overlay else {
        return;
    };
    let rows = ctx.schedules.rows();
    *cursor = (*cursor).min(rows.len().saturating_sub(1));
    let cursor = *cursor;
    Clear.render(area, buf);
    let hint = if ctx.schedules.is_active() {
        format!(
            " {} pause/resume · {} back ",
            ctx.keys.first_key(Action::Mark),
            ctx.keys.first_key(Action::Back)
        )
    } else if rows.is_empty() {
        format!(" {} back ", ctx.keys.first_key(Action::Back))
    } else {
        " read-only: schedules do not run in this console ".to_string()
    };
    let title = Line::from(vec![
        Span::styled(" Schedules ", theme.title()),
        Span::styled(hint, theme.dim()),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Paragraph::new(Span::styled(
            "no [[schedule]] in the config: add one to patch on a timetable (see README)",
            theme.dim(),
        ))
        .render(inner, buf);
        return;
    }
    let [table, detail] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(inner);
    let now = view.now;
    view.shows_relative_times = true;
    let height = usize::from(table.height.saturating_sub(1)).max(1);
    let offset = (cursor + 1).saturating_sub(height);
    let lines: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, row)| {
            let next = match (row.paused, row.next) {
                (true, _) => Span::styled("paused", theme.warn()),
                (false, Some(at)) => Span::raw(format!("in {}", until(at, now))),
                (false, None) => Span::styled("never", theme.dim()),
            };
            let (last, result) = match &row.last_run {
                Some(run) => {
                    let style = if run.result.starts_with("ok") || run.result == "running" {
                        theme.accent()
                    } else {
                        theme.error()
                    };
                    (
                        Span::raw(ago(run.started, now)),
                        Span::styled(run.result.clone(), style),
                    )
                }
                None => (Span::styled("—", theme.dim()), Span::raw("")),
            };
            let line = Row::new(vec![
                Cell::from(if i == cursor { "›" } else { " " }),
                Cell::from(fit(&row.name, 14)),
                Cell::from(fit(&row.when, 16)),
                Cell::from(next),
                Cell::from(last),
                Cell::from(result),
            ]);
            if i == cursor {
                line.style(theme.cursor())
            } else {
                line
            }
        })
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Length(14),
        Constraint::Length(16),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    Table::new(lines, widths)
        .header(Row::new(["", "SCHEDULE", "WHEN", "NEXT", "LAST", "RESULT"]).style(theme.title()))
        .column_spacing(1)
        .render(table, buf);
    // The row under the cursor in full: the exact times and the whole result.
    if let Some(row) = rows.get(cursor) {
        let next = match (row.paused, row.next) {
            (true, _) => "paused".to_string(),
            (false, Some(at)) => local_time(at),
            (false, None) => "never".to_string(),
        };
        let mut text = vec![Line::from(vec![
            Span::styled(format!("{}: ", row.name), theme.title()),
            Span::raw(format!("{} · next {next}", row.when)),
        ])];
        if let Some(run) = &row.last_run {
            text.push(Line::raw(format!(
                "last {}: {}",
                local_time(run.started),
                run.result
            )));
        }
        Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .render(detail, buf);
    }
}
