//! Supplier invoices into the purchase journal (issue 15 §3) through the real binary: the
//! repository's three received e-invoices (two CII, one UBL; an invoice, another supplier's
//! invoice at two rates, a credit note) read from a folder (`einvoices = true`), mapped with the
//! purchase mapping (`side = "purchases"`, suppliers by SIREN), booked into an FEC file of journal
//! HA that both FEC checkers accept: supplier 401 credited, expenses and deductible VAT debited, the
//! credit note the other way. Once each; a file that is no invoice and a supplier the mapping
//! lacks are held with their fix, the rest goes on.

use crate::common::{target, Project};

const JOB: &str = "[[job]]\nname = \"achats\"\nsource = \"received\"\nmapping = \"pcg-achats\"\ntargets = [\"purchases-fec\"]\n";

fn project() -> Project {
    let p = Project::demo();
    let mut cfg = p.read("facto.toml");
    cfg.push('\n');
    cfg.push_str(JOB);
    p.write("facto.toml", &cfg);
    p
}

/// The lines of the FEC file: (journal, account, aux, debit, credit, piece).
pub fn fec_lines(p: &Project) -> (std::path::PathBuf, Vec<[String; 6]>) {
    // One batch folder, one FEC file in it.
    let dir = p.path("out/achats");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .flat_map(|batch| {
            std::fs::read_dir(batch.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .find(|f| f.extension().is_some_and(|x| x == "txt"))
        .unwrap_or_else(|| panic!("no FEC file under {}", dir.display()));
    let bytes = std::fs::read(&file).unwrap();
    // ISO-8859-15: the fields read here are ASCII.
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (j, a, x, d, c, n) = (
        col("JournalCode"),
        col("CompteNum"),
        col("CompAuxNum"),
        col("Debit"),
        col("Credit"),
        col("PieceRef"),
    );
    let rows = lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            [f[j], f[a], f[x], f[d], f[c], f[n]].map(str::to_owned)
        })
        .collect();
    (file, rows)
}

pub fn row(j: &str, a: &str, x: &str, d: &str, c: &str, n: &str) -> [String; 6] {
    [j, a, x, d, c, n].map(str::to_owned)
}

#[test]
fn received_e_invoices_are_booked_into_the_purchase_journal_once() {
    let p = project();
    let (code, r) = p.json(&["sync", "--job", "achats"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 3, "{r}");
    let (file, rows) = fec_lines(&p);
    for want in [
        // Imprimerie Rapide, 1 840.00 + 368.00 VAT: the supplier credited.
        row(
            "HA",
            "401000",
            "FIMPRIM",
            "0,00",
            "2208,00",
            "IMP-2026-0118",
        ),
        row("HA", "623600", "", "1840,00", "0,00", "IMP-2026-0118"),
        row("HA", "445660", "", "368,00", "0,00", "IMP-2026-0118"),
        // Bureau Plus (UBL), two rates on one expense account.
        row("HA", "401000", "FBUREAU", "0,00", "450,35", "FA-2026-0457"),
        row("HA", "606400", "", "385,80", "0,00", "FA-2026-0457"),
        row("HA", "445660", "", "64,55", "0,00", "FA-2026-0457"),
        // The credit note: the supplier debited.
        row(
            "HA",
            "401000",
            "FIMPRIM",
            "192,00",
            "0,00",
            "IMP-AV-2026-0007",
        ),
        row("HA", "623600", "", "0,00", "160,00", "IMP-AV-2026-0007"),
        row("HA", "445660", "", "0,00", "32,00", "IMP-AV-2026-0007"),
    ] {
        assert!(rows.contains(&want), "{want:?} not in {rows:?}");
    }
    assert_eq!(rows.len(), 9, "{rows:?}");
    crate::common::fec_checkers_pass(&file);

    // Once: the next sync books nothing.
    let (code, r) = p.json(&["sync", "--job", "achats"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 0, "{r}");
    // The demo's sales job is untouched by it.
    let (_, shown) = p.json(&["ledger", "show", "IMP-2026-0118"]);
    assert_eq!(
        shown[0]["key"]["doc_id"], "732829320:IMP-2026-0118",
        "{shown}"
    );
}

#[test]
fn a_file_that_is_no_invoice_and_an_unknown_supplier_are_held_with_their_fix() {
    let p = project();
    p.write("examples/received/order.xml", "<Order><ID>1</ID></Order>");
    // A supplier the mapping does not list.
    let ubl = p.read("examples/received/BP-FA-2026-0457.ubl.xml");
    p.write(
        "examples/received/other.ubl.xml",
        &ubl.replace("380129866", "443061841")
            .replace("FA-2026-0457", "FA-2026-0999"),
    );
    let (code, r) = p.json(&["sync", "--job", "achats"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 3, "{r}");
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("order.xml") && problems.contains("not an invoice facto reads"),
        "{problems}"
    );
    assert!(
        problems.contains("\"customer\":\"Bureau Plus SA\""),
        "the supplier is the record's counterparty: {problems}"
    );
    assert!(
        problems.contains("supplier id `443061841` (Bureau Plus SA) has no auxiliary account")
            && problems.contains("[suppliers.accounts.\\\"443061841\\\"]"),
        "{problems}"
    );
}

#[test]
fn a_purchases_mapping_lists_suppliers_not_customers() {
    let p = project();
    let m = p.read("mappings/pcg-achats.toml");
    p.write(
        "mappings/pcg-achats.toml",
        &format!("{m}\n[customers]\ncollective_account = \"411000\"\n"),
    );
    let (code, _, err) = {
        let out = p.run(&["sync", "--job", "achats"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("pcg-achats.toml")
            && err.contains("[customers] does not belong in a purchases"),
        "{err}"
    );
}

/// `preview` and `mappings check` speak of the suppliers of a purchases job, not the company.
#[test]
fn preview_and_mappings_check_name_the_suppliers() {
    let p = project();
    let out = p.run(&["preview", "--job", "achats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Imprimerie Rapide SARL") && text.contains("Bureau Plus SA"),
        "{text}"
    );
    assert!(!text.contains("Atelier Demo SAS"), "{text}");
    let out = p.run(&["mappings", "check", "--job", "achats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 suppliers (job achats)"), "{text}");
}
