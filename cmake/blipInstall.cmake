# `cmake --install` puts the headers and a package config in place so that
# find_package(blip) followed by target_link_libraries(app blip::blip) works.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/blip" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS blip EXPORT blipTargets)
install(EXPORT blipTargets NAMESPACE blip:: DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip")

set(BLIP_INSTALLED_OPENMP ${BLIP_USE_OPENMP})
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/blipConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/blipConfig.cmake" INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/blipConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/blipConfig.cmake" "${PROJECT_BINARY_DIR}/blipConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/blipDependencies.cmake" DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/blip")
