#!/usr/bin/env bash
# Runs the kernel benchmarks and prints the tables used in docs/kernels.md.
#
# Usage: bench/run_kernel_benchmarks.sh [build-dir] [other-bench-program ...]
#   build-dir               a build configured with -DBLIP_BUILD_BENCH=ON (default: build)
#   other-bench-program     further programs in <build-dir>/bench to run as they are
#                           (other kernels' benchmarks), e.g. attention_bench
# Environment:
#   OMP_NUM_THREADS         threads for blip, Eigen and OpenBLAS (default: all cores, 2 here)
#   BLIP_BENCH_KERNELS      kernel paths to run each other-bench-program on, one after the other
#                           (BLIP_KERNEL values, e.g. "avx512-bf16 avx512 avx2 portable"; default:
#                           the CPU's own path only)
#   BLIP_BENCH_FILTER       --benchmark_filter for the other programs (default: all their benchmarks)
#   BLIP_BENCH_REPETITIONS  repetitions per benchmark; the tables show medians (default 5)
#   BLIP_BENCH_MIN_TIME     seconds per repetition (default 0.5)
#
# Run it on a quiet machine: other processes on the same cores distort every figure
# (and OpenMP barriers suffer most when a thread is descheduled).
# Each implementation runs in its own process: OpenBLAS's threads and OpenMP's
# spin for a while after a call and would otherwise compete for the cores.
set -euo pipefail

build_dir=${1:-build}
shift || true
bench_dir="$build_dir/bench"
for program in linear_bench memory_bandwidth_bench; do
  if [[ ! -x "$bench_dir/$program" ]]; then
    echo "error: $bench_dir/$program not found; build it first:" >&2
    echo "  cmake -S . -B $build_dir -DBLIP_BUILD_BENCH=ON -DBLIP_NATIVE=ON && cmake --build $build_dir --target linear_bench memory_bandwidth_bench" >&2
    exit 1
  fi
done

threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
repetitions=${BLIP_BENCH_REPETITIONS:-5}
min_time=${BLIP_BENCH_MIN_TIME:-0.5}
common=(--benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true
        --benchmark_min_time="$min_time" --benchmark_format=json)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "Running on $(nproc) CPUs, $threads threads, $repetitions repetitions (medians); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bench_dir/memory_bandwidth_bench" "${common[@]}" > "$results/bandwidth.json"
for implementation in blip blip-avx2 blip-portable openblas eigen; do
  echo "  linear_bench: $implementation" >&2
  # Implementations that this build or CPU lacks match no benchmark; that is not an error.
  "$bench_dir/linear_bench" --benchmark_filter="^linear/$implementation/" "${common[@]}" \
    > "$results/linear_$implementation.json" 2> "$results/linear_$implementation.log" || true
done
# OpenBLAS again with its AVX2 kernels (OPENBLAS_CORETYPE=Haswell; Debian's OpenBLAS picks the kernels at run time):
# the peer of blipcpp's avx2 path on the same silicon, where the CPU has AVX-512 too.
echo "  linear_bench: openblas, Haswell (AVX2) kernels" >&2
OPENBLAS_CORETYPE=Haswell "$bench_dir/linear_bench" --benchmark_filter="^linear/openblas/" "${common[@]}" \
  > "$results/linear_openblas-avx2.json" 2> "$results/linear_openblas-avx2.log" || true
echo "  linear_bench: micro-kernels alone" >&2
OMP_NUM_THREADS=1 "$bench_dir/linear_bench" --benchmark_filter="^linear_tile/" "${common[@]}" \
  > "$results/linear_tile.json" 2> "$results/linear_tile.log" || true

python3 - "$results" "$threads" <<'PYTHON'
import json, os, sys

results, threads = sys.argv[1], sys.argv[2]

