//! The Chorus Pro target: deposits EN 16931 documents of public buyers through the API and
//! follows them to payment. Ledger order for every flow: records claimed and flushed → deposit →
//! flow number recorded at once. A deposit whose answer was lost stays claimed and is looked up
//! by invoice number (`rechercher/fournisseur`) at the next run before anything is deposited
//! again. Statuses (flow report, then the invoice's history) move records to accepted, paid or
//! rejected; a rejected document is sent again only when a user asks (`facto ledger retry`).

pub mod answer;
pub mod api;
pub mod config;
mod poll;

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use self::api::{CachedStructure, ChorusApi, ChorusError};
use self::config::{ChorusConfig, EinvoiceSyntax};
use super::driver::{Found, Lot, LotDoc, Outcome, Polled, Receipt, Target};
use super::{remote, TargetError};
use crate::einvoice::{rules, InvoiceView};
use crate::format::JournalFormat;
use crate::format::{self, zip::Zip, Layout};
use crate::ledger::{Ledger, Record, State};
use crate::mapping::MappedDocument;
use crate::problem::Problem;

/// The ledger state of a Chorus Pro invoice status.
pub fn state_for(status: &str) -> State {
    match status {
        "REJETEE" => State::Rejected,
        "MISE_EN_PAIEMENT" => State::Paid,
        "MISE_A_DISPOSITION"
        | "MISE_A_DISPOSITION_COMPTABLE"
        | "SERVICE_FAIT"
        | "MANDATEE"
        | "COMPTABILISEE"
        | "COMPLETEE"
        | "PRISE_EN_COMPTE_DESTINATAIRE" => State::Accepted,
        _ => State::Delivered,
    }
}

/// One run's delivery to a Chorus Pro target.
pub struct ChorusRun {
    name: String,
    cfg: ChorusConfig,
    api: Option<ChorusApi>,
}

impl ChorusRun {
    /// Prepares a run; the secrets are read now (not in a dry run, which calls nothing).
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn new(name: &str, cfg: &ChorusConfig, dry_run: bool) -> Result<Self, TargetError> {
        Ok(ChorusRun {
            api: super::client(name, dry_run, || ChorusApi::new(cfg))?,
            name: name.to_owned(),
            cfg: cfg.clone(),
        })
    }

    /// The document layout of a connector (scope and rules as for Chorus Pro files).
    pub fn layout(cfg: &ChorusConfig) -> Layout {
        Layout::default_for(match cfg.syntax {
            EinvoiceSyntax::Cii => JournalFormat::ChorusCii,
            EinvoiceSyntax::Ubl => JournalFormat::ChorusUbl,
        })
    }

    fn syntax_code(&self) -> &'static str {
        match self.cfg.syntax {
            EinvoiceSyntax::Cii => "IN_DP_E1_CII_16B",
            EinvoiceSyntax::Ubl => "IN_DP_E1_UBL_INVOICE",
        }
    }

    fn api(&self) -> Result<&ChorusApi, TargetError> {
        self.api
            .as_ref()
            .ok_or_else(|| TargetError::Config("Chorus Pro is not called in a dry run".into()))
    }

    fn structure_key(target: &str, siret: &str) -> String {
        format!("chorus-structure\0{target}\0{siret}")
    }

    /// What the buyer's structure settings, as last read from Chorus Pro and still cached,
    /// say of a document (for `preview`, which calls nothing remote).
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub fn cached_structure_problems(
        ledger: &dyn Ledger,
        target: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        let Some(siret) = md.doc.buyer.siret.as_deref() else {
            return Ok(Vec::new());
        };
        let cached: Option<CachedStructure> = ledger
            .value(&Self::structure_key(target, siret))?
            .and_then(|v| serde_json::from_value(v).ok());
        Ok(match cached.and_then(|c| c.rules) {
            Some(r) => rules::structure(&InvoiceView::new(md), &r),
            None => Vec::new(),
        })
    }

    async fn structure_problems(
        &self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        let Some(siret) = md.doc.buyer.siret.as_deref() else {
            return Ok(Vec::new());
        };
        let key = Self::structure_key(&self.name, siret);
        let ttl = Duration::hours(i64::try_from(self.cfg.structure_cache_hours).unwrap_or(24));
        let cached: Option<CachedStructure> = ledger
            .value(&key)?
            .and_then(|v| serde_json::from_value(v).ok())
            .filter(|c: &CachedStructure| Utc::now() - c.read_at < ttl);
        let rules = match cached {
            Some(c) => c.rules,
            None => {
                let rules = self
                    .api()?
                    .structure(siret)
                    .await
                    .map_err(|e| remote(&self.name, &e))?;
                let c = CachedStructure {
                    read_at: Utc::now(),
                    rules,
                };
                ledger.put_value(&key, &serde_json::to_value(&c).unwrap_or_default())?;
                rules
            }
        };
        Ok(match rules {
            None => vec![Problem::new(
                "CHORUS-STRUCTURE-UNKNOWN",
                "buyer.siret",
                format!("CHORUS-STRUCTURE-UNKNOWN: SIRET {siret} is not a structure of the Chorus Pro directory"),
                "check the customer's SIRET, or clear its `chorus` flag if it is not a public buyer",
            )],
            Some(r) => rules::structure(&InvoiceView::new(md), &r),
        })
    }
}

/// How a deposit whose outcome is unknown is found again.
const LOOKED_UP: &str = "Chorus Pro is asked for it before any new deposit";

