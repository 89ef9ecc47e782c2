//! Why an identity lookup has no answer, and why a user may not read incident details. Each
//! `Display` is the text shown to the Slack user or written to the log.

use std::fmt;

use ids::{EscalationPolicyId, ServiceId};

/// Why Slack or PagerDuty could not be asked about a user or an incident's teams: not a
/// refusal, and worth retrying.
#[derive(Debug)]
pub enum LookupError {
    /// The home workspace is not known and `auth.test` failed.
    HomeUnknown(slack_client::Error),
    /// The home workspace is not known and `auth.test` did not answer in time.
    HomeTimedOut,
    /// The home workspace is not known and `auth.test` did not answer within the time a slash
    /// command may wait (the lookup goes on).
    HomeNotYet,
    /// The resolver could not ask a directory or its cache.
    Resolver(identity::Error),
    /// The teams of the incident's escalation policy could not be read.
    EscalationPolicy(EscalationPolicyId, pd_client::Error),
    /// The teams of the incident's service could not be read.
    Service(ServiceId, pd_client::Error),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let home_unknown = "pdbridge does not know its own Slack workspace yet";
        let fix = "an admin can set slack.team_id";
        match self {
            LookupError::HomeUnknown(err) => {
                write!(f, "{home_unknown} (auth.test failed: {err}; {fix})")
            }
            LookupError::HomeTimedOut => write!(f, "{home_unknown} (auth.test timed out; {fix})"),
            LookupError::HomeNotYet => f.write_str("Slack did not answer auth.test"),
            LookupError::Resolver(err) => err.fmt(f),
            LookupError::EscalationPolicy(id, err) => write!(f, "escalation policy {id}: {err}"),
            LookupError::Service(id, err) => write!(f, "service {id}: {err}"),
        }
    }
}

impl std::error::Error for LookupError {}

/// Why a Slack user is not shown incident details (`/pd status`).
#[derive(Debug)]
pub enum ViewDenied {
    /// The policy refuses them.
    Refused(identity::ViewRefusal),
    /// They could not be looked up.
    Lookup(LookupError),
    /// The lookup ended without an answer.
    LookupLost,
    /// The lookup takes longer than the command may wait; it goes on, and its answer is cached.
    Pending,
}

impl fmt::Display for ViewDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewDenied::Refused(refusal) => refusal.fmt(f),
            ViewDenied::Lookup(err) => {
                write!(f, "pdbridge could not look you up right now: {err}")
            }
            ViewDenied::LookupLost => f.write_str("pdbridge could not look you up right now."),
            ViewDenied::Pending => f.write_str(
                "Looking you up in Slack and PagerDuty; run the command again in a few seconds.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are what users and logs saw when these were strings.
    #[test]
    fn texts_read_as_before() {
        assert_eq!(
            LookupError::HomeTimedOut.to_string(),
            "pdbridge does not know its own Slack workspace yet (auth.test timed out; an admin can set slack.team_id)"
        );
        let home = ViewDenied::Lookup(LookupError::HomeTimedOut).to_string();
        assert_eq!(
            home,
            "pdbridge could not look you up right now: pdbridge does not know its own Slack workspace yet (auth.test timed out; an admin can set slack.team_id)"
        );
        assert_eq!(
            LookupError::HomeNotYet.to_string(),
            "Slack did not answer auth.test"
        );
        let cache = LookupError::Resolver(identity::Error::Cache("disk full".to_owned()));
        assert_eq!(cache.to_string(), "identity cache failed: disk full");
        assert_eq!(
            ViewDenied::LookupLost.to_string(),
            "pdbridge could not look you up right now."
        );
        assert_eq!(
            ViewDenied::Pending.to_string(),
            "Looking you up in Slack and PagerDuty; run the command again in a few seconds."
        );
    }
}
