//! A pdbridge under test: the fake Slack and fake PagerDuty in this process, the real server in a
//! child process configured against them, and read-only probes of its SQLite database.
//!
//! Call order: [`Env::new`] (starts and seeds the fakes, writes the config), [`Env::start`]
//! (spawns `__serve-pdbridge` and points the fake PagerDuty's webhook subscription at it), drive
//! it, then inspect with [`Env::table_counts`], [`Env::pending`] and the fakes; [`Env::kill9`]
//! and [`Env::start`] again for crash runs. The database and config live in a temporary
//! directory removed on drop (kept, and printed on stderr, when `PDBRIDGE_BENCH_KEEP` is set).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fakes::pd::FakePagerDuty;
use fakes::slack::{FakeChannel, FakeSlack, FakeUser};
use ids::{ChannelId, EscalationPolicyId, IncidentId, MessageTs, PdUserId, SlackUserId};
use pdbridge::world::WorldConfig;
use rusqlite::{Connection, OpenFlags};

use crate::child::{self, Pinning, ServerProcess};
use crate::payloads::{PD_SECRET, SLACK_SECRET};

/// The PagerDuty API token the bench configures (the fake accepts any non-empty token).
const PD_TOKEN: &str = "bench-pagerduty-token";

/// The channel cards go to when no route matches.
pub const DEFAULT_CHANNEL: &str = "CBENCH0000";

/// Shape of the seeded world.
#[derive(Debug, Clone)]
pub struct EnvOptions {
    /// Mapped responders (Slack user `UBENCHnnn` ↔ PagerDuty user `PBENCHnnn`, same email).
    pub users: usize,
    /// Extra channels `CBENCHnnnn`, each routed from service `PSVCnnnn`.
    pub channels: usize,
    /// Whether the fake Slack enforces Slack's rate limits.
    pub slack_limits: bool,
    /// The server's core placement.
    pub pinning: Pinning,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            users: 3,
            channels: 0,
            slack_limits: true,
            pinning: Pinning::none(),
        }
    }
}

/// The fakes, the config and the server child.
#[derive(Debug)]
pub struct Env {
    /// The fake Slack.
    pub slack: FakeSlack,
    /// The fake PagerDuty.
    pub pd: FakePagerDuty,
    /// Where the server listens (fixed across restarts).
    pub addr: SocketAddr,
    /// The server's SQLite database.
    pub db: PathBuf,
    /// The escalation policy every fake incident uses.
    pub policy: EscalationPolicyId,
    /// Mapped responders, Slack id and PagerDuty id.
    pub users: Vec<(SlackUserId, PdUserId)>,
    /// The routed channels, index `k` fed by service `PSVC{k:04}`.
    pub channels: Vec<ChannelId>,
    /// The server child, while running.
    pub server: Option<ServerProcess>,
    config: PathBuf,
    pinning: Pinning,
    _dir: tempfile::TempDir,
}

/// The service id routed to channel `k`.
pub fn service_for_channel(k: usize) -> String {
    format!("PSVC{k:04}")
}

