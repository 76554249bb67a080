// blip/kernels/detail/cpu_dispatch.hpp: which instruction set a kernel runs with,
// chosen at RUN TIME.
//
// A binary built without -march=native must still use AVX-512 on a CPU that has
// it, and a binary built with it must still be able to run the portable code
// (tests compare the paths against each other). So the fast kernels are plain
// functions compiled for a specific ISA with GCC/Clang's
// `__attribute__((target(...)))`, and a CPU check (`__builtin_cpu_supports`,
// which also verifies that the OS saves the wide registers) decides once which
// one is called. On compilers or architectures without these builtins only the
// portable path exists.
//
// The environment variable BLIP_KERNEL=portable|avx2|avx512|avx512-bf16|amx forces a path (for
// testing and benchmarking); forcing one the CPU cannot run is an error, not a
// silent fallback, so a test that asks for AVX-512 really tests AVX-512.
//
// Weight precisions (f32, bf16, f16, int8, int4) are not paths: every path has a
// micro-kernel for each (kernels/linear.hpp). avx512-bf16 is AVX-512 plus the
// AVX512-BF16 dot product (vdpbf16ps: Cooper Lake, Sapphire Rapids, Zen 4 and
// later); it differs from avx512 only where bf16 weights meet bf16 activations
// (ActivationPrecision::BF16), and every other kernel treats it as avx512.
// AVX512-VNNI is not a path of its own either: on the AVX-512 paths, int8
// or int4 weights meeting int8 activations (ActivationPrecision::Int8) use
// vpdpbusd when the CPU has AVX512-VNNI and AVX512-VBMI (Ice Lake, Sapphire
// Rapids, Zen 4 and later: avx512_int8_dot_supported()), and on the avx2 path
// the 256-bit vpdpbusd of AVX-VNNI when the CPU has it (Alder Lake and later
// Intel cores, Zen 5: avx2_int8_dot_supported()), else AVX2's vpmaddubsw;
// elsewhere the same quantized activations are multiplied by the f32 kernels.
// amx is avx512-bf16 plus Intel's AMX tiles (Sapphire Rapids and later Xeons) where bf16 weights meet bf16
// activations (detail/linear_amx.hpp); every other kernel is avx512-bf16's. It is not yet chosen by itself: its
// kernel has been tested against a scalar model of the tile instructions (detail/amx_tiles.hpp) but not yet run
// or measured on an AMX CPU, so best_kernel_path() stops at avx512-bf16 until a session on one has (the tests
// run every supported path, amx included, so such a CPU checks it). Roadmap: int8 tiles (TDPBUSD).
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

#include "blip/core/error.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define BLIP_X86_DISPATCH 1
#include <immintrin.h>
// Functions compiled for one ISA regardless of the translation unit's -m flags.
#define BLIP_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f")))
#define BLIP_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BLIP_TARGET_AVX512_BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512bf16")))
#define BLIP_TARGET_AVX512_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vnni,avx512vbmi")))
#define BLIP_TARGET_AVX_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#include <cpuid.h>
#else
#define BLIP_X86_DISPATCH 0
#endif

// AMX tiles need x86-64 and Linux's permission request (amx_bf16_supported below).
#if BLIP_X86_DISPATCH && defined(__linux__) && defined(__x86_64__)
#define BLIP_AMX_HARDWARE 1
#include <sys/syscall.h>
#include <unistd.h>
#else
#define BLIP_AMX_HARDWARE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
// The body of a kernel template that is inlined into ISA-specific wrappers, so
// the compiler vectorises it for each wrapper's instruction set.
#define BLIP_ALWAYS_INLINE inline __attribute__((always_inline))
// A loop that must keep its accumulators in registers while its caller's local arrays stay in memory: inlined,
// GCC 12 may promote such an array to registers and spill it inside the loop (linear_avx2_integer.hpp).
#define BLIP_NOINLINE __attribute__((noinline))
#else
#define BLIP_ALWAYS_INLINE inline
#define BLIP_NOINLINE
#endif

// Fully unroll the following loop (register-tile loops over a compile-time
// count must be unrolled for the accumulators to live in registers, also at -O2).
#if defined(__clang__)
#define BLIP_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define BLIP_UNROLL _Pragma("GCC unroll 16")
#else
#define BLIP_UNROLL
#endif

