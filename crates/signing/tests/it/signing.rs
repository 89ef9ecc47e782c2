//! Known-answer vectors, header edge cases, redaction and sign/verify properties.

use proptest::prelude::*;
use serde::Deserialize;
use signing::{
    Error, PAGERDUTY_SIGNATURE_HEADER, PagerDutySecret, SLACK_MAX_SKEW_SECS,
    SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, SlackSigningSecret, header, sign_pagerduty,
    sign_slack, verify_pagerduty, verify_slack,
};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/signature-vectors.json"
));

#[derive(Deserialize)]
struct Vectors {
    slack: Vec<SlackVector>,
    pagerduty: Vec<PdVector>,
}

#[derive(Deserialize)]
struct SlackVector {
    id: String,
    signing_secret: String,
    headers: Vec<(String, String)>,
    body: String,
    valid: bool,
}

#[derive(Deserialize)]
struct PdVector {
    id: String,
    secret: String,
    headers: Vec<(String, String)>,
    body: String,
    valid: bool,
}

/// The fixture stores headers as a JSON object; keep them as ordered pairs.
fn vectors() -> Vectors {
    let mut raw: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    for list in ["slack", "pagerduty"] {
        for v in raw[list].as_array_mut().unwrap() {
            let pairs: Vec<serde_json::Value> = v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| serde_json::json!([k, v]))
                .collect();
            v["headers"] = serde_json::Value::Array(pairs);
        }
    }
    serde_json::from_value(raw).unwrap()
}

fn pairs(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_TS: i64 = 1531420618;
const SLACK_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const PD_SECRET: &str = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
const PD_SIG: &str = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";

fn slack_body() -> Vec<u8> {
    vectors().slack[0].body.clone().into_bytes()
}

fn pd_body() -> Vec<u8> {
    vectors().pagerduty[0].body.clone().into_bytes()
}

#[test]
fn every_slack_vector_has_the_expected_outcome() {
    let v = vectors();
    assert_eq!(v.slack.len(), 2);
    for vector in &v.slack {
        let secret = SlackSigningSecret::new(vector.signing_secret.clone());
        let ts = header(pairs(&vector.headers), SLACK_TIMESTAMP_HEADER);
        let sig = header(pairs(&vector.headers), SLACK_SIGNATURE_HEADER);
        let now: i64 = ts.unwrap().parse().unwrap();
        let got = verify_slack(&secret, ts, sig, vector.body.as_bytes(), now);
        if vector.valid {
            assert_eq!(got, Ok(()), "{}", vector.id);
            assert_eq!(
                sign_slack(&secret, now, vector.body.as_bytes()),
                sig.unwrap(),
                "{}",
                vector.id
            );
        } else {
            assert_eq!(got, Err(Error::Mismatch), "{}", vector.id);
        }
    }
}

#[test]
fn every_pagerduty_vector_has_the_expected_outcome() {
    let v = vectors();
    assert_eq!(v.pagerduty.len(), 6);
    for vector in &v.pagerduty {
        let secrets = [PagerDutySecret::new(vector.secret.clone())];
        let sig = header(pairs(&vector.headers), PAGERDUTY_SIGNATURE_HEADER);
        let got = verify_pagerduty(&secrets, sig, vector.body.as_bytes());
        if vector.valid {
            assert_eq!(got, Ok(()), "{}", vector.id);
        } else {
            assert!(got.is_err(), "{}", vector.id);
        }
    }
    // The specific refusal reasons of the invalid vectors.
    let by_id = |id: &str| v.pagerduty.iter().find(|x| x.id == id).unwrap();
    let check = |id: &str| {
        let x = by_id(id);
        verify_pagerduty(
            &[PagerDutySecret::new(x.secret.clone())],
            header(pairs(&x.headers), PAGERDUTY_SIGNATURE_HEADER),
            x.body.as_bytes(),
        )
    };
    assert_eq!(
        check("go-pagerduty-webhookv3-mismatch"),
        Err(Error::Mismatch)
    );
    assert_eq!(check("aldaviva-pagey-ping-invalid"), Err(Error::Mismatch));
    assert_eq!(
        check("go-pagerduty-webhookv3-unknown-version-only"),
        Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER))
    );
    // sign_pagerduty reproduces the published valid signatures.
    for id in ["go-pagerduty-webhookv3-valid", "aldaviva-pagey-ping-valid"] {
        let x = by_id(id);
        assert_eq!(
            sign_pagerduty(&PagerDutySecret::new(x.secret.clone()), x.body.as_bytes()),
            header(pairs(&x.headers), PAGERDUTY_SIGNATURE_HEADER).unwrap(),
            "{id}"
        );
    }
}

