//! The `forklift` binary: see `forklift --help`.

fn main() -> std::process::ExitCode {
    forklift::cli::main()
}
