//! Journal file writers: pure functions from mapped documents to text (no IO), one file per
//! accounting package; `text` holds what they share (cleaning, encodings, widths, amounts).
//! This module owns the format-neutral view of an entry the writers read, the dispatch on the
//! configured layout, the per-layout checks (an account too wide for a fixed-width field holds
//! the document back), and file naming. A layout of e-invoices carries its syntax and its route
//! apart: the configured names (`chorus-ubl`, `chorus-cii`) are read as the pair in [`Layout::default_for`].

pub mod acd;
pub mod agiris;
pub mod cegid;
pub mod ciel;
pub mod coala;
pub mod csv;
pub mod ebp;
pub mod fec;
pub mod quadratus;
pub mod text;
mod vocabulary;
pub mod zip;

pub use vocabulary::{Encoding, FecSeparator, JournalFormat};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::einvoice::{Profile, Syntax};
use crate::mapping::{LineRole, MappedDocument};
use crate::problem::Problem;
use crate::route::{self, Route};

/// Everything a writer needs to know about the file it writes.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The layout, as configured.
    pub format: JournalFormat,
    /// The e-invoice syntax of its documents (`None` for journals of entries).
    pub syntax: Option<Syntax>,
    /// The platform its documents are for: it takes only the documents routed there (`None`
    /// takes every document, as journals do). The route's own rules hold documents back.
    pub route: Option<Route>,
    /// FEC separator.
    pub fec_sep: FecSeparator,
    /// CSV style of the two generic shapes.
    pub csv: csv::CsvStyle,
    /// Text encoding.
    pub encoding: Encoding,
    /// General accounts padded with trailing zeros to this length.
    pub account_length: Option<usize>,
    /// The rule set of its e-invoices: EN 16931, or the French core of the approved platforms.
    pub profile: Profile,
}

impl Layout {
    /// A layout with the defaults of `format`.
    pub fn default_for(format: JournalFormat) -> Self {
        let (syntax, route) = Self::syntax_and_route(format);
        Layout {
            format,
            syntax,
            route,
            fec_sep: FecSeparator::Tab,
            csv: csv::CsvStyle::new(';'),
            encoding: format.default_encoding(),
            account_length: None,
            profile: Profile::En16931,
        }
    }

    /// The French core invoice ("socle") in `syntax`, for no route of its own (the target that
    /// uses it sets one): the writers add what the BR-FR rules ask (BT-23 from the nature of
    /// the operation, SIRENs, electronic addresses, PMT / PMD / AAB notes with the legal
    /// wording when the document has none), and `check` runs those rules.
    pub fn french_core(syntax: Syntax) -> Self {
        let format = match syntax {
            Syntax::Ubl => JournalFormat::ChorusUbl,
            Syntax::Cii => JournalFormat::ChorusCii,
        };
        Layout {
            route: None,
            profile: Profile::FrenchCore {
                default_notes: true,
            },
            ..Self::default_for(format)
        }
    }

    /// What a configured format stands for: `chorus-ubl` and `chorus-cii` are their syntax for
    /// the Chorus Pro route; every other format is a journal of entries, for every document.
    fn syntax_and_route(format: JournalFormat) -> (Option<Syntax>, Option<Route>) {
        match format {
            JournalFormat::ChorusUbl => (Some(Syntax::Ubl), Some(Route::ChorusB2g)),
            JournalFormat::ChorusCii => (Some(Syntax::Cii), Some(Route::ChorusB2g)),
            _ => (None, None),
        }
    }

    /// Whether the layout writes EN 16931 e-invoices (a zip lot) rather than entries.
    pub fn is_einvoice(&self) -> bool {
        self.syntax.is_some()
    }

    /// The header line(s) written once at the top of a file (most packages take none).
    pub fn header(&self) -> String {
        match self.format {
            JournalFormat::Fec => fec::header(self.fec_sep),
            JournalFormat::CsvDocuments => csv::header(&csv::DOCUMENT_COLUMNS, self.csv),
            JournalFormat::CsvLines => csv::header(&csv::LINE_COLUMNS, self.csv),
            _ => String::new(),
        }
    }

