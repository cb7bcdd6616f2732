//! Offline mode: an account read from a file pair instead of the API, so a
//! user can analyze an account without giving the daemon credentials.
//!
//! - `authorization_details`: the JSON `aws iam get-account-authorization-details
//!   --output json` prints (documents as JSON objects; URL-encoded strings are
//!   accepted too);
//! - `credential_report`: the CSV of the credential report (`aws iam
//!   get-credential-report --query Content --output text | base64 -d`),
//!   parsed by header name, so reports with more columns still read.

use std::collections::HashMap;
use std::path::Path;

use accessgraph_graph::LastUse;
use chrono::{DateTime, Utc};

use super::raw::{AccountData, AuthorizationDetails, ReportKey, ReportRow};
use crate::connector::SyncError;

/// Reads both files of one account.
pub async fn read_account(details: &Path, report: &Path) -> Result<AccountData, SyncError> {
    let details_label = details.display().to_string();
    let report_label = report.display().to_string();
    let details_bytes = tokio::fs::read(details)
        .await
        .map_err(|e| SyncError::Read { path: details_label.clone(), message: e.to_string() })?;
    let report_bytes = tokio::fs::read(report)
        .await
        .map_err(|e| SyncError::Read { path: report_label.clone(), message: e.to_string() })?;
    let details = parse_details(&details_label, &details_bytes)?;
    let report = parse_report(&report_label, &report_bytes)?;
    let account_id = account_of(&details, &report).unwrap_or_default();
    Ok(AccountData { label: details_label, account_id, details, report, access_keys: HashMap::new() })
}

/// Parses an authorization-details export; errors name the JSON path.
pub fn parse_details(label: &str, bytes: &[u8]) -> Result<AuthorizationDetails, SyncError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let location = if path == "." { "$".to_string() } else { format!("$.{path}") };
        SyncError::Invalid { path: label.to_string(), location, message: err.into_inner().to_string() }
    })
}

/// The account id named by the ARNs of an export (or the report's root row).
pub fn account_of(details: &AuthorizationDetails, report: &[ReportRow]) -> Option<String> {
    let arns = details
        .user_detail_list
        .iter()
        .map(|u| u.arn.as_str())
        .chain(details.role_detail_list.iter().map(|r| r.arn.as_str()))
        .chain(details.group_detail_list.iter().map(|g| g.arn.as_str()))
        .chain(report.iter().map(|r| r.arn.as_str()));
    arns.filter_map(arn_account).find(|a| !a.is_empty() && *a != "aws").map(str::to_string)
}

/// The account field of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:…`).
pub fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next() != Some("arn") {
        return None;
    }
    parts.nth(3)
}

const REQUIRED_COLUMNS: [&str; 8] = [
    "user",
    "arn",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
];

/// Parses a credential report CSV; errors name the line and column.
pub fn parse_report(label: &str, bytes: &[u8]) -> Result<Vec<ReportRow>, SyncError> {
    let invalid = |line: usize, location: String, message: String| SyncError::Invalid {
        path: label.to_string(),
        location: format!("line {line}{location}"),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(1, String::new(), format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(invalid(1, String::new(), "empty credential report (no header row)".into()));
    };
    let header = split_csv(header).map_err(|m| invalid(1, String::new(), m))?;
    let columns: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect();
    for required in REQUIRED_COLUMNS {
        if !columns.contains_key(required) {
            return Err(invalid(1, String::new(), format!("missing column `{required}`")));
        }
    }
    let mut rows = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let fields = split_csv(line).map_err(|m| invalid(number, String::new(), m))?;
        let get = |name: &str| -> Option<&str> { columns.get(name).and_then(|&i| fields.get(i)).map(|s| s.trim()) };
        let require = |name: &str| -> Result<&str, SyncError> {
            get(name).ok_or_else(|| invalid(number, format!(", column `{name}`"), "missing value".into()))
        };
        let flag = |name: &str, value: &str| -> Result<Option<bool>, SyncError> {
            match value.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "n/a" | "not_supported" | "no_information" | "" => Ok(None),
                other => Err(invalid(number, format!(", column `{name}`"), format!("`{other}` is not true/false"))),
            }
        };
        let time = |name: &str, value: &str| -> Result<Option<DateTime<Utc>>, SyncError> {
            match value.to_ascii_lowercase().as_str() {
                "n/a" | "not_supported" | "no_information" | "" => Ok(None),
                _ => DateTime::parse_from_rfc3339(value).map(|t| Some(t.with_timezone(&Utc))).map_err(|e| {
                    invalid(number, format!(", column `{name}`"), format!("`{value}` is not an ISO 8601 time: {e}"))
                }),
            }
        };
        let user = require("user")?.to_string();
        if user.is_empty() {
            return Err(invalid(number, ", column `user`".into(), "empty user name".into()));
        }
        let mut keys = Vec::with_capacity(2);
        for n in 1..=2 {
            let active_col = format!("access_key_{n}_active");
            let rotated_col = format!("access_key_{n}_last_rotated");
            let used_col = format!("access_key_{n}_last_used_date");
            let active = flag(&active_col, require(&active_col)?)?.unwrap_or(false);
            let last_rotated = time(&rotated_col, require(&rotated_col)?)?;
            let last_used = match time(&used_col, require(&used_col)?)? {
                Some(at) => LastUse::At(at),
                None => LastUse::Never,
            };
            let service = get(&format!("access_key_{n}_last_used_service"))
                .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("n/a"))
                .map(str::to_string);
            keys.push(ReportKey { active, last_rotated, last_used, last_used_service: service });
        }
        let [key1, key2]: [ReportKey; 2] =
            keys.try_into().map_err(|_| invalid(number, String::new(), "two access key slots expected".into()))?;
        rows.push(ReportRow {
            user,
            arn: require("arn")?.to_string(),
            password_enabled: match get("password_enabled") {
                Some(v) => flag("password_enabled", v)?,
                None => None,
            },
            password_last_used: match get("password_last_used") {
                Some(v) => time("password_last_used", v)?,
                None => None,
            },
            mfa_active: match get("mfa_active") {
                Some(v) => flag("mfa_active", v)?.unwrap_or(false),
                None => false,
            },
            keys: [key1, key2],
        });
    }
    Ok(rows)
}

