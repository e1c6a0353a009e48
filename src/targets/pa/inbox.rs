//! The PA as a source (issue 15 §3): the supplier invoices it received for the company. Flows of
//! type `SupplierInvoice`, direction `In`, changed since the job's cursor, are listed page by
//! page ([`super::feed`]), each downloaded as deposited (`docType=Original`) and read into a
//! document ([`crate::einvoice::read::read_received`]: CII, UBL or Factur-X; id the seller and
//! the number). A flow that does not read is held with the reason. The cursor (the feed's
//! position) is saved by the run only when the pull completed, so a failure re-reads, never
//! skips; a document already in the ledger is then "already delivered".

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::{Flow, PaApi};
use super::config::PaConfig;
use super::feed::Feed;
use crate::model::DocParseError;
use crate::source::{Item, Page, Paged, SourceError};

/// A flow listed again this many seconds before the newest read is still seen (a PA that
/// indexes late); the ones read are skipped.
const OVERLAP_SECS: i64 = 300;

/// One pull of a PA's received invoices.
pub struct PaInbox {
    name: String,
    api: PaApi,
    feed: Feed,
    /// The cursor the pull started from (kept when the pull must read again).
    start: Option<Value>,
    page_size: usize,
    /// Listed, not read yet; `None` before the listing.
    pending: Option<VecDeque<Flow>>,
}

fn failed(name: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Config(format!(
        "the PA `{name}` could not list or send its received invoices: {e}; nothing after the last complete pull was taken, the next run reads again"
    ))
}

impl PaInbox {
    /// Opens the pull from the job's cursor.
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn open(
        name: &str,
        cfg: &PaConfig,
        cursor: Option<&Value>,
        page_size: usize,
    ) -> Result<PaInbox, SourceError> {
        let api = PaApi::new(cfg).map_err(|e| SourceError::Config(format!("{name}: {e}")))?;
        Ok(PaInbox {
            name: name.to_owned(),
            api,
            feed: Feed::at(
                cursor,
                json!({"flowType": ["SupplierInvoice"], "flowDirection": ["In"]}),
                OVERLAP_SECS,
            ),
            start: cursor.cloned(),
            page_size: page_size.max(1),
            pending: None,
        })
    }

    /// One flow as an item: its file read into a document, or held with the reason.
    async fn item(&self, f: &Flow) -> Result<Item, SourceError> {
        let origin = format!("PA {} flow {}", self.name, f.flow_id);
        let bad = |message: String| Item::Bad {
            id: format!("pa-flow:{}", f.flow_id),
            number: None,
            error: DocParseError {
                origin: origin.clone(),
                doc: "(whole flow)".into(),
                path: "(file)".into(),
                message,
            },
        };
        let bytes = match self.api.original(&f.flow_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(bad("the PA lists the flow but has no file for it".into())),
            Err(e) => return Err(failed(&self.name, e)),
        };
        let at = f.updated_at.clone().unwrap_or_default();
        let at = super::feed::rfc3339(&at)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
        Ok(
            match crate::einvoice::read::read_received(&bytes, &at, &origin) {
                Ok(doc) => Item::Doc {
                    doc: Box::new(doc),
                    origin,
                    hash: Some(hex::encode(Sha256::digest(&bytes))),
                },
                Err(e) => bad(format!("{e}; ask the supplier for a corrected invoice")),
            },
        )
    }

    async fn next(&mut self) -> Result<Option<Page>, SourceError> {
        if self.pending.is_none() {
            let flows = self
                .feed
                .changes(&self.api)
                .await
                .map_err(|e| failed(&self.name, e))?;
            self.pending = Some(flows.into());
        }
        let mut page = Page::default();
        while page.items.len() < self.page_size {
            let Some(f) = self.pending.as_mut().and_then(VecDeque::pop_front) else {
                break;
            };
            let item = self.item(&f).await?;
            page.items.push(item);
            self.feed.handled(&f);
        }
        if page.items.is_empty() {
            self.feed.finish();
            return Ok(None);
        }
        Ok(Some(page))
    }
}

impl Paged for PaInbox {
    fn next_page(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Page>, SourceError>> + Send + '_>> {
        Box::pin(self.next())
    }

    /// The feed's position once every listed flow was read; the starting one when some
    /// documents must be read again.
    fn cursor_before(&self, origins: &std::collections::BTreeSet<String>) -> Value {
        match origins.is_empty() {
            true => self.feed.position(),
            false => self.start.clone().unwrap_or(Value::Null),
        }
    }
}
