//! The AFNOR XP Z12-013 Directory Service 1.3.0 of the company's PA, read-only: the directory
//! lines of a buyer's SIREN (`POST /v1/directory-line/search`, with the Flow client's token,
//! `Request-Id` and `Organization-Id`), a cache per SIREN kept in the ledger (a value per
//! connector and SIREN, so that it survives runs and is written with the records, atomically),
//! and the choice of the address a B2B invoice goes to (BT-49), in the AIFE order.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{PaApi, PaError};
use crate::ledger::{Ledger, LedgerError};
use crate::problem::Problem;

/// Lines asked for per page; a SIREN has a few lines, rarely more.
const PAGE: u64 = 100;
/// Most pages read for one SIREN (a bound on a PA that pages forever).
const MAX_PAGES: u64 = 5;

/// One directory line (`directoryLinePayloadStatusLegalUnitFacilityRoutingCode`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The address (BT-49 with scheme 0225).
    #[serde(default)]
    pub addressing_identifier: String,
    /// The legal unit.
    #[serde(default)]
    pub siren: Option<String>,
    /// The facility, for a line per facility.
    #[serde(default)]
    pub siret: Option<String>,
    /// The routing code, for a line per routing code.
    #[serde(default)]
    pub routing_identifier: Option<String>,
    /// The suffix, for a line of its own mesh.
    #[serde(default)]
    pub addressing_suffix: Option<String>,
    /// `Enabled`, `Disabled` or `Upcoming`.
    #[serde(default)]
    pub directory_line_status: Option<String>,
    /// The legal unit (asked for with `include: ["siren"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_unit: Option<LegalUnit>,
    /// The facility (asked for with `include: ["siret"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<Facility>,
}

/// The facility of a line (`facilityPayloadIncluded`), as far as routing reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facility {
    /// Its SIRET.
    #[serde(default)]
    pub siret: Option<String>,
    /// What a public structure requires (`b2gAdditionalData`).
    #[serde(default)]
    pub b2g_additional_data: Option<B2gData>,
}

/// What a public structure requires of the invoices it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct B2gData {
    /// A service code (BT-10) is required.
    #[serde(default)]
    pub service_code_status: Option<bool>,
    /// An engagement number (BT-13) is required.
    #[serde(default)]
    pub manages_legal_commitment_code: Option<bool>,
    /// One of the two is required.
    #[serde(default)]
    pub manages_legal_commitment_or_service_code: Option<bool>,
}

/// What the public structure of `chosen` (or, failing its data, of the invoiced facility
/// `siret`) requires, as the Chorus Pro structure rules read it.
pub fn structure(
    lines: &[Line],
    chosen: &Line,
    siret: Option<&str>,
) -> Option<crate::einvoice::rules::StructureRules> {
    let data = |l: &Line| l.facility.as_ref().and_then(|f| f.b2g_additional_data);
    let b = data(chosen).or_else(|| {
        lines
            .iter()
            .filter(|l| {
                siret.is_some() && l.facility.as_ref().and_then(|f| f.siret.as_deref()) == siret
            })
            .find_map(data)
    })?;
    Some(crate::einvoice::rules::StructureRules {
        service_code_required: b.service_code_status.unwrap_or(false),
        engagement_required: b.manages_legal_commitment_code.unwrap_or(false),
        engagement_or_service: b.manages_legal_commitment_or_service_code.unwrap_or(false),
    })
}

/// The legal unit of a line (`legalUnitPayloadIncluded`), as far as routing reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalUnit {
    /// `Public` or `PrivateVatRegistered`.
    #[serde(default)]
    pub entity_type: Option<String>,
}

/// Whether the directory says the legal unit of these lines is a public entity.
pub fn public_entity(lines: &[Line]) -> bool {
    lines
        .iter()
        .any(|l| l.legal_unit.as_ref().and_then(|u| u.entity_type.as_deref()) == Some("Public"))
}

