//! The progress display of `forklift fork`.

use crate::fork::hub::EventKind;

/// Draws the progress of a fork, one bar per phase, from its events.
#[derive(Default)]
pub(super) struct PhaseBar {
    done: usize,
    rows: i64,
}

impl PhaseBar {
    const PHASES: usize = crate::fork::engine::PHASES.len();

    fn bar(&self) -> String {
        let filled = "█".repeat(self.done);
        let empty = "░".repeat(Self::PHASES.saturating_sub(self.done));
        format!("[{filled}{empty}] {}/{}", self.done, Self::PHASES)
    }

    /// Prints what `event` changes.
    pub(super) fn show(&mut self, event: &crate::fork::hub::ForkEvent) {
        let phase = event.phase.as_deref().unwrap_or_default();
        match event.kind {
            EventKind::PhaseStarted => {
                self.rows = 0;
                println!("{} ▶ {phase}", self.bar());
            }
            EventKind::RowsCopied => {
                self.rows += event.count.unwrap_or_default();
                println!(
                    "{:>14} {:<28} {:>8} created",
                    "",
                    event.class_name.as_deref().unwrap_or_default(),
                    event.count.unwrap_or_default()
                );
            }
            EventKind::RowSkipped => println!(
                "{:>14} skipped {}: {}",
                "",
                event.class_name.as_deref().unwrap_or_default(),
                event
                    .detail
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
            ),
            EventKind::PhaseFinished => {
                self.done += 1;
                println!("{} ✔ {phase} ({} rows)", self.bar(), self.rows);
            }
            EventKind::RollingBack => println!("{} ↺ rolling back in {phase}", self.bar()),
            _ => {}
        }
    }
}
