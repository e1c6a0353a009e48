//! The journal files' vocabulary, as connectors name it: layouts, encodings and FEC separators.
//! The writers own it; the journal-file connector's settings use it.

use serde::Deserialize;

/// Separator of a FEC file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FecSeparator {
    /// Tabulation (default).
    Tab,
    /// `|`.
    Pipe,
}

/// Text encoding of a journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Encoding {
    /// ISO-8859-15 (Latin-9), characters outside it transliterated.
    #[serde(rename = "iso-8859-15")]
    Iso885915,
    /// Windows-1252 (what Windows accounting software reads), characters outside it transliterated.
    #[serde(rename = "windows-1252")]
    Windows1252,
    /// Plain ASCII: accents and symbols transliterated (fixed-width formats count bytes).
    #[serde(rename = "ascii")]
    Ascii,
    /// UTF-8 without BOM.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a BOM (what spreadsheet software expects of a CSV).
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
}

/// Layout of a journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalFormat {
    /// FEC layout (18 columns), the import format most French accounting software takes.
    Fec,
    /// CSV, one row per document with the payer's totals.
    CsvDocuments,
    /// CSV, one row per invoice line.
    CsvLines,
    /// QuadraCOMPTA ASCII import, fixed-width `M` records.
    Quadratus,
    /// EBP Compta ASCII import (comma separated).
    Ebp,
    /// ACD iSuite Expert import (semicolon separated).
    Acd,
    /// Agiris Isacompta import (semicolon separated).
    Agiris,
    /// Sage Coala import (semicolon separated).
    Coala,
    /// Sage 50 / Ciel Compta `XIMPORT.TXT` (fixed width).
    #[serde(alias = "sage50")]
    Ciel,
    /// Cegid import (semicolon separated).
    Cegid,
    /// Chorus Pro files for the portal: EN 16931 UBL 2.1 documents, in a zip lot.
    ChorusUbl,
    /// Chorus Pro files for the portal: EN 16931 CII D16B documents, in a zip lot.
    ChorusCii,
}

impl JournalFormat {
    /// Short name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalFormat::Fec => "fec",
            JournalFormat::CsvDocuments => "csv-documents",
            JournalFormat::CsvLines => "csv-lines",
            JournalFormat::Quadratus => "quadratus",
            JournalFormat::Ebp => "ebp",
            JournalFormat::Acd => "acd",
            JournalFormat::Agiris => "agiris",
            JournalFormat::Coala => "coala",
            JournalFormat::Ciel => "ciel",
            JournalFormat::Cegid => "cegid",
            JournalFormat::ChorusUbl => "chorus-ubl",
            JournalFormat::ChorusCii => "chorus-cii",
        }
    }

    /// Whether the target writes EN 16931 e-invoices (Chorus Pro files) rather than entries.
    pub fn is_einvoice(self) -> bool {
        matches!(self, JournalFormat::ChorusUbl | JournalFormat::ChorusCii)
    }

    /// Whether the layout is fixed width (field positions are byte positions).
    pub fn fixed_width(self) -> bool {
        matches!(self, JournalFormat::Quadratus | JournalFormat::Ciel)
    }

    /// Whether the layout is one of the two generic CSV shapes.
    pub fn is_csv(self) -> bool {
        matches!(self, JournalFormat::CsvDocuments | JournalFormat::CsvLines)
    }

    /// The encoding each accounting package reads (journal-formats note §2.8).
    pub fn default_encoding(self) -> Encoding {
        match self {
            JournalFormat::Fec => Encoding::Iso885915,
            JournalFormat::CsvDocuments | JournalFormat::CsvLines => Encoding::Utf8,
            JournalFormat::ChorusUbl | JournalFormat::ChorusCii => Encoding::Utf8,
            JournalFormat::Quadratus => Encoding::Ascii,
            _ => Encoding::Windows1252,
        }
    }
}
