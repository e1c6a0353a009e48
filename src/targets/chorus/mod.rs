//! The Chorus Pro target: deposits EN 16931 documents of public buyers through the API and
//! follows them to payment. Ledger order for every flow: records claimed and flushed → deposit →
//! flow number recorded at once. A deposit whose answer was lost stays claimed and is looked up
//! by invoice number (`rechercher/fournisseur`) at the next run before anything is deposited
//! again. Statuses (flow report, then the invoice's history) move records to accepted, paid or
//! rejected; a rejected document is sent again only when a user asks (`facto ledger retry`).

pub mod answer;
pub mod api;
pub mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use self::api::{CachedStructure, ChorusApi, ChorusError};
use super::TargetError;
use crate::config::{ChorusConfig, EinvoiceSyntax, JournalFormat};
use crate::einvoice::{rules, InvoiceView};
use crate::fault;
use crate::format::{self, zip::Zip, Layout};
use crate::ledger::{Ledger, Record, RecordFilter, State};
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
    job: String,
    cfg: ChorusConfig,
    api: Option<ChorusApi>,
    dry_run: bool,
    delivered: u64,
}

fn remote(target: &str, e: &ChorusError) -> TargetError {
    match e {
        ChorusError::Config(m) => TargetError::Config(m.clone()),
        e => TargetError::Remote {
            target: target.to_owned(),
            detail: e.to_string(),
        },
    }
}

impl ChorusRun {
    /// Prepares a run; the secrets are read now (not in a dry run, which calls nothing).
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn new(
        name: &str,
        job: &str,
        cfg: &ChorusConfig,
        dry_run: bool,
    ) -> Result<Self, TargetError> {
        let api = if dry_run {
            None
        } else {
            Some(ChorusApi::new(cfg).map_err(|e| remote(name, &e))?)
        };
        Ok(ChorusRun {
            name: name.to_owned(),
            job: job.to_owned(),
            cfg: cfg.clone(),
            api,
            dry_run,
            delivered: 0,
        })
    }