impl Line {
    fn status(&self) -> &str {
        self.directory_line_status.as_deref().unwrap_or("Enabled")
    }

    fn has(v: Option<&String>) -> bool {
        v.is_some_and(|s| !s.trim().is_empty())
    }
}

/// A cached answer for one SIREN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    /// When the directory was read.
    pub fetched_at: DateTime<Utc>,
    /// Its lines for the SIREN.
    pub lines: Vec<Line>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    results: Vec<Line>,
}

/// The ledger value holding the cached lines of `siren` for connector `target`.
pub fn cache_key(target: &str, siren: &str) -> String {
    format!("pa-directory\0{target}\0{siren}")
}

/// The cached lines of `siren`, whatever their age.
///
/// # Errors
///
/// Ledger failure.
pub fn cached(
    ledger: &dyn Ledger,
    target: &str,
    siren: &str,
) -> Result<Option<Cached>, LedgerError> {
    Ok(ledger
        .value(&cache_key(target, siren))?
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// Whether a cached answer is older than `hours`.
pub fn expired(c: &Cached, hours: u64, now: DateTime<Utc>) -> bool {
    let hours = i64::try_from(hours).unwrap_or(i64::MAX).min(24 * 366 * 10);
    now - c.fetched_at >= Duration::hours(hours)
}

/// The directory lines of `siren` (every page), only those of that SIREN: a PA that ignores the
/// filter must not route an invoice to another company.
///
/// # Errors
///
/// Network, credentials or protocol failure, or the PA's refusal.
pub async fn search(api: &PaApi, base: &str, siren: &str) -> Result<Vec<Line>, PaError> {
    let url = format!("{}/v1/directory-line/search", base.trim_end_matches('/'));
    let mut out = Vec::new();
    for page in 0..MAX_PAGES {
        let body = json!({
            "filters": {"siren": {"op": "strict", "value": siren}},
            "include": ["siren", "siret"],
            "limit": PAGE,
            "ignore": page * PAGE,
        });
        let got: Option<Page> = api.read(Method::POST, &url, Some(&body)).await?;
        // 404: the directory knows no line of this SIREN.
        let Some(got) = got else { break };
        let n = got.results.len() as u64;
        out.extend(got.results);
        if n < PAGE {
            break;
        }
    }
    // Only this SIREN's lines: a line that does not name its SIREN must at least address it.
    out.retain(|l| {
        let id = l.addressing_identifier.trim();
        !id.is_empty()
            && l.siren
                .as_deref()
                .map_or(id.starts_with(siren), |s| s.trim() == siren)
    });
    Ok(out)
}

/// The address a B2B invoice to `siren` goes to, and why; or the problem that holds it.
///
/// Enabled lines only; several → the one the customer gave (`wanted`, the document's BT-49),
/// else the AIFE order: the line of the invoiced facility (`siret`, no routing code nor suffix),
/// then the first line with a routing code (alphabetically), then the SIREN's own line, then the
/// first line with a suffix. `Upcoming` lines only → held until the platform is active;
/// `Disabled` lines or none → held, the SIREN cannot receive e-invoices yet.
///
/// # Errors
///
/// The problem that holds the document.
pub fn choose(
    lines: &[Line],
    siren: &str,
    siret: Option<&str>,
    wanted: Option<&str>,
    recheck: &str,
) -> Result<(Line, String), Problem> {
    let enabled: Vec<&Line> = lines.iter().filter(|l| l.status() == "Enabled").collect();
    if enabled.is_empty() {
        let upcoming = lines.iter().any(|l| l.status() == "Upcoming");
        let not_yet = format!("check the buyer's SIREN; if it is right, the buyer has no PA yet: ask them to choose one (facto looks the directory up again {recheck})");
        let (code, what, fix) = if upcoming {
            (
                "directory-upcoming",
                format!("the directory lists SIREN {siren} with a platform that is not active yet (Upcoming): held until it is"),
                format!("nothing to do: the buyer's PA starts later, and facto looks the directory up again {recheck}"),
            )
        } else if lines.is_empty() {
            (
                "directory-missing",
                format!("the directory has no line for SIREN {siren}: the buyer cannot receive e-invoices through a PA yet"),
                not_yet,
            )
        } else {
            (
                "directory-disabled",
                format!("the directory lists SIREN {siren} only as Disabled (no platform linked): the buyer cannot receive e-invoices yet"),
                not_yet,
            )
        };
        return Err(Problem::new(code, "buyer.siren", what, fix));
    }
    if let Some(w) = wanted.map(str::trim).filter(|w| !w.is_empty()) {
        if let Some(l) = enabled.iter().find(|l| l.addressing_identifier == w) {
            return Ok((
                (*l).clone(),
                format!("the address the customer gave ({w}), listed Enabled"),
            ));
        }
    }
    let first = |mut v: Vec<&Line>| {
        v.sort_by(|a, b| a.addressing_identifier.cmp(&b.addressing_identifier));
        v.first().map(|l| (*l).clone())
    };
    let facility = siret.and_then(|s| {
        first(
            enabled
                .iter()
                .copied()
                .filter(|l| l.siret.as_deref() == Some(s))
                .filter(|l| !Line::has(l.routing_identifier.as_ref()))
                .filter(|l| !Line::has(l.addressing_suffix.as_ref()))
                .collect(),
        )
    });
    let routing = || {
        first(
            enabled
                .iter()
                .copied()
                .filter(|l| Line::has(l.routing_identifier.as_ref()))
                .collect(),
        )
    };
    let own = || {
        first(
            enabled
                .iter()
                .copied()
                .filter(|l| !Line::has(l.siret.as_ref()))
                .filter(|l| !Line::has(l.routing_identifier.as_ref()))
                .filter(|l| !Line::has(l.addressing_suffix.as_ref()))
                .collect(),
        )
    };
    let suffix = || {
        first(
            enabled
                .iter()
                .copied()
                .filter(|l| Line::has(l.addressing_suffix.as_ref()))
                .collect(),
        )
    };
    let several = if enabled.len() > 1 {
        format!(" (chosen among {} Enabled lines)", enabled.len())
    } else {
        String::new()
    };
    let (line, why) = if let Some(l) = facility {
        (l, "the line of the invoiced facility (SIREN_SIRET)")
    } else if let Some(l) = routing() {
        (
            l,
            "the first line with a routing code (SIREN_SIRET_ROUTINGCODE)",
        )
    } else if let Some(l) = own() {
        (l, "the SIREN's own line")
    } else if let Some(l) = suffix() {
        (l, "the first line with a suffix (SIREN_SUFFIX)")
    } else {
        // Lines of other facilities only: the first, alphabetically.
        let l = first(enabled.clone()).unwrap_or_default();
        (l, "the first Enabled line")
    };
    Ok((line, format!("directory: {why}{several}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        id: &str,
        siret: Option<&str>,
        routing: Option<&str>,
        suffix: Option<&str>,
        status: &str,
    ) -> Line {
        Line {
            addressing_identifier: id.into(),
            siren: Some("412358764".into()),
            siret: siret.map(Into::into),
            routing_identifier: routing.map(Into::into),
            addressing_suffix: suffix.map(Into::into),
            directory_line_status: Some(status.into()),
            legal_unit: None,
            facility: None,
        }
    }

    #[test]
    fn the_address_follows_the_customer_then_the_aife_order() {
        let s = "412358764";
        let siret = Some("41235876400014");
        let pick = |lines: &[Line], wanted| {
            choose(lines, s, siret, wanted, "in 24 h").map(|(l, _)| l.addressing_identifier)
        };
        let own = line("412358764", None, None, None, "Enabled");
        let suffix = line("412358764_FACT", None, None, Some("FACT"), "Enabled");
        let routing_b = line(
            "412358764_41235876400014_B",
            siret,
            Some("B"),
            None,
            "Enabled",
        );
        let routing_a = line(
            "412358764_41235876400014_A",
            siret,
            Some("A"),
            None,
            "Enabled",
        );
        let facility = line("412358764_41235876400014", siret, None, None, "Enabled");
        let all = vec![
            suffix.clone(),
            own.clone(),
            routing_b.clone(),
            routing_a.clone(),
            facility.clone(),
        ];
        assert_eq!(
            pick(&all, Some("412358764_FACT")).unwrap(),
            "412358764_FACT"
        );
        // An address the directory does not list Enabled is not taken.
        assert_eq!(pick(&all, Some("999")).unwrap(), "412358764_41235876400014");
        assert_eq!(pick(&all[..4], None).unwrap(), "412358764_41235876400014_A");
        assert_eq!(pick(&all[..2], None).unwrap(), "412358764");
        assert_eq!(pick(&all[..1], None).unwrap(), "412358764_FACT");
        let (_, why) = choose(&all, s, siret, None, "").unwrap();
        assert!(why.contains("among 5"), "{why}");
    }

    #[test]
    fn upcoming_disabled_or_no_line_holds_with_a_named_reason() {
        let s = "412358764";
        let code = |lines: &[Line]| choose(lines, s, None, None, "in 24 h").unwrap_err().code;
        assert_eq!(code(&[]), "directory-missing");
        assert_eq!(
            code(&[line("412358764", None, None, None, "Disabled")]),
            "directory-disabled"
        );
        let p = choose(
            &[
                line("412358764", None, None, None, "Upcoming"),
                line("412358764_X", None, None, Some("X"), "Disabled"),
            ],
            s,
            None,
            None,
            "in 24 h",
        )
        .unwrap_err();
        assert_eq!(p.code, "directory-upcoming");
        assert!(p.fix.contains("in 24 h"), "{}", p.fix);
        // Enabled beats Upcoming.
        let (l, _) = choose(
            &[
                line("412358764_X", None, None, Some("X"), "Upcoming"),
                line("412358764", None, None, None, "Enabled"),
            ],
            s,
            None,
            None,
            "",
        )
        .unwrap();
        assert_eq!(l.addressing_identifier, "412358764");
    }

    #[test]
    fn a_public_structure_says_what_it_requires() {
        let siret = "19690123400015";
        let mut own = line("196901234", None, None, None, "Enabled");
        let mut facility = line(
            "196901234_19690123400015",
            Some(siret),
            None,
            None,
            "Enabled",
        );
        assert_eq!(structure(&[own.clone()], &own, Some(siret)), None);
        facility.facility = Some(Facility {
            siret: Some(siret.into()),
            b2g_additional_data: Some(B2gData {
                manages_legal_commitment_code: Some(true),
                ..Default::default()
            }),
        });
        let lines = vec![own.clone(), facility.clone()];
        // The chosen line has no data: the invoiced facility's says.
        let s = structure(&lines, &own, Some(siret)).unwrap();
        assert!(s.engagement_required && !s.service_code_required && !s.engagement_or_service);
        assert_eq!(structure(&lines, &own, Some("19690123400099")), None);
        own.facility = Some(Facility {
            siret: None,
            b2g_additional_data: Some(B2gData {
                service_code_status: Some(true),
                ..Default::default()
            }),
        });
        assert!(structure(&lines, &own, None).unwrap().service_code_required);
    }

    #[test]
    fn a_cached_answer_expires() {
        let now = Utc::now();
        let c = Cached {
            fetched_at: now - Duration::hours(25),
            lines: vec![],
        };
        assert!(expired(&c, 24, now));
        assert!(!expired(&c, 48, now));
        assert!(!expired(&c, u64::MAX, now));
        assert!(expired(&c, 0, now));
    }
}