namespace blip::kernels {

// Instruction-set paths, slowest first.
enum class KernelPath { Portable, Avx2, Avx512, Avx512Bf16, Amx };

inline constexpr KernelPath kAllKernelPaths[] = {KernelPath::Portable, KernelPath::Avx2, KernelPath::Avx512,
                                                 KernelPath::Avx512Bf16, KernelPath::Amx};

inline const char* kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::Portable: return "portable";
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Avx512: return "avx512";
    case KernelPath::Avx512Bf16: return "avx512-bf16";
    case KernelPath::Amx: return "amx";
  }
  return "?";
}

// True when this CPU has AMX-TILE and AMX-BF16, the OS saves the tile state (XCR0 bits 17 and 18) and has
// granted it to this process: Linux hands a process the 8 KiB of tile state only when asked (arch_prctl
// ARCH_REQ_XCOMP_PERM, kernel 5.16 and later), and without it the first tile instruction kills the process with
// SIGILL. Asked once per process; the grant is process-wide, so every thread (OpenMP's included) may use the tiles.
inline bool amx_bf16_supported() {
#if BLIP_AMX_HARDWARE
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx >> 27 & 1u) == 0) return false;  // OSXSAVE
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool amx_bf16 = (edx >> 22 & 1u) != 0, amx_tile = (edx >> 24 & 1u) != 0;
    if (!amx_bf16 || !amx_tile) return false;
    unsigned xcr0_low = 0, xcr0_high = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low >> 17 & 3u) != 3u) return false;  // XTILECFG and XTILEDATA
    constexpr long kArchRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kTileDataFeature = 18;             // XFEATURE_XTILEDATA
    return ::syscall(SYS_arch_prctl, kArchRequestPermission, kTileDataFeature) == 0;
  }();
  return supported;
#else
  return false;
#endif
}

// True when this build contains the path and this CPU (and OS) can run it.
inline bool kernel_path_supported(KernelPath path) {
#if BLIP_X86_DISPATCH
  __builtin_cpu_init();  // idempotent; needed if called before libgcc's own constructor has run
#endif
  switch (path) {
    case KernelPath::Portable: return true;
#if BLIP_X86_DISPATCH
    // F16C (f16 weights) came with AVX2's predecessors: every AVX2 CPU has it.
    case KernelPath::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelPath::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelPath::Avx512Bf16:
      return kernel_path_supported(KernelPath::Avx512) && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512bf16");
    case KernelPath::Amx: return kernel_path_supported(KernelPath::Avx512Bf16) && amx_bf16_supported();
#else
    case KernelPath::Avx2:
    case KernelPath::Avx512:
    case KernelPath::Avx512Bf16:
    case KernelPath::Amx: return false;
#endif
  }
  return false;
}

// The fastest path this CPU supports (amx not yet: see the top of this file).
inline KernelPath best_kernel_path() {
  if (kernel_path_supported(KernelPath::Avx512Bf16)) return KernelPath::Avx512Bf16;
  if (kernel_path_supported(KernelPath::Avx512)) return KernelPath::Avx512;
  if (kernel_path_supported(KernelPath::Avx2)) return KernelPath::Avx2;
  return KernelPath::Portable;
}

namespace detail {
// The path named by a BLIP_KERNEL value; empty/null means "best". Throws for
// unknown names and for paths this CPU cannot run.
inline KernelPath kernel_path_from_setting(const char* setting) {
  if (setting == nullptr || *setting == '\0') return best_kernel_path();
  const std::string_view name(setting);
  for (KernelPath path : kAllKernelPaths) {
    if (name == kernel_path_name(path)) {
      check(kernel_path_supported(path), "BLIP_KERNEL=", name, ": this CPU (or this build) cannot run the ", name,
            " kernels");
      return path;
    }
  }
  fail("BLIP_KERNEL=", name, ": unknown kernel path (expected portable, avx2, avx512, avx512-bf16 or amx)");
}
}  // namespace detail

// True when this build and CPU have the instructions of the int8 dot-product
// kernel (linear_avx512.hpp: vpdpbusd from AVX512-VNNI, vpermt2b from AVX512-VBMI).
// Asked on every Linear call that could use it, so decided once per process.
inline bool avx512_int8_dot_supported() {
#if BLIP_X86_DISPATCH
  static const bool supported = kernel_path_supported(KernelPath::Avx512) && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  return supported;
#else
  return false;
#endif
}

