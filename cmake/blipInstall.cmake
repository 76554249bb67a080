# `cmake --install` puts in place:
#   include/blip/...                      the headers (component "development")
#   lib/libblip_compiled.a                blip::compiled, the facade blip/api.hpp compiled (BLIP_BUILD_COMPILED)
#   lib/cmake/blip/blipConfig.cmake ...   the CMake package: find_package(blip), then blip::blip or blip::compiled
#   share/pkgconfig/blip.pc               the pkg-config file: pkg-config --cflags --libs blip
#   bin/blip_caption, ... blip_weights    the programs, when built (BLIP_BUILD_EXAMPLES; component "programs")
# `cmake --install build --component development` installs the library alone.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/blip" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT development)
install(TARGETS blip EXPORT blipTargets)
if(BLIP_BUILD_COMPILED)  # blip::compiled, the static library behind blip/api.hpp
  install(TARGETS blip_compiled EXPORT blipTargets
          ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
endif()
install(EXPORT blipTargets NAMESPACE blip:: DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip" COMPONENT development)

set(BLIP_INSTALLED_OPENMP ${BLIP_USE_OPENMP})
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/blipConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/blipConfig.cmake" INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/blipConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/blipConfig.cmake" "${PROJECT_BINARY_DIR}/blipConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/blipDependencies.cmake" DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip"
  COMPONENT development)

# ---- pkg-config -------------------------------------------------------------
# The library is headers only, so the file lives in share/pkgconfig (as Debian's eigen3.pc and
# nlohmann_json.pc do). Its prefix is found from the file's own place (${pcfiledir}), so the file stays
# right under `cmake --install --prefix P` or DESTDIR and after the prefix is moved. Eigen, nlohmann
# json and stb come through Requires (their own .pc files give their include flags, and stb's -lstb);
# OpenMP through the flags CMake found for it, in Cflags and Libs (GCC links libgomp with -fopenmp).
set(BLIP_PKGCONFIG_DIR "${CMAKE_INSTALL_DATADIR}/pkgconfig")
if(IS_ABSOLUTE "${BLIP_PKGCONFIG_DIR}")
  set(BLIP_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH BLIP_PC_PREFIX_FROM_PCDIR "/prefix/${BLIP_PKGCONFIG_DIR}" "/prefix")  # "../.."
  string(REGEX REPLACE "/$" "" BLIP_PC_PREFIX_FROM_PCDIR "${BLIP_PC_PREFIX_FROM_PCDIR}")
  set(BLIP_PC_PREFIX "\${pcfiledir}/${BLIP_PC_PREFIX_FROM_PCDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(BLIP_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(BLIP_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(BLIP_PC_OPENMP_FLAGS "")
if(BLIP_USE_OPENMP AND OpenMP_CXX_FOUND)
  set(BLIP_PC_OPENMP_FLAGS "${OpenMP_CXX_FLAGS}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/blip.pc.in" "${PROJECT_BINARY_DIR}/blip.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/blip.pc" DESTINATION "${BLIP_PKGCONFIG_DIR}" COMPONENT development)

# ---- the programs -------------------------------------------------------------
# Built for any x86-64 CPU unless BLIP_NATIVE is on (see CMakeLists.txt).
get_property(BLIP_INSTALLED_PROGRAMS GLOBAL PROPERTY BLIP_PROGRAMS)
if(BLIP_INSTALLED_PROGRAMS)
  install(TARGETS ${BLIP_INSTALLED_PROGRAMS} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT programs)
endif()
