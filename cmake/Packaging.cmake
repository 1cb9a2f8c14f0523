# `make install` and the .deb (CPack): both programs, the man pages, the completions of the three shells
# where each shell's system-wide loader looks, the systemd user unit, the catalog's README and the docs.
# tests/packaging/test_deb.sh builds the .deb, checks its contents, installs, runs and removes it.
include(GNUInstallDirs)
install(TARGETS alumia-connectd alumia-connect RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/man/alumia-connect.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/man/alumia-connectd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/completions/alumia-connect.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME alumia-connect)
install(FILES ${PROJECT_SOURCE_DIR}/completions/_alumia-connect DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${PROJECT_SOURCE_DIR}/completions/alumia-connect.fish
        DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)
# systemd looks for user units in <prefix>/lib/systemd/user (not the multiarch libdir).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/alumia-connectd.service DESTINATION lib/systemd/user)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/catalog/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME catalog.md)
install(FILES ${PROJECT_SOURCE_DIR}/docs/API.md ${PROJECT_SOURCE_DIR}/docs/ARCHITECTURE.md ${PROJECT_SOURCE_DIR}/docs/DEPLOY.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/spec/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/spec FILES_MATCHING PATTERN "*.md")

set(CPACK_PACKAGE_NAME alumia-connect)
set(CPACK_PACKAGE_VENDOR "alumia-connect")
set(CPACK_PACKAGE_CONTACT "alumia-connect maintainers <maintainers@alumia-connect.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "local daemon and CLI that connect accounts (OAuth, API keys) and relay webhooks")
set(CPACK_PACKAGE_DESCRIPTION "alumia-connectd keeps OAuth connections and API keys encrypted in a local store, \
refreshes tokens, and receives, verifies, stores and relays provider webhooks; alumia-connect is its command line.")
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends from the shared libraries the binaries link (dpkg-shlibdeps): libc6, libstdc++6, libsqlite3,
# libssl3, ... Not libmicrohttpd12: the daemon links Debian's libmicrohttpd.a (daemon/gnutls_on_demand.cpp says
# why), so a security update of libmicrohttpd needs this package rebuilt, as any statically linked program
# does; its source (LGPL-2.1) is Debian's. libidn2 is dlopened when a public base URL is judged
# (common/net/public_base_url.cpp), which dpkg-shlibdeps cannot see, and the daemon needs it for that: a
# Depends of its own (CPack appends what dpkg-shlibdeps finds).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libidn2-0")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libsecret is loaded at run time by the keyring helper child (common/crypto/keyring.cpp dlopens it, so the
# daemon never maps GLib), which dpkg-shlibdeps cannot see. Without it the daemon falls back to the 0600 key
# file and says so loudly, hence Recommends rather than Depends. libpq is the same: common/store/pg_conn.cpp
# dlopens it when a PostgreSQL store is opened (a daemon on SQLite, the default, never maps it nor its
# Kerberos/LDAP/SASL libraries); without it such a start fails naming libpq5.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libsecret-1-0, libpq5")
# Stripped in the package (the build keeps its line tables for backtraces).
set(CPACK_STRIP_FILES ON)
include(CPack)
