# Install layout and the Debian package. `cmake --install build --prefix /usr` (with DESTDIR
# if wanted) and `make package` (CPack, DEB generator) install the same files:
#   bin/fetchd                                     the binary (stripped in the package)
#   /etc/fetchd/fetchd.toml                        every option commented out (a conffile)
#   share/doc/fetchd/examples/fetchd.example.toml  the same reference, and the docs
#   lib/systemd/system/fetchd*.service             serve and the scale-out roles
#   lib/sysusers.d/fetchd.conf                     the dedicated user
#   share/man/man1/fetchd.1.gz                     docs/fetchd.1 (`fetchd config man`)
#   share/bash-completion/completions/fetchd, share/zsh/vendor-completions/_fetchd
# The configuration directory is /etc for the prefixes /usr and / (as GNUInstallDirs has it),
# else <prefix>/etc; the units are rewritten at install time to name the installed binary and
# configuration file, so that they hold for any prefix.
include(GNUInstallDirs)

install(TARGETS fetchd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES fetchd.example.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES README.md docs/install.md docs/scale-out.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES packaging/sysusers/fetchd.conf DESTINATION lib/sysusers.d)
# What the install script needs to know of the build: the binary it runs for the completion
# scripts (the one being installed), and where the sources are.
install(CODE "set(FETCHD_BUILT_BINARY \"$<TARGET_FILE:fetchd>\")
set(FETCHD_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
set(FETCHD_BUILD_DIR \"${PROJECT_BINARY_DIR}\")
set(FETCHD_INSTALL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(FETCHD_INSTALL_MANDIR \"${CMAKE_INSTALL_MANDIR}\")
set(FETCHD_INSTALL_DATADIR \"${CMAKE_INSTALL_DATADIR}\")")
install(SCRIPT cmake/install-generated.cmake)

# ---- CPack: one .deb whose Depends are computed by dpkg-shlibdeps from the binary.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fetchd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "fetchd")
set(CPACK_PACKAGE_CONTACT "fetchd maintainers <fetchd@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "runs HTTP fetch tasks on schedules and keeps what they bring back")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/fetchd/fetchd")
# DESTDIR staging with the real prefix: the install script sees CMAKE_INSTALL_PREFIX=/usr, so
# that /etc and the units' paths come out as on the target system.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # fetchd_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Needed at run time without being linked: the CA bundle for https fetches.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql, redis-server")
# The extended description (the summary above is the first line of Description).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Users register, log in and create tasks through a REST API (OpenAPI and
Swagger UI); fetchd fetches each task on time, records every run as a job and
keeps the JSON it brought back. One process with an embedded SQLite database
(fetchd.service), or API, scheduler and worker processes sharing PostgreSQL
and Redis (fetchd-api.service, fetchd-scheduler.service, fetchd-worker@.service).")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
