//! The data classifier: which label keys and values of the series prescale reads carry
//! personal, health or payment data. It reports where each kind was seen (the metric, the
//! label key, how many series), never the value itself.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::series::Labels;

/// A kind of sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// An e-mail address.
    Email,
    /// An IPv4 or IPv6 address (with or without a port).
    IpAddress,
    /// A person's identifier: a label whose key names one (`user_id`, `customer`, ...).
    UserId,
    /// A payment card number (13 to 19 digits passing the Luhn check).
    CardNumber,
    /// Health data: a label whose key names it (`diagnosis`, `patient`, ...).
    Health,
}

impl DataKind {
    /// Personal data in the GDPR's sense (health and payment data are too, and more).
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Email => "email",
            DataKind::IpAddress => "ip-address",
            DataKind::UserId => "user-id",
            DataKind::CardNumber => "card-number",
            DataKind::Health => "health",
        }
    }
}

/// Where a kind of data was seen: one finding per metric, label key and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Sighting {
    /// The metric's name.
    pub metric: String,
    /// The label key.
    pub label: String,
    /// What was seen.
    pub kind: DataKind,
    /// True when the key's name gave it away, false when values did.
    pub by_key: bool,
    /// Series whose label showed it.
    pub series: usize,
}

/// Keys that name a person's identifier (compared lower-case, `-` and `.` read as `_`).
const USER_KEYS: [&str; 14] = [
    "user",
    "user_id",
    "userid",
    "uid",
    "username",
    "login",
    "customer",
    "customer_id",
    "account",
    "account_id",
    "client_id",
    "member_id",
    "person_id",
    "session_user",
];
/// Keys that name health data.
const HEALTH_KEYS: [&str; 10] = [
    "patient",
    "patient_id",
    "diagnosis",
    "icd10",
    "icd_code",
    "condition",
    "medication",
    "treatment",
    "health_status",
    "blood_type",
];

fn normal_key(key: &str) -> String {
    key.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// True for `local@domain.tld` with a plausible local part and domain.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// True for an IPv4 or IPv6 address, alone or with a port.
pub fn is_ip(value: &str) -> bool {
    value.parse::<std::net::IpAddr>().is_ok() || value.parse::<std::net::SocketAddr>().is_ok()
}

/// True for 13 to 19 digits (spaces and dashes between them allowed) passing the Luhn check.
pub fn is_card_number(value: &str) -> bool {
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return false;
    }
    let digits: Vec<u32> = value
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    (13..=19).contains(&digits.len()) && luhn(&digits)
}

/// The Luhn checksum: every second digit from the right doubled (less 9 past 9), the sum a
/// multiple of ten.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What one label (key and value) carries.
pub fn classify_label(key: &str, value: &str) -> Vec<(DataKind, bool)> {
    let mut kinds = Vec::new();
    let k = normal_key(key);
    if USER_KEYS.contains(&k.as_str()) {
        kinds.push((DataKind::UserId, true));
    }
    if HEALTH_KEYS.contains(&k.as_str()) {
        kinds.push((DataKind::Health, true));
    }
    if k == "email" || k == "e_mail" || k == "mail" || is_email(value) {
        kinds.push((DataKind::Email, !is_email(value)));
    }
    if is_ip(value) {
        kinds.push((DataKind::IpAddress, false));
    }
    if is_card_number(value) {
        kinds.push((DataKind::CardNumber, false));
    }
    kinds
}

/// Every sighting in `series`, one per metric, label key and kind, sorted.
pub fn classify<'a>(series: impl IntoIterator<Item = &'a Labels>) -> Vec<Sighting> {
    let mut seen: BTreeMap<(String, String, DataKind), (bool, usize)> = BTreeMap::new();
    for labels in series {
        for (key, value) in &labels.pairs {
            for (kind, by_key) in classify_label(key, value) {
                let e = seen
                    .entry((labels.name.clone(), key.clone(), kind))
                    .or_insert((by_key, 0));
                e.0 &= by_key;
                e.1 += 1;
            }
        }
    }
    seen.into_iter()
        .map(|((metric, label, kind), (by_key, series))| Sighting {
            metric,
            label,
            kind,
            by_key,
            series,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
        Labels {
            name: name.into(),
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn each_kind_is_found_where_it_is_and_no_value_is_reported() {
        let series = [
            labels(
                "http_requests_total",
                &[("user_id", "u-1842"), ("route", "/cart")],
            ),
            labels(
                "http_requests_total",
                &[("user_id", "u-77"), ("route", "/pay")],
            ),
            labels(
                "logins_total",
                &[("who", "ana@example.org"), ("client", "10.1.2.3:5555")],
            ),
            labels(
                "payments_total",
                &[
                    ("ref", "4111 1111 1111 1111"),
                    ("order", "4111111111111112"),
                ],
            ),
            labels("visits_total", &[("Diagnosis", "J45"), ("ward", "3")]),
        ];
        let found = classify(&series);
        let brief: Vec<(&str, &str, DataKind, bool, usize)> = found
            .iter()
            .map(|s| {
                (
                    s.metric.as_str(),
                    s.label.as_str(),
                    s.kind,
                    s.by_key,
                    s.series,
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                ("http_requests_total", "user_id", DataKind::UserId, true, 2),
                ("logins_total", "client", DataKind::IpAddress, false, 1),
                ("logins_total", "who", DataKind::Email, false, 1),
                ("payments_total", "ref", DataKind::CardNumber, false, 1),
                ("visits_total", "Diagnosis", DataKind::Health, true, 1),
            ]
        );
        let text = serde_json::to_string(&found).unwrap();
        for secret in ["u-1842", "ana@example.org", "10.1.2.3", "4111", "J45"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }

    #[test]
    fn ordinary_labels_are_not_flagged() {
        for (k, v) in [
            ("route", "/api/v1/users"),
            ("status", "200"),
            ("le", "0.25"),
            ("version", "1.2.3"),
            ("job", "checkout"),
            ("order", "1234567890123"),
            ("at", "user@localhost"),
        ] {
            assert!(classify_label(k, v).is_empty(), "{k}={v}");
        }
    }

    /// A card number: `body` digits and the Luhn check digit.
    fn with_check_digit(body: &[u32]) -> Vec<u32> {
        (0..10)
            .map(|c| {
                let mut d = body.to_vec();
                d.push(c);
                d
            })
            .find(|d| luhn(d))
            .unwrap()
    }

    proptest! {
        /// Every number with its check digit passes, and changing any one digit fails.
        #[test]
        fn luhn_catches_every_single_digit_error(
            body in proptest::collection::vec(0u32..10, 12..19),
            at in 0usize..19,
            delta in 1u32..10,
        ) {
            let card = with_check_digit(&body);
            let text: String = card.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
            prop_assert!(is_card_number(&text));
            let mut wrong = card.clone();
            let i = at % wrong.len();
            wrong[i] = (wrong[i] + delta) % 10;
            prop_assert!(!luhn(&wrong));
        }
    }
}
