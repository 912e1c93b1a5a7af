//! A progress bar on standard error when it is a terminal; nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    ticks: u32,
}

/// How many packets pass between updates of the bar.
const EVERY: u32 = 1 << 14;

impl Progress {
    /// A bar over `total` bytes of input, shown only for inputs big enough to wait for.
    pub fn new(total: u64, what: &str) -> Progress {
        let show = std::io::stderr().is_terminal() && total > 64 << 20;
        let bar = show.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        });
        Progress { bar, ticks: 0 }
    }

    /// Call once per packet; `position` is only evaluated now and then.
    #[inline]
    pub fn tick(&mut self, position: impl FnOnce() -> u64) {
        if self.bar.is_none() {
            return;
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(EVERY)
            && let Some(bar) = &self.bar
        {
            bar.set_position(position());
        }
    }

    /// Moves the bar to `position` (bytes done).
    pub fn set_position(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
    }

    /// Takes the bar off the terminal (it can be called more than once).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
