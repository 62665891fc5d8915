# Install rules and Debian packages (CPack DEB, one package per component):
#   idflow-agent      agent, tap, systemd unit, /etc/idflow/agent.yaml
#   idflow-collector  collector, systemd unit, /etc/idflow/collector.env, policies
#   idflowctl         the command-line tool
# `bash scripts/package.sh [--arch arm64]` builds them; packaging/README.md
# has the layout and the reasons behind the units. Included after the
# targets exist (install(TARGETS) needs them).

# The target's Debian architecture and multiarch triplet come from the
# compiler (CMAKE_LIBRARY_ARCHITECTURE: set by a cross toolchain file, or
# detected from the native compiler), never from the build host.
# A tree whose target cannot be told (no multiarch triplet, no dpkg-dev)
# builds as usual, without packages (and without the packaging test).
set(IDFLOW_DEB_MULTIARCH "${CMAKE_LIBRARY_ARCHITECTURE}")
if(NOT IDFLOW_DEB_ARCH AND IDFLOW_DEB_MULTIARCH)
  find_program(IDFLOW_DPKG_ARCHITECTURE dpkg-architecture)
  if(IDFLOW_DPKG_ARCHITECTURE)
    execute_process(
      COMMAND ${IDFLOW_DPKG_ARCHITECTURE} -t${IDFLOW_DEB_MULTIARCH} -qDEB_HOST_ARCH
      OUTPUT_VARIABLE IDFLOW_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)  # it warns that the triplet is not the host's
  endif()
endif()
if(NOT IDFLOW_DEB_ARCH OR NOT IDFLOW_DEB_MULTIARCH)
  message(WARNING "idflow: no Debian packages: the target's multiarch triplet "
                  "(CMAKE_LIBRARY_ARCHITECTURE='${IDFLOW_DEB_MULTIARCH}') or its Debian "
                  "architecture is unknown (install dpkg-dev, or pass -DIDFLOW_DEB_ARCH=...)")
  unset(IDFLOW_DEB_ARCH)
  return()
endif()

# Paths are relative to /usr (CPack's packaging prefix) except /etc and the
# units. The tap is private to idflow; /usr/lib/libidflow-tap.so points to it
# because idflowctl looks for the tap at <its dir>/../lib.
set(IDFLOW_TAP_DIR lib/${IDFLOW_DEB_MULTIARCH}/idflow)
set(IDFLOW_UNIT_DIR /lib/systemd/system)  # Debian 12: units stay in /lib

install(TARGETS idflow-agent RUNTIME DESTINATION bin COMPONENT agent)
install(TARGETS idflow-tap LIBRARY DESTINATION ${IDFLOW_TAP_DIR} COMPONENT agent)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/packaging)
file(CREATE_LINK ${IDFLOW_DEB_MULTIARCH}/idflow/libidflow-tap.so
     ${CMAKE_BINARY_DIR}/packaging/libidflow-tap.so SYMBOLIC)
install(FILES ${CMAKE_BINARY_DIR}/packaging/libidflow-tap.so DESTINATION lib COMPONENT agent)
install(FILES packaging/systemd/idflow-agent.service DESTINATION ${IDFLOW_UNIT_DIR}
        COMPONENT agent)
install(FILES packaging/config/agent.yaml DESTINATION /etc/idflow COMPONENT agent)
install(FILES packaging/README.md DESTINATION share/doc/idflow-agent COMPONENT agent)
if(EXISTS ${PROJECT_SOURCE_DIR}/agent/examples)
  install(DIRECTORY agent/examples/ DESTINATION share/doc/idflow-agent/examples
          COMPONENT agent FILES_MATCHING PATTERN "*.yaml")
endif()

install(TARGETS idflow-collector RUNTIME DESTINATION bin COMPONENT collector)
install(FILES packaging/systemd/idflow-collector.service DESTINATION ${IDFLOW_UNIT_DIR}
        COMPONENT collector)
install(FILES packaging/config/collector.env DESTINATION /etc/idflow COMPONENT collector)
install(DIRECTORY policies/ DESTINATION share/idflow/policies COMPONENT collector
        FILES_MATCHING PATTERN "*.yaml")
install(FILES packaging/README.md DESTINATION share/doc/idflow-collector COMPONENT collector)

install(TARGETS idflowctl RUNTIME DESTINATION bin COMPONENT ctl)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME idflow)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "idflow maintainers <maintainers@idflow.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent collector ctl)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${IDFLOW_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Library dependencies from dpkg-shlibdeps, read from the target's installed
# packages (for arm64: the :arm64 runtime libraries; the environment below
# points dpkg-shlibdeps at them).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Maintainer scripts and conffiles; dpkg wants them 0755 / 0644.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME idflow-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "idflow agent and tap: what app SDKs do with device identifiers\n\
idflow-agent receives what libidflow-tap.so (LD_PRELOAD) sees programs send\n\
and streams keyed digests of device identifiers to an idflow collector.\n\
Runs as a hardened systemd service under its own user.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-agent/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-agent/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-agent/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-agent/postrm)

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME idflow-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION
    "idflow collector: judges identifier flows against declared policies\n\
idflow-collector receives idflow agents' events, judges them against the\n\
vendors' declared data-sharing policies and stores verdicts (SQLite or\n\
PostgreSQL); serves the query API and the dashboard.")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-collector/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-collector/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-collector/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/idflow-collector/postrm)

set(CPACK_DEBIAN_CTL_PACKAGE_NAME idflowctl)
# `idflowctl run` and `qa` preload the tap, which comes with the agent.
set(CPACK_DEBIAN_CTL_PACKAGE_RECOMMENDS idflow-agent)
set(CPACK_DEBIAN_CTL_DESCRIPTION
    "idflow command-line tool: run apps under the tap, read verdicts\n\
idflowctl runs programs under the idflow tap, runs QA test commands with an\n\
embedded agent and collector, and reports verdicts (table, JSON, JUnit,\n\
SARIF, HTML).")

# Read by cpack when it runs: a cross build's dpkg-shlibdeps must look up the
# target's libraries and their shlibs/symbols files, not the host's.
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_BINARY_DIR}/packaging/CPackProjectConfig.cmake)
file(WRITE ${CPACK_PROJECT_CONFIG_FILE}
     "set(ENV{DEB_HOST_ARCH} \"${IDFLOW_DEB_ARCH}\")\n"
     "set(ENV{DEB_HOST_MULTIARCH} \"${IDFLOW_DEB_MULTIARCH}\")\n")

include(CPack)
