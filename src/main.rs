//! `deskbridge` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    deskbridge::cli::run()
}
