//! Pennylane's `vat_rate` codes: the list its API accepts on an invoice line, and the check of a
//! mapping's `pennylane_vat_rate` against it and against the tax code's own rate.

use rust_decimal::Decimal;

/// Every `vat_rate` Pennylane's v2 API accepts on a customer invoice line (the enum of
/// `invoice_lines[].vat_rate` in its OpenAPI description; a test compares the two).
pub const VAT_RATES: &[&str] = &[
    "FR_1_05",
    "FR_1_75",
    "FR_09",
    "FR_21",
    "FR_40",
    "FR_50",
    "FR_55",
    "FR_60",
    "FR_65",
    "FR_85",
    "FR_92",
    "FR_100",
    "FR_130",
    "FR_15_385",
    "FR_160",
    "FR_196",
    "FR_200",
    "AD_10",
    "AD_45",
    "AD_95",
    "AT_100",
    "AT_130",
    "AT_190",
    "AT_200",
    "BE_60",
    "BE_120",
    "BE_210",
    "BG_90",
    "BG_200",
    "CH_25",
    "CH_37",
    "CH_77",
    "CH_26",
    "CH_38",
    "CH_81",
    "CY_30",
    "CY_50",
    "CY_80",
    "CY_90",
    "CY_190",
    "CZ_100",
    "CZ_120",
    "CZ_150",
    "CZ_210",
    "DE_70",
    "DE_190",
    "DK_250",
    "EE_90",
    "EE_200",
    "EE_220",
    "EE_240",
    "ES_40",
    "ES_70",
    "ES_100",
    "ES_210",
    "FI_100",
    "FI_135",
    "FI_140",
    "FI_240",
    "FI_255",
    "GB_50",
    "GB_200",
    "GR_60",
    "GR_130",
    "GR_170",
    "GR_240",
    "GR_40",
    "HR_50",
    "HR_130",
    "HR_250",
    "HU_50",
    "HU_180",
    "HU_270",
    "IE_48",
    "IE_90",
    "IE_135",
    "IE_210",
    "IE_230",
    "IT_40",
    "IT_50",
    "IT_100",
    "IT_220",
    "LT_50",
    "LT_90",
    "LT_120",
    "LT_210",
    "LU_30",
    "LU_70",
    "LU_80",
    "LU_120",
    "LU_130",
    "LU_140",
    "LU_160",
    "LU_170",
    "LV_50",
    "LV_120",
    "LV_210",
    "MC_09",
    "MC_21",
    "MC_55",
    "MC_85",
    "MC_100",
    "MC_200",
    "MT_50",
    "MT_70",
    "MT_120",
    "MT_180",
    "MU_150",
    "NL_90",
    "NL_210",
    "PL_50",
    "PL_80",
    "PL_230",
    "PT_60",
    "PT_130",
    "PT_160",
    "PT_180",
    "PT_220",
    "PT_230",
    "RO_50",
    "RO_90",
    "RO_110",
    "RO_190",
    "RO_210",
    "SE_60",
    "SE_120",
    "SE_250",
    "SI_50",
    "SI_95",
    "SI_220",
    "SK_50",
    "SK_100",
    "SK_190",
    "SK_200",
    "SK_230",
    "NO_120",
    "NO_150",
    "NO_250",
    "DE_70_BU0002",
    "DE_190_BU0003",
    "DE_70_BU0008",
    "DE_190_BU0009",
    "DE_intracom_70_BU0012",
    "DE_intracom_190_BU0013",
    "DE_190_electronic_BU0226",
    "exempt",
    "DE_intracom_exempt_BU0011",
    "DE_intracom_exempt_BU0047",
    "DE_intracom_exempt_BU0233",
    "DE_exempt_BU0001",
    "DE_exempt_BU0181",
    "DE_exempt_BU0490",
    "intracom_21",
    "intracom_55",
    "intracom_85",
    "intracom_100",
    "crossborder",
    "ES_intracom_sales_goods",
    "ES_intracom_sales_services",
    "DE_intracom_70_BU0018",
    "DE_intracom_190_BU0019",
    "DE_intracom_190_BU0506",
    "extracom",
    "DE_extracom_BU0173",
    "DE_extracom_BU0191",
    "DE_extracom_190_BU0511",
    "ES_isp_sales",
    "FR_85_construction",
    "FR_100_construction",
    "FR_200_construction",
    "DE_exempt_construction_BU0046",
    "DE_70_construction_BU0091",
    "DE_190_construction_BU0094",
    "DE_190_construction_BU0526",
    "DE_190_construction_BU0546",
    "mixed",
];

