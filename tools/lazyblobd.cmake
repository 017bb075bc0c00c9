# lazyblobd: the daemon (supervisor + worker serving the kernel from the chunk store).
add_executable(lazyblobd
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_control_protocol.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_logging.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_control.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_fanotify.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_fanotify_mounts.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_frontend.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_keeper.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_main.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_origin.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_origin_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_preflight.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_read_journal.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_read_watch.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_rlimit.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_supervisor.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_worker.cc)
target_link_libraries(lazyblobd PRIVATE lazyblob_tools_common lazyblob_core lazyblob_store lazyblob_transport
  lazyblob_registry lazyblob_metrics CLI11::CLI11 PkgConfig::TOMLPP spdlog::spdlog fmt::fmt
  PkgConfig::SYSTEMD)
install(TARGETS lazyblobd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
