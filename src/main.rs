#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    authledger::allocator::return_freed_memory_sooner();
    authledger::cli::main()
}
