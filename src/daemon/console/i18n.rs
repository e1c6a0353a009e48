//! The console's two languages: its labels, and dates and amounts written the way each reads
//! them (French: `JJ/MM/AAAA`, `1 234,56` with a narrow no-break space; English: `YYYY-MM-DD`,
//! `1,234.56`). The language is the company's `locale`, unless the user switched.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

pub use crate::company::Locale;

/// The narrow no-break space (U+202F) that separates thousands in French.
pub const THIN_SPACE: char = '\u{202F}';

/// Every label: key, French, English.
const LABELS: &[(&str, &str, &str)] = &[
    ("title", "Console facto", "facto console"),
    ("login", "Connexion", "Log in"),
    ("logout", "Déconnexion", "Log out"),
    ("token", "Jeton d’accès", "Access token"),
    ("bad_token", "Jeton refusé.", "Token refused."),
    ("export", "Exporter", "Export"),
    ("exports", "Exports", "Exports"),
    ("audit", "Journal des modifications", "Audit log"),
    ("role", "Rôle", "Role"),
    ("admin", "administrateur", "admin"),
    ("accountant", "comptable", "accountant"),
    ("forbidden", "Accès refusé", "Access refused"),
    (
        "forbidden_text",
        "Votre rôle ne permet pas cette action.",
        "Your role does not allow this.",
    ),
    ("target", "Cible (format)", "Target (format)"),
    ("journal", "Journal", "Journal"),
    ("from", "Du", "From"),
    ("to", "Au", "To"),
    ("preview", "Aperçu", "Preview"),
    ("to_export_of", "à exporter sur", "to export of"),
    (
        "documents_in_period",
        "documents de la période",
        "documents in the period",
    ),
    ("number", "Numéro", "Number"),
    ("date", "Date", "Date"),
    ("customer", "Client", "Customer"),
    ("gross", "TTC", "Gross"),
    ("state", "État", "State"),
    ("reasons", "Motifs et corrections", "Reasons and fixes"),
    ("all", "Tout", "All"),
    ("none", "Aucun", "None"),
    (
        "include_exported",
        "Inclure les documents déjà exportés",
        "Include already exported documents",
    ),
    ("finish", "Exporter la sélection", "Export the selection"),
    (
        "nothing",
        "Aucun document à exporter.",
        "No document to export.",
    ),
    ("failed", "L’export a échoué", "The export failed"),
    ("batch", "Export", "Export"),
    ("period", "Période", "Period"),
    ("documents", "Documents", "Documents"),
    ("debit", "Débit", "Debit"),
    ("credit", "Crédit", "Credit"),
    ("file", "Fichier", "File"),
    ("active", "actif", "active"),
    ("cancelled", "annulé", "cancelled"),
    ("open", "Ouvrir", "Open"),
    ("download", "Télécharger", "Download"),
    ("cancel", "Annuler l’export", "Cancel the export"),
    (
        "confirm_cancel",
        "Annuler cet export ? Ses documents pourront être exportés à nouveau.",
        "Cancel this export? Its documents will be free for a new export.",
    ),
    ("run_report", "Compte rendu de l’export", "Export report"),
    ("read", "lus", "read"),
    ("delivered", "exportés", "exported"),
    ("held", "retenus", "held"),
    (
        "no_batches",
        "Aucun export pour l’instant.",
        "No export yet.",
    ),
    ("created", "Créé le", "Created"),
    ("when", "Quand", "When"),
    ("action", "Action", "Action"),
    ("detail", "Détail", "Detail"),
    ("language", "English", "Français"),
    ("search_text", "Numéro ou client", "Number or customer"),
    ("search", "Rechercher", "Search"),
    (
        "no_documents",
        "Aucun document trouvé.",
        "No document found.",
    ),
    ("page", "Page", "Page"),
    ("records", "enregistrements", "records"),
    ("remote_id", "Identifiant distant", "Remote id"),
    ("remote_status", "Statut distant", "Remote status"),
    ("last_error", "Dernière erreur", "Last error"),
    ("attempts", "Tentatives", "Attempts"),
    ("fix", "Correction :", "Fix:"),
    (
        "changed_after",
        "Modifié dans la source après envoi",
        "Changed in the source after delivery",
    ),
    ("history", "Historique", "History"),
    ("retry", "Relancer", "Retry"),
    (
        "confirm_retry",
        "Relancer ce document ?",
        "Retry this document?",
    ),
    ("forget", "Oublier", "Forget"),
    (
        "run_now",
        "Lancer ce traitement maintenant",
        "Run this job now",
    ),
    (
        "confirm_run",
        "Lancer une passe de ce traitement maintenant ?",
        "Run a pass of this job now?",
    ),
    ("failed_action", "L’action a échoué", "The action failed"),
    ("overview", "Vue d’ensemble", "Overview"),
    (
        "last_passes",
        "Dernière passe par traitement",
        "Last pass per job",
    ),
    ("no_pass", "Aucune passe pour l’instant.", "No pass yet."),
    (
        "rejected_failed",
        "rejetés ou en échec",
        "rejected or failed",
    ),
    ("problems", "Problèmes", "Problems"),
    ("stopped", "Traitements arrêtés", "Stopped jobs"),
    (
        "none_stopped",
        "Aucun traitement arrêté.",
        "No job stopped.",
    ),
    (
        "waiting",
        "En attente d’une personne",
        "Waiting for a human",
    ),
    ("none_waiting", "Rien n’attend.", "Nothing waits."),
    ("why", "Pourquoi", "Why"),
    ("wait_held", "retenu", "held"),
    ("wait_rejected", "rejeté", "rejected"),
    ("wait_failed", "en échec", "failed"),
    (
        "chorus_suspended",
        "Chorus Pro : suspendue (SUSPENDUE)",
        "Chorus Pro: suspended (SUSPENDUE)",
    ),
    (
        "chorus_recycle",
        "Chorus Pro : à recycler (A_RECYCLER)",
        "Chorus Pro: to recycle (A_RECYCLER)",
    ),
    (
        "pa_status",
        "Plateforme agréée : statut à traiter",
        "Approved platform: status to act on",
    ),
    ("mappings", "Correspondances", "Mappings"),
    (
        "held_reasons",
        "Documents retenus : motifs et corrections",
        "Held documents: reasons and fixes",
    ),
    ("reason", "Motif", "Reason"),
    ("fix_col", "Correction", "Fix"),
    ("examples", "Exemples", "Examples"),
    (
        "read_only",
        "Lecture seule : seul un administrateur modifie les correspondances.",
        "Read only: only an admin changes mappings.",
    ),
    ("edit", "Modifier", "Edit"),
    ("delete", "Supprimer", "Delete"),
    ("add", "Ajouter une entrée", "Add an entry"),
    ("save", "Enregistrer", "Save"),
    ("check", "Vérification", "Check"),
    (
        "confirm_delete",
        "Supprimer cette entrée ?",
        "Delete this entry?",
    ),
    (
        "would_hold",
        "Documents qui seraient retenus",
        "Documents it would hold back",
    ),
    ("would_release", "Documents libérés", "Documents released"),
    ("refused", "Refusé", "Refused"),
    ("saved", "Enregistré.", "Saved."),
    ("who", "Qui", "Who"),
    ("cli", "ligne de commande ou API", "command line or API"),
    ("previous", "Plus récents", "Newer"),
    ("next", "Plus anciens", "Older"),
    ("error", "Erreur", "Error"),
    ("who_cli", "ligne de commande", "command line"),
    ("who_api", "API d’administration", "admin API"),
    ("who_editor", "éditeur de correspondances", "mapping editor"),
    ("who_sync", "passe automatique", "automatic pass"),
    (
        "audit_missing",
        "mais l’entrée du journal des modifications manque",
        "but its audit entry is missing",
    ),
];

