//! The text of `/pd oncall` answers and handoff messages. Times show in the reader's Slack time
//! zone: Slack's `<!date^…>` token renders them locally, and its fallback text is already in the
//! asker's zone (from `users.info`).

use std::time::Duration;

use ids::Timestamp;
use time::UtcOffset;

use super::cache::{LevelView, Person, PolicyView, date_time};
use crate::render::{Mentions, escape};

/// A time zone as Slack reports it for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tz {
    /// The zone's name, such as `Europe/Paris`.
    pub name: String,
    /// Its current offset from UTC, in seconds.
    pub offset: i32,
}

impl Tz {
    /// UTC, for an asker whose zone is unknown.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            offset: 0,
        }
    }
}

/// `t` in `tz`, as short as `now` allows: `17:00`, `Tue 17:00` within a week, else
/// `Tue 8 Dec 17:00`; wrapped in Slack's date token so each reader sees their own zone.
pub fn when(t: Timestamp, now: Timestamp, tz: &Tz) -> String {
    let offset = UtcOffset::from_whole_seconds(tz.offset).unwrap_or(UtcOffset::UTC);
    let local = date_time(t).to_offset(offset);
    let today = date_time(now).to_offset(offset).date();
    let hm = format!("{:02}:{:02}", local.hour(), local.minute());
    let day = &local.weekday().to_string()[..3];
    let fallback = if local.date() == today {
        hm
    } else if t > now && t.duration_since(now) < Duration::from_secs(6 * 24 * 3600) {
        format!("{day} {hm}")
    } else {
        let month = &local.month().to_string()[..3];
        format!("{day} {} {month} {hm}", local.day())
    };
    let zone = if tz.offset == 0 && tz.name == "UTC" {
        " UTC".to_owned()
    } else {
        String::new()
    };
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{fallback}{zone}>",
        t.as_millis().div_euclid(1000)
    )
}

/// How long ago, roughly: `just now`, `4 min ago`, `2 h ago`.
pub fn ago(age: Duration) -> String {
    let minutes = age.as_secs() / 60;
    match minutes {
        0 => "just now".to_owned(),
        1..=119 => format!("{minutes} min ago"),
        _ => format!("{} h ago", minutes / 60),
    }
}

/// A person: their Slack mention when mapped, else their PagerDuty name.
pub fn person(p: &Person, mentions: &Mentions) -> String {
    match mentions.get(&p.id) {
        Some(slack) => format!("<@{slack}>"),
        None => escape(&p.name),
    }
}

fn people(list: &[Person], mentions: &Mentions) -> String {
    list.iter()
        .map(|p| person(p, mentions))
        .collect::<Vec<_>>()
        .join(", ")
}

fn level_line(l: &LevelView, now: Timestamp, tz: &Tz, mentions: &Mentions) -> String {
    let mut line = format!("• *Level {}*: ", l.level);
    if l.now.is_empty() {
        line.push_str("nobody on call");
    } else {
        let parts: Vec<String> = l
            .now
            .iter()
            .map(|(p, until)| match until {
                Some(end) => format!("{} until {}", person(p, mentions), when(*end, now, tz)),
                None => format!("{} (always)", person(p, mentions)),
            })
            .collect();
        line.push_str(&parts.join(", "));
    }
    if let Some((next, start)) = &l.next {
        line.push_str(&format!(
            "; next {} from {}",
            people(next, mentions),
            when(*start, now, tz)
        ));
    }
    line
}

/// One escalation policy's block.
pub fn policy(view: &PolicyView, now: Timestamp, tz: &Tz, mentions: &Mentions) -> String {
    let mut lines = vec![format!("*{}*", escape(&view.name))];
    let count = view.levels.len();
    for (i, level) in view.levels.iter().enumerate() {
        lines.push(level_line(level, now, tz, mentions));
        if i + 1 < count
            && let Some(delay) = level.delay_minutes
        {
            lines.push(format!("    after {delay} min → level {}", level.level + 1));
        }
    }
    if count == 0 {
        lines.push("• nobody on call".to_owned());
    }
    lines.join("\n")
}

/// The line that says an answer is old because PagerDuty fails.
pub fn stale(age: Duration) -> String {
    format!("_as of {}; PagerDuty is not answering_", ago(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07 09:00 UTC, a Monday.
    const T0: i64 = 1_796_634_000_000;
    const HOUR: i64 = 3_600_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(T0 + ms)
    }

    #[test]
    fn times_show_in_the_askers_zone_as_short_as_the_day_allows() {
        let paris = Tz {
            name: "Europe/Paris".to_owned(),
            offset: 3600,
        };
        assert_eq!(
            when(at(8 * HOUR), at(0), &paris),
            "<!date^1796662800^{date_short_pretty} {time}|18:00>"
        );
        assert!(when(at(20 * HOUR), at(0), &paris).ends_with("|Tue 06:00>"));
        assert!(when(at(8 * HOUR), at(0), &Tz::utc()).ends_with("|17:00 UTC>"));
        assert!(when(at(10 * 24 * HOUR), at(0), &Tz::utc()).ends_with("|Thu 17 Dec 09:00 UTC>"));
        assert_eq!(ago(std::time::Duration::from_secs(250)), "4 min ago");
        assert_eq!(ago(std::time::Duration::from_secs(20)), "just now");
        assert_eq!(ago(std::time::Duration::from_secs(3 * 3600)), "3 h ago");
    }

    #[test]
    fn outside_names_are_escaped_and_mapped_people_are_mentioned() {
        let mut mentions = Mentions::new();
        mentions.insert(ids::PdUserId::new("PANN"), ids::SlackUserId::new("U1"));
        let ann = Person {
            id: ids::PdUserId::new("PANN"),
            name: "Ann".to_owned(),
        };
        let eve = Person {
            id: ids::PdUserId::new("PEVE"),
            name: "<!channel> Eve".to_owned(),
        };
        assert_eq!(person(&ann, &mentions), "<@U1>");
        assert!(!person(&eve, &mentions).contains("<!channel>"));
    }
}
