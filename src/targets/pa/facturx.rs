//! The file of a PA flow: the French-core XML of the connector's syntax, or, with
//! `syntax = "facturx"`, a Factur-X PDF/A-3 carrying that CII (`einvoice::facturx`): the
//! invoice's own PDF when the document names one (read under the attachment rule: inside the
//! source's folders), else the one facto draws.

use super::config::PaSyntax;
use super::PaRun;
use crate::einvoice::{facturx, InvoiceView};
use crate::format;
use crate::ledger::Record;
use crate::mapping::MappedDocument;
use crate::model::AttachmentKind;
use crate::problem::Problem;
use crate::source::attachments::AttachmentRoots;

impl PaRun {
    /// The folders the documents' invoice PDFs are read from (the job's source's).
    pub fn with_attachments(mut self, roots: AttachmentRoots) -> Self {
        self.attachments = roots;
        self
    }

    /// The company's wording of the PMT, PMD and AAB notes, for the documents that have none.
    pub fn with_notes(mut self, notes: crate::company::InvoiceNotes) -> Self {
        self.notes = notes;
        self
    }

    /// The bytes sent for a document; the same document always gives the same bytes.
    pub(super) fn flow_file(&self, md: &MappedDocument, rec: &Record) -> Result<Vec<u8>, Problem> {
        let layout = Self::layout(&self.cfg);
        let xml = format::einvoice_xml(&layout, md).unwrap_or_default();
        if self.cfg.syntax != PaSyntax::Facturx {
            return Ok(xml);
        }
        let view = InvoiceView::new(md).with_profile(layout.profile);
        let own = md
            .doc
            .attachments
            .iter()
            .find(|a| a.kind == AttachmentKind::InvoicePdf && a.path.is_some());
        let Some(att) = own else {
            return facturx::render(&view, &xml).map_err(|e| problem(&e));
        };
        let pdf = self
            .attachments
            .read(&rec.origin, att)
            .map_err(|e| Problem::new(e.code(), "attachments", e.to_string(), e.fix()))?;
        facturx::attach(&pdf.bytes, &view, &xml).map_err(|e| problem(&e))
    }
}

fn problem(e: &facturx::FacturxError) -> Problem {
    Problem::new(
        "facturx",
        "attachments",
        e.to_string(),
        "give a readable, unencrypted PDF as the invoice_pdf attachment, or none (facto then draws the invoice)",
    )
}
