//! The file of a PA flow: the French-core XML of the connector's syntax, or, with
//! `syntax = "facturx"`, a Factur-X PDF/A-3 carrying that CII (`einvoice::facturx`).

use super::config::PaSyntax;
use super::PaRun;
use crate::einvoice::{facturx, InvoiceView};
use crate::format;
use crate::ledger::Record;
use crate::mapping::MappedDocument;
use crate::problem::Problem;

impl PaRun {
    /// The bytes sent for a document; the same document always gives the same bytes.
    pub(super) fn flow_file(&self, md: &MappedDocument, _rec: &Record) -> Result<Vec<u8>, Problem> {
        let layout = Self::layout(&self.cfg);
        let xml = format::einvoice_xml(&layout, md).unwrap_or_default();
        if self.cfg.syntax != PaSyntax::Facturx {
            return Ok(xml);
        }
        let view = InvoiceView::new(md).with_profile(layout.profile);
        facturx::render(&view, &xml).map_err(|e| problem(&e))
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
