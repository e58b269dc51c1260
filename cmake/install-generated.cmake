# Run by `cmake --install` (packaging.cmake): installs what is derived at install time. The
# configuration directory depends on the prefix; the units name the installed binary; the
# completion scripts come from the built binary itself; the man page is compressed as Debian
# wants it.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr" OR prefix STREQUAL "/")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/etc")
endif()
if(IS_ABSOLUTE "${FETCHD_INSTALL_BINDIR}")
  set(bindir "${FETCHD_INSTALL_BINDIR}")
else()
  string(REGEX REPLACE "/$" "" bindir "${prefix}/${FETCHD_INSTALL_BINDIR}")
endif()
set(stage "${FETCHD_BUILD_DIR}/install-generated")
file(MAKE_DIRECTORY "${stage}/units" "${stage}/completions")

# /etc/fetchd/fetchd.toml: the example, every line commented out, so that the units'
# FETCHD_CONFIG names a file that exists and changes nothing until edited.
file(INSTALL DESTINATION "${sysconfdir}/fetchd" TYPE FILE
     FILES "${FETCHD_SOURCE_DIR}/fetchd.example.toml" RENAME fetchd.toml)

file(GLOB units "${FETCHD_SOURCE_DIR}/packaging/systemd/*.service")
foreach(unit IN LISTS units)
  get_filename_component(name "${unit}" NAME)
  file(READ "${unit}" text)
  string(REPLACE "/usr/bin/fetchd" "${bindir}/fetchd" text "${text}")
  string(REPLACE "/etc/fetchd/" "${sysconfdir}/fetchd/" text "${text}")
  string(REPLACE "/etc/default/fetchd" "${sysconfdir}/default/fetchd" text "${text}")
  file(WRITE "${stage}/units/${name}" "${text}")
  file(INSTALL DESTINATION "${prefix}/lib/systemd/system" TYPE FILE
       FILES "${stage}/units/${name}")
endforeach()

foreach(shell bash zsh)
  execute_process(COMMAND "${FETCHD_BUILT_BINARY}" completion ${shell}
                  OUTPUT_FILE "${stage}/completions/${shell}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${FETCHD_BUILT_BINARY} completion ${shell} failed: ${status}")
  endif()
endforeach()
file(INSTALL DESTINATION "${prefix}/${FETCHD_INSTALL_DATADIR}/bash-completion/completions"
     TYPE FILE FILES "${stage}/completions/bash" RENAME fetchd)
file(INSTALL DESTINATION "${prefix}/${FETCHD_INSTALL_DATADIR}/zsh/vendor-completions"
     TYPE FILE FILES "${stage}/completions/zsh" RENAME _fetchd)

# gzip -n: no name or time stamp inside, so that the package is reproducible.
execute_process(COMMAND gzip -9 -n -c "${FETCHD_SOURCE_DIR}/docs/fetchd.1"
                OUTPUT_FILE "${stage}/fetchd.1.gz" RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "gzip docs/fetchd.1 failed: ${status}")
endif()
file(INSTALL DESTINATION "${prefix}/${FETCHD_INSTALL_MANDIR}/man1" TYPE FILE
     FILES "${stage}/fetchd.1.gz")
