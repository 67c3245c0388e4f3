#!/usr/bin/env bash
# Fuzzes every parser of hostile input for a bounded time each, then says what ran.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     (default 60; nine targets, so about 9 minutes + build)
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Seeds come from the real answers in ../shared/corpus (RDAP,
# WHOIS, PTR names, captures) and the shipped policies, copied into a scratch directory at run time:
# nothing of the corpus is kept in the repository. A crash leaves its input in
# fuzz/artifacts/TARGET/ and this script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
corpus_root="$(cd .. && pwd)/../shared/corpus"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

seed() { # seed TARGET FILE...
    local dir="$scratch/$1"
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        [ -f "$f" ] && cp "$f" "$dir/$(sha256sum "$f" | cut -c1-16)"
    done
    return 0
}
shopt -s nullglob globstar
seed rdap "$corpus_root"/rdap/**/*
seed whois "$corpus_root"/whois/**/*
seed ptr_hints "$corpus_root"/ptr/**/*
seed policy ../policies/*.yaml ../tests/scenarios/*.yaml
seed provenance ../tests/fixtures/*.md
seed capture "$corpus_root"/pcap/*/*.pcap "$corpus_root"/pcap/*/*.pcapng
seed declared "$corpus_root"/geofeed/* "$corpus_root"/cloud/*.json
seed atlas "$corpus_root"/atlas/**/*
printf 'nameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\nsearch example\n' >"$scratch/rc"
seed resolv_conf "$scratch/rc" /etc/resolv.conf

# `fuzz run` builds the targets (the first one waits for that build, about 13 minutes clean).
for target in ptr_hints whois rdap provenance resolv_conf policy capture declared atlas; do
    mkdir -p "$scratch/$target"
    echo "== $target: $(ls "$scratch/$target" | wc -l) seeds, ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        tail -40 "$scratch/$target.log"
        echo "$target crashed: its input is in fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E 'stat::(number_of_executed_units|peak_rss_mb)' "$scratch/$target.log" | sed 's/^/  /'
done
echo "all targets ran ${seconds}s each without a crash"
