//! Issue 12: the wave dialog's plan preview and the Plan view at 80×24.

use std::sync::Arc;

use crate::engine::bus::Event;
use crate::fleet::Measurement;
use crate::pkg::{PendingPackage, UpgradePlan};
use crate::tui::testing::{demo_app, draw, press, text};
use crate::tui::theme::Theme;

fn upgrade(name: &str) -> PendingPackage {
    PendingPackage {
        name: name.into(),
        from: "1.0".into(),
        to: "1.1".into(),
        security: false,
    }
}

#[tokio::test]
async fn the_wave_dialog_previews_the_plan_and_opens_the_plan_view() {
    let (mut app, _rig) = demo_app(Theme { color: true }, false);
    // The demo's wave is over, so the dialog opens.
    app.apply(&Event::Wave(crate::tui::testing::wave(
        crate::engine::bus::WaveStatus::Finished,
    )));
    // host-00 was dry-run: an upgrade, a removal, a kept-back package; and it has a history.
    app.apply(&Event::Planned {
        host: "host-00".into(),
        plan: Arc::new(UpgradePlan {
            upgrades: vec![upgrade("tendhost-app")],
            removals: vec!["tendhost-legacy".into()],
            kept_back: vec!["tendhost-core".into()],
            ..UpgradePlan::default()
        }),
        dry_run: true,
        scope: Default::default(),
    });
    app.apply(&Event::Measured {
        host: "host-00".into(),
        measurement: Measurement::Upgrade {
            at: chrono::Utc::now(),
            took: std::time::Duration::from_secs(300),
            packages: 1,
        },
    });
    press(&mut app, "w");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("plan 1·2·2·1 · upgrades 1 · removals 1"),
        "{screen}"
    );
    assert!(
        screen.contains("without a plan: press D to dry-run them"),
        "{screen}"
    );

    press(&mut app, "v");
    let screen = text(&draw(&mut app, 80, 24));
    insta::assert_snapshot!("plan_view_80x24", screen);
    assert!(
        screen.contains("batch 1 (canary): 1 host, 1 upgrade, 1 removal"),
        "{screen}"
    );
    assert!(screen.contains("tendhost-app 1.0 → 1.1"), "{screen}");
    assert!(screen.contains("1 removal (tendhost-legacy), kept back: tendhost-core"));
    assert!(
        screen.contains("5m"),
        "host-00's predicted duration: {screen}"
    );
    assert!(screen.contains("no dry run yet"), "{screen}");

    // It scrolls, and q goes back to the dialog, not out of it.
    press(&mut app, "G");
    let bottom = text(&draw(&mut app, 80, 24));
    assert_ne!(
        bottom, screen,
        "the plan is longer than a screen and scrolls"
    );
    assert!(bottom.contains("host-05"), "{bottom}");
    press(&mut app, "q");
    let screen = text(&draw(&mut app, 80, 24));
    assert!(
        screen.contains("batch sizes"),
        "back in the wave dialog: {screen}"
    );
}
