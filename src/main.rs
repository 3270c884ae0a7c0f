fn main() -> std::process::ExitCode {
    authledger::cli::main()
}
