# Builds and runs the consumer project against blip; see CMakeLists.txt here.
# Inputs (-D): MODE (install | pkgconfig | subdirectory), BLIP_SOURCE_DIR, BLIP_BUILD_DIR,
# BLIP_VERSION, PROGRAMS (comma-separated program targets the install must hold), PKG_CONFIG,
# CONSUMER_SOURCE_DIR, WORK_DIR, CXX_COMPILER, C_COMPILER, GENERATOR, FIXTURES_DIR, ASSETS_DIR, and PYTHON
# (the interpreter the Python binding was built for; empty when it was not built).
# Three consumer programs: blip_consumer (blip/blip.hpp, header-only), facade_caption
# (blip/api.hpp; its code from blip::compiled, or, with pkg-config, from a BLIP_IMPLEMENTATION file)
# and c_caption (C: blip/blip.h, linked with libblip.so; with pkg-config through blip-c.pc).
# Ends with "SKIPPED: ..." (the test's SKIP_REGULAR_EXPRESSION) only after every step passed,
# when the fixtures were absent so the consumer could not generate.
cmake_minimum_required(VERSION 3.16)

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${step} failed (${result}):\n${ARGN}\n${output}")
  endif()
  message(STATUS "${step}: ok")
  set(last_output "${output}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(consumer_build "${WORK_DIR}/build")
# Unoptimised (-O0): these tests check how blip is found, compiled and linked, which optimisation does not
# change, and the programs only run the tiny fixture model. At -O2/-O3 the three tests spent over 5 minutes of
# CI's 2 cores compiling the library (blip/blip.hpp, the facade's implementation) three times; at -O0 about half.
set(consumer_optimization -O0)
set(configure_options -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_C_COMPILER=${C_COMPILER}
                      -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=${consumer_optimization}
                      -DCMAKE_C_FLAGS=${consumer_optimization})
set(prefix "${WORK_DIR}/prefix")

if(MODE STREQUAL "install" OR MODE STREQUAL "pkgconfig")
  run("install blip into ${prefix}" "${CMAKE_COMMAND}" --install "${BLIP_BUILD_DIR}" --prefix "${prefix}")
  message(STATUS "${last_output}")
  foreach(installed IN ITEMS include/blip/io/safetensors.hpp include/blip/blip.hpp lib/cmake/blip/blipConfig.cmake
                             include/blip/api.hpp include/blip/api_impl.hpp share/pkgconfig/blip.pc)
    if(NOT EXISTS "${prefix}/${installed}")
      message(FATAL_ERROR "the install did not put ${installed} under ${prefix}")
    endif()
  endforeach()
  foreach(installed IN ITEMS libblip_compiled.a libblip.so pkgconfig/blip-c.pc)
    file(GLOB_RECURSE found "${prefix}/lib*/${installed}")
    if(NOT found)
      message(FATAL_ERROR "the install did not put ${installed} under ${prefix}/lib*")
    endif()
  endforeach()
  if(NOT EXISTS "${prefix}/include/blip/blip.h")
    message(FATAL_ERROR "the install did not put the C interface's header blip/blip.h under ${prefix}/include")
  endif()
endif()

if(MODE STREQUAL "install")
  # Every program this build made, installed and runnable from the prefix.
  string(REPLACE "," ";" programs "${PROGRAMS}")
  foreach(program IN LISTS programs)
    set(path "${prefix}/bin/${program}")
    if(NOT EXISTS "${path}" OR IS_DIRECTORY "${path}")
      message(FATAL_ERROR "the install did not put the program ${program} in ${prefix}/bin")
    endif()
    run("${program} --version from the prefix" "${path}" --version)
    string(REGEX MATCH "^[^\n]*" first_line "${last_output}")
    if(NOT first_line STREQUAL "${program} ${BLIP_VERSION}")
      message(FATAL_ERROR "${path} --version printed '${first_line}', expected '${program} ${BLIP_VERSION}'")
    endif()
  endforeach()
  list(LENGTH programs program_count)
  message(STATUS "${program_count} programs installed in ${prefix}/bin")
  # The Python package, when this build made it: installed under the prefix and importable from there.
  if(PYTHON AND EXISTS "${BLIP_BUILD_DIR}/python/blipcpp/__init__.py")
    file(GLOB_RECURSE python_package "${prefix}/lib/python3/dist-packages/blipcpp/__init__.py")
    if(NOT python_package)
      message(FATAL_ERROR "the install did not put the Python package blipcpp under ${prefix}/lib/python3/dist-packages")
    endif()
    run("import blipcpp from the prefix" "${CMAKE_COMMAND}" -E env "PYTHONPATH=${prefix}/lib/python3/dist-packages"
        "${PYTHON}" -c "import blipcpp")
    set(installed_python_path "${prefix}/lib/python3/dist-packages")
  endif()
  # Only the fresh prefix may satisfy find_package(blip).
  run("configure consumer (find_package)" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
      ${configure_options} "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -DCONSUMER_EXPECTED_BLIP_PREFIX=${prefix})
  run("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")
  set(consumer "${consumer_build}/blip_consumer")
elseif(MODE STREQUAL "pkgconfig")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "pkg-config is not installed (Debian: pkg-config), so blip.pc cannot be checked")
  endif()
  # PKG_CONFIG_PATH puts the fresh prefix first; eigen3, nlohmann_json and stb come from the system.
  set(pkg_config "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${prefix}/share/pkgconfig" "${PKG_CONFIG}")
  run("pkg-config --validate blip" ${pkg_config} --validate blip)
  run("pkg-config --modversion blip" ${pkg_config} --modversion blip)
  string(STRIP "${last_output}" version)
  if(NOT version STREQUAL BLIP_VERSION)
    message(FATAL_ERROR "pkg-config --modversion blip: '${version}', expected '${BLIP_VERSION}'")
  endif()
  run("pkg-config --variable=includedir blip" ${pkg_config} --variable=includedir blip)
  string(STRIP "${last_output}" include_dir)
  file(REAL_PATH "${include_dir}" include_dir)
  file(REAL_PATH "${prefix}/include" expected_include_dir)
  if(NOT include_dir STREQUAL expected_include_dir)
    message(FATAL_ERROR "blip.pc's includedir is ${include_dir}, not ${expected_include_dir}")
  endif()
  run("pkg-config --cflags --libs blip" ${pkg_config} --cflags --libs blip)
  string(STRIP "${last_output}" flags)
  message(STATUS "pkg-config --cflags --libs blip: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  file(MAKE_DIRECTORY "${consumer_build}")
  set(consumer "${consumer_build}/blip_consumer")
  run("compile consumer with pkg-config's flags" "${CXX_COMPILER}" -std=c++17 ${consumer_optimization}
      "${CONSUMER_SOURCE_DIR}/main.cpp" -o "${consumer}" ${flags})
  # Without CMake the facade's code comes from one file of the program that defines BLIP_IMPLEMENTATION.
  run("compile the facade program and its implementation file with pkg-config's flags" "${CXX_COMPILER}"
      -std=c++17 ${consumer_optimization} "${CONSUMER_SOURCE_DIR}/facade_caption.cpp" "${CONSUMER_SOURCE_DIR}/facade_implementation.cpp"
      -o "${consumer_build}/facade_caption" ${flags})
  # The C interface's own file, beside its library in lib*/pkgconfig; run from there through an rpath to libdir.
  file(GLOB_RECURSE c_pc_file "${prefix}/lib*/pkgconfig/blip-c.pc")
  get_filename_component(c_pc_dir "${c_pc_file}" DIRECTORY)
  set(pkg_config_c "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${c_pc_dir}" "${PKG_CONFIG}")
  run("pkg-config --validate blip-c" ${pkg_config_c} --validate blip-c)
  run("pkg-config --variable=libdir blip-c" ${pkg_config_c} --variable=libdir blip-c)
  string(STRIP "${last_output}" c_lib_dir)
  run("pkg-config --cflags --libs blip-c" ${pkg_config_c} --cflags --libs blip-c)
  string(STRIP "${last_output}" c_flags)
  message(STATUS "pkg-config --cflags --libs blip-c: ${c_flags}")
  separate_arguments(c_flags UNIX_COMMAND "${c_flags}")
  run("compile the C program with pkg-config's flags" "${C_COMPILER}" -std=c99 ${consumer_optimization}
      "${CONSUMER_SOURCE_DIR}/c_caption.c" -o "${consumer_build}/c_caption" ${c_flags} "-Wl,-rpath,${c_lib_dir}")
elseif(MODE STREQUAL "subdirectory")
  run("configure consumer (add_subdirectory)" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
      ${configure_options} -DCONSUMER_USE_SUBDIRECTORY=ON "-DBLIP_SOURCE_DIR=${BLIP_SOURCE_DIR}")
  run("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")
  set(consumer "${consumer_build}/blip_consumer")
else()
  message(FATAL_ERROR "MODE must be install, pkgconfig or subdirectory, not '${MODE}'")
endif()

run("run consumer" "${consumer}" "${WORK_DIR}" "${FIXTURES_DIR}")
message(STATUS "${last_output}")
# The facade program captions a photo with the fixture model (random weights: the words are garbage,
# but a line comes out and the exit status is 0).
set(facade_tokenizer "${ASSETS_DIR}/tokenizers/blip-image-captioning-base")
set(facade_image "${ASSETS_DIR}/images/skimage_coffee.png")
if(EXISTS "${FIXTURES_DIR}/blip_caption/model.safetensors" AND EXISTS "${facade_tokenizer}" AND EXISTS "${facade_image}")
  run("run facade_caption" "${consumer_build}/facade_caption" "${FIXTURES_DIR}/blip_caption" "${facade_image}"
      "${facade_tokenizer}")
  message(STATUS "facade_caption: ${last_output}")
  set(facade_line "${last_output}")
  # The C program, the same options through blip/blip.h: the same line.
  run("run c_caption" "${consumer_build}/c_caption" "${FIXTURES_DIR}/blip_caption" "${facade_image}"
      "${facade_tokenizer}")
  message(STATUS "c_caption: ${last_output}")
  if(NOT last_output STREQUAL facade_line)
    message(FATAL_ERROR "c_caption printed '${last_output}', facade_caption '${facade_line}'")
  endif()
  if(installed_python_path)  # the installed Python package, the same options: the same line
    run("caption with the installed Python package" "${CMAKE_COMMAND}" -E env "PYTHONPATH=${installed_python_path}"
        "${PYTHON}" "${CONSUMER_SOURCE_DIR}/python_caption.py" "${BLIP_VERSION}" "${FIXTURES_DIR}/blip_caption"
        "${facade_image}" "${facade_tokenizer}")
    message(STATUS "Python: ${last_output}")
    if(NOT last_output STREQUAL facade_line)
      message(FATAL_ERROR "the installed Python package captioned '${last_output}', facade_caption '${facade_line}'")
    endif()
  endif()
elseif(EXISTS "${FIXTURES_DIR}/blip_caption/model.safetensors")
  message(STATUS "SKIPPED: facade_caption and c_caption could not run: no tokenizer at ${facade_tokenizer} or no photo at "
                 "${facade_image} (set BLIP_ASSETS_DIR); every other step passed")
endif()
if(NOT EXISTS "${FIXTURES_DIR}/blip_caption/model.safetensors")
  message(STATUS "SKIPPED: the consumer could not generate: no fixture model at ${FIXTURES_DIR}/blip_caption "
                 "(set BLIP_FIXTURES_DIR); every other step passed")
endif()
