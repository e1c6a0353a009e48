//! What a Pennylane import refers to, looked up in bulk: the customers and ledger accounts of a
//! whole page in one list call each (`in` filter), cached for the run, instead of one call per
//! document. Should Pennylane refuse a bulk filter, each is looked up alone, as before.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::api::{filter_eq, PennylaneError};
use super::{account_key, PennylaneRun};
use crate::model::Document;
use crate::problem::Problem;
use crate::targets::driver::Doc;
use crate::targets::{remote, TargetError};

/// How many values one `in` filter holds (the query string stays short).
const CHUNK: usize = 50;

/// What the documents of the page being delivered will look up.
#[derive(Default)]
pub(super) struct Wanted {
    /// Customers' external references.
    customers: Vec<String>,
    /// Ledger account numbers as mapped.
    accounts: Vec<String>,
}

/// An `in` filter on `field`.
fn filter_in(field: &str, values: &[String]) -> String {
    json!([{"field": field, "operator": "in", "value": values}]).to_string()
}

/// Rows of an enabled ledger account: (id, vat_rate, number).
fn account_rows(found: &[Value]) -> Vec<(i64, String, String)> {
    found
        .iter()
        .filter(|v| v.get("enabled").and_then(Value::as_bool) != Some(false))
        .filter_map(|v| {
            Some((
                v.get("id")?.as_i64()?,
                v.get("vat_rate")
                    .and_then(Value::as_str)
                    .unwrap_or("any")
                    .to_owned(),
                v.get("number")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The rows for `number`: those numbered exactly so, else those numbered as its key.
fn rows_for(number: &str, rows: &[(i64, String, String)]) -> Vec<(i64, String)> {
    let key = account_key(number);
    for candidate in [number, key.as_str()] {
        let hit: Vec<(i64, String)> = rows
            .iter()
            .filter(|(_, _, n)| n == candidate && account_key(n) == key)
            .map(|(id, vat, _)| (*id, vat.clone()))
            .collect();
        if !hit.is_empty() {
            return hit;
        }
    }
    Vec::new()
}

impl PennylaneRun {
    /// Notes what `docs` (a page, in delivery order) will look up, for the bulk lookups.
    pub(super) fn want(&self, docs: &[Doc]) {
        let Ok(mut w) = self.wanted.lock() else {
            return;
        };
        for (md, _) in docs {
            w.customers.push(md.doc.customer_id().to_owned());
            w.accounts
                .extend(md.lines.iter().map(|m| m.account.clone()));
        }
    }

    fn take_wanted(&self) -> Wanted {
        self.wanted
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Looks up in bulk the accounts the page wants and the cache lacks; `false` when
    /// Pennylane refused the bulk filter.
    async fn prefetch_accounts(&mut self, numbers: Vec<String>) -> Result<bool, TargetError> {
        let mut numbers: Vec<String> = numbers
            .into_iter()
            .filter(|n| !self.accounts.contains_key(&account_key(n)))
            .collect();
        numbers.sort();
        numbers.dedup();
        let mut values: Vec<String> = numbers
            .iter()
            .flat_map(|n| [n.clone(), account_key(n)])
            .collect();
        values.sort();
        values.dedup();
        let mut rows = Vec::new();
        for chunk in values.chunks(CHUNK) {
            match self
                .api()?
                .list("/ledger_accounts", Some(filter_in("number", chunk)))
                .await
            {
                Ok(found) => rows.extend(account_rows(&found)),
                Err(PennylaneError::Refused { .. }) => return Ok(false),
                Err(e) => return Err(remote(&self.name, &e)),
            }
        }
        for n in &numbers {
            self.accounts
                .entry(account_key(n))
                .or_insert_with(|| rows_for(n, &rows));
        }
        Ok(true)
    }

    /// The ledger account of `number` for lines at `vat`.
    pub(super) async fn ledger_account(
        &mut self,
        number: &str,
        vat: &str,
    ) -> Result<Option<i64>, TargetError> {
        let key = account_key(number);
        if !self.accounts.contains_key(&key) && self.bulk {
            let mut wanted = self.take_wanted();
            wanted.accounts.push(number.to_owned());
            self.bulk = self.prefetch_accounts(wanted.accounts).await?;
            self.prefetch_customers(wanted.customers).await?;
        }
        if !self.accounts.contains_key(&key) {
            let mut rows = Vec::new();
            for candidate in [number.to_owned(), key.clone()] {
                let found = self
                    .api()?
                    .list("/ledger_accounts", Some(filter_eq("number", &candidate)))
                    .await
                    .map_err(|e| remote(&self.name, &e))?;
                rows = rows_for(number, &account_rows(&found));
                if !rows.is_empty() || candidate == key {
                    break;
                }
            }
            self.accounts.insert(key.clone(), rows);
        }
        let rows = &self.accounts[&key];
        Ok(rows
            .iter()
            .find(|(_, v)| v == vat)
            .or_else(|| rows.iter().find(|(_, v)| v == "any"))
            .or_else(|| rows.first())
            .map(|(id, _)| *id))
    }

    /// Looks up in bulk the customers the page wants and the cache lacks; those not found are
    /// noted as absent (created without another lookup).
    async fn prefetch_customers(&mut self, refs: Vec<String>) -> Result<(), TargetError> {
        if !self.bulk {
            return Ok(());
        }
        let mut refs: Vec<String> = refs
            .into_iter()
            .filter(|r| !self.customers.contains_key(r) && !self.absent.contains(r))
            .collect();
        refs.sort();
        refs.dedup();
        for chunk in refs.chunks(CHUNK) {
            let found = match self
                .api()?
                .list("/customers", Some(filter_in("external_reference", chunk)))
                .await
            {
                Ok(found) => found,
                Err(PennylaneError::Refused { .. }) => {
                    self.bulk = false;
                    return Ok(());
                }
                Err(e) => return Err(remote(&self.name, &e)),
            };
            let mut missing: HashSet<&String> = chunk.iter().collect();
            for v in &found {
                let (Some(ext), Some(id)) = (
                    v.get("external_reference").and_then(Value::as_str),
                    v.get("id").and_then(Value::as_i64),
                ) else {
                    continue;
                };
                if let Some(r) = missing.take(&ext.to_owned()) {
                    self.customers.insert(r.clone(), id);
                }
            }
            self.absent.extend(missing.into_iter().cloned());
        }
        Ok(())
    }

    /// The customer of `doc`: found by external reference, or created. Workers sharing the
    /// ledger create it one at a time, each looking it up again first, so it is created once.
    pub(super) async fn customer(
        &mut self,
        ledger: &dyn crate::ledger::Ledger,
        doc: &Document,
    ) -> Result<Result<i64, Problem>, TargetError> {
        if let Some(found) = self.known_customer(doc).await? {
            return Ok(Ok(found));
        }
        if ledger.worker().is_none() {
            return self.create_customer(doc).await;
        }
        let ext = doc.customer_id().to_owned();
        let name = format!("pennylane-customer\0{}\0{ext}", self.name);
        crate::targets::one_at_a_time(ledger, &name, async {
            self.absent.remove(&ext);
            match self.known_customer(doc).await? {
                Some(id) => Ok(Ok(id)),
                None => self.create_customer(doc).await,
            }
        })
        .await?
    }

    /// The customer of `doc` when Pennylane has it (from the cache, the page's bulk lookup, or
    /// one lookup by external reference).
    async fn known_customer(&mut self, doc: &Document) -> Result<Option<i64>, TargetError> {
        let ext = doc.customer_id().to_owned();
        if !self.customers.contains_key(&ext) && !self.absent.contains(&ext) {
            let mut wanted = self.take_wanted().customers;
            wanted.push(ext.clone());
            self.prefetch_customers(wanted).await?;
        }
        if let Some(id) = self.customers.get(&ext) {
            return Ok(Some(*id));
        }
        if !self.absent.contains(&ext) {
            let found = self
                .api()?
                .list("/customers", Some(filter_eq("external_reference", &ext)))
                .await
                .map_err(|e| remote(&self.name, &e))?;
            let hit = found
                .iter()
                .find(|v| v.get("external_reference").and_then(Value::as_str) == Some(ext.as_str()))
                .and_then(|v| v.get("id").and_then(Value::as_i64));
            if let Some(id) = hit {
                self.customers.insert(ext, id);
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Creates the customer of `doc` in Pennylane (a full billing address needed).
    async fn create_customer(
        &mut self,
        doc: &Document,
    ) -> Result<Result<i64, Problem>, TargetError> {
        let ext = doc.customer_id().to_owned();
        let b = &doc.buyer;
        let Some(addr) = b.billing_address.as_ref().filter(|a| {
            !a.lines.is_empty()
                && a.postcode.is_some()
                && a.city.is_some()
                && a.country_code.is_some()
        }) else {
            return Ok(Err(Problem::new(
                "pennylane-customer-address",
                "buyer.billing_address",
                format!("customer `{ext}` is not in Pennylane yet, and creating it needs a full billing address (street, postcode, city, country)"),
                "complete the customer's billing address in the invoicing application, or create the customer in Pennylane with this external reference",
            )));
        };
        let mut body = json!({
            "name": b.name,
            "external_reference": ext,
            "billing_address": {
                "address": addr.lines.join(", "),
                "postal_code": addr.postcode,
                "city": addr.city,
                "country_alpha2": addr.country_code,
            },
        });
        if let Some(siren) = b
            .siren
            .as_deref()
            .or(b.siret.as_deref().map(|s| &s[..s.len().min(9)]))
        {
            body["reg_no"] = json!(siren);
        }
        if let Some(v) = &b.vat_id {
            body["vat_number"] = json!(v);
        }
        if let Some(m) = &b.email {
            body["emails"] = json!([m]);
        }
        match self.api()?.post("/company_customers", &body).await {
            Ok(v) => {
                let id =
                    v.get("id")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| TargetError::Remote {
                            target: self.name.clone(),
                            detail: "customer created without an id in the answer".into(),
                        })?;
                self.customers.insert(ext, id);
                Ok(Ok(id))
            }
            Err(PennylaneError::Refused { status, body }) => Ok(Err(Problem::new(
                "pennylane-customer-refused",
                "buyer",
                format!("Pennylane refused to create customer `{ext}` (HTTP {status}): {body}"),
                "correct the customer's details in the invoicing application",
            ))),
            Err(e) => Err(remote(&self.name, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_found_by_its_exact_number_then_by_its_key() {
        let rows = vec![
            (1, "any".to_owned(), "7061".to_owned()),
            (2, "FR_200".to_owned(), "706100".to_owned()),
            (3, "any".to_owned(), "707".to_owned()),
        ];
        assert_eq!(rows_for("706100", &rows), vec![(2, "FR_200".to_owned())]);
        assert_eq!(rows_for("707000", &rows), vec![(3, "any".to_owned())]);
        assert_eq!(rows_for("708500", &rows), Vec::new());
        let f: Value = serde_json::from_str(&filter_in("number", &["706".into()])).unwrap();
        assert_eq!(f[0]["operator"], "in");
        assert_eq!(f[0]["value"], json!(["706"]));
    }
}
