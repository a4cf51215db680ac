//! The `fake-ingest` binary; the command line itself is [`fake_ingest::cli`].

fn main() -> std::process::ExitCode {
    fake_ingest::cli::run(std::env::args_os())
}
