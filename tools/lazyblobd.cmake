# lazyblobd: the daemon (supervisor + worker serving the kernel from the chunk store).
add_executable(lazyblobd
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_main.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_origin.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_origin_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_supervisor.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblobd_worker.cc)
target_link_libraries(lazyblobd PRIVATE lazyblob_core lazyblob_store lazyblob_transport
  lazyblob_registry lazyblob_metrics CLI11::CLI11 PkgConfig::TOMLPP spdlog::spdlog fmt::fmt PkgConfig::SYSTEMD)
install(TARGETS lazyblobd RUNTIME DESTINATION bin)