    /// Target name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Documents deposited in this run.
    pub fn delivered(&self) -> u64 {
        self.delivered
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

    fn filter(&self, state: State) -> RecordFilter {
        RecordFilter {
            job: Some(self.job.clone()),
            target: Some(self.name.clone()),
            state: Some(state),
        }
    }

    /// Settles deposits whose answer was lost (a crash, a timeout): an invoice Chorus Pro knows
    /// is recorded as deposited; one it still does not know after `lookup_grace_minutes` is
    /// released for a new deposit. Returns what was done, for the report.
    ///
    /// # Errors
    ///
    /// Ledger failure, or Chorus Pro unreachable (the records stay claimed).
    pub async fn reconcile(&self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        let claimed = ledger.list(&self.filter(State::Claimed))?;
        if claimed.is_empty() || self.dry_run {
            return Ok(Vec::new());
        }
        let api = self.api()?;
        let now = Utc::now();
        let mut notes = Vec::new();
        let mut changed = Vec::new();
        for mut r in claimed {
            let found = api
                .search(json!({"numeroFacture": r.number}))
                .await
                .map_err(|e| remote(&self.name, &e))?;
            // An earlier deposit of the same number that was rejected is not this one.
            let hit = found
                .into_iter()
                .find(|f| f.numero_facture == r.number && f.statut.as_deref() != Some("REJETEE"));
            match hit {
                Some(f) => {
                    let status = f.statut.clone().unwrap_or_else(|| "DEPOSEE".into());
                    r.remote_id = Some(f.identifiant_facture_cpp.to_string());
                    r.idempotency_key.clone_from(&f.numero_flux_depot);
                    r.remote_status = Some(status.clone());
                    r.last_error = None;
                    let note = format!(
                        "found on Chorus Pro after an interrupted deposit (flow {}, {status}): not deposited again",
                        f.numero_flux_depot.as_deref().unwrap_or("?")
                    );
                    notes.push(format!("{} ({}): {note}", r.number, self.name));
                    r.transition(state_for(&status), note, now);
                    changed.push(r);
                }
                None => {
                    if !crate::targets::in_lookup_grace(&r, self.cfg.lookup_grace_minutes, now) {
                        let note = format!(
                            "not on Chorus Pro {} minutes after an interrupted deposit: released for a new deposit",
                            self.cfg.lookup_grace_minutes
                        );
                        notes.push(format!("{} ({}): {note}", r.number, self.name));
                        r.transition(State::Released, note, now);
                        changed.push(r);
                    } else {
                        notes.push(format!(
                            "{} ({}): {}: deposit interrupted; Chorus Pro does not list it yet, looked up again at the next run",
                            r.number, self.name, crate::targets::WAITING
                        ));
                    }
                }
            }
        }
        ledger.put_records(&changed)?;
        Ok(notes)
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

    /// Checks each document against its buyer's structure settings, then deposits the rest in
    /// flows of `lot_size` documents.
    ///
    /// # Errors
    ///
    /// Ledger failure, or Chorus Pro unreachable or refusing the credentials: what was not
    /// deposited is released, a deposit with no answer stays claimed for the next lookup.
    pub async fn deliver_page(
        &mut self,
        ledger: &dyn Ledger,
        docs: Vec<(Arc<MappedDocument>, Record)>,
        mut others: Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        if self.dry_run {
            self.delivered += docs.len() as u64;
            return Ok(());
        }
        let now = Utc::now();
        let mut ready = Vec::with_capacity(docs.len());
        for (md, mut rec) in docs {
            let problems = self.structure_problems(ledger, &md).await?;
            if problems.is_empty() {
                ready.push((md, rec));
            } else {
                rec.hold(problems, serde_json::to_value(&md.doc).ok(), run_id, now);
                others.push(rec);
            }
        }
        if ready.is_empty() {
            ledger.put_records(&others)?;
            return Ok(());
        }
        let layout = Self::layout(&self.cfg);
        let mut rest = ready.into_iter().peekable();
        while rest.peek().is_some() {
            let lot: Vec<_> = rest.by_ref().take(self.cfg.lot_size).collect();
            let docs: Vec<(String, Vec<u8>)> = lot
                .iter()
                .map(|(md, _)| {
                    (
                        format::einvoice_name(&layout, &md.doc.number),
                        format::einvoice_xml(&layout, md).unwrap_or_default(),
                    )
                })
                .collect();
            let (file, file_name) = if docs.len() == 1 {
                let (name, xml) = docs[0].clone();
                (xml, name)
            } else {
                let mut zip = Zip::default();
                let mut bytes = Vec::new();
                for ((name, xml), (md, _)) in docs.iter().zip(&lot) {
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
                (
                    bytes,
                    format!("{syntax}_chorus_lot_{}_{}.zip", run_id, lot[0].0.doc.number),
                )
            };
            let mut claimed: Vec<Record> = lot
                .into_iter()
                .zip(&docs)
                .map(|((_, mut rec), (_, xml))| {
                    rec.payload_hash = Some(hex::encode(Sha256::digest(xml)));
                    rec.attempts += 1;
                    rec.last_error = None;
                    rec.remote_id = None;
                    rec.remote_status = None;
                    rec.idempotency_key = None;
                    rec.transition(
                        State::Claimed,
                        format!("run {run_id}: claimed for Chorus Pro deposit {file_name}"),
                        now,
                    );
                    rec
                })
                .collect();
            let mut first = claimed.clone();
            first.append(&mut others);
            ledger.put_records(&first)?;
            fault::point("after-claim", &self.name);
            let result = self
                .api()?
                .deposit(&file, &file_name, self.syntax_code())
                .await;
            let now = Utc::now();
            match result {
                Ok(dep) => {
                    fault::point("after-deposit", &self.name);
                    for r in &mut claimed {
                        r.idempotency_key = Some(dep.numero_flux_depot.clone());
                        r.remote_status = Some("DEPOSEE".into());
                        r.transition(
                            State::Delivered,
                            format!("deposited on Chorus Pro, flow {}", dep.numero_flux_depot),
                            now,
                        );
                    }
                    ledger.put_records(&claimed)?;
                    self.delivered += claimed.len() as u64;
                }
                Err(ChorusError::Refused { code, libelle }) => {
                    for r in &mut claimed {
                        r.last_error = Some(format!(
                            "Chorus Pro refused the deposit: {libelle} (code {code})"
                        ));
                        r.transition(State::Failed, "deposit refused by Chorus Pro", now);
                    }
                    ledger.put_records(&claimed)?;
                }
                Err(e @ ChorusError::Unknown(_)) => {
                    for r in &mut claimed {
                        r.last_error = Some(format!(
                            "{e}; Chorus Pro is asked for it before any new deposit"
                        ));
                    }
                    ledger.put_records(&claimed)?;
                    return Err(remote(&self.name, &e));
                }
                Err(e) => {
                    // Certainly not deposited (no connection, credentials refused): free them.
                    for r in &mut claimed {
                        r.last_error = Some(e.to_string());
                        r.transition(State::Released, format!("not deposited: {e}"), now);
                    }
                    ledger.put_records(&claimed)?;
                    return Err(remote(&self.name, &e));
                }
            }
        }
        Ok(())
    }

    /// Follows deposited documents: flow reports first, then each invoice's status history.
    /// Returns the changes, for the report.
    ///
    /// # Errors
    ///
    /// Ledger failure, or Chorus Pro unreachable.
    pub async fn poll(&self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        let api = self.api()?;
        let mut live = ledger.list(&self.filter(State::Delivered))?;
        live.extend(ledger.list(&self.filter(State::Accepted))?);
        let mut changes = Vec::new();
        let mut changed = Vec::new();
        let now = Utc::now();
        // Flows whose invoices have no Chorus Pro id yet.
        let mut flows: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        let mut known = Vec::new();
        for r in live {
            match (&r.remote_id, &r.idempotency_key) {
                (None, Some(flow)) => flows.entry(flow.clone()).or_default().push(r),
                (Some(_), _) => known.push(r),
                (None, None) => {}
            }
        }
        for (flow, recs) in flows {
            let report = api
                .flow_report(&flow)
                .await
                .map_err(|e| remote(&self.name, &e))?;
            let etat = report
                .etat_courant_depot_flux
                .clone()
                .unwrap_or_else(|| "IN_RECU".into());
            let technical: Vec<String> = report
                .liste_erreur_technique
                .iter()
                .filter_map(|e| e.libelle_erreur.clone())
                .collect();
            match etat.as_str() {
                "IN_REJETE" | "IN_INCIDENTE" | "QP_IRRECEVABLE" => {
                    let dp: Vec<String> = report
                        .liste_erreur_dp
                        .iter()
                        .filter_map(|e| e.libelle_erreur_dp.clone())
                        .collect();
                    let reason = [technical, dp].concat().join("; ");
                    for mut r in recs {
                        r.remote_status = Some(etat.clone());
                        r.last_error = Some(format!(
                            "Chorus Pro rejected flow {flow} ({etat}): {reason}"
                        ));
                        r.transition(State::Rejected, format!("flow {flow}: {etat}"), now);
                        changes.push(format!(
                            "{} ({}): flow {flow} {etat}: rejected: {reason}",
                            r.number, self.name
                        ));
                        changed.push(r);
                    }
                }
                "IN_INTEGRE"
                | "IN_INTEGRE_PARTIEL"
                | "QP_RECEVABLE"
                | "QP_RECEVABLE_AVEC_ERREUR" => {
                    let found = api
                        .search(json!({"numeroFluxDepot": flow}))
                        .await
                        .map_err(|e| remote(&self.name, &e))?;
                    for mut r in recs {
                        let dp_error = report
                            .liste_erreur_dp
                            .iter()
                            .find(|e| e.numero_dp.as_deref() == Some(r.number.as_str()));
                        if let Some(e) = dp_error {
                            let why = e.libelle_erreur_dp.clone().unwrap_or_default();
                            r.remote_status = Some(etat.clone());
                            r.last_error =
                                Some(format!("Chorus Pro rejected it in flow {flow}: {why}"));
                            r.transition(State::Rejected, format!("flow {flow}: {why}"), now);
                            changes.push(format!(
                                "{} ({}): rejected in flow {flow}: {why}",
                                r.number, self.name
                            ));
                            changed.push(r);
                        } else if let Some(f) = found.iter().find(|f| f.numero_facture == r.number)
                        {
                            let status = f.statut.clone().unwrap_or_else(|| "DEPOSEE".into());
                            r.remote_id = Some(f.identifiant_facture_cpp.to_string());
                            r.remote_status = Some(status.clone());
                            let st = state_for(&status);
                            changes.push(format!(
                                "{} ({}): flow {flow} {etat}, invoice {} {status}",
                                r.number, self.name, f.identifiant_facture_cpp
                            ));
                            r.transition(
                                st,
                                format!(
                                    "flow {flow} {etat}; Chorus Pro invoice {} {status}",
                                    f.identifiant_facture_cpp
                                ),
                                now,
                            );
                            changed.push(r);
                        }
                    }
                }
                _ => {
                    for mut r in recs {
                        if r.remote_status.as_deref() != Some(etat.as_str()) {
                            changes
                                .push(format!("{} ({}): flow {flow} {etat}", r.number, self.name));
                            r.remote_status = Some(etat.clone());
                            r.updated_at = now;
                            changed.push(r);
                        }
                    }
                }
            }
        }
        for mut r in known {
            let Some(id) = r.remote_id.as_deref().and_then(|i| i.parse::<i64>().ok()) else {
                continue;
            };
            let h = api.history(id).await.map_err(|e| remote(&self.name, &e))?;
            if r.remote_status.as_deref() == Some(h.status.as_str()) {
                continue;
            }
            let st = state_for(&h.status);
            if st == State::Rejected {
                r.last_error = Some(format!(
                    "rejected by the buyer on Chorus Pro: {}",
                    h.comment
                        .clone()
                        .unwrap_or_else(|| "no reason given".into())
                ));
            }
            // The two statuses that wait for the supplier say how to answer.
            let todo = match h.status.as_str() {
                "SUSPENDUE" => Some(format!(
                    "the buyer suspended it ({}); answer with `facto chorus complete {} --comment \"...\" [--attach FILE]`",
                    h.comment.as_deref().unwrap_or("no reason given"),
                    r.key.doc_id
                )),
                "A_RECYCLER" => Some(format!(
                    "the buyer sends it back for routing ({}); answer with `facto chorus recycle {} --buyer SIRET [--service CODE] [--commitment NUMBER]`",
                    h.comment.as_deref().unwrap_or("no reason given"),
                    r.key.doc_id
                )),
                _ => None,
            };
            match &todo {
                Some(t) => r.last_error = Some(t.clone()),
                // A waiting status answered, or an answer whose outcome was unknown: settled.
                None if st != State::Rejected => r.last_error = None,
                None => {}
            }
            changes.push(format!(
                "{} ({}): {} → {}{}",
                r.number,
                self.name,
                r.remote_status.as_deref().unwrap_or("?"),
                h.status,
                todo.map(|t| format!(": {t}")).unwrap_or_default()
            ));
            r.remote_status = Some(h.status.clone());
            r.transition(st, format!("Chorus Pro status {}", h.status), now);
            changed.push(r);
        }
        ledger.put_records(&changed)?;
        Ok(changes)
    }
}
