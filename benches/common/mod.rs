//! What the benches share: their synthetic documents, the project around them, and the peak
//! resident memory of a process.

use std::path::Path;

/// One synthetic document: two lines, 3 × 125.50 at 20 % and 2 × 19.99 at 5.5 %, for customer
/// `C<customer>` (`0..50`, all mapped by [`project`]).
pub(crate) fn doc(id: &str, number: &str, date: &str, customer: usize, credit: bool) -> String {
    let kind = if credit { "credit_note" } else { "invoice" };
    format!(
        r#"{{"id":"{id}","number":"{number}","kind":"{kind}","status":"final","issue_date":"{date}",
"due_date":"2026-12-31","currency":"EUR","updated_at":"{date}T10:00:00Z",
"seller":{{"name":"Bench SAS","siren":"123456782"}},
"buyer":{{"name":"Client {customer}","customer_id":"C{customer}"}},
"lines":[{{"id":"1","description":"Prestation de conseil","quantity":"3","unit":"HUR","unit_price":"125.50","net_amount":"376.50","gl_account":"CONSEIL","tax_code":"TVA20"}},
{{"id":"2","description":"Livre technique","quantity":"2","unit_price":"19.99","net_amount":"39.98","product_code":"PRD-LIVRE","tax_code":"TVA55"}}],
"totals":{{"net":"416.48","tax":"77.50","gross":"493.98","paid":"0.00","due":"493.98"}},
"tax_breakdown":[{{"tax_code":"TVA20","rate":"20.00","base":"376.50","amount":"75.30"}},{{"tax_code":"TVA55","rate":"5.50","base":"39.98","amount":"2.20"}}]}}"#
    )
}

/// A project in `dir`: job `job` reads the json-dir `invoices` (`page_size` a page), maps with
/// `mappings/m.toml` and writes FEC files through target `target`; its ledger is `data_dir`
/// when given, `dir/data` otherwise.
pub(crate) fn project(
    dir: &Path,
    job: &str,
    target: &str,
    data_dir: Option<&Path>,
    page_size: usize,
) {
    for sub in ["connectors", "mappings", "invoices"] {
        std::fs::create_dir_all(dir.join(sub)).expect("project folder");
    }
    let data = data_dir
        .map(|d| format!("data_dir = {:?}\n", d.display().to_string()))
        .unwrap_or_default();
    std::fs::write(
        dir.join("facto.toml"),
        format!("{data}[company]\nname = \"Bench\"\nsiren = \"123456782\"\n[[job]]\nname = \"{job}\"\nsource = \"src\"\nmapping = \"m\"\ntargets = [\"{target}\"]\n"),
    )
    .expect("facto.toml");
    std::fs::write(
        dir.join("connectors/src.toml"),
        format!("kind = \"json-dir\"\npath = \"invoices\"\npage_size = {page_size}\n"),
    )
    .expect("source");
    std::fs::write(
        dir.join(format!("connectors/{target}.toml")),
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"out\"\n",
    )
    .expect("target");
    let mut m = String::from(
        "[journal]\ncode = \"VE\"\nlabel = \"Journal des ventes\"\n[customers]\ncollective_account = \"411000\"\n",
    );
    for c in 0..50 {
        m.push_str(&format!(
            "[customers.accounts.C{c}]\naux = \"CCLIENT{c}\"\n"
        ));
    }
    m.push_str(
        "[gl.accounts.CONSEIL]\naccount = \"706100\"\nlabel = \"Conseil\"\n[gl.products.PRD-LIVRE]\naccount = \"707100\"\nlabel = \"Livres\"\n\
         [tax.TVA20]\nrate = \"20\"\ncategory = \"S\"\naccount = \"445711\"\n[tax.TVA55]\nrate = \"5.5\"\ncategory = \"S\"\naccount = \"445713\"\n",
    );
    std::fs::write(dir.join("mappings/m.toml"), m).expect("mapping");
}

/// The peak resident memory (`VmHWM`), in MiB, of the process whose status file is `status`
/// (`/proc/self/status`, `/proc/<pid>/status`); `None` once it is gone.
pub(crate) fn peak_rss_mib_of(status: &str) -> Option<f64> {
    std::fs::read_to_string(status)
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
}
