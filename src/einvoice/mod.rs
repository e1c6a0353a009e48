//! EN 16931 e-invoices (Chorus Pro, and the approved platforms of the French reform): the view of a
//! mapped document that the syntaxes share (VAT breakdown per category and rate, totals), and the
//! pure writers, one per syntax (`ubl` for UBL 2.1 Invoice / CreditNote, `cii` for CII D16B). Bytes out, no IO.
//! The writers know nothing of routes: which platform a document goes to is `crate::route`'s,
//! and the platform's own rules (`rules::chorus`) run only for its route (`format::check`).
//! A `Profile` says which rule set a document is written for: plain EN 16931, or the French core
//! invoice of the approved platforms, whose BR-FR terms the writers add and `rules_fr` checks.

pub mod cii;
pub mod codes;
pub mod facturx;
pub mod read;
pub mod rules;
pub mod rules_fr;
pub mod ubl;
pub(crate) mod xml;

/// `s` unless it is blank once written (see `xml::blank`): such a value is left out.
pub fn present(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !xml::blank(s))
}

/// Whether a value is missing or blank once written.
pub fn blank(s: Option<&str>) -> bool {
    present(s).is_none()
}

use rust_decimal::{Decimal, RoundingStrategy};

use crate::mapping::{MappedDocument, VatCategory};
use crate::model::{DocKind, Document, ElectronicAddress, Party};

/// The syntax an e-invoice is written in, whatever platform it is routed to (see `crate::route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// UBL 2.1 Invoice / CreditNote (`ubl`).
    Ubl,
    /// UN/CEFACT CII D16B (`cii`).
    Cii,
}

impl Syntax {
    /// The document written in this syntax.
    pub fn render(self, v: &InvoiceView<'_>) -> Vec<u8> {
        match self {
            Syntax::Ubl => ubl::render(v),
            Syntax::Cii => cii::render(v),
        }
    }

    /// Upper-case short name (`UBL`, `CII`), as file names carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Syntax::Ubl => "UBL",
            Syntax::Cii => "CII",
        }
    }
}

/// The rule set a document is written for, on top of the syntax: plain EN 16931 (what Chorus Pro
/// and the unrouted layouts write, byte for byte as before), or the French core invoice ("socle")
/// of the approved platforms, which the BR-FR rules check (see `rules_fr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// EN 16931 as the document carries it.
    #[default]
    En16931,
    /// The French core invoice: BT-23 from the nature of the operation, the seller's SIREN
    /// (BT-30, scheme 0002), the buyer's (BT-47), electronic addresses (BT-34, BT-49) and the
    /// PMT / PMD / AAB notes.
    FrenchCore {
        /// Notes the document lacks among PMT, PMD and AAB are written with the legal French
        /// wording (`FRENCH_NOTES`); without it, a missing note holds the document (BR-FR-05).
        default_notes: bool,
    },
}

impl Profile {
    /// Whether this is the French core profile.
    pub fn is_french_core(self) -> bool {
        matches!(self, Profile::FrenchCore { .. })
    }
}

/// The notes every French invoice carries (BR-FR-05: subject codes PMT, PMD, AAB, BT-21/BT-22)
/// with the wording written when the document has none of that code (Code de commerce,
/// art. L441-9 and L441-10).
pub const FRENCH_NOTES: [(&str, &str); 3] = [
    (
        "PMT",
        "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €",
    ),
    (
        "PMD",
        "En cas de retard de paiement, pénalités au taux de trois fois le taux d’intérêt légal",
    ),
    ("AAB", "Pas d’escompte pour paiement anticipé"),
];

/// The business process codes (BT-23) the French core accepts (BR-FR-08): the letter says the
/// nature of the operation (B goods, S services, M mixed), the digit the billing case (1 a
/// plain invoice to be paid).
pub const FRENCH_PROCESSES: [&str; 20] = [
    "B1", "S1", "M1", "B2", "S2", "M2", "S3", "B4", "S4", "M4", "S5", "S6", "B7", "S7", "B8", "S8",
    "M8", "B9", "S9", "M9",
];

