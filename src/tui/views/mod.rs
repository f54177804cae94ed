//! Drawing: `render(frame, ctx, view)` lays out the screen and delegates to one file per view.
//!
//! Render never awaits, does no I/O and takes no lock of ours (the App log tab reads tui-logger's
//! buffer, which guards itself); it builds rows only for the visible window. It may write layout
//! facts back into `ViewState` (window heights, whether relative times are shown).

mod app_log;
mod confirm;
mod detail;
mod fleet;
mod help;
mod history;
mod packages;
mod plan;
mod plan_facts;
mod schedules;
mod wave;
mod wave_prompts;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::keys::{Action, KeyMap};
use crate::tui::model::FleetModel;
use crate::tui::theme::Theme;
use crate::tui::view::{Input, Overlay, ViewState};

/// What render reads besides the view state.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub model: &'a FleetModel,
    pub keys: &'a KeyMap,
    pub theme: Theme,
    pub schedules: &'a crate::tui::schedules::Scheduler,
}

/// Draws one frame.
pub(super) fn render(frame: &mut Frame, ctx: Ctx<'_>, view: &mut ViewState) {
    let area = frame.area();
    view.sync(ctx.model);
    view.shows_relative_times = false;
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let buf = frame.buffer_mut();
    fleet::render_header(header, buf, ctx, view.now);
    if ctx.schedules.next().is_some() {
        view.shows_relative_times = true;
    }
    if view.zoomed {
        detail::render(body, buf, ctx, view);
    } else {
        // The table takes what its rows need, up to 55%; the detail pane gets the rest.
        let rows_needed = u16::try_from(view.visible().len() + 3).unwrap_or(u16::MAX);
        let hosts_height = (body.height * 11 / 20)
            .min(rows_needed)
            .max(5)
            .min(body.height);
        let [hosts, detail_area] =
            Layout::vertical([Constraint::Length(hosts_height), Constraint::Min(0)]).areas(body);
        fleet::render_table(hosts, buf, ctx, view);
        detail::render(detail_area, buf, ctx, view);
    }
    render_footer(footer, buf, ctx, view);
    match &view.overlay {
        Overlay::None => {}
        Overlay::Help { .. } => help::render(body, buf, ctx, view),
        Overlay::Confirm(_) => confirm::render(body, buf, ctx, view),
        Overlay::Wave(_) => wave::render(body, buf, ctx, view),
        Overlay::Plan { .. } => plan::render(body, buf, ctx, view),
        Overlay::Packages(_) => packages::render(body, buf, ctx, view),
        Overlay::History(_) => history::render(body, buf, ctx, view),
        Overlay::Threshold => wave_prompts::render_threshold(body, buf, ctx, view),
        Overlay::ResumeWave(_) => wave_prompts::render_resume(body, buf, ctx, view),
        Overlay::Schedules { .. } => schedules::render(body, buf, ctx, view),
    }
}

/// The bottom line: an open line editor, else the status message, else key hints.
fn render_footer(area: Rect, buf: &mut ratatui::buffer::Buffer, ctx: Ctx<'_>, view: &ViewState) {
    use ratatui::widgets::Widget;
    let theme = ctx.theme;
    let line = match (view.input, &view.status) {
        (Input::Filter, _) => {
            let mut spans = vec![
                Span::styled(" filter: ", theme.title()),
                Span::raw(view.filter_text.clone()),
                Span::styled("▏", theme.accent()),
            ];
            if let Some(err) = &view.filter_error {
                spans.push(Span::styled(format!("  {err}"), theme.error()));
            } else {
                spans.push(Span::styled("  Enter keep · Esc clear", theme.dim()));
            }
            Line::from(spans)
        }
        (Input::LogSearch, _) => Line::from(vec![
            Span::styled(" search log: ", theme.title()),
            Span::raw(view.search.clone()),
            Span::styled("▏", theme.accent()),
        ]),
        (Input::None, Some(status)) => {
            let style = if status.error {
                theme.error()
            } else {
                theme.accent()
            };
            Line::from(Span::styled(format!(" {}", status.text), style))
        }
        (Input::None, None) => hints(ctx, view, area.width),
    };
    Paragraph::new(line).render(area, buf);
}

fn hints(ctx: Ctx<'_>, view: &ViewState, width: u16) -> Line<'static> {
    let theme = ctx.theme;
    let keys = ctx.keys;
    let mut spans = Vec::new();
    if view.read_only {
        spans.push(Span::styled(" READ-ONLY", theme.warn()));
    }
    let move_keys = format!(
        "{}/{}",
        keys.first_key(Action::MoveDown),
        keys.first_key(Action::MoveUp)
    );
    let items: [(String, &str, bool); 10] = [
        (move_keys, "move", false),
        (keys.first_key(Action::Mark), "mark", false),
        (keys.first_key(Action::Filter), "filter", false),
        (keys.first_key(Action::Refresh), "refresh", false),
        (keys.first_key(Action::Update), "update", true),
        (keys.first_key(Action::Wave), "wave", true),
        (keys.first_key(Action::Reboot), "reboot", true),
        (keys.first_key(Action::Packages), "packages", false),
        (keys.first_key(Action::Help), "help", false),
        (keys.first_key(Action::Quit), "quit", false),
    ];
    let mut used: usize = spans.iter().map(|s| s.width()).sum();
    // Help and quit must always fit: reserve their room first.
    let tail: usize = items[8..]
        .iter()
        .map(|(k, l, _)| k.chars().count() + l.len() + 3)
        .sum();
    for (i, (key, label, mutating)) in items.iter().enumerate() {
        if view.read_only && *mutating {
            continue;
        }
        let w = key.chars().count() + label.len() + 3;
        if i < 8 && used + w + tail > usize::from(width) {
            continue;
        }
        used += w;
        spans.push(Span::styled(format!(" {key}"), theme.title()));
        spans.push(Span::styled(format!(" {label} "), theme.dim()));
    }
    Line::from(spans)
}

/// A bordered box centred in `area`, cleared, at most `width`×`height`.
fn popup(
    area: Rect,
    buf: &mut ratatui::buffer::Buffer,
    width: u16,
    height: u16,
    title: Line<'static>,
) -> Rect {
    use ratatui::widgets::Widget;
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    Clear.render(rect, buf);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(rect);
    block.render(rect, buf);
    inner
}

/// `now`, `5m ago`, `3h ago`, `2d ago`.
pub(super) fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..60 => "now".to_string(),
        60..3_600 => format!("{}m ago", secs / 60),
        3_600..86_400 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// Truncates to `width` columns with an ellipsis.
pub(super) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A list of names joined by ", ", ending in "… and N more" when it will not fit `width`×`lines`.
pub(super) fn name_list(
    names: &[crate::config::HostId],
    width: usize,
    lines: usize,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, name) in names.iter().enumerate() {
        let piece = if i + 1 < names.len() {
            format!("{name}, ")
        } else {
            name.to_string()
        };
        if current.chars().count() + piece.chars().count() > width && !current.is_empty() {
            out.push(Line::raw(std::mem::take(&mut current)));
            if out.len() + 1 == lines.max(1) {
                let more = names.len() - i;
                out.push(Line::raw(format!("… and {more} more")));
                return out;
            }
        }
        current.push_str(&piece);
    }
    if !current.is_empty() {
        out.push(Line::raw(current));
    }
    out
}

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