/// The percentage a French code stands for: `FR_200` → 20, `FR_55` → 5.5, `FR_1_05` → 1.05,
/// `FR_200_construction` → 20. `None` for other codes (`exempt`, `crossborder`, other countries).
fn french_percent(code: &str) -> Option<Decimal> {
    let rest = code.strip_prefix("FR_")?;
    let rest = rest.strip_suffix("_construction").unwrap_or(rest);
    if !rest.chars().all(|c| c.is_ascii_digit() || c == '_') || rest.is_empty() {
        return None;
    }
    match rest.split_once('_') {
        Some((units, fraction)) => format!("{units}.{fraction}").parse().ok(),
        None => rest
            .parse::<Decimal>()
            .ok()
            .map(|tenths| tenths / Decimal::TEN),
    }
}

/// Checks a mapping's `pennylane_vat_rate` for a tax code of rate `rate` (percent). The error
/// says what is wrong and what to write instead.
pub fn check(code: &str, rate: Decimal) -> Result<(), String> {
    if !VAT_RATES.contains(&code) {
        let hint = VAT_RATES
            .iter()
            .find(|c| french_percent(c) == Some(rate.normalize()) && !c.ends_with("_construction"))
            .map(|c| format!("for {} % in France write `{c}`; ", rate.normalize()))
            .unwrap_or_default();
        return Err(format!(
            "pennylane_vat_rate `{code}` is not a Pennylane vat_rate code; {hint}other codes include `exempt`, `crossborder`, `extracom`, `intracom_21` (the full list is Pennylane's API reference)"
        ));
    }
    // The construction codes are reverse-charged (category AE, rate 0 in the mapping): their
    // percentage is the buyer's to pay, not the tax code's rate.
    if code.ends_with("_construction") {
        return Ok(());
    }
    match french_percent(code) {
        Some(p) if p != rate.normalize() => Err(format!(
            "pennylane_vat_rate `{code}` is {} % but the tax code's rate is {} %; make them agree",
            p.normalize(),
            rate.normalize()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn french_codes_carry_their_rate() {
        assert_eq!(french_percent("FR_200"), Some(pct("20")));
        assert_eq!(french_percent("FR_55"), Some(pct("5.5")));
        assert_eq!(french_percent("FR_09"), Some(pct("0.9")));
        assert_eq!(french_percent("FR_1_05"), Some(pct("1.05")));
        assert_eq!(french_percent("FR_100_construction"), Some(pct("10")));
        assert_eq!(french_percent("exempt"), None);
        assert_eq!(french_percent("DE_190"), None);
    }

    #[test]
    fn codes_are_checked_against_the_list_and_the_rate() {
        assert!(check("FR_200", pct("20")).is_ok());
        assert!(check("FR_55", pct("5.50")).is_ok());
        assert!(check("exempt", Decimal::ZERO).is_ok());
        assert!(check("FR_200_construction", Decimal::ZERO).is_ok());
        assert!(check("FR_15_385", pct("15.385")).is_ok());
        let e = check("FR_20", pct("20")).unwrap_err();
        assert!(
            e.contains("`FR_20` is not") && e.contains("write `FR_200`"),
            "{e}"
        );
        let e = check("FR_55", pct("20")).unwrap_err();
        assert!(
            e.contains("is 5.5 % but the tax code's rate is 20 %"),
            "{e}"
        );
    }

    /// The list is Pennylane's own: the enum of `invoice_lines[].vat_rate` in the OpenAPI file
    /// under `../shared/reference`.
    #[test]
    fn the_list_is_the_openapi_enum() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/openapi/pennylane/pennylane_v2.contract.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            crate::test_skip::skip(&format!("{} is absent", path.display()));
            return;
        };
        // Each `vat_rate:` property of an invoice line lists the codes as `- CODE` items.
        let mut lists = Vec::new();
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            if l.trim() != "vat_rate:" {
                continue;
            }
            while lines
                .peek()
                .is_some_and(|l| l.trim() != "enum:" && !l.trim().starts_with("- "))
            {
                lines.next();
            }
            lines.next();
            let mut codes = Vec::new();
            while let Some(item) = lines.peek().and_then(|l| l.trim().strip_prefix("- ")) {
                codes.push(item.trim().to_owned());
                lines.next();
            }
            if codes.iter().any(|c| c == "FR_200") {
                lists.push(codes);
            }
        }
        assert!(
            !lists.is_empty(),
            "no vat_rate enum found in {}",
            path.display()
        );
        for codes in lists {
            assert_eq!(codes, VAT_RATES, "Pennylane's vat_rate enum changed");
        }
    }
}