    /// Whether the file holds the entry's lines only, so that a document with every amount zero
    /// writes nothing (the CSV shapes write a row per document or line; e-invoices a document).
    pub fn writes_entry_lines_only(&self) -> bool {
        !self.is_einvoice()
            && !matches!(
                self.format,
                JournalFormat::CsvDocuments | JournalFormat::CsvLines
            )
    }

    /// True when `md` would write nothing in this layout: every amount of its entry is zero.
    pub fn nothing_to_book(&self, md: &MappedDocument) -> bool {
        self.writes_entry_lines_only()
            && md
                .entry
                .lines
                .iter()
                .all(|l| l.debit.is_zero() && l.credit.is_zero())
    }

    /// Width of the account field of a fixed-width layout.
    pub fn account_width(&self) -> Option<usize> {
        match self.format {
            JournalFormat::Quadratus => Some(quadratus::ACCOUNT_WIDTH),
            JournalFormat::Ciel => Some(ciel::ACCOUNT_WIDTH),
            _ => None,
        }
    }

    /// Width of the journal code field of a fixed-width layout.
    pub fn journal_width(&self) -> Option<usize> {
        match self.format {
            JournalFormat::Quadratus | JournalFormat::Ciel => Some(2),
            _ => None,
        }
    }
}

/// Running state of one file (what a writer numbers across entries).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileState {
    /// Records written so far.
    pub lines: u64,
}

/// One line of an entry as the writers see it.
#[derive(Debug, Clone)]
pub struct LineView {
    /// What the line books.
    pub role: LineRole,
    /// General account, padded as the layout asks.
    pub general: String,
    /// Its label.
    pub general_label: String,
    /// Auxiliary account, if any (the customer line).
    pub aux: Option<String>,
    /// Its label.
    pub aux_label: Option<String>,
    /// Debit (zero on a credit line).
    pub debit: Decimal,
    /// Credit (zero on a debit line).
    pub credit: Decimal,
}

impl LineView {
    /// The account of packages that put the auxiliary account in the account column.
    pub fn account(&self) -> &str {
        self.aux.as_deref().unwrap_or(&self.general)
    }

    /// The label of that account.
    pub fn account_label(&self) -> &str {
        self.aux_label.as_deref().unwrap_or(&self.general_label)
    }

    /// Whether the line is on the debit side.
    pub fn is_debit(&self) -> bool {
        !self.debit.is_zero()
    }

    /// The line's amount, positive.
    pub fn amount(&self) -> Decimal {
        self.debit + self.credit
    }

    /// `D` or `C`.
    pub fn sens(&self) -> char {
        if self.is_debit() {
            'D'
        } else {
            'C'
        }
    }
}

/// One balanced entry, format-neutral: what every writer renders.
#[derive(Debug, Clone)]
pub struct EntryView<'a> {
    /// The mapped document.
    pub md: &'a MappedDocument,
    /// Entry number in its journal (continuous across batches).
    pub seq: u64,
    /// Validation (export) date.
    pub valid_date: NaiveDate,
    /// Journal code.
    pub journal: &'a str,
    /// Document (and entry) date.
    pub date: NaiveDate,
    /// Due date, if the document has one.
    pub due: Option<NaiveDate>,
    /// Piece reference: the document number.
    pub piece: &'a str,
    /// Entry label, `<number> <customer>`.
    pub label: &'a str,
    /// Customer name.
    pub customer: &'a str,
    /// Lines with an amount, in entry order (customer, revenue, VAT).
    pub lines: Vec<LineView>,
}

/// Pads a general account with trailing zeros to `len` (DOLI's `length_accountg`).
pub fn pad_account(account: &str, len: Option<usize>) -> String {
    match len {
        Some(n) if account.len() < n => format!("{account:0<n$}"),
        _ => account.to_owned(),
    }
}

/// Whether an entry line is written: it has an amount.
fn written(l: &crate::mapping::EntryLine) -> bool {
    !(l.debit.is_zero() && l.credit.is_zero())
}

/// The lines a document's entry writes (those of its [`EntryView`]): what [`render`] adds to
/// [`FileState::lines`].
pub fn written_lines(md: &MappedDocument) -> u64 {
    md.entry.lines.iter().filter(|l| written(l)).count() as u64
}

