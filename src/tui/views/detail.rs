//! The detail pane of the cursor host: Inventory | Pending | Log | App log.
//!
//! The Log tab shows the host's bounded scrollback (only the window on screen is built), follows
//! the newest line unless scrolled, says how many old lines were dropped, and highlights search
//! hits. The App log tab is tui-logger's widget over tendhost's own tracing events.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::{Ctx, ago, fit};
use crate::engine::bus::StateKind;
use crate::remote::Stream;
use crate::tui::model::HostRow;
use crate::tui::theme::{state_symbol, state_word};
use crate::tui::view::{Tab, ViewState};

pub(super) fn render(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState) {
    let host = view.cursor_host(ctx.model);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title(ctx, view, host));
    let inner = block.inner(area);
    block.render(area, buf);
    view.detail_height = usize::from(inner.height).max(1);
    if view.tab == Tab::AppLog {
        super::app_log::render(inner, buf, ctx);
        return;
    }
    let Some(host) = host else {
        Paragraph::new(Span::styled("no host selected", ctx.theme.dim())).render(inner, buf);
        return;
    };
    if view.tab == Tab::Inventory && (host.since().is_some() || host.model.inventory.is_some()) {
        view.shows_relative_times = true; // "since 3m ago", "gathered 1h ago"
    }
    let lines = match view.tab {
        Tab::Inventory => inventory_lines(host, ctx, view, usize::from(inner.width)),
        Tab::Pending => pending_lines(host, ctx, usize::from(inner.width)),
        Tab::Log => {
            render_log(inner, buf, ctx, view, host);
            return;
        }
        Tab::AppLog => Vec::new(),
    };
    let scroll = view.detail_scroll.min(lines.len().saturating_sub(1));
    view.detail_scroll = scroll;
    let window: Vec<Line> = lines
        .into_iter()
        .skip(scroll)
        .take(view.detail_height)
        .collect();
    Paragraph::new(window).render(inner, buf);
}

fn title(ctx: Ctx<'_>, view: &ViewState, host: Option<&HostRow>) -> Line<'static> {
    let theme = ctx.theme;
    let mut spans = vec![Span::styled(
        format!(
            " {} ",
            host.map(|h| h.name().to_string()).unwrap_or_default()
        ),
        theme.title(),
    )];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled("│", theme.dim()));
        }
        if *tab == view.tab {
            spans.push(Span::styled(format!("[{}]", tab.title()), theme.cursor()));
        } else {
            spans.push(Span::styled(format!(" {} ", tab.title()), theme.dim()));
        }
    }
    if view.tab == Tab::Log {
        let mode = match view.log_scroll {
            None => " follow ".to_string(),
            Some(top) => format!(" line {} ", top + 1),
        };
        spans.push(Span::styled(mode, theme.accent()));
    }
    Line::from(spans)
}

fn field(name: &str, value: impl Into<String>, ctx: Ctx<'_>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<10} "), ctx.theme.dim()),
        Span::raw(value.into()),
    ])
}

