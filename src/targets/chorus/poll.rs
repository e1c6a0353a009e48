//! Following deposited documents on Chorus Pro: flow reports first (a flow's invoices have no
//! Chorus Pro id until it is integrated), then each invoice's status history. The two statuses
//! that wait for the supplier say how to answer.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::json;

use super::api::{ChorusApi, ChorusError};
use super::state_for;
use crate::ledger::{Record, State};
use crate::targets::driver::Polled;

/// What changed for the records delivered or accepted on Chorus Pro.
///
/// # Errors
///
/// Chorus Pro unreachable.
pub(super) async fn follow(
    api: &ChorusApi,
    name: &str,
    live: Vec<Record>,
) -> Result<Polled, ChorusError> {
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
        let report = api.flow_report(&flow).await?;
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
                        r.number, name
                    ));
                    changed.push(r);
                }
            }
            "IN_INTEGRE" | "IN_INTEGRE_PARTIEL" | "QP_RECEVABLE" | "QP_RECEVABLE_AVEC_ERREUR" => {
                let found = api.search(json!({"numeroFluxDepot": flow})).await?;
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
                            r.number, name
                        ));
                        changed.push(r);
                    } else if let Some(f) = found.iter().find(|f| f.numero_facture == r.number) {
                        let status = f.statut.clone().unwrap_or_else(|| "DEPOSEE".into());
                        r.remote_id = Some(f.identifiant_facture_cpp.to_string());
                        r.remote_status = Some(status.clone());
                        let st = state_for(&status);
                        changes.push(format!(
                            "{} ({}): flow {flow} {etat}, invoice {} {status}",
                            r.number, name, f.identifiant_facture_cpp
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
                        changes.push(format!("{} ({}): flow {flow} {etat}", r.number, name));
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
        let h = api.history(id).await?;
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
            name,
            r.remote_status.as_deref().unwrap_or("?"),
            h.status,
            todo.map(|t| format!(": {t}")).unwrap_or_default()
        ));
        r.remote_status = Some(h.status.clone());
        r.transition(st, format!("Chorus Pro status {}", h.status), now);
        changed.push(r);
    }
    Ok(Polled { changed, changes })
}
