# Run by `cmake --install` (install(SCRIPT) in the top-level CMakeLists.txt): the systemd unit,
# the sysusers entry and the example config, with the paths of the prefix installed to.
#
# The binary is ${prefix}/bin/neuralops. The config directory is /etc/neuralops for the system
# prefixes (/usr and /usr/local, where systemd finds the unit), ${prefix}/etc/neuralops for any
# other (a staging or test prefix). DESTDIR is honoured for packaging. The example config is
# installed as neuralops.ini.example, so an edited neuralops.ini is never overwritten.
set(_prefix "${CMAKE_INSTALL_PREFIX}")
if(_prefix STREQUAL "/usr" OR _prefix STREQUAL "/usr/local")
  set(_confdir "/etc/neuralops")
else()
  set(_confdir "${_prefix}/etc/neuralops")
endif()
set(_root "$ENV{DESTDIR}")

file(READ "${NOPS_SOURCE_DIR}/deploy/neuralops.service" _unit)
string(REPLACE "/usr/local/bin/neuralops" "${_prefix}/bin/neuralops" _unit "${_unit}")
string(REPLACE "/usr/local/share/doc/neuralops" "${_prefix}/share/doc/neuralops" _unit "${_unit}")
string(REPLACE "/etc/neuralops" "${_confdir}" _unit "${_unit}")
set(_unitdir "${_root}${_prefix}/lib/systemd/system")
file(MAKE_DIRECTORY "${_unitdir}")
file(WRITE "${_unitdir}/neuralops.service" "${_unit}")
message(STATUS "Installing: ${_unitdir}/neuralops.service")

file(INSTALL "${NOPS_SOURCE_DIR}/deploy/neuralops.sysusers"
     DESTINATION "${_root}${_prefix}/lib/sysusers.d" RENAME neuralops.conf)
file(INSTALL "${NOPS_SOURCE_DIR}/deploy/neuralops.ini" DESTINATION "${_root}${_confdir}"
     RENAME neuralops.ini.example PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