fn inventory_lines(
    host: &HostRow,
    ctx: Ctx<'_>,
    view: &ViewState,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let mut state = format!(
        "{} {}",
        state_symbol(host.state()),
        state_word(host.state())
    );
    if let Some(since) = host.since() {
        state.push_str(&format!(" since {}", ago(since, view.now)));
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:<10} ", "state"), theme.dim()),
        Span::styled(state, theme.state(host.state())),
    ])];
    lines.push(field("target", host.target.clone(), ctx));
    if let Some(hypervisor) = host.hypervisor() {
        let how = if host.runs_on.is_some() {
            ""
        } else {
            ", detected"
        };
        lines.push(field(
            "runs on",
            format!("{hypervisor} (updated and rebooted after this host{how})"),
            ctx,
        ));
    }
    let guests = host.all_guests();
    if !guests.is_empty() {
        let guests: Vec<&str> = guests.iter().map(|g| &**g).collect();
        lines.push(field(
            "guests",
            format!(
                "{} (updated first; never rebooted under them)",
                guests.join(", ")
            ),
            ctx,
        ));
    }
    let mut tags = host.tags.join(",");
    if !host.groups.is_empty() {
        tags.push_str(&format!("  groups {}", host.groups.join(",")));
    }
    lines.push(field("tags", tags, ctx));
    if let Some(error) = host.error() {
        let ack = if host.acknowledged() {
            " (acknowledged)"
        } else {
            ""
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10} ", "error"), theme.dim()),
            Span::styled(format!("{error}{ack}"), theme.error()),
        ]));
    }
    if let Some(job) = &host.model.job {
        // The detached job on the host: what a restarted tendhost would ask about.
        let how = match job.ended {
            None => "running".to_string(),
            Some(Some(code)) => format!("exit {code}"),
            Some(None) => "vanished".to_string(),
        };
        let since = ago(job.started, view.now);
        lines.push(field(
            "job",
            format!("{} {} ({how}, started {since})", job.label, job.id),
            ctx,
        ));
    }
    if let Some(result) = &host.wave_result {
        lines.push(field("wave", result.clone(), ctx));
    }
    if let Some((job, reason)) = &host.model.refused {
        lines.push(field("refused", format!("{}: {reason}", job.name()), ctx));
    }
    if host.model.reboot.required || host.state() == StateKind::WaitingReboot {
        let why = if host.model.reboot.packages.is_empty() {
            host.reboot_reason()
                .as_deref()
                .unwrap_or("the package manager says so")
                .to_string()
        } else {
            format!("for {}", host.model.reboot.packages.join(", "))
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10} ", "reboot"), theme.dim()),
            Span::styled(format!("required {why}"), theme.warn()),
        ]));
    }
    // What the health gates found comes before the inventory: on a failed host it says why.
    lines.extend(check_lines(host, ctx, width));
    let Some(inv) = &host.model.inventory else {
        lines.push(field("inventory", "not gathered yet (r refreshes)", ctx));
        return lines;
    };
    lines.push(field("os", inv.os.pretty_name.clone(), ctx));
    lines.push(field("kernel", inv.kernel.clone(), ctx));
    lines.push(field("uptime", uptime(inv.uptime_secs), ctx));
    let pending = match host.pending_count() {
        Some(n) => format!(", {n} pending ({} security)", host.security()),
        None => String::new(),
    };
    lines.push(field(
        "packages",
        format!("{} installed{pending}", inv.installed_packages),
        ctx,
    ));
    if let Some(services) = host.model.survey.as_ref().and_then(|s| s.services.as_ref()) {
        let text = match services.is_empty() {
            true => "no service runs replaced code".to_string(),
            false => services.join(", "),
        };
        lines.push(field("restart", text, ctx));
    }
    lines.push(field(
        "gathered",
        format!("{} by {:?}", ago(inv.collected_at, view.now), inv.source).to_lowercase(),
        ctx,
    ));
    if inv.containers.is_empty() {
        lines.push(field("containers", "none", ctx));
    }
    for (i, c) in inv.containers.iter().enumerate() {
        let name = if i == 0 { "containers" } else { "" };
        lines.push(field(
            name,
            format!("{} ({}) {}", c.name, c.image, c.state),
            ctx,
        ));
    }
    lines.extend(stack_lines(host, ctx));
    lines
}

/// The last report of each phase (see `crate::health`), one line per check in the order it
/// ran: ✓ or ✗ (the symbol carries the verdict without colour), the phase, the check's name
/// and its detail cut to the pane. The detail is host text, sanitized with the model.
fn check_lines(host: &HostRow, ctx: Ctx<'_>, width: usize) -> Vec<Line<'static>> {
    const PHASE_W: usize = 11; // "post-update", "post-reboot"
    const NAME_W: usize = 15; // "reboot_required"
    let theme = ctx.theme;
    let checks = host.model.health.iter().flat_map(|r| r.checks.iter());
    let detail_w = width.saturating_sub(11 + 2 + PHASE_W + 1 + NAME_W + 1);
    checks
        .enumerate()
        .map(|(i, check)| {
            let (symbol, style) = match check.ok {
                true => ("✓", theme.state(StateKind::Idle)),
                false => ("✗", theme.error()),
            };
            let label = if i == 0 { "checks" } else { "" };
            Line::from(vec![
                Span::styled(format!("{label:<10} "), theme.dim()),
                Span::styled(format!("{symbol} "), style),
                Span::styled(format!("{:<PHASE_W$} ", check.phase.label()), theme.dim()),
                Span::raw(format!("{:<NAME_W$} ", check.name.as_str())),
                Span::styled(
                    fit(&check.detail, detail_w),
                    if check.ok { Style::new() } else { style },
                ),
            ])
        })
        .collect()
}

/// The compose stacks: each service with the image it runs, then what the last update changed.
fn stack_lines(host: &HostRow, ctx: Ctx<'_>) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (i, stack) in host.model.stacks.iter().enumerate() {
        let name = if i == 0 { "stacks" } else { "" };
        lines.push(field(name, stack.path.clone(), ctx));
        for service in &stack.services {
            let image = service.image.as_deref().unwrap_or("no image");
            // A report keeps what ran before its update: a recreated service now runs the new one.
            let now = match stack.recreated && service.changed() {
                true => service.available.as_ref(),
                false => service.running.as_ref(),
            };
            let running = now.map_or_else(|| "not running".to_string(), |r| short_id(&r.id));
            lines.push(field(
                "",
                format!("  {} {image} {running}", service.service),
                ctx,
            ));
        }
    }
    let pending = host.model.compose_pending();
    let changes = host
        .model
        .compose_changes
        .iter()
        .map(|c| ("updated", c))
        .chain(pending.iter().map(|c| ("newer", c)));
    let mut last_label = "";
    for (label, change) in changes {
        let name = if label == last_label { "" } else { label };
        last_label = label;
        let from = change
            .from
            .as_ref()
            .map_or_else(|| "none".to_string(), |f| short_id(&f.id));
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<10} "), ctx.theme.dim()),
            Span::styled(
                format!(
                    "{} {}: {from} → {}",
                    change.path,
                    change.service,
                    short_id(&change.to.id)
                ),
                ctx.theme.accent(),
            ),
        ]));
    }
    // What an update leaves for later, and what a rollback (the rollback key) would put back.
    let held = host.model.compose_held.iter().map(|h| {
        format!(
            "{} {}: {} ({})",
            h.path,
            h.service,
            h.hold,
            short_id(&h.image.id)
        )
    });
    let rollback = host
        .rollback_preview(None)
        .into_iter()
        .filter(|p| !p.done())
        .map(|p| format!("{} {}", p.path, p.describe()));
    for (label, rows) in [
        ("held", held.collect::<Vec<_>>()),
        ("rollback", rollback.collect()),
    ] {
        for (i, text) in rows.into_iter().enumerate() {
            let name = if i == 0 { label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<10} "), ctx.theme.dim()),
                Span::styled(text, ctx.theme.warn()),
            ]));
        }
    }
    lines
}

