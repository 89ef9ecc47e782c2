//! The pdbridge benches beyond ingest: ack latency, end to end, Slack economy, memory, outage.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::bench::unique_webhook;
use crate::child::Pinning;
use crate::harness::{Env, EnvOptions};
use crate::load::{self, MakeRequest};
use crate::payloads::{self, SLACK_SECRET, now_unix};
use crate::report::{Report, Run};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Options of `ack`.
#[derive(Debug, Clone, clap::Args)]
pub struct AckArgs {
    /// Open-loop rates in requests per second (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    pub rates: Vec<u32>,
    /// Seconds of each run.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Maximum concurrent requests.
    #[arg(long, default_value_t = 64)]
    pub conns: usize,
}

/// `ack`: open-loop answer latency of signed webhooks and signed Slack clicks.
pub async fn ack(args: &AckArgs, pinning: Pinning, report: &mut Report) -> anyhow::Result<()> {
    for &rate in &args.rates {
        // Webhooks, on a fresh server.
        let mut env = Env::new(EnvOptions {
            slack_limits: false,
            pinning,
            ..EnvOptions::default()
        })
        .await?;
        env.start()?;
        let host = env.host();
        let run_id = format!("A{rate}");
        let make: MakeRequest = Arc::new(move |seq| unique_webhook(&host, &run_id, seq));
        let r = load::open_loop(
            env.addr,
            rate,
            secs(args.duration),
            args.conns,
            0,
            make,
            None,
        )
        .await?;
        report.runs.push(Run::open(
            format!("ack/webhook@{rate}"),
            args.conns,
            rate,
            &r,
        ));
        let expected = (f64::from(rate) * args.duration).round() as u64;
        report.check(
            format!("ack: every webhook @{rate}/s answered 202"),
            r.statuses.get(&202).copied().unwrap_or(0) == expected,
            format!("{:?} of {expected}", r.statuses),
        );
        env.kill9()?;

        // Slack clicks on a real card, on a fresh server.
        let mut env = Env::new(EnvOptions {
            slack_limits: false,
            pinning,
            ..EnvOptions::default()
        })
        .await?;
        env.start()?;
        let incident = env.pd.trigger_incident("ack latency", &env.policy);
        let (channel, ts) = env
            .wait_card(&incident, Duration::from_secs(20))
            .await
            .context("the card never appeared")?;
        let host = env.host();
        let user = env.users[0].0.to_string();
        let team = env.slack.team_id().to_string();
        let response_url = env.slack.new_response_url();
        let make: MakeRequest = Arc::new(move |seq| {
            let mut payload = payloads::block_action(
                &user,
                &team,
                channel.as_str(),
                ts.as_str(),
                incident.as_str(),
                "pdbridge_ack",
                &response_url,
            );
            // Unique per click, as Slack's are.
            payload["trigger_id"] = format!("{seq}.{}.bench", now_unix()).into();
            payload["actions"][0]["action_ts"] = format!("{}.{seq:06}", now_unix()).into();
            let body = payloads::interaction_form(&payload);
            payloads::slack_request(&host, "/slack/interactions", body, SLACK_SECRET, now_unix())
        });
        let r = load::open_loop(
            env.addr,
            rate,
            secs(args.duration),
            args.conns,
            0,
            make,
            None,
        )
        .await?;
        report.runs.push(Run::open(
            format!("ack/slack-click@{rate}"),
            args.conns,
            rate,
            &r,
        ));
        report.check(
            format!("ack: every click @{rate}/s answered 200"),
            r.statuses.get(&200).copied().unwrap_or(0) == expected,
            format!("{:?} of {expected}", r.statuses),
        );
        env.kill9()?;
    }
    report.figure("ack/target_p99_us_at_1000", 2000);
    Ok(())
}
