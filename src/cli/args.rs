//! The clap types of the command line: the global options, every command and its arguments,
//! and the checks clap runs on raw values.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

/// facto — finalized invoices and credit notes to accounting software, never twice, never lost.
#[derive(Debug, Parser)]
#[command(name = "facto", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "facto.toml")]
    pub config: PathBuf,
    /// Ledger folder (overrides `data_dir` of the configuration).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// A deployment's folder of tenants: one folder per company, each with its `facto.toml`.
    /// `facto --tenants DIR run` serves them all; other commands name one with `--tenant`.
    #[arg(long, env = "FACTO_TENANTS_DIR", value_name = "DIR")]
    pub tenants: Option<PathBuf>,
    /// The tenant (company) a command is for: its configuration is `<tenants>/<NAME>/facto.toml`
    /// (`--tenants`, default `tenants`).
    #[arg(long = "tenant", value_name = "NAME", env = "FACTO_TENANT")]
    pub tenant_name: Option<String>,
    /// Machine-readable output (JSON) on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (errors only).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass of every job (or one): pull, map, check, deliver, record.
    Sync {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Do everything but deliver and record.
        #[arg(long)]
        dry_run: bool,
        /// Which document problems exit with code 1: any (default), new (not reported by the
        /// job's previous run) or never. Overrides the job's `fail_on`.
        #[arg(long, value_enum)]
        fail_on: Option<crate::fail_on::FailOn>,
    },
    /// What a sync or export would do now, per document. Changes nothing.
    Preview {
        /// Job (default: the only job).
        #[arg(long)]
        job: Option<String>,
        /// First issue date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last issue date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// What the PA target (`--target`) would e-report (flow 10) for the period: its B2C
        /// sales per day, category and VAT rate, its international sales per invoice.
        #[arg(long, requires = "target")]
        ereporting: bool,
    },
    /// Answer a supplier invoice received through a PA: 204 taken over, 205 approved, 207
    /// disputed (with a reason), 210 refused (with a reason; final). Sent to the seller through
    /// the PA, once; recorded in the ledger and the audit log.
    Respond {
        /// The received invoice: its document id (`<seller SIREN>:<number>`) or number.
        doc: String,
        /// 204, 205, 207 or 210 (or taken-over, approved, disputed, refused).
        #[arg(value_parser = parse_buyer_status)]
        status: crate::targets::pa::respond::BuyerStatus,
        /// Why (207, 210): a reason code of the reform, such as TX_TVA_ERR or DOUBLON.
        #[arg(long)]
        reason: Option<String>,
        /// The reason in words, for the seller.
        #[arg(long, default_value = "")]
        text: String,
        /// What the seller is expected to do (207, 210): NIN a corrective invoice, CNF a full
        /// credit note, CNP a partial one, NOA nothing...
        #[arg(long)]
        action: Option<String>,
        /// The job that received it, when several did.
        #[arg(long)]
        job: Option<String>,
    },
    /// Write one export batch (journal file) for a period.
    Export(ExportArgs),
    /// Export history: list, show, download, cancel.
    Exports {
        /// What to do.
        #[command(subcommand)]
        cmd: ExportsCmd,
    },
    /// Inspect and act on per-document transfer records.
    Ledger {
        /// What to do.
        #[command(subcommand)]
        cmd: LedgerCmd,
    },
    /// Connect a target that needs the user's consent (Xero): prints the consent URL, receives
    /// the redirect on 127.0.0.1, stores the tokens in a 0600 file under the data folder.
    Connect {
        /// Target connector name.
        target: String,
        /// The organisation to use, when the tokens reach several (id or name).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Run the daemon: every job on its schedule, status polling, the local admin API; stops
    /// cleanly on SIGINT / SIGTERM.
    Run,
    /// Follow what API targets received: Chorus Pro flow reports and invoice statuses.
    Status {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Validate mapping files and list the source's unmapped codes.
    Mappings {
        /// What to do.
        #[command(subcommand)]
        cmd: MappingsCmd,
    },
    /// Answer Chorus Pro about an invoice it holds for you (suspended, or to recycle).
    Chorus {
        /// What to do.
        #[command(subcommand)]
        cmd: ChorusCmd,
    },
    /// The outbox of document events for the invoicing application (`[events]`): list, send a
    /// refused one again, discard one.
    Events {
        /// What to do.
        #[command(subcommand)]
        cmd: EventsCmd,
    },
}

/// `facto events ...`.
#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// The events waiting in the outbox, oldest first.
    List {
        /// Only those the receiver refused.
        #[arg(long)]
        refused: bool,
    },
    /// Send a refused event again at the next pass (after the receiver was fixed). Audited.
    Resend {
        /// The event's id.
        #[arg(required_unless_present = "refused", conflicts_with = "refused")]
        id: Option<String>,
        /// Every refused event.
        #[arg(long)]
        refused: bool,
    },
    /// Remove an event from the outbox: it is never sent. Audited.
    Discard {
        /// The event's id.
        id: String,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

/// `facto chorus ...`.
#[derive(Debug, Subcommand)]
pub enum ChorusCmd {
    /// Complete an invoice the buyer suspended (status SUSPENDUE): a comment and files.
    Complete {
        /// Document id or invoice number.
        doc: String,
        /// The answer to what the buyer asked.
        #[arg(long)]
        comment: String,
        /// A file to attach (at most 10 MB; repeat for several).
        #[arg(long = "attach")]
        attach: Vec<PathBuf>,
        /// The Chorus Pro target, when the document went to several.
        #[arg(long)]
        target: Option<String>,
    },
    /// Correct the routing of an invoice to recycle (status A_RECYCLER).
    Recycle {
        /// Document id or invoice number.
        doc: String,
        /// The buyer's SIRET on Chorus Pro (the same one, unless it went to the wrong buyer).
        #[arg(long)]
        buyer: String,
        /// The buyer's service code.
        #[arg(long)]
        service: Option<String>,
        /// The commitment (engagement) number.
        #[arg(long)]
        commitment: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// The Chorus Pro target, when the document went to several.
        #[arg(long)]
        target: Option<String>,
    },
}

/// `facto export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Job (default: the only job).
    #[arg(long)]
    pub job: Option<String>,
    /// Journal-file target: one of the job's, or any journal-file connector (the format of the
    /// accounting software, e.g. sales-quadratus).
    #[arg(long)]
    pub target: String,
    /// First issue date (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last issue date (YYYY-MM-DD).
    #[arg(long)]
    pub to: NaiveDate,
    /// Journal code to write (default: the mapping's).
    #[arg(long, value_parser = parse_journal)]
    pub journal: Option<String>,
    /// Folder to write the file to (default: the target's `out_dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Export documents already in an active batch again.
    #[arg(long)]
    pub include_exported: bool,
    /// Only these document numbers.
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Leave these document numbers out.
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// Validation date written in the file (FEC `ValidDate`, YYYY-MM-DD), to reproduce a file
    /// validated that day (default: the job's `validation_date`, else today).
    #[arg(long)]
    pub validation_date: Option<NaiveDate>,
}

/// `facto exports ...`.
#[derive(Debug, Subcommand)]
pub enum ExportsCmd {
    /// All batches, oldest first.
    List,
    /// One batch, its documents and the report of the run that wrote it.
    Show {
        /// Batch id.
        id: u64,
    },
    /// The exact bytes first produced.
    Download {
        /// Batch id.
        id: u64,
        /// Where to write (default: the batch's file name in the current folder; `-` for stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cancel a batch: kept in history, its documents free for a new export.
    Cancel {
        /// Batch id.
        id: u64,
    },
}

/// `facto ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCmd {
    /// Records, filtered.
    List {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Only this state (held, claimed, delivered, released, accepted, rejected, paid, failed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Every record of a document (by id or number), with its history.
    Show {
        /// Document id or number.
        doc: String,
    },
    /// Make a held, failed or rejected document eligible again on the next sync.
    Retry {
        /// Document id or number.
        doc: String,
        /// Only for this target.
        #[arg(long)]
        target: Option<String>,
        /// Only in this job: needed when the id or number answers in several jobs or names
        /// several documents (the exact id then wins within the job).
        #[arg(long)]
        job: Option<String>,
    },
    /// Remove a record (the next sync treats the document as new). Audited.
    Forget {
        /// Document id or number.
        doc: String,
        /// Target.
        #[arg(long)]
        target: String,
        /// Job, when the document is in several.
        #[arg(long)]
        job: Option<String>,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Kept run reports: the list, or one.
    Reports {
        /// Run id.
        run: Option<String>,
    },
}

/// `facto mappings ...`.
#[derive(Debug, Subcommand)]
pub enum MappingsCmd {
    /// Validate the mapping files and list every unmapped code of the source.
    Check {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
}

/// `facto respond`'s status: its code or its word.
fn parse_buyer_status(s: &str) -> Result<crate::targets::pa::respond::BuyerStatus, String> {
    crate::targets::pa::respond::BuyerStatus::parse(s).ok_or_else(|| {
        format!("`{s}` is not a status the buyer sends: 204 (taken-over), 205 (approved), 207 (disputed) or 210 (refused)")
    })
}

/// `--journal`: the code also names the export file, so it is checked like the mapping's.
fn parse_journal(s: &str) -> Result<String, String> {
    if crate::mapping::code_is_valid(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "journal code `{s}` must be 1 to 20 letters, digits, - or _"
        ))
    }
}
