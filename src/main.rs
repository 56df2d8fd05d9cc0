//! The `tattle` binary: everything lives in the library; its `cli` parses, prints and picks exit
//! codes.

fn main() -> std::process::ExitCode {
    tattle::main()
}
