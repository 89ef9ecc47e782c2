//! The `[sla]` and `[reminders]` tables: ack and resolve targets by urgency or priority, and
//! how often the engine reminds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sync_core::{ReminderConfig, SlaConfig, SlaTarget};

use super::ConfigError;

/// One `[sla]` entry as parsed: `high = { ack = "5m", resolve = "2h" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    ack: Option<String>,
    resolve: Option<String>,
}

/// `[reminders]` as parsed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReminders {
    ack_repeat: Option<String>,
    escalate_channel_after: Option<u32>,
    still_on_it: Option<String>,
}

/// Validates `[sla]` (keys `high` and `low` are urgencies, any other key a PagerDuty priority
/// name such as `P1`) and `[reminders]`.
pub(super) fn validate(
    sla: BTreeMap<String, RawTarget>,
    reminders: Option<RawReminders>,
) -> Result<SlaConfig, ConfigError> {
    let mut config = SlaConfig::default();
    for (key, raw) in sla {
        let target = SlaTarget {
            ack: positive(&format!("sla.{key}.ack"), raw.ack.as_deref())?,
            resolve: positive(&format!("sla.{key}.resolve"), raw.resolve.as_deref())?,
        };
        if target.ack.is_none() && target.resolve.is_none() {
            return Err(ConfigError::key(
                format!("sla.{key}"),
                "sets neither `ack` nor `resolve`".to_owned(),
            ));
        }
        if key.trim().is_empty() || key.chars().any(char::is_whitespace) {
            return Err(ConfigError::key(
                format!("sla.{key}"),
                "is not an urgency (`high`, `low`) or a priority name".to_owned(),
            ));
        }
        match key.as_str() {
            "high" => config.by_urgency.insert(sync_core::Urgency::High, target),
            "low" => config.by_urgency.insert(sync_core::Urgency::Low, target),
            _ => config.by_priority.insert(key, target),
        };
    }
    let raw = reminders.unwrap_or_default();
    config.reminders = ReminderConfig {
        ack_repeat: period("reminders.ack_repeat", raw.ack_repeat.as_deref())?,
        escalate_channel_after: raw.escalate_channel_after.unwrap_or(0),
        still_on_it: period("reminders.still_on_it", raw.still_on_it.as_deref())?,
    };
    Ok(config)
}

/// A target: absent, or a duration above zero.
fn positive(key: &str, value: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match parse_duration(value) {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        Some(_) => Err(ConfigError::key(
            key.to_owned(),
            "must be longer than zero".to_owned(),
        )),
        None => Err(bad_duration(key, value)),
    }
}

/// A period: absent or `0` for none, else a duration.
fn period(key: &str, value: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match parse_duration(value) {
        Some(d) => Ok(Some(d).filter(|d| !d.is_zero())),
        None => Err(bad_duration(key, value)),
    }
}

fn bad_duration(key: &str, value: &str) -> ConfigError {
    ConfigError::key(
        key.to_owned(),
        format!("`{value}` is not a duration such as \"90s\", \"5m\", \"2h\" or \"1d\""),
    )
}

/// Parses `0` or a whole number followed by one unit: `s`, `m`, `h` or `d`.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value == "0" {
        return Some(Duration::ZERO);
    }
    let unit_at = value.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = value.split_at(unit_at);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(scale).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use sync_core::{SlaTarget, Urgency};

    use crate::config::{Config, ConfigError};

    const MINIMAL: &str = r#"
[pagerduty]
token = "pd-token"
webhook_secrets = ["s1"]

[slack]
bot_token = "xoxb-1"
signing_secret = "sign"
default_channel = "C0DEFAULT"
"#;

    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&format!("{MINIMAL}\n{extra}"), &BTreeMap::new())
    }

    #[test]
    fn the_issues_example_loads_and_priority_wins_over_urgency() {
        let c = load(
            r#"
[sla]
high = { ack = "5m", resolve = "2h" }
low  = { ack = "30m", resolve = "24h" }
P1   = { ack = "2m", resolve = "1h" }
[reminders]
ack_repeat = "10m"
escalate_channel_after = 2
still_on_it = "30m"
"#,
        )
        .unwrap();
        let sla = &c.sla;
        let high = SlaTarget {
            ack: Some(mins(5)),
            resolve: Some(mins(120)),
        };
        let p1 = SlaTarget {
            ack: Some(mins(2)),
            resolve: Some(mins(60)),
        };
        assert_eq!(sla.target(Some(Urgency::High), None), Some(high));
        assert_eq!(sla.target(Some(Urgency::High), Some("P1")), Some(p1));
        assert_eq!(sla.target(Some(Urgency::Low), Some("p1")), Some(p1));
        assert_eq!(
            sla.target(Some(Urgency::Low), Some("P3")).unwrap().resolve,
            Some(mins(24 * 60))
        );
        assert_eq!(sla.target(None, Some("P3")), None);
        assert_eq!(sla.reminders.ack_repeat, Some(mins(10)));
        assert_eq!(sla.reminders.escalate_channel_after, 2);
        assert_eq!(sla.reminders.still_on_it, Some(mins(30)));
    }

    #[test]
    fn no_tables_set_no_reminders_and_zero_means_once() {
        assert!(load("").unwrap().sla.is_off());
        let c = load("[sla]\nhigh = { ack = \"90s\" }\n[reminders]\nack_repeat = \"0\"\n").unwrap();
        assert_eq!(c.sla.reminders.ack_repeat, None);
        assert_eq!(
            c.sla.target(Some(Urgency::High), None).unwrap().ack,
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (extra, key) in [
            ("[sla]\nhigh = { ack = \"5 minutes\" }\n", "sla.high.ack"),
            ("[sla]\nP1 = { resolve = \"0\" }\n", "sla.P1.resolve"),
            ("[sla]\nhigh = { ack = \"-5m\" }\n", "sla.high.ack"),
            ("[sla]\nhigh = {}\n", "sla.high"),
            (
                "[reminders]\nstill_on_it = \"30\"\n",
                "reminders.still_on_it",
            ),
            ("[reminders]\nack_repeat = \"1w\"\n", "reminders.ack_repeat"),
        ] {
            let e = load(extra).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{extra}: {e}");
        }
        for extra in [
            "[sla]\nhigh = { ack = \"5m\", page = \"1m\" }\n",
            "[reminders]\nsnooze = \"5m\"\n",
            "[reminders]\nescalate_channel_after = -1\n",
        ] {
            let e = load(extra).unwrap_err().to_string();
            assert!(e.contains("reminders") || e.contains("sla"), "{extra}: {e}");
        }
    }
}
