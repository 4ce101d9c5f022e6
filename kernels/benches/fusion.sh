#!/usr/bin/env bash
# The fused kernels against the plain-tensor references, with and without Burn's fusion, on the
# same sizes and device. A build has Burn's fusion on or off, so the benchmark runs once from each
# build; each run times its fused and reference paths alternately (see examples/kernel_bench.rs),
# and the table joins the two runs:
#
#   fused         the CubeCL kernels (build without Burn's fusion)
#   reference     the plain-tensor code, one Burn kernel per operation (same run as `fused`)
#   burn fusion   the plain-tensor code under Burn's fusion (the second build)
#   fused+fusion  the CubeCL kernels as custom operations in Burn's fusion stream (same run as
#                 `burn fusion`)
#
# Usage: kernels/benches/fusion.sh [wgpu|cuda] [kernel_bench flags...]
# Each build has its own target folder under $CARGO_TARGET_DIR (default target/), so neither
# rebuilds the other.
set -euo pipefail
cd "$(dirname "$0")/../.."
backend="${1:-wgpu}"
shift || true
flags=("$@")
base="${CARGO_TARGET_DIR:-target}"

run() { # $1: features, $2: target folder
  CARGO_TARGET_DIR="$2" cargo run --quiet --release -p scoregen-kernels --features "$1" \
    --example kernel_bench -- --device "$backend" --tsv "${flags[@]}"
}
plain=$(mktemp) fused=$(mktemp)
trap 'rm -f "$plain" "$fused"' EXIT
run "$backend" "$base" >"$plain"
run "$backend,fusion" "$base-fusion" >"$fused"

echo "device $backend; median ms per call; ratios are the other path's time over the fused kernels'"
awk -F'\t' '
  NR == FNR { burn[$1 FS $2] = $4; inside[$1 FS $2] = $3; next }
  BEGIN { printf "%-36s %-16s %8s %10s %12s %13s %10s %13s\n", "case", "shape", "fused", "reference", "burn fusion", "fused+fusion", "ref/fused", "fusion/fused" }
  { k = $1 FS $2
    printf "%-36s %-16s %8.3f %10.3f %12.3f %13.3f %9.2fx %12.2fx\n", $1, $2, $3, $4, burn[k], inside[k], $4 / $3, burn[k] / $3 }
' "$fused" "$plain"
