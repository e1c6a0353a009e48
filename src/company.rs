//! The company whose sales are booked (`[company]` of `facto.toml`): its SIREN, which names the
//! FEC files, and its fiscal year. A leaf: the targets that write its files take it from here.

use serde::Deserialize;

/// The company whose sales are booked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Company name.
    pub name: String,
    /// SIREN (9 digits, Luhn key checked): names the FEC files.
    pub siren: String,
    /// Closing day of the fiscal year, `MM-DD` (default `12-31`).
    #[serde(default = "default_fy_end")]
    pub fiscal_year_end: String,
    /// The company's own wording of the notes every French e-invoice carries (BR-FR-05), written
    /// when a document has no note of that subject code.
    #[serde(default)]
    pub invoice_notes: InvoiceNotes,
    /// Language of the web console's labels, dates and amounts: `fr` (the default) or `en`.
    #[serde(default)]
    pub locale: Locale,
    /// The company's VAT regime, which sets its e-reporting periods and due dates.
    #[serde(default)]
    pub vat_regime: Option<VatRegime>,
}

/// A VAT regime, as it sets the e-reporting periods (`../shared/reference/notes/fr-pa-flow-api.md`
/// §10): the normal regime paid monthly reports by ten-day periods, the normal regime paid
/// quarterly and the simplified regime monthly, the VAT-free franchise every two months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VatRegime {
    /// Réel normal, VAT paid monthly.
    NormalMonthly,
    /// Réel normal, VAT paid quarterly.
    NormalQuarterly,
    /// Régime simplifié.
    Simplified,
    /// Franchise en base (no VAT charged).
    Franchise,
}

/// A language of the web console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// French: `JJ/MM/AAAA`, decimal comma, narrow no-break space between thousands.
    #[default]
    Fr,
    /// English: `YYYY-MM-DD`, decimal point, comma between thousands.
    En,
}

/// `[company.invoice_notes]`: the company's wording of the PMT, PMD and AAB notes (BT-21/BT-22)
/// of its French e-invoices. A note the document gives wins; a wording not set here falls back
/// to the legal French wording.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InvoiceNotes {
    /// PMT: the fixed indemnity for recovery costs.
    pub pmt: Option<String>,
    /// PMD: the late-payment penalties.
    pub pmd: Option<String>,
    /// AAB: the early-payment discount, or that there is none.
    pub aab: Option<String>,
}

impl InvoiceNotes {
    /// The wordings set, as (subject code, text), blank ones left out.
    pub fn set(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("PMT", &self.pmt), ("PMD", &self.pmd), ("AAB", &self.aab)]
            .into_iter()
            .filter_map(|(code, text)| {
                let t = text.as_deref()?.trim();
                (!t.is_empty()).then_some((code, t))
            })
    }
}

fn default_fy_end() -> String {
    "12-31".to_owned()
}

impl Company {
    /// Closing date of the fiscal year that contains `date`.
    pub fn fiscal_year_closing(&self, date: chrono::NaiveDate) -> chrono::NaiveDate {
        use chrono::Datelike;
        let (m, d) = parse_month_day(&self.fiscal_year_end).unwrap_or((12, 31));
        let this_year = chrono::NaiveDate::from_ymd_opt(date.year(), m, d)
            .unwrap_or_else(|| last_day_of_month(date.year(), m));
        if date <= this_year {
            this_year
        } else {
            chrono::NaiveDate::from_ymd_opt(date.year() + 1, m, d)
                .unwrap_or_else(|| last_day_of_month(date.year() + 1, m))
        }
    }
}

fn last_day_of_month(year: i32, month: u32) -> chrono::NaiveDate {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    chrono::NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(chrono::NaiveDate::MIN)
}

/// `MM-DD` as month and day, when it is one.
pub(crate) fn parse_month_day(s: &str) -> Option<(u32, u32)> {
    let (m, d) = s.split_once('-')?;
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((m, d))
}

/// True when `siren` is 9 digits with a valid Luhn key.
pub fn siren_is_valid(siren: &str) -> bool {
    siren.len() == 9 && siren.bytes().all(|b| b.is_ascii_digit()) && luhn(siren)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
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
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siren_luhn() {
        assert!(siren_is_valid("123456782"));
        assert!(!siren_is_valid("123456789"));
        assert!(!siren_is_valid("12345678"));
    }

    #[test]
    fn fiscal_year_closing_handles_offset_years() {
        let c = Company {
            invoice_notes: InvoiceNotes::default(),
            name: "x".into(),
            siren: "123456782".into(),
            fiscal_year_end: "06-30".into(),
            locale: Locale::Fr,
            vat_regime: None,
        };
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(c.fiscal_year_closing(d("2026-03-01")), d("2026-06-30"));
        assert_eq!(c.fiscal_year_closing(d("2026-07-01")), d("2027-06-30"));
    }

    #[test]
    fn invoice_notes_give_the_wordings_set_and_skip_blank_ones() {
        let n: InvoiceNotes = toml::from_str("pmt = \"40 €\"\npmd = \"  \"\n").unwrap();
        assert_eq!(n.set().collect::<Vec<_>>(), vec![("PMT", "40 €")]);
        assert!(toml::from_str::<InvoiceNotes>("pmx = \"x\"").is_err());
    }
}