impl<'a> EntryView<'a> {
    /// The view of one mapped document under a layout.
    pub fn new(md: &'a MappedDocument, seq: u64, valid_date: NaiveDate, layout: &Layout) -> Self {
        let lines = md
            .entry
            .lines
            .iter()
            .filter(|l| written(l))
            .map(|l| LineView {
                role: l.role,
                general: pad_account(&l.account, layout.account_length),
                general_label: l.account_label.clone(),
                aux: l.aux.clone(),
                aux_label: l.aux_label.clone(),
                debit: l.debit,
                credit: l.credit,
            })
            .collect();
        EntryView {
            md,
            seq,
            valid_date,
            journal: &md.entry.journal_code,
            date: md.doc.issue_date,
            due: md.doc.due_date,
            piece: &md.doc.number,
            label: &md.entry.label,
            customer: &md.doc.buyer.name,
            lines,
        }
    }

    /// The due date, or the document date when it has none.
    pub fn due_or_date(&self) -> NaiveDate {
        self.due.unwrap_or(self.date)
    }
}

/// Appends one entry's records in the layout (text; the caller encodes).
pub fn render(layout: &Layout, state: &mut FileState, e: &EntryView<'_>, out: &mut String) {
    match layout.format {
        JournalFormat::Fec => fec::render_entry(
            out,
            e.md,
            &fec::entry_number(e.journal, e.seq),
            e.valid_date,
            layout.fec_sep,
            layout.account_length,
        ),
        JournalFormat::CsvDocuments => csv::render_document(out, e.md, layout.csv),
        JournalFormat::CsvLines => csv::render_lines(out, e.md, layout.csv),
        JournalFormat::Quadratus => quadratus::render_entry(out, e),
        JournalFormat::Ebp => ebp::render_entry(out, state, e),
        JournalFormat::Acd => acd::render_entry(out, e),
        JournalFormat::Agiris => agiris::render_entry(out, e),
        JournalFormat::Coala => coala::render_entry(out, e),
        JournalFormat::Ciel => ciel::render_entry(out, e, layout.encoding),
        JournalFormat::Cegid => cegid::render_entry(out, e),
        // E-invoices are binary entries of a zip lot: see `einvoice_xml`.
        JournalFormat::ChorusUbl | JournalFormat::ChorusCii => {}
    }
    state.lines += e.lines.len() as u64;
}

fn role_name(role: LineRole) -> &'static str {
    match role {
        LineRole::Customer => "customer",
        LineRole::Revenue => "revenue",
        LineRole::Tax => "VAT",
    }
}

/// The EN 16931 document of an e-invoice layout (`None` for journal layouts).
pub fn einvoice_xml(layout: &Layout, md: &MappedDocument) -> Option<Vec<u8>> {
    let syntax = layout.syntax?;
    Some(syntax.render(&crate::einvoice::InvoiceView::new(md).with_profile(layout.profile)))
}

/// Name of a document inside a Chorus Pro lot (the open-source clients' convention).
pub fn einvoice_name(layout: &Layout, number: &str) -> String {
    let syntax = layout.syntax.unwrap_or(Syntax::Ubl).as_str();
    let mut safe = crate::fsutil::safe_name(number);
    if safe != number {
        // Sanitising can collapse numbers (`F/1`, `F.1`, `F_1`): a short hash of the real one
        // keeps their files apart.
        use sha2::Digest;
        let h = hex::encode(sha2::Sha256::digest(number.as_bytes()));
        safe = format!("{safe}_{}", &h[..6]);
    }
    format!("{syntax}_chorus_facture_{safe}.xml")
}

/// Whether a document goes to this target at all: a layout with a route takes the documents
/// routed there (`route::takes`); journals take every document.
pub fn in_scope(layout: &Layout, doc: &crate::model::Document) -> bool {
    layout.route.is_none_or(|r| route::takes(r, doc))
}