#[test]
fn slack_tampered_body_is_a_mismatch() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let mut body = slack_body();
    body[0] ^= 1;
    assert_eq!(
        verify_slack(
            &secret,
            Some("1531420618"),
            Some(SLACK_SIG),
            &body,
            SLACK_TS
        ),
        Err(Error::Mismatch)
    );
}

#[test]
fn slack_wrong_secret_is_a_mismatch() {
    let secret = SlackSigningSecret::new("not-the-secret");
    assert_eq!(
        verify_slack(
            &secret,
            Some("1531420618"),
            Some(SLACK_SIG),
            &slack_body(),
            SLACK_TS
        ),
        Err(Error::Mismatch)
    );
}

#[test]
fn slack_skew_boundary_is_300_seconds_both_ways() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let body = slack_body();
    let verify = |now| verify_slack(&secret, Some("1531420618"), Some(SLACK_SIG), &body, now);
    assert_eq!(verify(SLACK_TS + SLACK_MAX_SKEW_SECS), Ok(()));
    assert_eq!(verify(SLACK_TS - SLACK_MAX_SKEW_SECS), Ok(()));
    assert_eq!(
        verify(SLACK_TS + 301),
        Err(Error::StaleTimestamp { skew_secs: 301 })
    );
    assert_eq!(
        verify(SLACK_TS - 301),
        Err(Error::StaleTimestamp { skew_secs: -301 })
    );
    // Real time today: the 2018 vector is years stale.
    assert!(matches!(
        verify(1_790_000_000),
        Err(Error::StaleTimestamp { .. })
    ));
    // Extreme clocks saturate instead of overflowing.
    assert!(matches!(
        verify(i64::MIN),
        Err(Error::StaleTimestamp { .. })
    ));
}

#[test]
fn slack_stale_timestamp_is_refused_even_with_a_valid_mac_for_it() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let old = SLACK_TS - 3600;
    let sig = sign_slack(&secret, old, b"x");
    assert_eq!(
        verify_slack(&secret, Some(&old.to_string()), Some(&sig), b"x", SLACK_TS),
        Err(Error::StaleTimestamp { skew_secs: 3600 })
    );
}

#[test]
fn slack_missing_headers() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let body = slack_body();
    assert_eq!(
        verify_slack(&secret, None, Some(SLACK_SIG), &body, SLACK_TS),
        Err(Error::MissingHeader(SLACK_TIMESTAMP_HEADER))
    );
    assert_eq!(
        verify_slack(&secret, Some("1531420618"), None, &body, SLACK_TS),
        Err(Error::MissingHeader(SLACK_SIGNATURE_HEADER))
    );
}

