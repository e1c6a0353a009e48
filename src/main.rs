//! The `facto` binary: parse the command line, run, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    facto::alloc::large_allocations_mapped();
    facto::cli::main_entry()
}

// mimalloc for small allocations, the system's for large ones (`facto::alloc`).
#[global_allocator]
static GLOBAL: facto::alloc::Allocator = facto::alloc::Allocator;