/// Splits one CSV line (RFC 4180 quoting; the report has no embedded newlines).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_string());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::123456789012:root,2019-03-04T10:00:00+00:00,not_supported,2025-05-01T09:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
alice,arn:aws:iam::123456789012:user/alice,2021-06-01T12:00:00+00:00,TRUE,2025-05-20T08:15:00+00:00,2025-01-10T08:00:00+00:00,N/A,true,true,2024-11-02T10:00:00+00:00,2025-05-21T14:07:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
ci-bot,arn:aws:iam::123456789012:user/svc/ci-bot,2022-02-14T09:30:00+00:00,false,no_information,N/A,N/A,false,true,2022-02-14T09:31:00+00:00,N/A,N/A,N/A,true,2024-07-01T00:00:00+00:00,2025-05-22T06:00:00+00:00,eu-west-1,ec2,false,N/A,false,N/A
";

    #[test]
    fn the_report_parses_by_header_name() {
        let rows = parse_report("r.csv", REPORT.as_bytes()).expect("report parses");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].user, "<root_account>");
        assert_eq!(rows[0].password_enabled, None);
        let alice = &rows[1];
        assert_eq!(alice.password_enabled, Some(true));
        assert!(alice.mfa_active);
        assert!(alice.keys[0].active);
        assert_eq!(alice.keys[0].last_used_service.as_deref(), Some("s3"));
        assert!(matches!(alice.keys[0].last_used, LastUse::At(_)));
        assert_eq!(alice.keys[1].last_rotated, None);
        let bot = &rows[2];
        assert_eq!(bot.keys[0].last_used, LastUse::Never, "N/A is never used");
        assert_eq!(bot.password_last_used, None);
        assert!(bot.keys[1].active);
    }

    #[test]
    fn reordered_and_extra_columns_still_read() {
        let text = "arn,extra,user,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date\n\
                    arn:aws:iam::1:user/a,\"x, y\",a,false,N/A,N/A,true,2024-01-01T00:00:00Z,N/A\n";
        let rows = parse_report("r.csv", text.as_bytes()).expect("parses");
        assert_eq!(rows[0].user, "a");
        assert!(rows[0].keys[0].active);
    }

    #[test]
    fn bad_reports_name_line_and_column() {
        let missing = parse_report("r.csv", b"user,arn\nalice,x\n").expect_err("missing columns");
        assert!(missing.to_string().contains("access_key_1_active"), "{missing}");
        let bad_time = REPORT.replace("2024-11-02T10:00:00+00:00", "yesterday");
        let err = parse_report("r.csv", bad_time.as_bytes()).expect_err("bad time");
        match err {
            SyncError::Invalid { location, .. } => assert_eq!(location, "line 3, column `access_key_1_last_rotated`"),
            other => panic!("unexpected {other}"),
        }
        assert!(parse_report("r.csv", b"").is_err());
    }

    #[test]
    fn export_errors_name_the_json_path() {
        let text = r#"{"UserDetailList": [{"UserName": "a", "Arn": "arn:aws:iam::1:user/a"}, {"Arn": "arn:aws:iam::1:user/b"}]}"#;
        match parse_details("e.json", text.as_bytes()).expect_err("missing UserName") {
            SyncError::Invalid { location, message, .. } => {
                assert_eq!(location, "$.UserDetailList[1]");
                assert!(message.contains("UserName"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(arn_account("arn:aws:iam::123456789012:user/a"), Some("123456789012"));
        assert_eq!(arn_account("nope"), None);
    }
}
