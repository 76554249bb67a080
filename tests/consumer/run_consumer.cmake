# Builds and runs the consumer project against blip; see CMakeLists.txt here.
# Inputs (-D): MODE (install | subdirectory), BLIP_SOURCE_DIR, BLIP_BUILD_DIR,
# CONSUMER_SOURCE_DIR, WORK_DIR, CXX_COMPILER, GENERATOR, FIXTURES_DIR.
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
set(configure_options -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release)

if(MODE STREQUAL "install")
  set(prefix "${WORK_DIR}/prefix")
  run("install blip into ${prefix}" "${CMAKE_COMMAND}" --install "${BLIP_BUILD_DIR}" --prefix "${prefix}")
  if(NOT EXISTS "${prefix}/include/blip/io/safetensors.hpp")
    message(FATAL_ERROR "the install did not put the headers under ${prefix}/include")
  endif()
  # Only the fresh prefix may satisfy find_package(blip).
  run("configure consumer (find_package)" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
      ${configure_options} "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -DCONSUMER_EXPECTED_BLIP_PREFIX=${prefix})
elseif(MODE STREQUAL "subdirectory")
  run("configure consumer (add_subdirectory)" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
      ${configure_options} -DCONSUMER_USE_SUBDIRECTORY=ON "-DBLIP_SOURCE_DIR=${BLIP_SOURCE_DIR}")
else()
  message(FATAL_ERROR "MODE must be install or subdirectory, not '${MODE}'")
endif()

run("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")
run("run consumer" "${consumer_build}/blip_consumer" "${WORK_DIR}" "${FIXTURES_DIR}")
message(STATUS "${last_output}")
