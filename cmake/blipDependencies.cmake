# Finds what blip::blip needs; used both by this project and by the installed
# blipConfig.cmake, so a consumer resolves the same dependencies.
include(CMakeFindDependencyMacro)
if(NOT TARGET Eigen3::Eigen)
  find_package(Eigen3 3.3 REQUIRED NO_MODULE)
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3 REQUIRED)
endif()
# stb_image: Debian's libstb-dev ships the header and a compiled libstb.
if(NOT TARGET PkgConfig::BLIP_STB)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(BLIP_STB REQUIRED IMPORTED_TARGET GLOBAL stb)
endif()
if(NOT DEFINED BLIP_USE_OPENMP OR BLIP_USE_OPENMP)
  find_package(OpenMP COMPONENTS CXX)
endif()
