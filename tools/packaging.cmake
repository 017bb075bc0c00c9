# Packaging: man pages and bash completion generated from the binaries' --help text
# (tools/gen_docs.py), and `cmake --install` of everything an installed lazyblob needs:
# the binaries (lazyblob.cmake, lazyblobd.cmake), the systemd unit, the config, the man
# pages, the completion and the docs the unit's Documentation= names.
#
# Paths inside the unit are resolved at install time, so `cmake --install --prefix DIR`
# gives a unit that points into DIR. The unit goes to <prefix>/lib/systemd/system (systemd
# reads /usr/lib and /usr/local/lib alike); the config to /etc for prefix /usr, else
# <prefix>/etc, and is never overwritten once there.

# systemd >= 254 understands FileDescriptorStorePreserve=yes (keep the device fd across
# `systemctl restart`); older ones warn about an unknown key. Debian 12 has 252.
set(LAZYBLOB_SYSTEMD_VERSION "${SYSTEMD_VERSION}" CACHE STRING
    "systemd version the unit is written for (default: libsystemd's)")
if(LAZYBLOB_SYSTEMD_VERSION AND LAZYBLOB_SYSTEMD_VERSION VERSION_GREATER_EQUAL 254)
  set(LAZYBLOB_FDSTORE_PRESERVE "FileDescriptorStorePreserve=yes")
else()
  set(LAZYBLOB_FDSTORE_PRESERVE
    "# FileDescriptorStorePreserve=yes needs systemd >= 254 (this unit is for systemd ${LAZYBLOB_SYSTEMD_VERSION}):\n# the fd store survives crash restarts (Restart=), but `systemctl restart` or `stop`\n# closes the device fd, which withdraws the cache: remount the images afterwards.")
endif()

find_package(Python3 COMPONENTS Interpreter)
set(LAZYBLOB_GENERATED_DOCS ${PROJECT_BINARY_DIR}/generated/docs)
if(Python3_FOUND AND TARGET lazyblob AND TARGET lazyblobd)
  set(LAZYBLOB_DOC_OUTPUTS
    ${LAZYBLOB_GENERATED_DOCS}/man/lazyblob.1
    ${LAZYBLOB_GENERATED_DOCS}/man/lazyblobd.8
    ${LAZYBLOB_GENERATED_DOCS}/completion/lazyblob
    ${LAZYBLOB_GENERATED_DOCS}/completion/lazyblobd)
  add_custom_command(OUTPUT ${LAZYBLOB_DOC_OUTPUTS}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/gen_docs.py
            --lazyblob $<TARGET_FILE:lazyblob> --lazyblobd $<TARGET_FILE:lazyblobd>
            --out ${LAZYBLOB_GENERATED_DOCS}
    COMMAND ${CMAKE_COMMAND} -E touch ${LAZYBLOB_DOC_OUTPUTS}
    DEPENDS lazyblob lazyblobd ${CMAKE_CURRENT_LIST_DIR}/gen_docs.py
    COMMENT "man pages and bash completion from --help"
    VERBATIM)
  add_custom_target(lazyblob_docs ALL DEPENDS ${LAZYBLOB_DOC_OUTPUTS})
  install(FILES ${LAZYBLOB_GENERATED_DOCS}/man/lazyblob.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  install(FILES ${LAZYBLOB_GENERATED_DOCS}/man/lazyblobd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
  install(FILES ${LAZYBLOB_GENERATED_DOCS}/completion/lazyblob
                ${LAZYBLOB_GENERATED_DOCS}/completion/lazyblobd
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
else()
  message(STATUS "python3 not found: no man pages or bash completion")
endif()

install(FILES ${PROJECT_SOURCE_DIR}/README.md
              ${CMAKE_CURRENT_LIST_DIR}/lazyblobd.toml.example
              ${PROJECT_SOURCE_DIR}/docs/grafana-dashboard.json
              ${PROJECT_SOURCE_DIR}/store/FORMAT.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/metrics/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        RENAME METRICS.md)

# The unit and the config, with paths of the prefix the install actually uses.
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(prefix STREQUAL \"/usr\")
    set(sysconfdir /etc)
  else()
    set(sysconfdir \"\${prefix}/etc\")
  endif()
  set(BINDIR \"\${prefix}/${CMAKE_INSTALL_BINDIR}\")
  set(DOCDIR \"\${prefix}/${CMAKE_INSTALL_DOCDIR}\")
  set(SYSCONFDIR \"\${sysconfdir}\")
  set(FDSTORE_PRESERVE \"${LAZYBLOB_FDSTORE_PRESERVE}\")
  set(unit \"\$ENV{DESTDIR}\${prefix}/lib/systemd/system/lazyblobd.service\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/lazyblobd.service.in\" \"\${unit}\" @ONLY)
  message(STATUS \"Installing: \${unit}\")
  set(config \"\$ENV{DESTDIR}\${sysconfdir}/lazyblob/lazyblobd.toml\")
  if(EXISTS \"\${config}\")
    message(STATUS \"Keeping: \${config} (already there)\")
  else()
    file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${sysconfdir}/lazyblob\")
    file(COPY_FILE \"${CMAKE_CURRENT_LIST_DIR}/lazyblobd.toml.example\" \"\${config}\")
    message(STATUS \"Installing: \${config}\")
  endif()
")