/// What keeps a document out of a file in this layout: an account, journal code or amount wider
/// than its fixed-width field (refused, never cut: a cut account books elsewhere); for
/// e-invoices, the EN 16931 business rules, and those of the platform of its route (Chorus Pro's
/// for the Chorus route).
pub fn check(layout: &Layout, md: &MappedDocument, mapping_file: &str) -> Vec<Problem> {
    if layout.is_einvoice() {
        // A sale a PA layout takes only to hold it for e-reporting is no invoice to check.
        if let Some(p) = layout.route.and_then(|r| route::e_reporting(r, &md.doc)) {
            return vec![p];
        }
        let v = crate::einvoice::InvoiceView::new(md).with_profile(layout.profile);
        let mut p = crate::einvoice::rules::en16931(&v);
        if layout.profile.is_french_core() {
            p.extend(crate::einvoice::rules_fr::french_core(&v));
        }
        if layout.route == Some(Route::ChorusB2g) {
            p.extend(crate::einvoice::rules::chorus(&v));
        }
        return p;
    }
    let mut problems = Vec::new();
    let name = layout.format.as_str();
    if let Some(w) = layout.journal_width() {
        let code = &md.entry.journal_code;
        if code.chars().count() > w {
            problems.push(Problem::new(
                "journal-code-too-long",
                "journal.code",
                format!("journal code `{code}` is longer than the {w} characters of the {name} layout"),
                format!("use a journal code of at most {w} characters ([journal] in {mapping_file}, or `--journal`)"),
            ));
        }
    }
    let Some(width) = layout.account_width() else {
        return problems;
    };
    let view = EntryView::new(md, 1, md.doc.issue_date, layout);
    for l in &view.lines {
        let acc = text::fold(l.account(), layout.encoding);
        if acc.chars().count() > width {
            let (field, fix) = if l.aux.is_some() {
                (
                    "buyer.customer_id".to_owned(),
                    format!(
                        "give customer `{}` an auxiliary account of at most {width} characters in {mapping_file} ([customers.accounts])",
                        md.doc.customer_id()
                    ),
                )
            } else {
                (
                    format!("account ({} line)", role_name(l.role)),
                    format!("map it to an account of at most {width} characters in {mapping_file}, or lower account_length"),
                )
            };
            problems.push(Problem::new(
                "account-too-long",
                field,
                format!(
                    "account `{acc}` of the {} line has {} characters; the {name} layout holds {width}, and a cut account would book elsewhere",
                    role_name(l.role),
                    acc.chars().count()
                ),
                fix,
            ));
        }
        if layout.format == JournalFormat::Quadratus && !quadratus::amount_fits(l.amount()) {
            problems.push(Problem::new(
                "amount-too-large",
                "totals.gross",
                format!(
                    "amount {} does not fit the 12 digits (in cents) of a Quadratus record",
                    l.amount()
                ),
                "export this document in the FEC layout",
            ));
        }
        if layout.format == JournalFormat::Ciel && !ciel::amount_fits(l.amount()) {
            problems.push(Problem::new(
                "amount-too-large",
                "totals.gross",
                format!(
                    "amount {} does not fit the 13 characters of a XIMPORT record",
                    l.amount()
                ),
                "export this document in the FEC layout",
            ));
        }
    }
    problems
}

/// Where a batch's file goes: an optional folder of its own (layouts whose file name is fixed,
/// so that batches never overwrite each other) and the file name.
pub fn file_location(
    layout: &Layout,
    siren: &str,
    closing: NaiveDate,
    id: u64,
    from: NaiveDate,
    to: NaiveDate,
    journal: &str,
) -> (Option<String>, String) {
    let span = format!("{}_{}", from.format("%Y%m%d"), to.format("%Y%m%d"));
    // The journal code comes from data (mapping, job, --journal): it never shapes the path.
    let journal = &crate::fsutil::safe_name(journal);
    let folder = format!("{journal}_{span}_B{id:06}");
    if layout.is_einvoice() {
        return (
            None,
            format!("{}_{span}_B{id:06}.zip", layout.format.as_str()),
        );
    }
    match layout.format {
        JournalFormat::Fec => (Some(folder), fec::file_name(siren, closing, "")),
        JournalFormat::Ciel => (Some(folder), ciel::FILE_NAME.to_owned()),
        JournalFormat::CsvDocuments => (None, format!("{journal}_{span}_B{id:06}.csv")),
        JournalFormat::CsvLines => (None, format!("{journal}_lines_{span}_B{id:06}.csv")),
        f => {
            let ext = match f {
                JournalFormat::Quadratus | JournalFormat::Ebp => "txt",
                _ => "csv",
            };
            (
                None,
                format!("{}_{journal}_{span}_B{id:06}.{ext}", f.as_str()),
            )
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