use crate::pkg::short_image_id as short_id;

fn pending_lines(host: &HostRow, ctx: Ctx<'_>, width: usize) -> Vec<Line<'static>> {
    let theme = ctx.theme;
    let mut lines = Vec::new();
    if let Some(crate::fleet::Plan { plan, dry_run, .. }) = &host.model.plan {
        let kind = if *dry_run { "dry run" } else { "last upgrade" };
        lines.push(Line::from(Span::styled(
            format!(
                "{kind}: {} to upgrade, {} new, {} to remove, {} held",
                plan.upgrades.len(),
                plan.installs.len(),
                plan.removals.len(),
                plan.held.len()
            ),
            theme.accent(),
        )));
        lines.extend(super::plan_facts::lines(plan, kind, ctx));
        if !plan.installs.is_empty() {
            lines.push(field("new", plan.installs.join(", "), ctx));
        }
    }
    let Some(pending) = &host.model.pending else {
        lines.push(Line::from(Span::styled(
            "not checked yet (r refreshes)",
            theme.dim(),
        )));
        return lines;
    };
    if pending.is_empty() {
        lines.push(Line::from(Span::styled(
            "up to date",
            theme.state(StateKind::Idle),
        )));
    }
    // Columns as wide as their longest entry, within a third of the pane each.
    let longest = |f: fn(&crate::pkg::PendingPackage) -> &str| {
        pending
            .iter()
            .map(|p| f(p).chars().count())
            .max()
            .unwrap_or(0)
    };
    let name_w = longest(|p| &p.name).clamp(10, (width / 3).max(10));
    let version_cap = width.saturating_sub(name_w + 14) / 2;
    let from_w = longest(|p| &p.from).min(version_cap);
    let to_w = longest(|p| &p.to).min(version_cap);
    for pkg in pending.iter() {
        let mut spans = vec![
            Span::raw(format!("{:<name_w$} ", fit(&pkg.name, name_w))),
            Span::styled(format!("{:>from_w$}", fit(&pkg.from, from_w)), theme.dim()),
            Span::raw(" → "),
            Span::raw(format!("{:<to_w$}", fit(&pkg.to, to_w))),
        ];
        if pkg.security {
            spans.push(Span::styled(" security", theme.warn()));
        }
        lines.push(Line::from(spans));
    }
    lines
}

fn render_log(area: Rect, buf: &mut Buffer, ctx: Ctx<'_>, view: &mut ViewState, host: &HostRow) {
    let theme = ctx.theme;
    let log = &host.log;
    let mut height = usize::from(area.height);
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    if log.dropped() > 0 {
        lines.push(Line::from(Span::styled(
            format!("… {} older lines dropped", log.dropped()),
            theme.dim(),
        )));
        height = height.saturating_sub(1);
    }
    if log.is_empty() {
        lines.push(Line::from(Span::styled("no output yet", theme.dim())));
    }
    let max_top = log.len().saturating_sub(height);
    let top = match view.log_scroll {
        None => max_top,
        Some(top) => top.min(max_top),
    };
    if view.log_scroll.is_some() {
        view.log_scroll = Some(top);
    }
    let needle = view.search.to_lowercase();
    for (i, line) in log.window(top, top + height).enumerate() {
        let mut style = match line.stream {
            Stream::Stdout => Style::new(),
            Stream::Stderr => theme.warn(),
        };
        if !needle.is_empty() && line.text.to_lowercase().contains(&needle) {
            style = theme.accent();
        }
        if view.search_hit == Some(top + i) {
            style = theme.cursor();
        }
        lines.push(Line::from(Span::styled(line.text.to_string(), style)));
    }
    Paragraph::new(lines).render(area, buf);
}

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match d {
        0 => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}
