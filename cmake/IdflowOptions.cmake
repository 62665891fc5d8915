# Warnings and sanitizers, carried by one INTERFACE target that every idflow target links.
option(IDFLOW_ASAN "Build with AddressSanitizer" OFF)
option(IDFLOW_UBSAN "Build with UndefinedBehaviorSanitizer" OFF)
option(IDFLOW_TSAN "Build with ThreadSanitizer" OFF)

if(IDFLOW_TSAN AND IDFLOW_ASAN)
  message(FATAL_ERROR "IDFLOW_TSAN and IDFLOW_ASAN cannot be combined")
endif()

add_library(idflow_warnings INTERFACE)
target_compile_options(idflow_warnings INTERFACE -Wall -Wextra -Wshadow -Wno-unused-parameter)

set(_idflow_san "")
if(IDFLOW_ASAN)
  list(APPEND _idflow_san -fsanitize=address -fno-omit-frame-pointer)
endif()
if(IDFLOW_UBSAN)
  list(APPEND _idflow_san -fsanitize=undefined -fno-sanitize-recover=undefined)
endif()
if(IDFLOW_TSAN)
  # -Wno-tsan: GCC warns that TSan ignores atomic_thread_fence (in Asio headers).
  list(APPEND _idflow_san -fsanitize=thread -Wno-tsan)
endif()
if(_idflow_san)
  add_compile_options(${_idflow_san})
  add_link_options(${_idflow_san})
endif()

# Code injected into programs that are not sanitized (the tap, which is
# LD_PRELOADed into arbitrary apps, and the stand-in apps and SDKs it is tested
# with) must not carry a sanitizer runtime: ASan insists on coming first in the
# process's library list. Their own safety is tested by the unit tests.
function(idflow_without_sanitizers)
  if(_idflow_san)
    foreach(t ${ARGN})
      target_compile_options(${t} PRIVATE -fno-sanitize=all)
      target_link_options(${t} PRIVATE -fno-sanitize=all)
    endforeach()
  endif()
endfunction()