/// The label `key` in `lang` (the key itself when it has none, so a gap shows).
pub fn t(lang: Locale, key: &str) -> &str {
    LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, fr, en)| match lang {
            Locale::Fr => fr,
            Locale::En => en,
        })
}

/// The states of documents and records: (state, French, English).
const STATES: &[(&str, &str, &str)] = &[
    ("new", "à exporter", "to export"),
    ("already-transferred", "déjà exporté", "already exported"),
    ("held", "retenu", "held"),
    ("failed", "en échec", "failed"),
    (
        "changed-after-delivery",
        "modifié après envoi",
        "changed after delivery",
    ),
    ("in-progress", "en cours", "in progress"),
    ("nothing-to-book", "rien à comptabiliser", "nothing to book"),
    ("delivered", "exporté", "delivered"),
    ("exported", "exporté", "exported"),
    ("claimed", "en cours", "claimed"),
    ("rejected", "rejeté", "rejected"),
];

/// A state as the user reads it (the state itself when it has no wording).
pub fn state(lang: Locale, state: &str) -> &str {
    STATES
        .iter()
        .find(|(k, _, _)| *k == state)
        .map_or(state, |(_, fr, en)| match lang {
            Locale::Fr => fr,
            Locale::En => en,
        })
}

/// The other language (the switch) and its code.
pub fn other(lang: Locale) -> (Locale, &'static str) {
    match lang {
        Locale::Fr => (Locale::En, "en"),
        Locale::En => (Locale::Fr, "fr"),
    }
}