#[test]
fn slack_empty_and_garbage_headers_are_malformed() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let body = slack_body();
    let bad_ts = Error::MalformedHeader(SLACK_TIMESTAMP_HEADER);
    let bad_sig = Error::MalformedHeader(SLACK_SIGNATURE_HEADER);
    for ts in [
        "",
        "   ",
        "abc",
        "-1531420618",
        "+1531420618",
        "1531420618.5",
        "1e9",
    ] {
        assert_eq!(
            verify_slack(&secret, Some(ts), Some(SLACK_SIG), &body, SLACK_TS),
            Err(bad_ts.clone()),
            "timestamp {ts:?}"
        );
    }
    let non_hex = format!("v0={}", "zz".repeat(32));
    let short = &SLACK_SIG[..SLACK_SIG.len() - 2];
    let long = format!("{SLACK_SIG}00");
    let v1 = SLACK_SIG.replacen("v0=", "v1=", 1);
    let bare = SLACK_SIG.trim_start_matches("v0=");
    for sig in ["", "v0=", "garbage", &non_hex, short, &long, &v1, bare] {
        assert_eq!(
            verify_slack(&secret, Some("1531420618"), Some(sig), &body, SLACK_TS),
            Err(bad_sig.clone()),
            "signature {sig:?}"
        );
    }
}

#[test]
fn slack_uppercase_hex_and_surrounding_whitespace_are_accepted() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let upper = format!("v0={}", SLACK_SIG[3..].to_ascii_uppercase());
    assert_eq!(
        verify_slack(
            &secret,
            Some(" 1531420618 "),
            Some(&upper),
            &slack_body(),
            SLACK_TS
        ),
        Ok(())
    );
}

#[test]
fn slack_empty_secret_refuses_everything() {
    let secret = SlackSigningSecret::new("");
    assert!(secret.is_empty());
    let sig = sign_slack(&secret, SLACK_TS, b"body");
    assert_eq!(
        verify_slack(&secret, Some("1531420618"), Some(&sig), b"body", SLACK_TS),
        Err(Error::EmptySecret)
    );
}

#[test]
fn header_lookup_is_case_insensitive_and_returns_the_first_match() {
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Slack-Signature", "first"),
        ("x-slack-signature", "second"),
    ];
    assert_eq!(header(headers, SLACK_SIGNATURE_HEADER), Some("first"));
    assert_eq!(header(headers, "CONTENT-TYPE"), Some("application/json"));
    assert_eq!(header(headers, SLACK_TIMESTAMP_HEADER), None);
    assert_eq!(header([], PAGERDUTY_SIGNATURE_HEADER), None);
}

#[test]
fn pagerduty_zero_secrets_refuse_everything() {
    let body = pd_body();
    assert_eq!(
        verify_pagerduty(&[], Some(PD_SIG), &body),
        Err(Error::NoSecretsConfigured)
    );
    assert_eq!(
        verify_pagerduty(&[], None, &body),
        Err(Error::NoSecretsConfigured)
    );
    // Empty secrets count as not configured, even with a signature made with the empty key.
    let empty = PagerDutySecret::new("");
    let sig = sign_pagerduty(&empty, &body);
    assert_eq!(
        verify_pagerduty(&[empty], Some(&sig), &body),
        Err(Error::NoSecretsConfigured)
    );
}

#[test]
fn pagerduty_missing_empty_and_garbage_headers() {
    let secrets = [PagerDutySecret::new(PD_SECRET)];
    let body = pd_body();
    assert_eq!(
        verify_pagerduty(&secrets, None, &body),
        Err(Error::MissingHeader(PAGERDUTY_SIGNATURE_HEADER))
    );
    let non_hex = format!("v1={}", "zz".repeat(32));
    let short = &PD_SIG[..PD_SIG.len() - 2];
    let long = format!("{PD_SIG}00");
    let bare = PD_SIG.trim_start_matches("v1=");
    for sig in ["", " ", ",", "v1=", "garbage", &non_hex, short, &long, bare] {
        assert_eq!(
            verify_pagerduty(&secrets, Some(sig), &body),
            Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER)),
            "signature {sig:?}"
        );
    }
}

#[test]
fn pagerduty_tampered_body_is_a_mismatch() {
    let secrets = [PagerDutySecret::new(PD_SECRET)];
    let mut body = pd_body();
    let last = body.len() - 2;
    body[last] ^= 0x20;
    assert_eq!(
        verify_pagerduty(&secrets, Some(PD_SIG), &body),
        Err(Error::Mismatch)
    );
}

