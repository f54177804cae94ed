//! Keeps the wave dialog's plan up to date and answers the keys of the Plan view. The plan is
//! composed here, not in render, because composing needs the config (windows, jump hosts) the
//! app holds through its engine handle; render only draws what was composed.

use std::sync::Arc;

use chrono::Local;

use crate::engine::{JobKind, Origin};
use crate::fleet::HostModel;
use crate::tui::app::App;
use crate::tui::keys::Action;
use crate::tui::view::Overlay;

impl App {
    /// Composes the plan of the open wave dialog (or of the Plan view's) from the rows as they
    /// stand now; nothing when neither is open.
    pub(crate) fn refresh_wave_plan(&mut self) {
        let dialog = match &mut self.view.overlay {
            Overlay::Wave(dialog) | Overlay::Plan { dialog, .. } => dialog,
            _ => return,
        };
        let models: Vec<&HostModel> = dialog
            .hosts
            .iter()
            .filter_map(|h| self.model.position(h).and_then(|i| self.model.host(i)))
            .map(|row| &row.model)
            .collect();
        // The view's clock: the frame's time in the console, pinned in tests.
        let now = self.view.now.with_timezone(&Local);
        let plan = crate::plan::compose(&dialog.spec(), &models, self.engine.config(), now);
        dialog.preview = Some(Arc::new(plan));
    }

    /// From the wave dialog: a dry run on every selected host the plan knows nothing about,
    /// so the plan can say what their updates do. Changes nothing on them.
    pub(crate) fn dry_run_hosts_without_plan(&mut self) {
        let Overlay::Wave(dialog) = &self.view.overlay else {
            return;
        };
        let Some(plan) = dialog.preview.clone() else {
            return;
        };
        let kind = JobKind::Update {
            dry_run: true,
            allow_removals: dialog.allow_removals,
        };
        let scope = dialog.spec().scope;
        let (mut sent, mut busy) = (0, Vec::new());
        for host in plan.hosts.iter().filter(|h| !h.known) {
            let job = crate::engine::Job::new(kind, Origin::Console).scoped(scope.clone());
            match self.engine.try_send(&host.host, job) {
                Ok(()) => sent += 1,
                Err(_) => busy.push(host.host.to_string()),
            }
        }
        let text = match (sent, busy.len()) {
            (0, 0) => "every host has a plan".to_string(),
            (n, 0) => format!("dry-running {n} hosts without a plan"),
            (n, b) => format!("dry-running {n} hosts; {b} busy: {}", busy.join(", ")),
        };
        self.view.set_status(text, !busy.is_empty());
    }

    pub(crate) fn open_plan_view(&mut self) {
        let overlay = std::mem::replace(&mut self.view.overlay, Overlay::None);
        self.view.overlay = match overlay {
            Overlay::Wave(dialog) => Overlay::Plan { dialog, scroll: 0 },
            other => other,
        };
    }

    pub(crate) fn handle_plan(&mut self, action: Action) {
        let page = self.view.table_height.max(1);
        let Overlay::Plan { scroll, .. } = &mut self.view.overlay else {
            return;
        };
        match action {
            Action::MoveDown => *scroll += 1,
            Action::MoveUp => *scroll = scroll.saturating_sub(1),
            Action::PageDown => *scroll += page,
            Action::PageUp => *scroll = scroll.saturating_sub(page),
            Action::Top => *scroll = 0,
            // Render clamps to the last page.
            Action::Bottom => *scroll = usize::MAX / 2,
            Action::Back | Action::Quit | Action::PlanView => {
                let overlay = std::mem::replace(&mut self.view.overlay, Overlay::None);
                if let Overlay::Plan { dialog, .. } = overlay {
                    self.view.overlay = Overlay::Wave(dialog);
                }
            }
            _ => {}
        }
    }
}
