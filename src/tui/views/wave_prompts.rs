//! The two questions a wave asks the operator: at its threshold (which hosts failed and why;
//! continue, skip them, retry them, abort), and at start (an unfinished wave from an earlier
//! run: resume, discard, later; with how the config changed under its plan).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Ctx, fit, popup};
use crate::tui::keys::Action;
use crate::tui::sanitize;
use crate::tui::view::{Overlay, ViewState};

/// Failed hosts named before the rest are counted.
const FAILED_SHOWN: usize = 8;
/// Config differences listed before the rest are counted.
const DIFFERENCES_SHOWN: usize = 6;

const WIDTH: u16 = 76;

pub(super) fn render_threshold(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    if !matches!(view.overlay, Overlay::Threshold) {
        return;
    }
    let Some(wave) = ctx.model.wave() else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let inner_width = usize::from(WIDTH.saturating_sub(2));
    let mut lines = vec![
        Line::styled(
            format!(
                "The wave paused at its threshold: {}/{} done, {} failed.",
                wave.done, wave.total, wave.failed
            ),
            theme.title(),
        ),
        Line::raw(fit(wave.reason.as_deref().unwrap_or(""), inner_width)),
        Line::raw(""),
    ];
    for failed in wave.failed_hosts.iter().take(FAILED_SHOWN) {
        // The progress was cleaned when it arrived (sanitize::event); the error is the host's
        // own words, cut to the line.
        let text = format!("✗ {}: {}", failed.host, failed.error);
        lines.push(Line::styled(fit(&text, inner_width), theme.error()));
    }
    if wave.failed_hosts.len() > FAILED_SHOWN {
        lines.push(Line::raw(format!(
            "  … and {} more",
            wave.failed_hosts.len() - FAILED_SHOWN
        )));
    }
    lines.push(Line::raw(""));
    let choice = |action: Action, text: &'static str| {
        Line::from(vec![
            Span::styled(format!("{:>3}", keys.first_key(action)), theme.title()),
            Span::raw(format!("  {text}")),
        ])
    };
    lines.push(choice(
        Action::WaveContinue,
        "continue (the failures stay counted; the next one asks again)",
    ));
    lines.push(choice(
        Action::WaveSkipFailed,
        "skip the failed hosts and continue",
    ));
    lines.push(choice(Action::WaveRetryFailed, "retry the failed hosts"));
    lines.push(choice(Action::AbortWave, "abort the wave"));
    lines.push(Line::from(vec![
        Span::styled(
            format!("{:>3}", keys.first_key(Action::Back)),
            theme.title(),
        ),
        Span::raw("  decide later (the wave keeps waiting)"),
    ]));
    show(area, buf, ctx, " Wave threshold ", lines);
}

pub(super) fn render_resume(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &ViewState) {
    let Overlay::ResumeWave(dialog) = &view.overlay else {
        return;
    };
    let theme = ctx.theme;
    let keys = ctx.keys;
    let inner_width = usize::from(WIDTH.saturating_sub(2));
    let saved = &dialog.saved;
    let mut lines = vec![
        Line::styled(format!("Resume {}?", saved.describe()), theme.title()),
        Line::raw(""),
    ];
    if !dialog.differences.is_empty() {
        lines.push(Line::styled(
            "The config changed since it started; resuming accepts this:",
            theme.warn(),
        ));
        for difference in dialog.differences.iter().take(DIFFERENCES_SHOWN) {
            lines.push(Line::styled(
                fit(&format!("⚠ {difference}"), inner_width),
                theme.warn(),
            ));
        }
        if dialog.differences.len() > DIFFERENCES_SHOWN {
            lines.push(Line::raw(format!(
                "  … and {} more",
                dialog.differences.len() - DIFFERENCES_SHOWN
            )));
        }
        lines.push(Line::raw(""));
    }
    if let Some(reason) = &saved.reason {
        // Saved from what hosts said: cleaned before it reaches the terminal.
        let reason = sanitize::text(reason);
        lines.push(Line::raw(fit(&format!("paused: {reason}"), inner_width)));
        lines.push(Line::raw(""));
    }
    let resume = if dialog.differences.is_empty() {
        " resume  "
    } else {
        " resume with these changes  "
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!("{}/Enter", keys.keys_label(Action::Confirm)),
            theme.title(),
        ),
        Span::raw(resume),
        Span::styled(keys.first_key(Action::DiscardWave), theme.title()),
        Span::raw(" discard  "),
        Span::styled(keys.first_key(Action::Back), theme.title()),
        Span::raw(" later"),
    ]));
    show(area, buf, ctx, " Unfinished wave ", lines);
}

fn show(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, title: &'static str, lines: Vec<Line<'_>>) {
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let inner = popup(
        area,
        buf,
        WIDTH,
        height,
        Line::styled(title, ctx.theme.title()),
    );
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}