#[test]
fn pagerduty_rotation_accepts_either_secret_and_either_entry() {
    let old = PagerDutySecret::new("old-secret");
    let new = PagerDutySecret::new("new-secret");
    let body = b"{\"event\":{}}";
    let header_value = format!(
        "{},{}",
        sign_pagerduty(&old, body),
        sign_pagerduty(&new, body)
    );
    // The receiver knows only one of the two secrets, in either role.
    for secrets in [
        vec![old.clone()],
        vec![new.clone()],
        vec![old.clone(), new.clone()],
    ] {
        assert_eq!(
            verify_pagerduty(&secrets, Some(&header_value), body),
            Ok(())
        );
    }
    // Two configured secrets and a one-entry header signed by the second.
    assert_eq!(
        verify_pagerduty(
            &[PagerDutySecret::new("unrelated"), new.clone()],
            Some(&sign_pagerduty(&new, body)),
            body
        ),
        Ok(())
    );
    // Neither entry matches.
    assert_eq!(
        verify_pagerduty(&[PagerDutySecret::new("other")], Some(&header_value), body),
        Err(Error::Mismatch)
    );
}

#[test]
fn pagerduty_non_v1_and_malformed_entries_are_ignored() {
    let secrets = [PagerDutySecret::new(PD_SECRET)];
    let body = pd_body();
    let digits = PD_SIG.trim_start_matches("v1=");
    let header_value = format!("v2={digits}, v1=nothex, v0={digits} ,  {PD_SIG}  ,v3=x");
    assert_eq!(
        verify_pagerduty(&secrets, Some(&header_value), &body),
        Ok(())
    );
    // A v2 entry carrying the right MAC is not accepted on its own.
    assert_eq!(
        verify_pagerduty(&secrets, Some(&format!("v2={digits},v1=nothex")), &body),
        Err(Error::MalformedHeader(PAGERDUTY_SIGNATURE_HEADER))
    );
}

#[test]
fn debug_of_secrets_is_redacted() {
    let slack = SlackSigningSecret::new(SLACK_SECRET);
    let pd = PagerDutySecret::new(PD_SECRET);
    assert_eq!(format!("{slack:?}"), "SlackSigningSecret(<redacted>)");
    assert_eq!(format!("{pd:?}"), "PagerDutySecret(<redacted>)");
    let both = format!("{:#?}", (&slack, [&pd]));
    assert!(!both.contains(SLACK_SECRET) && !both.contains(PD_SECRET));
}

