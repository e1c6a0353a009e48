//! Journal file writers: pure functions from mapped documents to bytes (no IO). One file per
//! syntax; `text` holds what they share (label cleaning, encodings, French amounts).

pub mod csv;
pub mod fec;
pub mod text;
