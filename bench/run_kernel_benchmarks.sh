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
# Besides f32 against OpenBLAS and Eigen, it runs every narrow format (bf16, f16, int8, int4 weights; bf16 and
# int8 activations; the amx path's tiles where the CPU has AMX) and, where Debian's python3-torch is installed,
# bench/pytorch_linear_bench.py (F.linear in f32 and bf16: oneDNN) at the same shapes and threads, one after the
# other, and prints their tables with the ratios the issue's targets are stated in. The decode targets are read
# best from the decode_against_read table: there each decode call is timed beside a streaming read of the same
# bytes (another copy of the same weights), in the same seconds, where the other decode tables divide by a
# bandwidth measured before them.
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
# Narrow weights and activations on the CPU's own path (and the amx path's tiles where the CPU has AMX), each in a
# process of its own, as the implementations above.
narrow_implementations=(blip-bf16 blip-bf16-activations blip-amx-bf16-activations blip-f16 blip-int8
                        blip-int8-activations blip-int4 blip-int4-int8-activations)
for implementation in "${narrow_implementations[@]}"; do
  echo "  linear_bench: $implementation" >&2
  "$bench_dir/linear_bench" --benchmark_filter="^linear/$implementation/" "${common[@]}" \
    > "$results/narrow_$implementation.json" 2> "$results/narrow_$implementation.log" || true
done
# PyTorch's F.linear at the same shapes and threads, f32 and bf16 (oneDNN), where Debian's python3-torch is installed.
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
torch_python=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c "import torch" 2> /dev/null; then torch_python=$candidate; break; fi
done
if [[ -n "$torch_python" ]]; then
  echo "  pytorch_linear_bench.py (torch $("$torch_python" -c 'import torch; print(torch.__version__)'))" >&2
  "$torch_python" "$script_dir/pytorch_linear_bench.py" --threads "$threads" --min-time "$min_time" \
    --repetitions "$repetitions" > "$results/pytorch.jsonl" 2> "$results/pytorch.log" || true
else
  echo "  PyTorch not installed (apt-get install python3-torch): its columns stay empty" >&2
fi
# The decode GEMV and a streaming read of the same bytes, interleaved call by call (decode_against_read/): the share
# of the bandwidth the issue's decode targets are stated in, robust to a host whose bandwidth drifts.
echo "  linear_bench: decode against an interleaved streaming read" >&2
"$bench_dir/linear_bench" --benchmark_filter="^decode_against_read/" "${common[@]}" \
  > "$results/decode_against_read.json" 2> "$results/decode_against_read.log" || true
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

narrow = {}
for path in sorted(os.listdir(results)):
    if path.startswith("narrow_") and path.endswith(".json"):
        narrow.update(medians(os.path.join(results, path))[0])
pytorch = {}
try:
    with open(os.path.join(results, "pytorch.jsonl")) as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                pytorch[entry["name"]] = entry
except OSError:
    pass

def narrow_value(name, shape, dims, counter):
    entry = narrow.get(f"linear/{name}/{shape}/{dims}") or pytorch.get(f"linear/{name}/{shape}/{dims}")
    return None if entry is None else entry[counter]

# (column, benchmark name); f32 is the "blip" run above.
formats = [("bf16", "blip-bf16"), ("bf16 × bf16 act.", "blip-bf16-activations"),
           ("amx bf16 × bf16", "blip-amx-bf16-activations"), ("f16", "blip-f16"), ("int8", "blip-int8"),
           ("int8 × int8 act.", "blip-int8-activations"), ("int4", "blip-int4"),
           ("int4 × int8 act.", "blip-int4-int8-activations"), ("PyTorch f32", "pytorch-float32"),
           ("PyTorch bf16", "pytorch-bfloat16")]
present = [(label, name) for label, name in formats
           if any(narrow_value(name, shape, dims, "FLOP") is not None for shape, dims in shapes)]
