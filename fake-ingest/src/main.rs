//! The `fake-ingest` binary (being built in issue 3).

fn main() {
    eprintln!("fake-ingest is not built yet");
    std::process::exit(1);
}