impl Env {
    /// Starts and seeds the fakes and writes the server's config. Must run inside Tokio.
    pub async fn new(options: EnvOptions) -> anyhow::Result<Self> {
        settle_disk();
        let slack = FakeSlack::start().await;
        let pd = FakePagerDuty::start().await;
        slack.set_rate_limits(options.slack_limits);
        // The bench drives PagerDuty harder than one token could; lift the fake's budget so the
        // client's own limiter is what paces it.
        pd.set_rate_limit(1_000_000);

        let mut users = Vec::new();
        let mut member_ids = Vec::new();
        for n in 0..options.users.max(1) {
            let slack_id = format!("UBENCH{n:03}");
            let pd_id = format!("PBENCH{n:03}");
            let email = format!("responder{n}@bench.example");
            slack.add_user(FakeUser::new(&slack_id, &format!("responder{n}"), &email));
            let pd_user = pd.add_user(&pd_id, &format!("Responder {n}"), &email);
            member_ids.push(slack_id.clone());
            users.push((SlackUserId::new(slack_id), pd_user));
        }
        let level = |i: usize| vec![users[i % users.len()].1.clone()];
        let policy = pd.add_escalation_policy("PBENCHEP", "Bench", vec![level(0), level(1)]);
        let members: Vec<&str> = member_ids.iter().map(String::as_str).collect();
        slack.add_channel(FakeChannel::new(DEFAULT_CHANNEL, "bench-default", &members));
        let mut channels = Vec::new();
        for k in 0..options.channels {
            let id = format!("CBENCH{:04}", k + 1);
            slack.add_channel(FakeChannel::new(&id, &format!("bench-{k}"), &members));
            channels.push(ChannelId::new(id));
        }

        let mut dir = tempfile::tempdir().context("creating the bench directory")?;
        if std::env::var_os("PDBRIDGE_BENCH_KEEP").is_some() {
            // Keep the database and config for a post-mortem.
            dir.disable_cleanup(true);
            eprintln!("pdbridge-bench: keeping {}", dir.path().display());
        }
        let db = dir.path().join("pdbridge.db");
        let addr = child::free_loopback_addr()?;
        let config = dir.path().join("pdbridge.toml");
        let server = format!("listen = \"{addr}\"\nreconcile_interval_secs = 3600");
        let mut extra = String::from(
            "[policy]\nack = \"any_mapped\"\nnote = \"any_mapped\"\nreassign = \"any_mapped\"\n\
             escalate = \"any_mapped\"\nresolve = \"any_mapped\"\n",
        );
        for (k, channel) in channels.iter().enumerate() {
            let _ = write!(
                extra,
                "\n[[route]]\nchannel = \"{channel}\"\nservices = [\"{}\"]\n",
                service_for_channel(k)
            );
        }
        let text = WorldConfig {
            database: Some(&db),
            server: &server,
            pd_credentials: format!("token = {PD_TOKEN:?}"),
            webhook_secrets: &[PD_SECRET],
            signing_secret: SLACK_SECRET,
            default_channel: DEFAULT_CHANNEL,
            extra: &extra,
            ..WorldConfig::for_fakes(&pd, &slack)
        }
        .toml();
        std::fs::write(&config, text).context("writing the server config")?;
        pd.set_webhook_target(&format!("http://{addr}/pagerduty/webhook"), PD_SECRET);
        Ok(Self {
            slack,
            pd,
            addr,
            db,
            policy,
            users,
            channels,
            server: None,
            config,
            pinning: options.pinning,
            _dir: dir,
        })
    }

    /// Starts (or restarts) the server; returns how long it took from spawn until it accepted
    /// connections.
    pub fn start(&mut self) -> anyhow::Result<Duration> {
        anyhow::ensure!(self.server.is_none(), "the server is already running");
        let started = Instant::now();
        let server = ServerProcess::spawn(
            &[
                "__serve-pdbridge".to_owned(),
                "--config".to_owned(),
                self.config.display().to_string(),
            ],
            self.pinning,
            Duration::from_secs(30),
        )?;
        let took = started.elapsed();
        anyhow::ensure!(
            server.addr == self.addr,
            "server listens on {} instead of {}",
            server.addr,
            self.addr
        );
        self.server = Some(server);
        Ok(took)
    }

