# Benchmark-only dependencies, included by bench/CMakeLists.txt after it has
# made one program per bench/<name>_bench.cpp.
#
# OpenBLAS (Debian libopenblas-dev, found through pkg-config "openblas") is the
# reference linear_bench compares against. It is linked into linear_bench only,
# never into the library; without it linear_bench still builds and runs,
# minus the OpenBLAS rows.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(BLIP_OPENBLAS QUIET IMPORTED_TARGET openblas)
endif()
if(TARGET linear_bench)
  if(TARGET PkgConfig::BLIP_OPENBLAS)
    target_link_libraries(linear_bench PRIVATE PkgConfig::BLIP_OPENBLAS)
    target_compile_definitions(linear_bench PRIVATE BLIP_BENCH_HAVE_OPENBLAS=1)
    message(STATUS "linear_bench: comparing against OpenBLAS ${BLIP_OPENBLAS_VERSION}")
  else()
    message(STATUS "linear_bench: OpenBLAS not found (pkg-config openblas); building without the OpenBLAS comparison")
  endif()
endif()