/// A party's SIREN: its own, else the first nine digits of its SIRET (a SIRET is the SIREN
/// followed by the establishment's five digits).
pub fn siren(p: &Party) -> Option<&str> {
    present(p.siren.as_deref()).or_else(|| {
        present(p.siret.as_deref())
            .filter(|s| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()))
            .map(|s| &s[..9])
    })
}

/// CustomizationID (BT-24) of an EN 16931 document.
pub const EN16931: &str = "urn:cen.eu:en16931:2017";

/// One row of the VAT breakdown (BG-23).
#[derive(Debug, Clone, PartialEq)]
pub struct VatRow {
    /// VAT category (BT-118).
    pub category: VatCategory,
    /// Rate in percent (BT-119).
    pub rate: Decimal,
    /// Taxable amount (BT-116): the sum of the line nets of this category and rate.
    pub base: Decimal,
    /// VAT amount (BT-117), as the document states it.
    pub amount: Decimal,
    /// Exemption reason text (BT-120).
    pub exemption_reason: Option<String>,
    /// Exemption reason code (BT-121).
    pub exemption_code: Option<String>,
}

/// One line with its VAT category.
#[derive(Debug, Clone)]
pub struct LineView<'a> {
    /// The source line.
    pub line: &'a crate::model::Line,
    /// Its position, from 1 (BT-126 when the line has no id).
    pub number: usize,
    /// VAT category (BT-151).
    pub category: VatCategory,
    /// VAT rate (BT-152).
    pub rate: Decimal,
}

impl LineView<'_> {
    /// Line identifier (BT-126): the source's, else the line's position.
    pub fn id(&self) -> String {
        present(self.line.id.as_deref()).map_or_else(|| self.number.to_string(), str::to_owned)
    }

    /// Item name (BT-153), `-` when the description is blank (the element is mandatory).
    pub fn name(&self) -> &str {
        if blank(Some(&self.line.description)) {
            "-"
        } else {
            self.line.description.as_str()
        }
    }
}

/// A party's legal registration identifier (BT-30, BT-47) with its ISO 6523 scheme: the SIRET
/// (`0009`), else the SIREN (`0002`).
pub fn legal_id(p: &Party) -> Option<(&'static str, &str)> {
    match (present(p.siret.as_deref()), present(p.siren.as_deref())) {
        (Some(siret), _) => Some(("0009", siret)),
        (None, Some(siren)) => Some(("0002", siren)),
        _ => None,
    }
}

/// A party's electronic address (BT-34, BT-49), unless blank.
pub fn electronic_address(p: &Party) -> Option<&ElectronicAddress> {
    p.electronic_address
        .as_ref()
        .filter(|e| !blank(Some(&e.value)))
}

/// A mapped document seen as an EN 16931 invoice: what every syntax writes.
#[derive(Debug, Clone)]
pub struct InvoiceView<'a> {
    /// The document.
    pub doc: &'a Document,
    /// Lines with their VAT category.
    pub lines: Vec<LineView<'a>>,
    /// VAT breakdown, in order of first appearance.
    pub vat: Vec<VatRow>,
    /// Sum of line nets (BT-106).
    pub line_total: Decimal,
    /// The rule set it is written for.
    pub profile: Profile,
}

/// Rounds to the cent, half away from zero.
pub fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `1358.25`: an amount as EN 16931 syntaxes write it (two decimals, decimal point).
pub fn amount(d: Decimal) -> String {
    format!("{:.2}", cents(d))
}

/// A quantity, price or rate without trailing zeros (`1`, `15.5`, `0.1234`).
pub fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

