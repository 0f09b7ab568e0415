//! The `forklift` binary: see `forklift --help`.

/// mimalloc instead of the system allocator: a GraphQL response is thousands of small,
/// short-lived allocations, and glibc's malloc spent a third of the nested query's CPU on them
/// (`perf record` on `forklift-bench query`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    forklift::cli::main()
}