/// A language code of the switch (`fr`, `en`).
pub fn parse(code: &str) -> Option<Locale> {
    match code {
        "fr" => Some(Locale::Fr),
        "en" => Some(Locale::En),
        _ => None,
    }
}

/// A date: `JJ/MM/AAAA` in French, `YYYY-MM-DD` in English.
pub fn date(lang: Locale, d: NaiveDate) -> String {
    match lang {
        Locale::Fr => d.format("%d/%m/%Y").to_string(),
        Locale::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// An amount with two decimals (rounded half away from zero), thousands grouped: `-1 234,56`
/// (narrow no-break space) in French, `-1,234.56` in English.
pub fn amount(lang: Locale, v: Decimal) -> String {
    let (sep, point) = match lang {
        Locale::Fr => (THIN_SPACE, ','),
        Locale::En => (',', '.'),
    };
    let v = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.2}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    let sign = if v.is_sign_negative() && !v.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{grouped}{point}{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn french_amounts_have_a_decimal_comma_and_thin_spaces() {
        assert_eq!(
            amount(Locale::Fr, d("1234567.891")),
            "1\u{202F}234\u{202F}567,89"
        );
        assert_eq!(amount(Locale::Fr, d("-1358.25")), "-1\u{202F}358,25");
        assert_eq!(amount(Locale::Fr, d("999")), "999,00");
        assert_eq!(amount(Locale::Fr, d("0.005")), "0,01");
        assert_eq!(amount(Locale::Fr, d("-0.001")), "0,00");
        assert_eq!(amount(Locale::En, d("1234567.5")), "1,234,567.50");
        assert_eq!(amount(Locale::En, d("100000")), "100,000.00");
    }

    #[test]
    fn french_dates_are_day_month_year() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(date(Locale::Fr, day), "07/03/2026");
        assert_eq!(date(Locale::En, day), "2026-03-07");
    }

    #[test]
    fn labels_exist_in_both_languages_and_the_switch_goes_to_the_other() {
        assert_eq!(t(Locale::Fr, "download"), "Télécharger");
        assert_eq!(t(Locale::En, "download"), "Download");
        assert_eq!(t(Locale::En, "no-such-key"), "no-such-key");
        for (k, fr, en) in LABELS {
            assert!(!fr.is_empty() && !en.is_empty(), "{k}");
            assert_eq!(LABELS.iter().filter(|(x, _, _)| x == k).count(), 1, "{k}");
        }
        assert_eq!(other(Locale::Fr), (Locale::En, "en"));
        assert_eq!(parse("fr"), Some(Locale::Fr));
        assert_eq!(parse("de"), None);
        assert_eq!(state(Locale::Fr, "held"), "retenu");
        assert_eq!(state(Locale::En, "already-transferred"), "already exported");
        assert_eq!(state(Locale::Fr, "odd"), "odd");
    }
}
