//! The command channel's memory: which devices hold a command poll open (or had one answered
//! lately), and a bell per device that wakes its waiting poll when a command is queued.
//!
//! Commands themselves live in the catalogue (`agent_commands`), so a server restart loses
//! none; only presence is in memory, as the device list's `connected` is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::catalogue::DeviceId;

/// A device whose last poll was answered this recently still counts as reachable for jobs (its
/// agent polls again at once, so a longer gap means it is gone).
pub const POLL_PRESENCE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Line {
    /// Bumped when a command for the device is queued.
    bell: Option<watch::Sender<u64>>,
    open_polls: usize,
    last_answered: Option<Instant>,
}

/// Presence and wake-ups of the devices' command polls.
pub struct CommandHub {
    lines: Mutex<HashMap<DeviceId, Line>>,
    /// Set when the server stops: every waiting poll answers at once.
    closing: watch::Sender<bool>,
}

impl Default for CommandHub {
    fn default() -> Self {
        CommandHub {
            lines: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }
}

/// An open poll; while it lives the device counts as connected. Dropped without
/// [`answered`](PollGuard::answered), the client went away (its connection closed: the agent
/// stopped): unless it holds another poll, the device is gone at once.
pub struct PollGuard<'a> {
    hub: &'a CommandHub,
    device: DeviceId,
    answered: bool,
}

impl PollGuard<'_> {
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut lines = self.hub.lock();
        let line = lines.entry(self.device).or_default();
        line.open_polls = line.open_polls.saturating_sub(1);
        line.last_answered = if self.answered {
            Some(Instant::now())
        } else {
            None
        };
    }
}

impl CommandHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Line>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes an open poll of `device`.
    pub fn poll_opened(&self, device: DeviceId) -> PollGuard<'_> {
        self.lock().entry(device).or_default().open_polls += 1;
        PollGuard {
            hub: self,
            device,
            answered: false,
        }
    }

    /// The device's bell, to wait on for new commands.
    pub fn subscribe(&self, device: DeviceId) -> watch::Receiver<u64> {
        let mut lines = self.lock();
        let line = lines.entry(device).or_default();
        line.bell
            .get_or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the device's waiting poll: a command was queued.
    pub fn ring(&self, device: DeviceId) {
        if let Some(bell) = self.lock().get(&device).and_then(|l| l.bell.as_ref()) {
            bell.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Whether the device can receive a command now: a poll is open, or one was answered in
    /// the last `POLL_PRESENCE`.
    pub fn connected(&self, device: DeviceId) -> bool {
        self.lock().get(&device).is_some_and(|l| {
            l.open_polls > 0 || l.last_answered.is_some_and(|t| t.elapsed() < POLL_PRESENCE)
        })
    }

    /// The server is stopping: waiting polls answer now, so that they do not hold up the
    /// graceful shutdown.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
