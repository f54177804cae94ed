//! The App log tab: tendhost's own log, as tui-logger keeps it. Its messages quote what hosts
//! said (a failed read's error, a refusal), so each line is cleaned like every other host text
//! (`tui::sanitize`) before it is laid out: `12:00:01 WARN  web-1: idle -> idle: read failed`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Widget;
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget};

use super::Ctx;
use crate::tui::sanitize;
use crate::tui::theme::Theme;

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>) {
    TuiLoggerWidget::default()
        .formatter(Box::new(CleanFormat { theme: ctx.theme }))
        .render(area, buf);
}

/// Time, level and the cleaned message, wrapped to the width, coloured by level.
struct CleanFormat {
    theme: Theme,
}

impl LogFormatter for CleanFormat {
    fn min_width(&self) -> u16 {
        15
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let level = evt.level.as_str();
        let style = match level {
            "ERROR" => self.theme.error(),
            "WARN" => self.theme.warn(),
            "INFO" => Style::new(),
            _ => self.theme.dim(),
        };
        let text = format!(
            "{} {level:<5} {}",
            evt.timestamp.strftime("%H:%M:%S"),
            sanitize::text(evt.msg())
        );
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(width.max(1))
            .map(|piece| Line::styled(piece.iter().collect::<String>(), style))
            .collect()
    }
}