impl<'a> InvoiceView<'a> {
    /// The view of a mapped document (its lines carry their VAT category from the mapping).
    pub fn new(md: &'a MappedDocument) -> Self {
        let doc = &md.doc;
        let mut vat: Vec<VatRow> = Vec::new();
        let mut lines = Vec::with_capacity(doc.lines.len());
        for (i, (line, m)) in doc.lines.iter().zip(&md.lines).enumerate() {
            lines.push(LineView {
                line,
                number: i + 1,
                category: m.category,
                rate: m.rate,
            });
            match vat
                .iter_mut()
                .find(|r| r.category == m.category && r.rate == m.rate)
            {
                // Saturating: figures are bounded by the checks' gate; should one slip through,
                // a saturated sum differs from the document's and BR-CO rules hold it.
                Some(r) => r.base = r.base.saturating_add(line.net_amount),
                None => vat.push(VatRow {
                    category: m.category,
                    rate: m.rate,
                    base: line.net_amount,
                    amount: Decimal::ZERO,
                    exemption_reason: m.exemption_reason.clone(),
                    exemption_code: m.exemption_code.clone(),
                }),
            }
        }
        // The VAT per rate is the document's own (the invoice's truth), matched by tax code to
        // the category and rate of the lines that use it.
        for b in &doc.tax_breakdown {
            let key = doc
                .lines
                .iter()
                .zip(&md.lines)
                .find(|(l, _)| l.tax_code == b.tax_code)
                .map(|(_, m)| (m.category, m.rate));
            if let Some(r) = key.and_then(|k| vat.iter_mut().find(|r| (r.category, r.rate) == k)) {
                r.amount = r.amount.saturating_add(b.amount);
            }
        }
        let line_total = doc
            .lines
            .iter()
            .fold(Decimal::ZERO, |acc, l| acc.saturating_add(l.net_amount));
        InvoiceView {
            doc,
            lines,
            vat,
            line_total,
            profile: Profile::En16931,
        }
    }

    /// Issue date of the preceding invoice (BT-26) as written: in the French core only, which
    /// asks for it on a credit note (BR-FR-CO-05); EN 16931 layouts write BT-25 alone, as before.
    pub fn preceding_invoice_date(&self) -> Option<chrono::NaiveDate> {
        self.doc
            .preceding_invoice_date
            .filter(|_| self.profile.is_french_core())
    }

    /// The same view written for `profile`.
    pub fn with_profile(self, profile: Profile) -> Self {
        InvoiceView { profile, ..self }
    }

    /// Business process (BT-23) as written: the billing framework; in the French core, the
    /// document's when it is a French code, else `B1` / `S1` / `M1` from the nature of the
    /// operation (goods, services, mixed), else the billing framework as it is (BR-FR-08 holds it).
    pub fn business_process(&self) -> &str {
        if !self.profile.is_french_core() {
            return self.billing_framework();
        }
        if let Some(own) = self.french_process() {
            return own;
        }
        self.billing_framework()
    }

    /// The French BT-23 code of the document, if it has or implies one: its own, else the letter
    /// of the nature of the operation and the digit of its billing case (1 to be paid, 2
    /// already paid, 4 final after down payments).
    pub fn french_process(&self) -> Option<&str> {
        use crate::model::{BillingCase, OperationNature};
        let own = present(self.doc.billing_framework.as_deref());
        if let Some(own) = own.filter(|c| FRENCH_PROCESSES.contains(c)) {
            return Some(own);
        }
        let case = self.doc.billing_case.unwrap_or(BillingCase::Standard);
        self.doc.operation_nature.map(|n| match (n, case) {
            (OperationNature::Goods, BillingCase::Standard) => "B1",
            (OperationNature::Services, BillingCase::Standard) => "S1",
            (OperationNature::Mixed, BillingCase::Standard) => "M1",
            (OperationNature::Goods, BillingCase::AlreadyPaid) => "B2",
            (OperationNature::Services, BillingCase::AlreadyPaid) => "S2",
            (OperationNature::Mixed, BillingCase::AlreadyPaid) => "M2",
            (OperationNature::Goods, BillingCase::FinalAfterDownPayments) => "B4",
            (OperationNature::Services, BillingCase::FinalAfterDownPayments) => "S4",
            (OperationNature::Mixed, BillingCase::FinalAfterDownPayments) => "M4",
        })
    }