def medians(path):
    """run_name -> counters of the median aggregate."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}, {}
    table = {}
    for entry in data.get("benchmarks", []):
        if entry.get("aggregate_name", "median") != "median":
            continue
        table[entry["run_name"].removesuffix("/real_time")] = entry
    return table, data.get("context", {})

bandwidth, context = medians(os.path.join(results, "bandwidth.json"))
def gbs(entry): return entry["bytes"] / 1e9
print(f"Machine: {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz (nominal), "
      f"{threads} threads")
print()
print("Streaming read bandwidth (memory_bandwidth_bench, 512 MiB buffer, median):")
print()
print("| pages | 1 thread | %s threads |" % threads)
print("|---|---|---|")
best_bandwidth = 0.0
for pages in ("4k_pages", "huge_pages"):
    one = bandwidth.get(f"streaming_read/{pages}/threads:1")
    many = bandwidth.get(f"streaming_read/{pages}/threads:{threads}", one)
    if one is None:
        continue
    best_bandwidth = max(best_bandwidth, gbs(many))
    print(f"| {pages.replace('_', ' ')} | {gbs(one):.1f} GB/s | {gbs(many):.1f} GB/s |")
print()

implementations = ["blip", "blip-avx2", "blip-portable", "openblas", "openblas-avx2", "eigen"]
linear = {}
blip_path, openblas_core, openblas_avx2_core = "?", None, None
for name in implementations:
    table, ctx = medians(os.path.join(results, f"linear_{name}.json"))
    if name == "openblas-avx2":  # the same benchmark names as openblas, another OpenBLAS core
        table = {key.replace("linear/openblas/", "linear/openblas-avx2/", 1): entry for key, entry in table.items()}
        openblas_avx2_core = ctx.get("openblas_core")
    else:
        openblas_core = ctx.get("openblas_core", openblas_core)
    linear[name] = table
    if name == "blip":
        blip_path = ctx.get("blip_kernel_path", "?")

# Shapes in the order the benchmark registers them: linear/<impl>/<shape>/<rows>x<in>x<out>.
shapes = []
for run_name in linear["blip"]:
    _, _, shape, dims = run_name.split("/")
    shapes.append((shape, dims))

def value(name, shape, dims, counter):
    entry = linear[name].get(f"linear/{name}/{shape}/{dims}")
    return None if entry is None else entry[counter]

def cell(number, fmt="{:.1f}"):
    return "–" if number is None else fmt.format(number)

def shapes_of(decode):
    """(shape, dims, rows, inputs, outputs) of the decode shapes (rows <= 12) or of the others."""
    for shape, dims in shapes:
        rows, inputs, outputs = (int(v) for v in dims.split("x"))
        if (rows <= 12) == decode:
            yield shape, dims, rows, inputs, outputs

print(f"Prefill and short-prompt Linear, GFLOP/s (median; blip path: {blip_path}; "
      f"OpenBLAS core: {openblas_core or 'not built'}):")
print()
print("| layer | rows × in → out | blip | OpenBLAS | blip / OpenBLAS | Eigen | blip avx2 path | blip portable path |")
print("|---|---|---|---|---|---|---|---|")
for shape, dims, rows, inputs, outputs in shapes_of(decode=False):
    ours, blas, eigen = (value(n, shape, dims, "FLOP") for n in ("blip", "openblas", "eigen"))
    avx2, portable = (value(n, shape, dims, "FLOP") for n in ("blip-avx2", "blip-portable"))
    ratio = None if ours is None or blas is None else 100 * ours / blas
    print(f"| {shape} | {rows} × {inputs} → {outputs} | {cell(ours and ours / 1e9)} | {cell(blas and blas / 1e9)} | "
          f"{cell(ratio, '{:.0f}%')} | {cell(eigen and eigen / 1e9)} | {cell(avx2 and avx2 / 1e9)} | "
          f"{cell(portable and portable / 1e9)} |")
print()
if linear["blip-avx2"] and linear["openblas-avx2"]:
    print(f"The avx2 path against OpenBLAS's AVX2 kernels (OpenBLAS core: {openblas_avx2_core}), GFLOP/s (median):")
    print()
    print("| layer | rows × in → out | blip avx2 path | OpenBLAS AVX2 | avx2 path / OpenBLAS AVX2 |")
    print("|---|---|---|---|---|")
    for shape, dims, rows, inputs, outputs in shapes_of(decode=False):
        avx2, blas = (value(n, shape, dims, "FLOP") for n in ("blip-avx2", "openblas-avx2"))
        ratio = None if avx2 is None or blas is None else 100 * avx2 / blas
        print(f"| {shape} | {rows} × {inputs} → {outputs} | {cell(avx2 and avx2 / 1e9)} | "
              f"{cell(blas and blas / 1e9)} | {cell(ratio, '{:.0f}%')} |")
    print()

tiles, _ = medians(os.path.join(results, "linear_tile.json"))
if tiles:
    print("One micro-kernel alone, one thread (linear_tile: a full register tile × one panel, 384 inputs), GFLOP/s:")
    print()
    precisions = ["f32", "bf16", "f16", "int8", "int4"]
    print("| path | tile | " + " | ".join(precisions) + " |")
    print("|---|---|" + "---|" * len(precisions))
    by_path = {}
    for run_name, entry in tiles.items():
        _, path, precision, dims = run_name.split("/")
        by_path.setdefault(path, {})[precision] = (dims, entry["FLOP"] / 1e9)
    for path, row in by_path.items():
        dims = next(iter(row.values()))[0]
        print(f"| {path} | {dims.split('x')[0]} rows × 32 | " +
              " | ".join(cell(row[p][1] if p in row else None) for p in precisions) + " |")
    print()

print(f"Decode Linear (weights streamed from memory), weight GB/s (median; bandwidth ceiling "
      f"{best_bandwidth:.1f} GB/s):")
print()
print("| layer | rows × in → out | blip | % of bandwidth | OpenBLAS | Eigen | blip avx2 path | blip portable path |")
print("|---|---|---|---|---|---|---|---|")
for shape, dims, rows, inputs, outputs in shapes_of(decode=True):
    ours, blas, eigen = (value(n, shape, dims, "weight_bytes") for n in ("blip", "openblas", "eigen"))
    avx2, portable = (value(n, shape, dims, "weight_bytes") for n in ("blip-avx2", "blip-portable"))
    share = None if ours is None or best_bandwidth == 0 else 100 * ours / 1e9 / best_bandwidth
    print(f"| {shape} | {rows} × {inputs} → {outputs} | {cell(ours and ours / 1e9)} | {cell(share, '{:.0f}%')} | "
          f"{cell(blas and blas / 1e9)} | {cell(eigen and eigen / 1e9)} | {cell(avx2 and avx2 / 1e9)} | "
          f"{cell(portable and portable / 1e9)} |")
PYTHON

read -r -a kernel_paths <<< "${BLIP_BENCH_KERNELS:-}"
for program in "$@"; do
  for kernel in "${kernel_paths[@]:-}"; do
    echo
    echo "== $program${kernel:+ (BLIP_KERNEL=$kernel)}"
    BLIP_KERNEL=$kernel "$bench_dir/$program" --benchmark_repetitions="$repetitions" \
      --benchmark_report_aggregates_only=true --benchmark_min_time="$min_time" \
      --benchmark_filter="${BLIP_BENCH_FILTER:-.}"
  done
done
