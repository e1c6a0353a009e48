//! Where a command writes: standard output, or a buffer when the daemon runs the command for a
//! client (the bytes go back in the answer). It also renders a command's typed report as text or,
//! with `--json`, as JSON.

use std::io::Write;

use anyhow::Context as _;

use super::Failure;

/// A command's standard output, and whether it renders JSON (`--json`).
pub(super) struct Output {
    json: bool,
    sink: Sink,
}

enum Sink {
    Stdout,
    Buffer(Vec<u8>),
}

impl Output {
    /// The process's standard output.
    pub(super) fn stdout(json: bool) -> Output {
        Output {
            json,
            sink: Sink::Stdout,
        }
    }

    /// A buffer, for a command the daemon runs for a client.
    pub(super) fn buffer(json: bool) -> Output {
        Output {
            json,
            sink: Sink::Buffer(Vec::new()),
        }
    }

    /// Whether reports are rendered as JSON.
    pub(super) fn is_json(&self) -> bool {
        self.json
    }

    /// Whether the output goes back to a client of the daemon (no terminal to draw on).
    pub(super) fn is_captured(&self) -> bool {
        matches!(self.sink, Sink::Buffer(_))
    }

    /// What was written to a buffer (nothing for standard output).
    pub(super) fn into_bytes(self) -> Vec<u8> {
        match self.sink {
            Sink::Stdout => Vec::new(),
            Sink::Buffer(b) => b,
        }
    }

    /// Writes bytes as they are.
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        match &mut self.sink {
            Sink::Buffer(b) => b.extend_from_slice(bytes),
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(bytes)
                    .and_then(|()| stdout.flush())
                    .context("cannot write to stdout")?;
            }
        }
        Ok(())
    }

    /// Writes text.
    pub(super) fn text(&mut self, s: &str) -> Result<(), Failure> {
        self.write(s.as_bytes())
    }

    /// Writes `v` as pretty JSON and a line feed, whatever `--json` says.
    pub(super) fn json<T: serde::Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Failure> {
        let mut s = serde_json::to_string_pretty(v).context("cannot encode the JSON output")?;
        s.push('\n');
        self.write(s.as_bytes())
    }

    /// Writes a report: as JSON with `--json`, else as the text `render` makes of it.
    pub(super) fn report<T: serde::Serialize + ?Sized>(
        &mut self,
        v: &T,
        render: impl FnOnce(&T) -> String,
    ) -> Result<(), Failure> {
        if self.json {
            self.json(v)
        } else {
            self.text(&render(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_keeps_what_a_report_renders_as_text_or_json() {
        let mut text = Output::buffer(false);
        assert!(text
            .report(&[1, 2], |v| format!("{} numbers\n", v.len()))
            .is_ok());
        assert!(text.write(b"raw").is_ok());
        assert!(text.is_captured());
        assert_eq!(text.into_bytes(), b"2 numbers\nraw");
        let mut json = Output::buffer(true);
        assert!(json.report(&[1, 2], |_| unreachable!()).is_ok());
        assert_eq!(json.into_bytes(), b"[\n  1,\n  2\n]\n");
    }
}