#[test]
fn error_display_never_contains_a_secret_or_a_mac() {
    let slack = SlackSigningSecret::new(SLACK_SECRET);
    let pd = [PagerDutySecret::new(PD_SECRET)];
    let body = slack_body();
    let good_mac = &SLACK_SIG[3..];
    let wrong = sign_slack(&slack, SLACK_TS, b"other");
    let errors = [
        verify_slack(&slack, Some("1531420618"), Some(&wrong), &body, SLACK_TS),
        verify_slack(
            &slack,
            Some("1531420618"),
            Some(SLACK_SIG),
            &body,
            SLACK_TS + 999,
        ),
        verify_slack(&slack, Some("x"), Some(SLACK_SIG), &body, SLACK_TS),
        verify_slack(&slack, None, Some(SLACK_SIG), &body, SLACK_TS),
        verify_pagerduty(&pd, Some("v1=00"), b"x"),
        verify_pagerduty(&pd, Some(PD_SIG), b"x"),
        verify_pagerduty(&[], Some(PD_SIG), b"x"),
        verify_slack(&SlackSigningSecret::new(""), None, None, b"", 0),
    ];
    for err in errors {
        let err = err.unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(SLACK_SECRET), "{text}");
            assert!(!text.contains(PD_SECRET), "{text}");
            assert!(!text.contains(good_mac), "{text}");
            assert!(!text.contains(&wrong[3..]), "{text}");
            assert!(!text.contains(&PD_SIG[3..]), "{text}");
        }
        assert!(!err.kind().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn slack_sign_then_verify_and_any_flip_fails(
        secret in "[ -~]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 1..256),
        ts in 0i64..4_000_000_000,
        index in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let secret = SlackSigningSecret::new(secret);
        let sig = sign_slack(&secret, ts, &body);
        let ts_text = ts.to_string();
        prop_assert_eq!(verify_slack(&secret, Some(&ts_text), Some(&sig), &body, ts), Ok(()));
        let mut flipped = body.clone();
        flipped[index.index(body.len())] ^= 1 << bit;
        prop_assert_eq!(
            verify_slack(&secret, Some(&ts_text), Some(&sig), &flipped, ts),
            Err(Error::Mismatch)
        );
    }

    #[test]
    fn pagerduty_sign_then_verify_and_any_flip_fails(
        secret in "[ -~]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 1..256),
        index in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let secrets = [PagerDutySecret::new(secret)];
        let sig = sign_pagerduty(&secrets[0], &body);
        prop_assert_eq!(verify_pagerduty(&secrets, Some(&sig), &body), Ok(()));
        let mut flipped = body.clone();
        flipped[index.index(body.len())] ^= 1 << bit;
        prop_assert_eq!(verify_pagerduty(&secrets, Some(&sig), &flipped), Err(Error::Mismatch));
    }
}

#[test]
fn pagerduty_header_with_thousands_of_entries_is_refused_by_the_cap() {
    let secrets = [PagerDutySecret::new("old"), PagerDutySecret::new("new")];
    let body = vec![b'{'; 256 * 1024];
    let good = sign_pagerduty(&secrets[1], &body);
    let bogus = format!("v1={}", "0".repeat(64));
    // 5,000 bogus entries, the valid one last: refused for the count, whatever they hold.
    let mut flood = vec![bogus.as_str(); 4999];
    flood.push(&good);
    assert_eq!(
        verify_pagerduty(&secrets, Some(&flood.join(",")), &body),
        Err(Error::TooManySignatures)
    );
    assert_eq!(Error::TooManySignatures.kind(), "too_many_signatures");
    // Eight entries (PagerDuty sends one per active secret) are read; nine are not.
    let mut eight = vec![bogus.as_str(); signing::PAGERDUTY_MAX_SIGNATURES - 1];
    eight.push(&good);
    assert_eq!(
        verify_pagerduty(&secrets, Some(&eight.join(", ")), &body),
        Ok(())
    );
    let mut nine = eight.clone();
    nine.insert(0, "v2=future");
    assert_eq!(
        verify_pagerduty(&secrets, Some(&nine.join(",")), &body),
        Err(Error::TooManySignatures)
    );
    // A single huge entry is refused by the byte cap before it is split.
    let huge = format!("v1={}", "a".repeat(100_000));
    assert_eq!(
        verify_pagerduty(&secrets, Some(&huge), &body),
        Err(Error::TooManySignatures)
    );
}

#[test]
fn slack_oversized_headers_are_malformed() {
    let secret = SlackSigningSecret::new(SLACK_SECRET);
    let long = format!("v0={}{}", "a".repeat(64), " ".repeat(10_000));
    assert_eq!(
        verify_slack(&secret, Some("1531420618"), Some(&long), b"", SLACK_TS),
        Err(Error::MalformedHeader(SLACK_SIGNATURE_HEADER))
    );
    let ts = format!("{}1531420618", " ".repeat(10_000));
    assert_eq!(
        verify_slack(&secret, Some(&ts), Some(SLACK_SIG), b"", SLACK_TS),
        Err(Error::MalformedHeader(SLACK_TIMESTAMP_HEADER))
    );
}