if narrow:
    def best_bf16(shape, dims, counter):
        found = [v for v in (narrow_value(n, shape, dims, counter)
                             for n in ("blip-bf16-activations", "blip-amx-bf16-activations")) if v is not None]
        return max(found) if found else None
    print("Narrow weights and activations, prefill GFLOP/s (median; blip path: "
          f"{blip_path}; \"act.\": the activations in that format too; PyTorch: F.linear, same shapes and threads):")
    print()
    print("| layer | rows × in → out | f32 | " + " | ".join(label for label, _ in present) +
          " | bf16 × bf16 / f32 | bf16 × bf16 / PyTorch bf16 |")
    print("|---|---|---|" + "---|" * len(present) + "---|---|")
    for shape, dims, rows, inputs, outputs in shapes_of(decode=False):
        f32 = value("blip", shape, dims, "FLOP")
        figures = [narrow_value(name, shape, dims, "FLOP") for _, name in present]
        bf16 = best_bf16(shape, dims, "FLOP")
        torch_bf16 = narrow_value("pytorch-bfloat16", shape, dims, "FLOP")
        print(f"| {shape} | {rows} × {inputs} → {outputs} | {cell(f32 and f32 / 1e9, '{:.0f}')} | " +
              " | ".join(cell(v and v / 1e9, "{:.0f}") for v in figures) +
              f" | {cell(bf16 and f32 and bf16 / f32, '{:.2f}×')} | "
              f"{cell(bf16 and torch_bf16 and bf16 / torch_bf16, '{:.2f}×')} |")
    print()
    print(f"Narrow weights and activations, decode: weight GB/s of the bytes each format streams (int8 and int4 with "
          f"their scales), and the share of the bandwidth ceiling ({best_bandwidth:.1f} GB/s) for the formats the issue "
          f"targets (bf16 and int8 >= 85%, int4 >= 70%):")
    print()
    print("| layer | rows × in → out | f32 | " + " | ".join(label for label, _ in present) + " |")
    print("|---|---|---|" + "---|" * len(present))
    targeted = {"blip-bf16-activations", "blip-amx-bf16-activations", "blip-int8-activations",
                "blip-int4-int8-activations"}
    for shape, dims, rows, inputs, outputs in shapes_of(decode=True):
        f32 = value("blip", shape, dims, "weight_bytes")
        cells = []
        for _, name in present:
            v = narrow_value(name, shape, dims, "weight_bytes")
            text = cell(v and v / 1e9)
            if v is not None and name in targeted and best_bandwidth > 0:
                text += f" ({100 * v / 1e9 / best_bandwidth:.0f}%)"
            cells.append(text)
        print(f"| {shape} | {rows} × {inputs} → {outputs} | {cell(f32 and f32 / 1e9)} | " + " | ".join(cells) + " |")
    print()

against_read, _ = medians(os.path.join(results, "decode_against_read.json"))
if against_read:
    targets = {"bf16-bf16": 85, "int8-int8": 85, "int4-int8": 70}
    print("Decode against a streaming read of the same bytes, interleaved call by call (decode_against_read: rows × "
          "2560 → 10240 on the run-time path, weights with their scales; medians): kernel GB/s, GB/s of a bare read "
          "of the weight copies themselves in the same iterations, and the kernel's share of that read (the median of "
          "per-iteration ratios; then, in brackets, its share of a read of a separate 512 MiB buffer, which may sit "
          "on faster or slower memory than the weights), with the issue's target (bf16 and int8 >= 85%, int4 >= 70%):")
    print()
    rows_seen, formats_seen = [], []
    for run_name in against_read:
        _, fmt, dims = run_name.split("/")
        rows = int(dims.split("x")[0])
        if rows not in rows_seen: rows_seen.append(rows)
        if fmt not in formats_seen: formats_seen.append(fmt)
    print("| weights × activations | " + " | ".join(f"{r} row{'s' if r > 1 else ''}" for r in rows_seen) + " | target |")
    print("|---|" + "---|" * (len(rows_seen) + 1))
    for fmt in formats_seen:
        cells = []
        for rows in rows_seen:
            entry = against_read.get(f"decode_against_read/{fmt}/{rows}x2560x10240")
            cells.append("–" if entry is None else
                         f"{entry['kernel_GBps']:.1f} / {entry['read_GBps']:.1f} ({100 * entry['share_of_read']:.0f}%) "
                         f"[{100 * entry.get('share_of_buffer_read', 0):.0f}%]")
        target = targets.get(fmt)
        print(f"| {fmt} | " + " | ".join(cells) + f" | {f'>= {target}%' if target else '–'} |")
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