/// One deposit: the file (one document, or a zip of several) and its name.
pub struct Deposit {
    file: Vec<u8>,
    file_name: String,
}

impl Target for ChorusRun {
    type Ready = ();
    type Payload = Deposit;
    const SENT_POINT: &'static str = "after-deposit";
    const POLLED: &'static [State] = &[State::Delivered, State::Accepted];

    fn name(&self) -> &str {
        &self.name
    }

    fn grace_minutes(&self) -> u64 {
        self.cfg.lookup_grace_minutes
    }

    fn lot_size(&self) -> usize {
        self.cfg.lot_size
    }

    /// Public buyers only (the Chorus route), with Chorus Pro's rules.
    fn layout(&self) -> Option<Layout> {
        Some(Self::layout(&self.cfg))
    }

    fn offline_problems(
        &self,
        ledger: &dyn Ledger,
        _origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        Self::cached_structure_problems(ledger, &self.name, md)
    }

    /// The buyer's structure settings (cached in the ledger).
    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        _rec: &Record,
    ) -> Result<Result<(), Vec<Problem>>, TargetError> {
        let problems = self.structure_problems(ledger, md).await?;
        Ok(if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        })
    }

    /// One document is deposited as its XML; several as a zip (a flow).
    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, ())>,
        run_id: &str,
    ) -> Result<Lot<Deposit>, TargetError> {
        let layout = Self::layout(&self.cfg);
        let files: Vec<(String, Vec<u8>)> = docs
            .iter()
            .map(|(md, _, ())| {
                (
                    format::einvoice_name(&layout, &md.doc.number),
                    format::einvoice_xml(&layout, md).unwrap_or_default(),
                )
            })
            .collect();
        let (file, file_name) = match files.as_slice() {
            [(name, xml)] => (xml.clone(), name.clone()),
            _ => {
                let mut zip = Zip::default();
                let mut bytes = Vec::new();
                for ((name, xml), (md, _, ())) in files.iter().zip(&docs) {
                    let entry = zip.entry(name, xml, md.doc.issue_date, bytes.len() as u64);
                    bytes.extend(entry);
                }
                let end = zip.finish(bytes.len() as u64);
                bytes.extend(end);
                let syntax = if self.cfg.syntax == EinvoiceSyntax::Cii {
                    "CII"
                } else {
                    "UBL"
                };
                let first = docs
                    .first()
                    .map_or("", |(md, _, ())| md.doc.number.as_str());
                (bytes, format!("{syntax}_chorus_lot_{run_id}_{first}.zip"))
            }
        };
        Ok(Lot {
            docs: docs
                .into_iter()
                .zip(&files)
                .map(|((md, rec, ()), (_, xml))| LotDoc {
                    md,
                    rec,
                    payload_hash: hex::encode(Sha256::digest(xml)),
                })
                .collect(),
            label: format!("Chorus Pro deposit {file_name}"),
            payload: Deposit { file, file_name },
            key: None,
            values: Vec::new(),
        })
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<Deposit>,
    ) -> Result<Outcome, TargetError> {
        let d = &lot.payload;
        let result = self
            .api()?
            .deposit(&d.file, &d.file_name, self.syntax_code())
            .await;
        Ok(match result {
            Ok(dep) => Outcome::Delivered(Receipt {
                remote_id: None,
                status: Some("DEPOSEE".into()),
                note: format!("deposited on Chorus Pro, flow {}", dep.numero_flux_depot),
                key: Some(dep.numero_flux_depot),
            }),
            Err(ChorusError::Refused { code, libelle }) => Outcome::refused(
                format!("Chorus Pro refused the deposit: {libelle} (code {code})"),
                "deposit refused by Chorus Pro",
            ),
            Err(e) => Outcome::failed(&self.name, &e, LOOKED_UP, "not deposited"),
        })
    }

    /// By invoice number (`rechercher/fournisseur`); an earlier deposit of the same number
    /// that was rejected is not this one.
    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        let found = self
            .api()?
            .search(json!({"numeroFacture": r.number}))
            .await
            .map_err(|e| remote(&self.name, &e))?;
        let hit = found
            .into_iter()
            .find(|f| f.numero_facture == r.number && f.statut.as_deref() != Some("REJETEE"));
        Ok(hit.map(|f| {
            let status = f.statut.clone().unwrap_or_else(|| "DEPOSEE".into());
            Found {
                state: state_for(&status),
                receipt: Receipt {
                    remote_id: Some(f.identifiant_facture_cpp.to_string()),
                    note: format!(
                        "found on Chorus Pro after an interrupted deposit (flow {}, {status}): not deposited again",
                        f.numero_flux_depot.as_deref().unwrap_or("?")
                    ),
                    status: Some(status),
                    key: f.numero_flux_depot,
                },
            }
        }))
    }

    fn waiting_note(&self) -> String {
        "deposit interrupted; Chorus Pro does not list it yet, looked up again at the next run"
            .into()
    }

    fn released_note(&self) -> String {
        format!(
            "not on Chorus Pro {} minutes after an interrupted deposit: released for a new deposit",
            self.cfg.lookup_grace_minutes
        )
    }

    async fn poll(
        &mut self,
        _ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        let api = self.api()?;
        poll::follow(api, &self.name, live)
            .await
            .map_err(|e| remote(&self.name, &e))
    }
}