// True when this build and CPU have AVX-VNNI (the VEX-encoded 256-bit vpdpbusd) on top of the avx2 path
// (linear_avx2_integer.hpp). Read from CPUID (leaf 7, sub-leaf 1, EAX bit 4) rather than __builtin_cpu_supports,
// which older compilers do not know this feature by; the avx2 check covers the OS saving the ymm registers.
inline bool avx2_int8_dot_supported() {
#if BLIP_X86_DISPATCH
  static const bool supported = [] {
    if (!kernel_path_supported(KernelPath::Avx2)) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
    return (eax >> 4 & 1u) != 0;
  }();
  return supported;
#else
  return false;
#endif
}

// The CPU's vendor, family and model as CPUID reports them (leaf 0's vendor string; leaf 1's EAX with the
// extended family and model folded in, as both vendors document), for the few tuning choices measured to differ
// between microarchitectures with the same instructions (Zen 4 and Zen 5 are families 0x19 and 0x1a).
struct CpuModel {
  bool amd = false, intel = false;
  int family = 0, model = 0;
};

// Decodes CPUID leaf 0 (EBX, EDX, ECX: the vendor string) and leaf 1's EAX.
inline CpuModel cpu_model_from_cpuid(unsigned vendor_ebx, unsigned vendor_edx, unsigned vendor_ecx,
                                     unsigned signature) {
  char vendor[13] = {};
  for (int i = 0; i < 4; ++i) {
    vendor[i] = static_cast<char>(vendor_ebx >> (8 * i) & 0xffu);
    vendor[4 + i] = static_cast<char>(vendor_edx >> (8 * i) & 0xffu);
    vendor[8 + i] = static_cast<char>(vendor_ecx >> (8 * i) & 0xffu);
  }
  CpuModel cpu;
  cpu.amd = std::string_view(vendor) == "AuthenticAMD";
  cpu.intel = std::string_view(vendor) == "GenuineIntel";
  const int base_family = static_cast<int>(signature >> 8 & 0xfu), base_model = static_cast<int>(signature >> 4 & 0xfu);
  cpu.family = base_family == 0xf ? base_family + static_cast<int>(signature >> 20 & 0xffu) : base_family;
  cpu.model = base_family == 0xf || base_family == 0x6 ? base_model + (static_cast<int>(signature >> 16 & 0xfu) << 4)
                                                       : base_model;
  return cpu;
}

// This CPU's (all zero off x86), read once per process.
inline const CpuModel& cpu_model() {
  static const CpuModel cpu = [] {
#if BLIP_X86_DISPATCH
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return CpuModel{};
    const unsigned vendor_ebx = ebx, vendor_edx = edx, vendor_ecx = ecx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return CpuModel{};
    return cpu_model_from_cpuid(vendor_ebx, vendor_edx, vendor_ecx, eax);
#else
    return CpuModel{};
#endif
  }();
  return cpu;
}

// L2 bytes per core from CPUID leaf 0x80000006's ECX (bits 31-16: KiB; AMD and Intel both report it there), or
// `fallback` when it reports none.
inline std::int64_t l2_cache_bytes_from_cpuid(unsigned ecx, std::int64_t fallback) {
  const std::int64_t kibibytes = ecx >> 16;
  return kibibytes > 0 ? kibibytes << 10 : fallback;
}

// This CPU's L2 per core, read once per process; 512 KiB (Zen 3's, the smallest of the CPUs measured here) where
// CPUID does not say (other architectures, CPUs or hypervisors without the leaf). For blocking choices only.
inline std::int64_t l2_cache_bytes() {
  constexpr std::int64_t kFallback = std::int64_t{512} << 10;
  static const std::int64_t bytes = [] {
#if BLIP_X86_DISPATCH
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000006u) return kFallback;
    if (__get_cpuid(0x80000006u, &eax, &ebx, &ecx, &edx) == 0) return kFallback;
    return l2_cache_bytes_from_cpuid(ecx, kFallback);
#else
    return kFallback;
#endif
  }();
  return bytes;
}

// True on the AVX-512 paths (avx512, avx512-bf16 and amx): kernels without a bf16-specific variant use their AVX-512
// code.
inline bool is_avx512_path(KernelPath path) {
  return path == KernelPath::Avx512 || path == KernelPath::Avx512Bf16 || path == KernelPath::Amx;
}

// The path kernels use: BLIP_KERNEL if set, else the best supported. Decided
// once per process (thread-safe static initialisation).
inline KernelPath active_kernel_path() {
  static const KernelPath path = detail::kernel_path_from_setting(std::getenv("BLIP_KERNEL"));
  return path;
}

}  // namespace blip::kernels
