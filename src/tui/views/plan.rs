//! The Plan view: the wave dialog's plan host by host, batch after batch — what each host's
//! update does (upgrades from → to, removals, kept back), its reboot and why, its predicted
//! duration and space, and why the wave would defer or skip it. Scrolls; fits 80×24.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Ctx, fit, popup};
use crate::plan::{HostStatus, PlanHost, WavePlan, render as words};
use crate::tui::keys::Action;
use crate::tui::view::{Overlay, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::Plan { dialog, scroll } = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let inner = popup(
        area,
        buf,
        area.width,
        area.height,
        Line::styled(" Plan ", theme.title()),
    );
    let width = usize::from(inner.width);
    let mut lines = match &dialog.preview {
        Some(plan) => plan_lines(plan, ctx, width),
        None => vec![Line::styled("composing the plan…", theme.dim())],
    };
    let room = usize::from(inner.height.saturating_sub(1));
    let top = (*scroll).min(lines.len().saturating_sub(room));
    let shown: Vec<Line<'static>> = lines.drain(..).skip(top).take(room).collect();
    let mut text = shown;
    while text.len() < room {
        text.push(Line::raw(""));
    }
    let key = |action| ctx.keys.first_key(action);
    text.push(Line::from(vec![
        Span::styled(
            format!("{}/{}", key(Action::MoveDown), key(Action::MoveUp)),
            theme.title(),
        ),
        Span::raw(" scroll  "),
        Span::styled(key(Action::PageDown), theme.title()),
        Span::raw(" page  "),
        Span::styled(key(Action::Quit), theme.title()),
        Span::raw(" back to the wave"),
    ]));
    Paragraph::new(text).render(inner, buf);
}

fn plan_lines(plan: &WavePlan, ctx: Ctx<'_>, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let mut lines: Vec<Line<'static>> = super::wave::wrap(&words::totals_line(plan), width, 4)
        .into_iter()
        .map(|l| Line::styled(l, theme.title()))
        .collect();
    let mut batch = None;
    for host in &plan.hosts {
        if batch != Some(host.batch) {
            batch = Some(host.batch);
            let title = match plan.batches.iter().find(|b| Some(b.batch) == host.batch) {
                Some(b) => words::batch_line(b),
                None => "not in the wave (deferred or outside its window)".to_string(),
            };
            lines.push(Line::raw(""));
            lines.push(Line::styled(fit(&title, width), theme.accent()));
        }
        lines.extend(host_lines(host, ctx, width));
    }
    lines
}

fn host_lines(host: &PlanHost, ctx: Ctx<'_>, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let took = words::duration_text(host.prediction.map(|p| p.total));
    let head = format!(
        " {:<18} {:>8}  {}",
        fit(&host.host, 18),
        took,
        words::reboot_text(host)
    );
    let mut lines = vec![Line::from(vec![Span::raw(fit(&head, width))])];
    let indent = |text: String| fit(&format!("     {text}"), width);
    let changes = words::changes_text(host);
    let changes_style = if host.known {
        theme.dim()
    } else {
        theme.warn()
    };
    lines.push(Line::styled(indent(changes), changes_style));
    for upgrade in &host.upgrades {
        lines.push(Line::raw(indent(format!(
            "{} {} → {}",
            upgrade.name, upgrade.from, upgrade.to
        ))));
    }
    for change in &host.compose {
        lines.push(Line::raw(indent(format!(
            "compose {} {}: new image",
            change.path, change.service
        ))));
    }
    if host.known && !host.upgrades.is_empty() {
        let prompts = match &host.conffiles {
            None => "conffile prompts: unknown".to_string(),
            Some(list) if list.is_empty() => String::new(),
            Some(list) => {
                let paths: Vec<&str> = list.iter().map(|c| c.path.as_str()).collect();
                format!("conffile prompts: {}", paths.join(", "))
            }
        };
        if !prompts.is_empty() {
            lines.push(Line::styled(indent(prompts), theme.dim()));
        }
    }
    let space = words::space_text(host);
    if space != "-" {
        let style = match host.space.enough {
            Some(false) => theme.error(),
            _ => theme.dim(),
        };
        lines.push(Line::styled(indent(space), style));
    }
    if let Some(note) = words::status_text(&host.status) {
        let style = match host.status {
            HostStatus::Overruns { .. } => theme.error(),
            _ => theme.warn(),
        };
        lines.push(Line::styled(indent(note.to_string()), style));
    }
    lines
}
