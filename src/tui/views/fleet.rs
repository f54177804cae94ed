//! The header line (fleet totals, wave progress) and the hosts table.
//!
//! Rows are built only for the window on screen, so 10,000 hosts cost what 20 do.

use chrono::{DateTime, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use super::{Ctx, ago, fit};
use crate::engine::bus::{StateKind, WaveProgress, WaveStatus};
use crate::tui::model::{ALL_STATES, HostRow};
use crate::tui::theme::{state_symbol, state_word};
use crate::tui::view::{Input, ViewState};

pub(super) fn render_header(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, now: DateTime<Utc>) {
    // Widest first; on a narrow terminal the words go, the symbols and numbers stay, and the
    // next scheduled run goes before the wave's progress does.
    let wave = ctx.model.wave();
    let candidates = [
        (false, false, Some(false)),
        (true, false, Some(false)),
        (true, true, Some(false)),
        (true, true, Some(true)),
        (true, true, None),
    ];
    let width = usize::from(area.width);
    let mut chosen = None;
    for (compact_totals, compact_wave, schedule) in candidates {
        let left = totals_line(ctx, compact_totals);
        let mut right = wave
            .map(|w| wave_line(w, ctx, compact_wave))
            .unwrap_or_default();
        if let Some(compact) = schedule {
            right.spans.extend(schedule_spans(ctx, now, compact));
        }
        let fits = left.width() + right.width() < width;
        chosen = Some((left, right));
        if fits {
            break;
        }
    }
    let Some((left, right)) = chosen else { return };
    let right_width = u16::try_from(right.width())
        .unwrap_or(u16::MAX)
        .min(area.width);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    Paragraph::new(left).render(left_area, buf);
    Paragraph::new(right)
        .right_aligned()
        .render(right_area, buf);
}

/// The schedule this console runs next ("next sunday in 2d 3h"), or the one whose wave runs.
fn schedule_spans(ctx: Ctx<'_>, now: DateTime<Utc>, compact: bool) -> Vec<Span<'static>> {
    let theme = ctx.theme;
    let schedules = ctx.schedules;
    if let Some(name) = schedules.running() {
        return vec![Span::styled(format!(" ⟳ {name} "), theme.accent())];
    }
    let Some((name, at)) = schedules.next() else {
        return Vec::new();
    };
    let text = if compact {
        format!(" next {} ", until(at, now))
    } else {
        format!(" next {name} in {} ", until(at, now))
    };
    vec![Span::styled(text, theme.dim())]
}

/// `<1m`, `5m`, `3h 20m`, `2d 4h`: how long until `then`.
pub(super) fn until(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let mins = (then - now).num_minutes().max(0);
    match mins {
        0 => "<1m".to_string(),
        1..60 => format!("{mins}m"),
        60..1_440 => format!("{}h {}m", mins / 60, mins % 60),
        _ => format!("{}d {}h", mins / 1_440, mins % 1_440 / 60),
    }
}

fn totals_line(ctx: Ctx<'_>, compact: bool) -> Line<'static> {
    let theme = ctx.theme;
    let model = ctx.model;
    let mut spans = vec![
        Span::styled(" tendhost ", theme.title()),
        Span::raw(if compact {
            format!(" {} ", model.hosts().len())
        } else {
            format!(" {} hosts ", model.hosts().len())
        }),
    ];
    for state in ALL_STATES {
        let n = model.total(state);
        if n == 0 && state != StateKind::Idle {
            continue;
        }
        let text = if compact {
            format!(" {}{}", state_symbol(state), n)
        } else {
            format!(" {}{} {}", state_symbol(state), n, state_word(state))
        };
        spans.push(Span::styled(text, theme.state(state)));
    }
    Line::from(spans)
}

fn wave_line(wave: &WaveProgress, ctx: Ctx<'_>, compact: bool) -> Line<'static> {
    let theme = ctx.theme;
    const CELLS: usize = 5;
    let filled = (wave.done * CELLS)
        .checked_div(wave.total)
        .unwrap_or(0)
        .min(CELLS);
    let bar: String = "■".repeat(filled) + &"□".repeat(CELLS - filled);
    let status = match wave.status {
        WaveStatus::Started | WaveStatus::Running => "",
        WaveStatus::Paused => " paused",
        WaveStatus::Delaying => " waiting",
        WaveStatus::Threshold => " at threshold",
        WaveStatus::Halted => " halted",
        WaveStatus::Aborted => " aborted",
        WaveStatus::Finished => " done",
    };
    let mut spans = vec![Span::raw(format!(
        "wave{status} {}/{} ",
        wave.batch, wave.batches
    ))];
    if !compact {
        spans.push(Span::styled(bar, theme.accent()));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(format!("{}/{} ok", wave.succeeded, wave.total)));
    if wave.failed > 0 {
        let failed = if compact {
            format!(" ✖{}", wave.failed)
        } else {
            format!(", {} failed", wave.failed)
        };
        spans.push(Span::styled(failed, theme.error()));
    }
    if wave.skipped > 0 && !compact {
        spans.push(Span::styled(
            format!(", {} skipped", wave.skipped),
            theme.warn(),
        ));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

pub(super) fn render_table(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let theme = ctx.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(table_title(ctx, view));
    let inner = block.inner(area);
    block.render(area, buf);
    let height = usize::from(inner.height.saturating_sub(1)); // one line for the column header
    view.table_height = height.max(1);
    view.scroll_into_view(height);
    let wide = inner.width >= 120;
    let mut widths = vec![
        Constraint::Length(2),
        Constraint::Length(if wide { 22 } else { 16 }),
        Constraint::Length(14),
        Constraint::Length(11),
        Constraint::Length(4),
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(7),
    ];
    let mut titles = vec![
        "", "HOST", "STATE", "OS", "PEND", "SEC", "RB", "TAGS", "UPDATED",
    ];
    if wide {
        widths.push(Constraint::Fill(2));
        titles.push("LAST ERROR");
    }
    let header = Row::new(titles).style(theme.title());
    let end = (view.offset + height).min(view.visible().len());
    let mut relative = false;
    let rows: Vec<Row> = view.visible()[view.offset..end]
        .iter()
        .enumerate()
        .filter_map(|(i, &idx)| {
            let host = ctx.model.host(idx)?;
            let is_cursor = view.offset + i == view.cursor;
            let marked = view.marks.contains(host.name());
            relative |= host.model.state.last_update.is_some();
            Some(host_row(host, ctx, view, is_cursor, marked, wide))
        })
        .collect();
    view.shows_relative_times |= relative;
    if rows.is_empty() {
        let text = if ctx.model.hosts().is_empty() {
            "no hosts configured: add one with 'tendhost host add user@addr'"
        } else {
            "no host matches the filter (Esc clears it)"
        };
        Paragraph::new(Span::styled(text, theme.dim())).render(inner, buf);
        return;
    }
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .render(inner, buf);
}

fn table_title(ctx: Ctx<'_>, view: &ViewState) -> Line<'static> {
    let theme = ctx.theme;
    let mut spans = vec![Span::styled(
        format!(
            " Hosts {}/{} ",
            view.visible().len(),
            ctx.model.hosts().len()
        ),
        theme.title(),
    )];
    if !view.filter_text.is_empty() || view.input == Input::Filter {
        spans.push(Span::styled(
            format!(" filter: {} ", view.filter_text),
            theme.accent(),
        ));
    }
    if !view.marks.is_empty() {
        spans.push(Span::styled(
            format!(" {} marked ", view.marks.len()),
            theme.marked(),
        ));
    }
    spans.push(Span::styled(
        format!(" sort: {} ", view.sort.label()),
        theme.dim(),
    ));
    Line::from(spans)
}

/// The host's name, and dimmed after it where it sits in the fleet: `vm-1 on pve1` for a
/// guest, `pve1 (3 guests)` for a hypervisor.
fn name_cell(host: &HostRow, ctx: Ctx<'_>) -> Line<'static> {
    let mut spans = vec![Span::raw(host.name().to_string())];
    let guests = host.all_guests();
    if let Some(hypervisor) = host.hypervisor() {
        spans.push(Span::styled(format!(" on {hypervisor}"), ctx.theme.dim()));
    } else if !guests.is_empty() {
        let n = guests.len();
        let s = if n == 1 { "" } else { "s" };
        spans.push(Span::styled(format!(" ({n} guest{s})"), ctx.theme.dim()));
    }
    Line::from(spans)
}

fn host_row(
    host: &HostRow,
    ctx: Ctx<'_>,
    view: &ViewState,
    is_cursor: bool,
    marked: bool,
    wide: bool,
) -> Row<'static> {
    let theme = ctx.theme;
    let select = format!(
        "{}{}",
        if is_cursor { "›" } else { " " },
        if marked { "*" } else { " " }
    );
    // A broken package database is what the operator must act on, whatever rests above it.
    let needs_repair = host.model.shows_needs_repair();
    let word = match needs_repair {
        true => "needs repair",
        false => state_word(host.state()),
    };
    let mut state = format!("{} {word}", state_symbol(host.state()));
    if host.state() == StateKind::Failed && host.acknowledged() {
        state.push_str(" (ack)");
    }
    if let Some(percent) = host.model.progress.and_then(|p| p.percent()) {
        state.push_str(&format!(" {percent}%"));
    }
    let (pending, security) = match host.pending_count() {
        Some(n) => (n.to_string(), host.security().to_string()),
        None => ("—".to_string(), "—".to_string()),
    };
    let sec_style = if host.security() > 0 {
        theme.warn()
    } else {
        Style::new()
    };
    let reboot = if host.model.reboot.required || host.state() == StateKind::WaitingReboot {
        Cell::from(Span::styled("⟳", theme.warn()))
    } else {
        Cell::from(Span::styled("·", theme.dim()))
    };
    let updated = host
        .model
        .state
        .last_update
        .map(|t| ago(t, view.now))
        .unwrap_or_else(|| "—".to_string());
    let mut cells = vec![
        Cell::from(Span::styled(select, theme.marked())),
        Cell::from(name_cell(host, ctx)),
        Cell::from(Span::styled(
            state,
            match needs_repair {
                true => theme.error(),
                false => theme.state(host.state()),
            },
        )),
        Cell::from(fit(&host.os_label(), 11)),
        Cell::from(Line::from(pending).right_aligned()),
        Cell::from(Line::from(Span::styled(security, sec_style)).right_aligned()),
        reboot,
        Cell::from(Span::styled(host.tags.join(","), theme.dim())),
        Cell::from(updated),
    ];
    if wide {
        let error = host.error().unwrap_or("");
        cells.push(Cell::from(Span::styled(error.to_string(), theme.error())));
    }
    let row = Row::new(cells);
    if is_cursor {
        row.style(theme.cursor())
    } else {
        row
    }
}