    /// `kill -9` the server.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.kill9()?;
        }
        Ok(())
    }

    /// Stops the server with SIGTERM (graceful shutdown), SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.terminate(grace)?;
        }
        Ok(())
    }

    /// The server's `host:port`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The interactivity URL.
    pub fn interactions_url(&self) -> String {
        format!("http://{}/slack/interactions", self.addr)
    }

    /// Row counts of every table of the database, by name (empty before the first start).
    pub fn table_counts(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let Some(conn) = self.open_db()? else {
            return Ok(BTreeMap::new());
        };
        table_counts(&conn)
    }

    /// `PRAGMA integrity_check` (`"ok"` when healthy).
    pub fn integrity_check(&self) -> anyhow::Result<String> {
        let Some(conn) = self.open_db()? else {
            return Ok("no database".to_owned());
        };
        let rows: Vec<String> = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows.join("; "))
    }

    /// Work not yet done: unprocessed inbox rows and unfinished outbox rows.
    pub fn pending(&self) -> anyhow::Result<Pending> {
        let Some(conn) = self.open_db()? else {
            return Ok(Pending::default());
        };
        let count =
            |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
        Ok(Pending {
            pd_inbox: count("SELECT count(*) FROM pd_inbox WHERE processed_at IS NULL")?,
            slack_inbox: count("SELECT count(*) FROM slack_inbox WHERE processed_at IS NULL")?,
            outbox: count(
                "SELECT count(*) FROM outbox WHERE finished_at IS NULL AND abandoned = 0",
            )?,
            abandoned: count("SELECT count(*) FROM outbox WHERE abandoned != 0")?,
        })
    }

    /// The webhook ids committed to the inbox.
    pub fn committed_webhook_ids(&self) -> anyhow::Result<std::collections::BTreeSet<String>> {
        let Some(conn) = self.open_db()? else {
            return Ok(Default::default());
        };
        let ids = conn
            .prepare("SELECT webhook_id FROM pd_inbox WHERE webhook_id IS NOT NULL")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Waits until nothing is pending (inboxes processed, outbox empty) for `settle`, or
    /// `timeout` passes; returns the last [`Pending`] seen.
    pub async fn drain(&self, settle: Duration, timeout: Duration) -> anyhow::Result<Pending> {
        let deadline = Instant::now() + timeout;
        let mut idle_since: Option<Instant> = None;
        loop {
            let pending = self.pending()?;
            if pending.is_idle() {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    return Ok(pending);
                }
            } else {
                idle_since = None;
            }
            if Instant::now() >= deadline {
                return Ok(pending);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cards per incident in every known channel: incident → (channel, ts) of each top-level
    /// message whose buttons or text name it.
    pub fn cards(&self) -> BTreeMap<IncidentId, Vec<(ChannelId, MessageTs, String)>> {
        let mut out: BTreeMap<IncidentId, Vec<(ChannelId, MessageTs, String)>> = BTreeMap::new();
        let mut all = vec![ChannelId::new(DEFAULT_CHANNEL)];
        all.extend(self.channels.iter().cloned());
        for channel in all {
            for m in self.slack.messages(&channel) {
                if let Some(incident) = card_incident(&m.blocks) {
                    out.entry(incident).or_default().push((
                        channel.clone(),
                        m.ts.clone(),
                        m.text.clone(),
                    ));
                }
            }
        }
        out
    }

    /// The card the server tracks for each incident (`incidents.channel_id`, `card_ts`).
    pub fn tracked_cards(&self) -> anyhow::Result<BTreeMap<IncidentId, (ChannelId, MessageTs)>> {
        let Some(conn) = self.open_db()? else {
            return Ok(BTreeMap::new());
        };
        let rows = conn
            .prepare(
                "SELECT incident_id, channel_id, card_ts FROM incidents \
                 WHERE channel_id IS NOT NULL AND card_ts IS NOT NULL",
            )?
            .query_map([], |r| {
                Ok((
                    IncidentId::new(r.get::<_, String>(0)?),
                    (
                        ChannelId::new(r.get::<_, String>(1)?),
                        MessageTs::new(r.get::<_, String>(2)?),
                    ),
                ))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// What the database says about one incident (its row and its effects), for failure reports.
    pub fn incident_debug(&self, incident: &IncidentId) -> String {
        let Ok(Some(conn)) = self.open_db() else {
            return "no database".to_owned();
        };
        let row: Option<(Option<String>, Option<String>, i64)> = conn
            .query_row(
                "SELECT channel_id, card_ts, resolved FROM incidents WHERE incident_id = ?1",
                [incident.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        let effects: Vec<String> = conn
            .prepare(
                "SELECT effect_id, attempts, finished_at IS NOT NULL, abandoned, \
                 coalesce(last_error, '') FROM outbox WHERE order_key LIKE '%' || ?1 || '%' \
                 ORDER BY seq",
            )
            .and_then(|mut st| {
                st.query_map([incident.as_str()], |r| {
                    Ok(format!(
                        "{} attempts={} done={} abandoned={} err={}",
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?
                    ))
                })?
                .collect()
            })
            .unwrap_or_default();
        format!("row {row:?}; effects {effects:?}")
    }

    /// Waits up to `timeout` for the card of `incident`; returns its channel and ts.
    pub async fn wait_card(
        &self,
        incident: &IncidentId,
        timeout: Duration,
    ) -> Option<(ChannelId, MessageTs)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some((channel, ts, _)) = self.cards().get(incident).and_then(|l| l.first()) {
                return Some((channel.clone(), ts.clone()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The server's Prometheus text (`GET /metrics`), empty when unreachable.
    pub async fn metrics(&self) -> String {
        let req = http::Request::get("/metrics")
            .header(http::header::HOST, self.host())
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("static request parts are valid");
        crate::load::send_one(self.addr, req)
            .await
            .map(|(_, body)| String::from_utf8_lossy(&body).into_owned())
            .unwrap_or_default()
    }

    fn open_db(&self) -> anyhow::Result<Option<Connection>> {
        if !self.db.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {}", self.db.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Some(conn))
    }
}

/// The incident a card is about: the `value` of its buttons (pdbridge puts the incident id
/// there) or, on a resolved card without buttons, the id in its incident link
/// (`…/incidents/<id>`).
pub fn card_incident(blocks: &serde_json::Value) -> Option<IncidentId> {
    fn find(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(map) => {
                let is_button = map.get("type").and_then(|t| t.as_str()) == Some("button");
                if is_button && let Some(value) = map.get("value").and_then(|v| v.as_str()) {
                    return Some(value.to_owned());
                }
                map.values().find_map(find)
            }
            serde_json::Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    if let Some(id) = find(blocks) {
        return Some(IncidentId::new(id));
    }
    let text = blocks.to_string();
    let at = text.find("/incidents/")? + "/incidents/".len();
    let id: String = text[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (!id.is_empty()).then(|| IncidentId::new(id))
}

/// Row counts of every user table.
pub fn table_counts(conn: &Connection) -> anyhow::Result<BTreeMap<String, i64>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = BTreeMap::new();
    for name in names {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |r| {
            r.get(0)
        })?;
        out.insert(name, n);
    }
    Ok(out)
}

/// Work the server has not finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    /// Webhooks committed but not processed.
    pub pd_inbox: i64,
    /// Slack actions committed but not processed.
    pub slack_inbox: i64,
    /// Effects not yet delivered (and not abandoned).
    pub outbox: i64,
    /// Effects given up on.
    pub abandoned: i64,
}

impl Pending {
    /// Whether nothing is left to do.
    pub fn is_idle(&self) -> bool {
        self.pd_inbox == 0 && self.slack_inbox == 0 && self.outbox == 0
    }
}

/// Sums the samples of a Prometheus metric whose line starts with `name` and contains every one of
/// `labels` (such as `platform="slack"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Flushes the previous runs' dirty pages (`sync`) before a new server starts, so its fsyncs do
/// not queue behind another run's writeback. Best effort: where `sync` is missing, nothing.
pub fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's config file (built by `pdbridge::world`) says what the bench relies on: its
    /// fixed address and database, no periodic reconciliation, every action open to any mapped
    /// user, and one route per extra channel.
    #[tokio::test]
    async fn the_config_file_describes_the_bench_world() {
        let options = EnvOptions {
            channels: 2,
            ..EnvOptions::default()
        };
        let env = Env::new(options).await.unwrap();
        let config = pdbridge::config::Config::load(Some(&env.config), &BTreeMap::new()).unwrap();
        assert_eq!(config.server.listen, env.addr);
        assert_eq!(config.server.database, env.db);
        assert_eq!(config.server.reconcile_interval, Duration::from_secs(3600));
        let default_channel = config.slack.default_channel.as_ref().map(ChannelId::as_str);
        assert_eq!(default_channel, Some(DEFAULT_CHANNEL));
        let text = std::fs::read_to_string(&env.config).unwrap();
        for verb in ["ack", "note", "reassign", "escalate", "resolve"] {
            assert!(text.contains(&format!("{verb} = \"any_mapped\"")), "{text}");
        }
        let routes: Vec<(String, Vec<String>)> = config
            .routes
            .iter()
            .map(|r| {
                let services = r.services.iter().map(|s| s.as_str().to_owned()).collect();
                (r.channel.as_str().to_owned(), services)
            })
            .collect();
        assert_eq!(
            routes,
            [
                ("CBENCH0001".to_owned(), vec!["PSVC0000".to_owned()]),
                ("CBENCH0002".to_owned(), vec!["PSVC0001".to_owned()]),
            ]
        );
    }

    #[test]
    fn metric_sum_adds_matching_samples() {
        let text = "# HELP x\npdbridge_api_calls_total{platform=\"slack\",outcome=\"ok\"} 3\n\
                    pdbridge_api_calls_total{platform=\"slack\",outcome=\"error\"} 2\n\
                    pdbridge_api_calls_total{platform=\"pagerduty\",outcome=\"ok\"} 7\n\
                    pdbridge_api_calls_total_other 100\n";
        assert_eq!(metric_sum(text, "pdbridge_api_calls_total", &[]), 12.0);
        assert_eq!(
            metric_sum(text, "pdbridge_api_calls_total", &["platform=\"slack\""]),
            5.0
        );
    }

    #[test]
    fn card_incident_from_buttons_or_link() {
        let with_buttons = serde_json::json!([{"type": "actions", "elements": [
            {"type": "button", "action_id": "pdbridge_ack", "value": "PABC123"}]}]);
        assert_eq!(
            card_incident(&with_buttons),
            Some(IncidentId::new("PABC123"))
        );
        let resolved = serde_json::json!([{"type": "section", "text": {"type": "mrkdwn",
            "text": "<https://x.pagerduty.com/incidents/Q000042|#42>"}}]);
        assert_eq!(card_incident(&resolved), Some(IncidentId::new("Q000042")));
        assert_eq!(card_incident(&serde_json::json!([])), None);
    }
}
