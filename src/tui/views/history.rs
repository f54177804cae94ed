//! The History overlay: waves newest first with the hosts of the one under the cursor, or one
//! host's timeline. Host text is cleaned (`tui::sanitize`) before it is drawn.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Widget};

use super::{Ctx, fit};
use crate::history::model::{HostOutcome, WaveOutcome};
use crate::history::report::human_secs;
use crate::tui::history::HistoryView;
use crate::tui::keys::Action;
use crate::tui::sanitize;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let theme = ctx.theme;
    let Overlay::History(history) = &mut view.overlay else {
        return;
    };
    Clear.render(area, buf);
    let what = match &history.timeline {
        Some(host) => format!(" {} timeline ", sanitize::text(host)),
        None => format!(" {} waves ", history.waves().count()),
    };
    let title = Line::from(vec![
        Span::styled(" History ", theme.title()),
        Span::raw(what),
        Span::styled(
            format!(
                " {} {} · {} back ",
                ctx.keys.keys_label(Action::Zoom),
                if history.timeline.is_some() {
                    "waves"
                } else {
                    "host timeline"
                },
                ctx.keys.first_key(Action::Back)
            ),
            theme.dim(),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let note = |text: String, style| Paragraph::new(Span::styled(text, style));
    if let Some(error) = &history.error {
        note(
            format!("cannot read the audit log: {}", sanitize::text(error)),
            theme.error(),
        )
        .render(inner, buf);
        return;
    }
    if history.history.is_none() {
        note("reading the audit log…".to_string(), theme.dim()).render(inner, buf);
        return;
    }
    let [body, foot] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    if history.unreadable > 0 {
        note(
            format!(
                "{} unreadable line(s) of the audit log left out",
                history.unreadable
            ),
            theme.warn(),
        )
        .render(foot, buf);
    }
    match history.timeline.clone() {
        Some(host) => timeline(body, buf, ctx, history, &host),
        None => waves(body, buf, ctx, history),
    }
}

fn waves(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut HistoryView) {
    let theme = ctx.theme;
    let count = view.waves().count();
    if count == 0 {
        Paragraph::new(Span::styled("no waves in the audit log yet", theme.dim()))
            .render(area, buf);
        return;
    }
    // The list takes what its rows need, up to half; the wave's hosts get the rest.
    let wanted = u16::try_from(count + 2).unwrap_or(u16::MAX);
    let list_height = wanted.min(area.height / 2).max(3).min(area.height);
    let [list, hosts] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
    let height = usize::from(list.height.saturating_sub(1)).max(1);
    view.cursor = view.cursor.min(count - 1);
    if view.cursor < view.offset {
        view.offset = view.cursor;
    } else if view.cursor >= view.offset + height {
        view.offset = view.cursor + 1 - height;
    }
    let rows: Vec<Row> = view
        .waves()
        .enumerate()
        .skip(view.offset)
        .take(height)
        .map(|(i, wave)| {
            let style = match wave.outcome {
                WaveOutcome::Finished => theme.accent(),
                WaveOutcome::Halted | WaveOutcome::Aborted => theme.error(),
                _ => theme.warn(),
            };
            let row = Row::new(vec![
                Cell::from(if i == view.cursor { "›" } else { " " }),
                Cell::from(wave.started.format("%Y-%m-%d %H:%M").to_string()),
                Cell::from(Span::styled(wave.outcome.as_str(), style)),
                Cell::from(format!(
                    "{}/{}/{}",
                    wave.count(HostOutcome::Succeeded),
                    wave.count(HostOutcome::Failed),
                    wave.count(HostOutcome::Skipped) + wave.count(HostOutcome::Refused)
                )),
                Cell::from(wave.duration_secs().map_or("-".to_string(), human_secs)),
                Cell::from(fit(
                    &sanitize::text(
                        wave.reason
                            .as_deref()
                            .or(wave.plan.as_deref())
                            .unwrap_or(""),
                    ),
                    40,
                )),
            ]);
            if i == view.cursor {
                row.style(theme.cursor())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Length(16),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    Table::new(rows, widths)
        .header(
            Row::new(["", "STARTED", "OUTCOME", "OK/F/S", "TOOK", "PLAN / REASON"])
                .style(theme.title()),
        )
        .column_spacing(1)
        .render(list, buf);
    let Some(wave) = view.waves().nth(view.cursor) else {
        return;
    };
    let [name, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(hosts);
    // Header row aside, what fits; the last line says how many more when not all do.
    let room = usize::from(table.height.saturating_sub(1));
    let shown = if wave.hosts.len() > room {
        room.saturating_sub(1)
    } else {
        wave.hosts.len()
    };
    let rows: Vec<Row> = wave
        .hosts
        .iter()
        .take(shown)
        .map(|host| {
            let what = match (&host.reason, host.updated()) {
                (Some(reason), _) => sanitize::text(reason).into_owned(),
                (None, Some(n)) => format!("{n} packages updated"),
                (None, None) => String::new(),
            };
            let style = match host.outcome {
                HostOutcome::Succeeded => theme.accent(),
                HostOutcome::Failed => theme.error(),
                _ => theme.dim(),
            };
            Row::new(vec![
                Cell::from(fit(&sanitize::text(&host.host), 20)),
                Cell::from(Span::styled(host.outcome.as_str(), style)),
                Cell::from(host.duration_secs().map_or("-".to_string(), human_secs)),
                Cell::from(what),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(20),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let more = wave.hosts.len() - shown;
    let [table, rest] = Layout::vertical([
        Constraint::Length(u16::try_from(shown + 1).unwrap_or(u16::MAX)),
        Constraint::Min(0),
    ])
    .areas(table);
    if more > 0 {
        Paragraph::new(Span::styled(
            format!(
                "… and {more} more (tendhost report --wave {})",
                sanitize::text(&wave.key)
            ),
            theme.dim(),
        ))
        .render(rest, buf);
    }
    Paragraph::new(Line::from(vec![
        Span::styled("wave ", theme.title()),
        Span::raw(sanitize::text(&wave.key).into_owned()),
        Span::styled(format!(" by {}", sanitize::text(&wave.user)), theme.dim()),
    ]))
    .render(name, buf);
    Table::new(rows, widths)
        .header(Row::new(["HOST", "OUTCOME", "TOOK", ""]).style(theme.title()))
        .column_spacing(1)
        .render(table, buf);
}

fn timeline(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut HistoryView, host: &str) {
    let theme = ctx.theme;
    let entries = match &view.entries {
        None => {
            Paragraph::new(Span::styled(
                format!("reading the audit records of {}…", sanitize::text(host)),
                theme.dim(),
            ))
            .render(area, buf);
            return;
        }
        Some(Err(error)) => {
            Paragraph::new(Span::styled(
                format!("cannot read the audit log: {}", sanitize::text(error)),
                theme.error(),
            ))
            .render(area, buf);
            return;
        }
        Some(Ok(entries)) => entries.clone(),
    };
    if entries.is_empty() {
        Paragraph::new(Span::styled(
            format!("no audit records for {}", sanitize::text(host)),
            theme.dim(),
        ))
        .render(area, buf);
        return;
    }
    let height = usize::from(area.height).max(1);
    let most = entries.len().saturating_sub(height);
    view.scroll = view.scroll.min(most);
    let end = entries.len() - view.scroll;
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = entries[start..end]
        .iter()
        .map(|e| {
            let detail = e
                .detail
                .as_deref()
                .map_or(String::new(), |d| format!(": {}", sanitize::text(d)));
            Line::from(vec![
                Span::styled(e.at.format("%m-%d %H:%M:%S ").to_string(), theme.dim()),
                Span::raw(format!("{:<10} ", sanitize::text(&e.action))),
                Span::raw(format!("{}{detail}", sanitize::text(&e.result))),
            ])
        })
        .collect();
    Paragraph::new(lines).render(area, buf);
}
