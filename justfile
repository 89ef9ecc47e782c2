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
    PROPTEST_CASES=1000000 cargo test --release -p sync-core --test it properties::

# Benchmarks (ratios measured in one run); the JSON report lands in target/bench.json.
bench:
    cargo run --release -p pdbridge-bench -- --json target/bench.json all

# The runs behind docs/benchmarks.md's ratio and ack figures (release build, quiet machine). Quote a
# ratio only when its baseline's validity line says valid (the bare server used >= 90% of a core).
bench-measure:
    cargo run --release -p pdbridge-bench -- --json target/bench-ingest.json ingest
    cargo run --release -p pdbridge-bench -- --json target/bench-ack.json ack

# One benchmark or fault run by name (ingest, ack, e2e, economy, memory, outage, bad-input, crash).
bench-one NAME *ARGS:
    cargo run --release -p pdbridge-bench -- {{NAME}} {{ARGS}}

# The crash harness with 100 kill -9 cycles of 3 incidents each, including answers slower than the
# clients' timeout (about 20 min). The final drain is paced by Slack's chat.update budget (50/min),
# hence the long drain timeout.
crash-long:
    cargo run --release -p pdbridge-bench -- --json target/crash-long.json crash --iterations 100 --incidents 3 --timeout-faults --drain-timeout 1500

# Fault runs only (outage, bad input, crash), full size.
faults:
    cargo run --release -p pdbridge-bench -- outage
    cargo run --release -p pdbridge-bench -- bad-input
    cargo run --release -p pdbridge-bench -- crash
