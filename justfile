# Contributor shortcuts. Everything here is plain cargo underneath; `just` is never required.

# Run the whole test suite (the README's test command).
test:
    cargo test --workspace --locked

# Formatting and lints exactly as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Everything CI runs.
ci:
    bash .ci/run

# One incident's whole life against in-process fakes.
demo:
    cargo run --release -p pdbridge -- demo

# The sync-core properties with a million cases.
proptest-long:
    PROPTEST_CASES=1000000 cargo test --release -p sync-core --test properties

# Benchmarks (ratios measured in one run).
bench:
    cargo run --release -p pdbridge-bench -- all
