# `cmake --install` puts in place:
#   include/blip/...                      the headers (component "development")
#   lib/libblip_compiled.a                blip::compiled, the facade blip/api.hpp compiled (BLIP_BUILD_COMPILED)
#   lib/libblip.so                        blip::c, the C interface blip/blip.h (with blip::compiled)
#   lib/cmake/blip/blipConfig.cmake ...   the CMake package: find_package(blip), then blip::blip or blip::compiled
#   share/pkgconfig/blip.pc               the pkg-config file: pkg-config --cflags --libs blip
#   lib/pkgconfig/blip-c.pc               the C interface's: pkg-config --cflags --libs blip-c
#   bin/blip_caption, ... blip_weights    the programs, when built (BLIP_BUILD_EXAMPLES; component "programs")
# `cmake --install build --component development` installs the library alone.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/blip" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT development)
install(TARGETS blip EXPORT blipTargets)
if(BLIP_BUILD_COMPILED)  # blip::compiled, the static library behind blip/api.hpp
  install(TARGETS blip_compiled EXPORT blipTargets
          ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
  # blip::c, the C interface: libblip.so.0.1.0, its soname link and the development link libblip.so.
  install(TARGETS blip_c EXPORT blipTargets LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
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
# The prefix line of a .pc file installed in `pc_dir`: relative to the file's own place, unless absolute.
function(blip_pkgconfig_prefix pc_dir result)
  if(IS_ABSOLUTE "${pc_dir}")
    set(${result} "${CMAKE_INSTALL_PREFIX}" PARENT_SCOPE)
  else()
    file(RELATIVE_PATH up "/prefix/${pc_dir}" "/prefix")  # "../.."
    string(REGEX REPLACE "/$" "" up "${up}")
    set(${result} "\${pcfiledir}/${up}" PARENT_SCOPE)
  endif()
endfunction()
set(BLIP_PKGCONFIG_DIR "${CMAKE_INSTALL_DATADIR}/pkgconfig")
blip_pkgconfig_prefix("${BLIP_PKGCONFIG_DIR}" BLIP_PC_PREFIX)
# A directory as a .pc file names it: under ${prefix}, unless absolute.
function(blip_pkgconfig_directory directory result)
  if(IS_ABSOLUTE "${directory}")
    set(${result} "${directory}" PARENT_SCOPE)
  else()
    set(${result} "\${prefix}/${directory}" PARENT_SCOPE)
  endif()
endfunction()
blip_pkgconfig_directory("${CMAKE_INSTALL_INCLUDEDIR}" BLIP_PC_INCLUDEDIR)
set(BLIP_PC_OPENMP_FLAGS "")
if(BLIP_USE_OPENMP AND OpenMP_CXX_FOUND)
  set(BLIP_PC_OPENMP_FLAGS "${OpenMP_CXX_FLAGS}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/blip.pc.in" "${PROJECT_BINARY_DIR}/blip.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/blip.pc" DESTINATION "${BLIP_PKGCONFIG_DIR}" COMPONENT development)

# The C interface's file (blip-c.pc): it names a library, so it lives beside it in lib/pkgconfig, its
# prefix again found from the file's own place.
if(BLIP_BUILD_COMPILED)
  set(BLIP_C_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  blip_pkgconfig_prefix("${BLIP_C_PKGCONFIG_DIR}" BLIP_C_PC_PREFIX)
  blip_pkgconfig_directory("${CMAKE_INSTALL_LIBDIR}" BLIP_C_PC_LIBDIR)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/blip-c.pc.in" "${PROJECT_BINARY_DIR}/blip-c.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/blip-c.pc" DESTINATION "${BLIP_C_PKGCONFIG_DIR}" COMPONENT development)
endif()

# ---- the programs -------------------------------------------------------------
# Built for any x86-64 CPU unless BLIP_NATIVE is on (see CMakeLists.txt).
get_property(BLIP_INSTALLED_PROGRAMS GLOBAL PROPERTY BLIP_PROGRAMS)
if(BLIP_INSTALLED_PROGRAMS)
  install(TARGETS ${BLIP_INSTALLED_PROGRAMS} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT programs)
endif()
