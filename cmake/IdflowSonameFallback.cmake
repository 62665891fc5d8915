# Two -dev packages idflow needs, libyaml-cpp-dev and libpq-dev, cannot be
# installed for two architectures at once on Debian 12. A cross build (see
# cmake/toolchains/) therefore links the target's runtime library by its
# soname and compiles against the host's headers, which are the same on every
# 64-bit Linux architecture. Native builds never take this path.
function(idflow_soname_fallback target soname header)
  if(TARGET ${target})
    return()
  endif()
  find_library(_lib NAMES ${soname} REQUIRED NO_CACHE)
  find_path(_inc ${header} PATH_SUFFIXES ${ARGN} REQUIRED NO_CACHE)
  add_library(${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION "${_lib}"
                                             INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
  message(STATUS "idflow: ${target} from ${_lib} (no -dev package for this target)")
endfunction()
