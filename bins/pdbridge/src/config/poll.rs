//! `pagerduty.mode`, `pagerduty.poll_interval_secs` and `pagerduty.poll_share_percent`: how
//! PagerDuty's changes reach the bridge (signed webhooks, polling `GET /log_entries`, or both).

use std::time::Duration;

use super::ConfigError;
use super::values::{Env, Origin, positive_secs};

/// The default `pagerduty.poll_interval_secs`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// The default `pagerduty.poll_share_percent`: the poller's part of the client's request budget.
pub const DEFAULT_POLL_SHARE_PERCENT: u8 = 10;

/// `pagerduty.mode` / `PAGERDUTY_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdMode {
    /// `webhooks` (the default): signed v3 webhooks only.
    Webhooks,
    /// `poll`: `GET /log_entries` only; no webhook subscription or secret is needed.
    Poll,
    /// `hybrid`: webhooks, plus polling to repair missed deliveries; a change seen by both
    /// paths renders once.
    Hybrid,
}

impl PdMode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhooks => "webhooks",
            Self::Poll => "poll",
            Self::Hybrid => "hybrid",
        }
    }

    /// True when webhooks are accepted (and a webhook secret is required).
    pub fn webhooks(self) -> bool {
        self != Self::Poll
    }

    /// True when the poller runs.
    pub fn polls(self) -> bool {
        self != Self::Webhooks
    }
}

/// The polling settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// `pagerduty.mode` / `PAGERDUTY_MODE`.
    pub mode: PdMode,
    /// `pagerduty.poll_interval_secs` / `PAGERDUTY_POLL_INTERVAL_SECS` (default 10).
    pub interval: Duration,
    /// `pagerduty.poll_share_percent` (1 to 100, default 10): the most of the PagerDuty
    /// client's request budget (960/min) the poller spends.
    pub share_percent: u8,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            mode: PdMode::Webhooks,
            interval: DEFAULT_POLL_INTERVAL,
            share_percent: DEFAULT_POLL_SHARE_PERCENT,
        }
    }
}

impl PollConfig {
    /// The poller's budget in requests per minute out of the client's `per_minute` (at least 1).
    pub fn requests_per_minute(&self, per_minute: u32) -> u32 {
        (per_minute.saturating_mul(u32::from(self.share_percent)) / 100).max(1)
    }
}

pub(super) fn poll_config(
    e: &Env<'_>,
    mode: Option<String>,
    interval: Option<u64>,
    share: Option<u64>,
) -> Result<PollConfig, ConfigError> {
    let mode = match e.plain("PAGERDUTY_MODE", "pagerduty.mode", mode) {
        None => PdMode::Webhooks,
        Some((v, origin)) => match v.trim() {
            "webhooks" => PdMode::Webhooks,
            "poll" => PdMode::Poll,
            "hybrid" => PdMode::Hybrid,
            _ => {
                return Err(origin.error(format!(
                    "`{v}` is not one of `webhooks`, `poll` or `hybrid`"
                )));
            }
        },
    };
    let interval = positive_secs(
        e.plain(
            "PAGERDUTY_POLL_INTERVAL_SECS",
            "pagerduty.poll_interval_secs",
            interval.map(|n| n.to_string()),
        ),
        DEFAULT_POLL_INTERVAL,
    )?;
    let share_percent = match share {
        None => DEFAULT_POLL_SHARE_PERCENT,
        Some(n) => match u8::try_from(n) {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(Origin::File("pagerduty.poll_share_percent")
                    .error(format!("`{n}` is not a percentage from 1 to 100")));
            }
        },
    };
    Ok(PollConfig {
        mode,
        interval,
        share_percent,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Config, ConfigError};
    use super::*;

    /// A minimal configuration whose `[pagerduty]` table gains `extra`, without the keys named
    /// in `without`.
    fn load(extra: &str, without: &[&str]) -> Result<Config, ConfigError> {
        let mut pagerduty = String::from("token = \"pd-token\"\n");
        if !without.contains(&"webhook_secrets") {
            pagerduty.push_str("webhook_secrets = [\"s1\"]\n");
        }
        let text = format!(
            "[pagerduty]\n{pagerduty}{extra}\n[slack]\nbot_token = \"xoxb-1\"\n\
             signing_secret = \"sign\"\ndefault_channel = \"C0DEFAULT\"\n"
        );
        Config::from_toml_str(&text, &BTreeMap::new())
    }

    #[test]
    fn polling_is_off_by_default_and_poll_mode_needs_no_webhook_secret() {
        let c = load("", &[]).expect("defaults");
        assert_eq!(c.pagerduty.poll, PollConfig::default());
        assert_eq!(c.pagerduty.poll.requests_per_minute(960), 96);

        let c = load(
            "mode = \"poll\"\npoll_interval_secs = 3\npoll_share_percent = 25\n",
            &["webhook_secrets"],
        )
        .expect("poll mode without a webhook secret");
        assert_eq!(c.pagerduty.poll.mode, PdMode::Poll);
        assert_eq!(c.pagerduty.poll.interval, Duration::from_secs(3));
        assert_eq!(c.pagerduty.poll.requests_per_minute(960), 240);

        let err = load("mode = \"hybrid\"\n", &["webhook_secrets"]).expect_err("hybrid");
        assert!(
            err.to_string().contains("pagerduty.webhook_secrets"),
            "{err}"
        );
        let err = load("mode = \"sometimes\"\n", &[]).expect_err("bad mode");
        assert!(err.to_string().contains("pagerduty.mode"), "{err}");
        let err = load("poll_share_percent = 0\n", &[]).expect_err("bad share");
        assert!(err.to_string().contains("poll_share_percent"), "{err}");
    }
}
