# `cmake --install` of the C++ SDK, for applications built outside this tree
# (client/README.md "Install and use from your project"). It installs only
# what an application compiles and links against, nothing of the server:
#
#   include/clavis/*.h                  the SDK's public API (client/include/clavis)
#   include/crypto/secret_bytes.h       the one crypto header that API exposes
#   lib/libclavis_{client,proto,crypto}.a
#   lib/cmake/clavis/                   find_package(clavis) -> clavis::client
#   lib/pkgconfig/clavis-client.pc      pkg-config --static clavis-client
#
# The libraries are static: their own dependencies (gRPC, Protobuf, Abseil,
# OpenSSL, libsodium) are found again by clavisConfig.cmake and listed in the
# .pc file. tests/install/install_test.sh builds an application against the
# installed package both ways.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CLAVIS_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/clavis)
set(CLAVIS_PACKAGE_DIR ${PROJECT_BINARY_DIR}/clavis-package)

# clavis_client and our libraries it links, public or private: an
# application linking a static library needs them all. Imported as
# clavis::client, clavis::crypto and clavis::proto, the names of the build
# tree's aliases. Another library of ours linked by clavis_client goes here
# too (CMake's generate step fails until it does).
set_target_properties(clavis_client PROPERTIES EXPORT_NAME client)
set_target_properties(clavis_crypto PROPERTIES EXPORT_NAME crypto)
set_target_properties(clavis_proto PROPERTIES EXPORT_NAME proto)
install(TARGETS clavis_client clavis_crypto clavis_proto
  EXPORT clavisTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The whole directory, so that new public headers are installed without
# touching this file. The generated protobuf headers are not installed:
# clavis::proto is only linked, no public header includes it.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/include/clavis
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
# clavis/secret_bytes.h re-exports crypto/secret_bytes.h, which includes
# only Abseil. Add here any crypto header it comes to include.
install(FILES ${PROJECT_SOURCE_DIR}/crypto/secret_bytes.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/crypto)

# CMake package.
install(EXPORT clavisTargets
  NAMESPACE clavis::
  DESTINATION ${CLAVIS_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/clavisConfig.cmake.in
  ${CLAVIS_PACKAGE_DIR}/clavisConfig.cmake
  INSTALL_DESTINATION ${CLAVIS_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CLAVIS_PACKAGE_DIR}/clavisConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${CLAVIS_PACKAGE_DIR}/clavisConfig.cmake
              ${CLAVIS_PACKAGE_DIR}/clavisConfigVersion.cmake
  DESTINATION ${CLAVIS_INSTALL_CMAKEDIR})

# pkg-config file. Its paths are relative to the .pc file itself, so the
# package can be installed with `cmake --install --prefix` anywhere. Its
# Requires are the pkg-config modules of what the three libraries link, read
# from the targets, so a dependency added in client/ or crypto/ shows up here:
# Requires for what the public headers include (the PUBLIC dependencies of
# clavis_client and clavis_crypto), Requires.private for the rest.
function(clavis_pc_module lib out)
  if(lib MATCHES "^absl::(.+)$")
    set(${out} "absl_${CMAKE_MATCH_1}" PARENT_SCOPE)
  elseif(lib MATCHES "^(clavis_(client|crypto|proto)|clavis::(client|crypto|proto)|Threads::Threads)$")
    set(${out} "" PARENT_SCOPE)  # in Libs / Libs.private
  elseif(lib STREQUAL "gRPC::grpc++")
    set(${out} "grpc++" PARENT_SCOPE)
  elseif(lib STREQUAL "protobuf::libprotobuf")
    set(${out} "protobuf" PARENT_SCOPE)
  elseif(lib STREQUAL "OpenSSL::Crypto")
    set(${out} "libcrypto" PARENT_SCOPE)
  elseif(lib STREQUAL "PkgConfig::SODIUM")
    set(${out} "libsodium" PARENT_SCOPE)
  else()
    message(WARNING "clavis-client.pc: no pkg-config module known for '${lib}', "
                    "a dependency of the SDK; add one in cmake/ClavisInstall.cmake")
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# Sets <public_out> and <private_out> to the space-separated pkg-config
# modules of the SDK's public and private dependencies.
function(clavis_pc_requires public_out private_out)
  set(public)
  set(all)
  foreach(tgt clavis_client clavis_crypto clavis_proto)
    get_target_property(libs ${tgt} LINK_LIBRARIES)
    foreach(lib IN LISTS libs)
      clavis_pc_module("${lib}" module)
      list(APPEND all ${module})
    endforeach()
    if(NOT tgt STREQUAL "clavis_proto")  # clavis_proto is private to clavis_client
      get_target_property(libs ${tgt} INTERFACE_LINK_LIBRARIES)
      foreach(lib IN LISTS libs)
        if(NOT lib MATCHES "^\\$<")  # $<LINK_ONLY:...>: a private dependency
          clavis_pc_module("${lib}" module)
          list(APPEND public ${module})
        endif()
      endforeach()
    endif()
  endforeach()
  list(REMOVE_DUPLICATES public)
  list(REMOVE_DUPLICATES all)
  set(private ${all})
  if(public)
    list(REMOVE_ITEM private ${public})
  endif()
  list(JOIN public " " public)
  list(JOIN private " " private)
  set(${public_out} "${public}" PARENT_SCOPE)
  set(${private_out} "${private}" PARENT_SCOPE)
endfunction()

clavis_pc_requires(CLAVIS_PC_REQUIRES CLAVIS_PC_REQUIRES_PRIVATE)

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CLAVIS_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CLAVIS_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CLAVIS_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _clavis_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")  # "../.."
  string(REGEX REPLACE "/$" "" _clavis_pc_up "${_clavis_pc_up}")
  set(CLAVIS_PC_PREFIX "\${pcfiledir}/${_clavis_pc_up}")
  set(CLAVIS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CLAVIS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/clavis-client.pc.in
  ${CLAVIS_PACKAGE_DIR}/clavis-client.pc @ONLY)
install(FILES ${CLAVIS_PACKAGE_DIR}/clavis-client.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
