//! The facts of one host's upgrade plan as the Pending tab shows them under its counts: what
//! would be removed, held or kept back, which conffiles would prompt, why a reboot is expected,
//! and what the upgrade needs on disk against what is free. One line per fact, only the facts
//! the plan has; the plan is the manager's, read by a dry run (see `pkg::UpgradePlan`).

use ratatui::text::{Line, Span};

use super::Ctx;
use crate::pkg::UpgradePlan;

/// `kind` is "dry run" or "last upgrade": which plan the lines are about.
pub(super) fn lines(plan: &UpgradePlan, kind: &str, ctx: Ctx<'_>) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let mut lines = Vec::new();
    let mut say = |text: String, style| lines.push(Line::from(Span::styled(text, style)));
    if !plan.removals.is_empty() {
        say(
            format!("{kind}: would REMOVE {}", plan.removals.join(", ")),
            theme.error(),
        );
    }
    if !plan.held.is_empty() {
        say(
            format!("{kind}: held back {}", plan.held.join(", ")),
            theme.warn(),
        );
    }
    if !plan.kept_back.is_empty() {
        say(
            format!("{kind}: kept back {}", plan.kept_back.join(", ")),
            theme.warn(),
        );
    }
    match &plan.conffiles {
        Some(prompts) if !prompts.is_empty() => {
            let files: Vec<String> = prompts
                .iter()
                .map(|p| match p.changed_upstream {
                    Some(_) => p.path.clone(),
                    None => format!("{} (new version unknown)", p.path),
                })
                .collect();
            say(
                format!("{kind}: conffile prompts {}", files.join(", ")),
                theme.warn(),
            );
        }
        _ => {}
    }
    if !plan.reboot_packages.is_empty() {
        say(
            format!(
                "{kind}: reboot expected ({})",
                plan.reboot_packages.join(", ")
            ),
            theme.warn(),
        );
    }
    if let Some(space) = space_line(plan) {
        say(format!("{kind}: {space}"), theme.dim());
    }
    for short in plan.short_of_space() {
        say(
            format!(
                "{kind}: NOT ENOUGH SPACE on {}: needs {}, {} free",
                short.path,
                size(short.needed_bytes),
                size(short.free_bytes)
            ),
            theme.error(),
        );
    }
    lines
}

/// "download 1.2 MiB, installs +3.0 MiB; free: / 20.0 GiB, /var/cache/apt/archives 20.0 GiB".
fn space_line(plan: &UpgradePlan) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(bytes) = plan.download_bytes {
        parts.push(format!("download {}", size(bytes)));
    }
    if let Some(delta) = plan.install_bytes {
        let sign = if delta < 0 { "-" } else { "+" };
        parts.push(format!("installs {sign}{}", size(delta.unsigned_abs())));
    }
    if parts.is_empty() && plan.free_space.is_empty() {
        return None;
    }
    let mut text = parts.join(", ");
    if !plan.free_space.is_empty() {
        let free: Vec<String> = plan
            .free_space
            .iter()
            .map(|f| format!("{} {}", f.path, size(f.free_bytes)))
            .collect();
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!("free {}", free.join(", ")));
    }
    Some(text)
}

/// Bytes in binary units with one decimal: `812 B`, `6.0 KiB`, `1.2 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: a float loses nothing a reader of one decimal would see.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(6 * 1024), "6.0 KiB");
        assert_eq!(size(1_258_291), "1.2 MiB");
    }
}
