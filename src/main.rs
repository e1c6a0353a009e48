//! The `facto` binary: parse the command line, run, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    facto::cli::main_entry()
}

// glibc's allocator is slow for the many small allocations of JSON and ledger records.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
