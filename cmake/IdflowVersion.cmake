# idflow_version: one generated source with the project version, the git
# commit and the build type. Only that file changes with a new commit, so a
# commit recompiles one file and relinks, instead of rebuilding everything.
#
# The commit is read at configure time (`git rev-parse --short HEAD`;
# "unknown" outside a git checkout, e.g. a source tarball). CMake re-runs by
# itself when HEAD or the branch it points at moves, so the commit stays
# current; configure_file rewrites the source only when its text changes.

set(IDFLOW_GIT_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" rev-parse --short HEAD
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
    OUTPUT_VARIABLE _idflow_commit
    ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _idflow_git_rc)
  if(_idflow_git_rc EQUAL 0 AND _idflow_commit)
    set(IDFLOW_GIT_COMMIT "${_idflow_commit}")
    # Re-configure when HEAD moves: HEAD itself (checkout), the ref it names
    # (commit), packed-refs when the ref is packed, and the reflog.
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path HEAD --symbolic-full-name HEAD
              --git-path packed-refs --git-path logs/HEAD
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
      OUTPUT_VARIABLE _idflow_git_paths
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    string(REPLACE "\n" ";" _idflow_git_paths "${_idflow_git_paths}")
    list(LENGTH _idflow_git_paths _idflow_n)
    if(_idflow_n EQUAL 4)
      list(GET _idflow_git_paths 1 _idflow_ref)
      list(REMOVE_AT _idflow_git_paths 1)
      set(_idflow_watch ${_idflow_git_paths})
      if(_idflow_ref MATCHES "^refs/")
        execute_process(
          COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path "${_idflow_ref}"
          WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
          OUTPUT_VARIABLE _idflow_ref_path
          ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
        list(APPEND _idflow_watch "${_idflow_ref_path}")
      endif()
      foreach(_p IN LISTS _idflow_watch)
        if(NOT IS_ABSOLUTE "${_p}")
          set(_p "${PROJECT_SOURCE_DIR}/${_p}")
        endif()
        if(EXISTS "${_p}")
          set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                                                                         "${_p}")
        endif()
      endforeach()
    endif()
  endif()
endif()

set(IDFLOW_BUILD_TYPE "${CMAKE_BUILD_TYPE}")
if(NOT IDFLOW_BUILD_TYPE)
  set(IDFLOW_BUILD_TYPE "unknown")
endif()

configure_file("${PROJECT_SOURCE_DIR}/common/version.cc.in"
               "${PROJECT_BINARY_DIR}/generated/common/version.cc" @ONLY)
add_library(idflow_version STATIC "${PROJECT_BINARY_DIR}/generated/common/version.cc")
target_include_directories(idflow_version PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(idflow_version PRIVATE idflow_warnings)