    /// The notes (BG-1) as written: the document's; in the French core with default notes, then
    /// each of PMT, PMD and AAB it lacks, with the legal wording.
    pub fn notes(&self) -> std::borrow::Cow<'a, [crate::model::Note]> {
        let Profile::FrenchCore {
            default_notes: true,
        } = self.profile
        else {
            return std::borrow::Cow::Borrowed(&self.doc.notes);
        };
        let mut notes = self.doc.notes.clone();
        for (code, text) in FRENCH_NOTES {
            if !self.doc.notes.iter().any(|n| note_has_code(n, code)) {
                notes.push(crate::model::Note {
                    subject_code: Some(code.to_owned()),
                    text: text.to_owned(),
                });
            }
        }
        std::borrow::Cow::Owned(notes)
    }

    /// A party's legal registration identifier (BT-30, BT-47) as written: `legal_id`; in the
    /// French core, the SIREN with scheme `0002` (BR-FR-10), else `legal_id`.
    pub fn legal_id<'p>(&self, p: &'p Party) -> Option<(&'static str, &'p str)> {
        if self.profile.is_french_core() {
            if let Some(s) = siren(p) {
                return Some(("0002", s));
            }
        }
        legal_id(p)
    }

    /// A party's electronic address (BT-34, BT-49) as written: the document's; in the French
    /// core, else its SIREN in the directory (scheme `0225`), as the directory addresses a
    /// company by default.
    pub fn electronic_address(&self, p: &Party) -> Option<ElectronicAddress> {
        if let Some(e) = electronic_address(p) {
            return Some(e.clone());
        }
        if !self.profile.is_french_core() {
            return None;
        }
        siren(p).map(|s| ElectronicAddress {
            scheme: "0225".to_owned(),
            value: s.to_owned(),
        })
    }

    /// Whether the document is a credit note (type 381).
    pub fn is_credit_note(&self) -> bool {
        self.doc.kind == DocKind::CreditNote
    }

    /// UNTDID 1001 type code (BT-3): the document's (`384`, `386`, ...), else `380` for an
    /// invoice and `381` for a credit note.
    pub fn type_code(&self) -> &str {
        match present(self.doc.type_code.as_deref()) {
            Some(own) => own.trim(),
            None if self.is_credit_note() => "381",
            None => "380",
        }
    }

    /// Value added tax point date code (BT-8) as written, in the French core only: when the
    /// seller opted for VAT on debits, VAT is due on the invoice's issue date (UNTDID 2475 `5`
    /// in CII, UNTDID 2005 `3` in UBL); otherwise the document writes none (VAT on receipts is
    /// the default for services, on delivery for goods).
    pub fn vat_point_code(&self, syntax: Syntax) -> Option<&'static str> {
        if !self.profile.is_french_core() || self.doc.vat_on_debits != Some(true) {
            return None;
        }
        Some(match syntax {
            Syntax::Cii => "5",
            Syntax::Ubl => "3",
        })
    }

    /// Business process (BT-23): the Chorus Pro billing framework, `A1` by default.
    pub fn billing_framework(&self) -> &str {
        self.doc.billing_framework.as_deref().unwrap_or("A1")
    }

    /// Order reference (BT-13): the engagement number, else the purchase order.
    pub fn order_reference(&self) -> Option<&str> {
        present(self.doc.engagement_number.as_deref())
            .or(present(self.doc.purchase_order.as_deref()))
    }

    /// Whether the document carries payment means (BG-16): Chorus Pro takes credit notes
    /// without them unless the document states some.
    pub fn has_payment_means(&self) -> bool {
        !self.is_credit_note() || self.doc.payment_means.is_some()
    }

    /// UNCL 4461 payment means code (BT-81): 30 credit transfer unless the document says.
    pub fn payment_means(&self) -> &str {
        self.doc.payment_means.as_deref().unwrap_or("30")
    }

    /// IBAN to pay to (BT-84): the document's, else the seller's.
    pub fn iban(&self) -> Option<&str> {
        present(self.doc.iban.as_deref()).or(present(self.doc.seller.iban.as_deref()))
    }

    /// BIC (BT-86): the document's, else the seller's.
    pub fn bic(&self) -> Option<&str> {
        present(self.doc.bic.as_deref()).or(present(self.doc.seller.bic.as_deref()))
    }
}

/// Whether a note has this subject code, exactly as written (the BR-FR rules compare it so).
pub fn note_has_code(n: &crate::model::Note, code: &str) -> bool {
    n.subject_code.as_deref() == Some(code)
}

#[cfg(test)]
mod french_core_tests;
#[cfg(test)]
pub(crate) mod schematron_tests;
#[cfg(test)]
pub(crate) mod tests;
